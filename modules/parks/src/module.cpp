#include "townhall/parks/module.hpp"

#include "routes.hpp"
#include "service.hpp"
#include "store.hpp"
#include "townhall/bus/consumer_module.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::parks {

db::TableManifest table_manifest() {
  auto manifest = bus::with_bus_tables(
      {"facilities", "programs", "enrollments", "bookings", "client_digest_key", "booking_days"}, {"citizen_refs"});
  // The utilisation report's per-day sums (migration 0008), checked against the rows.
  manifest.derived.push_back({.table = "booking_days",
                              .source = "bookings",
                              .columns = {"facility_id", "day", "bookings", "booked_ms", "no_shows",
                                          "cancelled_by_citizen", "cancelled_by_staff", "expired"},
                              .key_columns = 2,
                              .expected = store::kBookingDaysFromRows});
  return manifest;
}

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<bus::ConsumerModule<ParksService>>("parks", context, &parks::add_routes,
                                                             parse_settings(context.config.settings), auth);
}

}  // namespace townhall::parks
