#include "settings.hpp"

#include "townhall/platform/money.hpp"
#include "townhall/platform/settings_reader.hpp"

namespace townhall::revenue {

Settings parse_settings(const nlohmann::json& section) {
  config::SettingsReader reader(section, "modules.revenue.settings");
  Settings settings;
  settings.currency = reader.text("currency", settings.currency, 16);
  if (!money::is_iso4217(settings.currency)) reader.fail("currency", "expected an ISO 4217 code such as \"USD\"");
  settings.payment_provider = reader.text("payment_provider", settings.payment_provider, 64);
  if (settings.payment_provider != "simulated")
    reader.fail("payment_provider", "the only provider of this build is \"simulated\"");
  settings.simulator_ledger = reader.text("simulator_ledger", settings.simulator_ledger, 255);
  const auto& ledger = settings.simulator_ledger;
  if (ledger.empty() || ledger.find('/') != std::string::npos || ledger.starts_with("."))
    reader.fail("simulator_ledger", "expected a file name in the data directory");
  settings.provider_timeout =
      std::chrono::milliseconds(reader.integer("provider_timeout_ms", settings.provider_timeout.count(), 100, 120000));
  settings.reconcile_interval = std::chrono::milliseconds(
      reader.integer("reconcile_interval_ms", settings.reconcile_interval.count(), 100, 3600000));
  settings.license_fee_cents =
      reader.integer("license_fee_cents", settings.license_fee_cents, 1, money::kMaxMinorUnits);
  settings.license_term_days =
      static_cast<int>(reader.integer("license_term_days", settings.license_term_days, 1, 3660));
  settings.license_fee_due_days =
      static_cast<int>(reader.integer("license_fee_due_days", settings.license_fee_due_days, 1, 365));
  settings.license_expiry_interval = std::chrono::hours(
      reader.integer("license_expiry_interval_hours", settings.license_expiry_interval.count(), 1, 24 * 7));
  settings.overdue_interval =
      std::chrono::hours(reader.integer("overdue_interval_hours", settings.overdue_interval.count(), 1, 24 * 7));
  reader.finish();
  return settings;
}

}  // namespace townhall::revenue
