#pragma once

#include <nlohmann/json.hpp>
#include <optional>

namespace townhall {

// An optional value as JSON: the value, or null. (Responses and event snapshots show
// absent optional fields as null rather than leaving them out.)
template <class T>
nlohmann::json nullable(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace townhall
