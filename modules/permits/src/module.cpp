#include "townhall/permits/module.hpp"

#include "routes.hpp"
#include "service.hpp"
#include "townhall/bus/consumer_module.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::permits {

db::TableManifest table_manifest() {
  return bus::with_bus_tables({"applications", "permits", "inspections", "permit_type_versions"},
                              {"citizen_refs", "department_refs"});
}

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<bus::ConsumerModule<PermitsService>>("permits", context, &permits::add_routes,
                                                               parse_settings(context.config.settings), auth);
}

}  // namespace townhall::permits
