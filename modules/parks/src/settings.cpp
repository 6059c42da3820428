#include "settings.hpp"

#include "townhall/platform/config.hpp"
#include "townhall/platform/money.hpp"

namespace townhall::parks {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& message) {
  throw config::ConfigError("modules.parks.settings." + key + ": " + message);
}

std::int64_t integer(const std::string& key, const nlohmann::json& value, std::int64_t min, std::int64_t max) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < min || value.get<std::int64_t>() > max)
    fail(key, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return value.get<std::int64_t>();
}

}  // namespace

Settings parse_settings(const nlohmann::json& section) {
  Settings settings;
  if (section.is_null()) return settings;
  if (!section.is_object()) fail("", "expected an object");
  for (const auto& [key, value] : section.items()) {
    if (key == "hold_seconds") {
      settings.hold = std::chrono::seconds(integer(key, value, 1, 24 * 3600));
    } else if (key == "max_booking_hours") {
      settings.max_booking = std::chrono::hours(integer(key, value, 1, 24));
    } else if (key == "booking_horizon_days") {
      settings.horizon = std::chrono::hours(24 * integer(key, value, 1, 3660));
    } else if (key == "max_unpaid_per_citizen") {
      settings.max_unpaid_per_citizen = static_cast<int>(integer(key, value, 1, 100));
    } else if (key == "refund_cutoff_hours") {
      settings.refund_cutoff = std::chrono::hours(integer(key, value, 0, 24 * 366));
    } else if (key == "max_active_bookings_per_kind") {
      settings.max_active_per_kind = static_cast<int>(integer(key, value, 1, 1000));
    } else if (key == "currency") {
      if (!value.is_string() || !money::is_iso4217(value.get<std::string>()))
        fail(key, "expected an ISO 4217 code such as \"USD\"");
      settings.currency = value.get<std::string>();
    } else {
      fail(key, "unknown setting");
    }
  }
  return settings;
}

}  // namespace townhall::parks
