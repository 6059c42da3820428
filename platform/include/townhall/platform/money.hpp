#pragma once

#include <cstdint>
#include <string_view>

// Money is integer minor units with an ISO 4217 currency code (DESIGN.md §6).
namespace townhall::money {

// The largest amount accepted anywhere, in minor units: 10^12 (ten billion of a
// two-decimal currency) — far below 2^53, so every JavaScript client reads it exactly.
inline constexpr std::int64_t kMaxMinorUnits = 1'000'000'000'000;

// True for an active ISO 4217 alphabetic code ("USD", "EUR"), upper case.
bool is_iso4217(std::string_view code);

}  // namespace townhall::money
