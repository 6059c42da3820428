#include "settings.hpp"

#include "townhall/platform/money.hpp"
#include "townhall/platform/settings_reader.hpp"

namespace townhall::parks {

Settings parse_settings(const nlohmann::json& section) {
  config::SettingsReader reader(section, "modules.parks.settings");
  Settings settings;
  settings.hold = std::chrono::seconds(reader.integer("hold_seconds", settings.hold.count(), 1, 24 * 3600));
  settings.max_booking = std::chrono::hours(reader.integer("max_booking_hours", settings.max_booking.count(), 1, 24));
  settings.horizon =
      std::chrono::hours(24 * reader.integer("booking_horizon_days", settings.horizon.count() / 24, 1, 3660));
  settings.max_unpaid_per_citizen =
      static_cast<int>(reader.integer("max_unpaid_per_citizen", settings.max_unpaid_per_citizen, 1, 100));
  settings.max_unpaid_per_address =
      static_cast<int>(reader.integer("max_unpaid_per_address", settings.max_unpaid_per_address, 1, 100000));
  settings.refund_cutoff =
      std::chrono::hours(reader.integer("refund_cutoff_hours", settings.refund_cutoff.count(), 0, 24 * 366));
  settings.max_active_per_kind =
      static_cast<int>(reader.integer("max_active_bookings_per_kind", settings.max_active_per_kind, 1, 1000));
  settings.currency = reader.text("currency", settings.currency, 16);
  if (!money::is_iso4217(settings.currency)) reader.fail("currency", "expected an ISO 4217 code such as \"USD\"");
  reader.finish();
  return settings;
}

}  // namespace townhall::parks
