#include "townhall/permits/module.hpp"

#include "routes.hpp"
#include "service.hpp"
#include "store.hpp"
#include "townhall/bus/consumer_module.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::permits {

db::TableManifest table_manifest() {
  auto manifest =
      bus::with_bus_tables({"applications", "permits", "inspections", "permit_type_versions", "application_days"},
                           {"citizen_refs", "department_refs"});
  // The applications report's per-day counts (migration 0006), checked against the rows.
  manifest.derived.push_back({.table = "application_days",
                              .source = "applications",
                              .columns = {"day", "department_code", "status", "bucket", "applications"},
                              .key_columns = 4,
                              .expected = store::kApplicationDaysFromRows});
  return manifest;
}

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<bus::ConsumerModule<PermitsService>>("permits", context, &permits::add_routes,
                                                               parse_settings(context.config.settings), auth);
}

}  // namespace townhall::permits
