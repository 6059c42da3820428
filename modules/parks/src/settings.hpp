#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace townhall::parks {

// The parks module's registry section (`modules.parks.settings`).
struct Settings {
  std::chrono::seconds hold{900};        // how long a priced booking holds its slot unpaid
  std::chrono::hours max_booking{8};     // longest booking
  std::chrono::hours horizon{24 * 365};  // how far ahead one may book
  std::string currency = "USD";          // of facilities and programs that do not say
  int max_unpaid_per_citizen = 3;        // priced bookings one citizen may hold unpaid at once
  int max_active_per_kind = 4;           // bookings not yet ended one citizen may hold per facility kind
  // A citizen cancelling a paid booking at least this long before its start is refunded
  // in full; later (until the start) it is cancelled without a refund.
  std::chrono::hours refund_cutoff{24};
};

// Throws config::ConfigError naming the key; unknown keys are errors.
Settings parse_settings(const nlohmann::json& section);

}  // namespace townhall::parks
