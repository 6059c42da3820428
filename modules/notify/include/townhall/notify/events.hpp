#pragma once

#include <array>
#include <string_view>

// notify publishes no events: it is the end of every flow. The empty list is its
// contract with the registry check (a registry naming a gov.notify topic is refused).
namespace townhall::notify::events {

inline constexpr std::array<std::string_view, 0> kTopics{};

}  // namespace townhall::notify::events
