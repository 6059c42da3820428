#include "settings.hpp"

#include "townhall/platform/config.hpp"
#include "townhall/platform/money.hpp"

namespace townhall::revenue {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& message) {
  throw config::ConfigError("modules.revenue.settings." + key + ": " + message);
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
    if (key == "currency") {
      if (!value.is_string() || !money::is_iso4217(value.get<std::string>()))
        fail(key, "expected an ISO 4217 code such as \"USD\"");
      settings.currency = value.get<std::string>();
    } else if (key == "payment_provider") {
      if (value != "simulated") fail(key, "the only provider of this build is \"simulated\"");
      settings.payment_provider = value.get<std::string>();
    } else if (key == "simulator_ledger") {
      auto name = value.is_string() ? value.get<std::string>() : std::string();
      if (name.empty() || name.find('/') != std::string::npos || name.starts_with("."))
        fail(key, "expected a file name in the data directory");
      settings.simulator_ledger = name;
    } else if (key == "provider_timeout_ms") {
      settings.provider_timeout = std::chrono::milliseconds(integer(key, value, 100, 120000));
    } else if (key == "reconcile_interval_ms") {
      settings.reconcile_interval = std::chrono::milliseconds(integer(key, value, 100, 3600000));
    } else if (key == "license_fee_cents") {
      settings.license_fee_cents = integer(key, value, 1, money::kMaxMinorUnits);
    } else if (key == "license_term_days") {
      settings.license_term_days = static_cast<int>(integer(key, value, 1, 3660));
    } else if (key == "license_fee_due_days") {
      settings.license_fee_due_days = static_cast<int>(integer(key, value, 1, 365));
    } else if (key == "license_expiry_interval_hours") {
      settings.license_expiry_interval = std::chrono::hours(integer(key, value, 1, 24 * 7));
    } else if (key == "test_kill_after_provider_answer") {
      if (!value.is_boolean()) fail(key, "expected true or false");
      settings.test_kill_after_provider_answer = value.get<bool>();
    } else {
      fail(key, "unknown setting");
    }
  }
  return settings;
}

}  // namespace townhall::revenue
