#include "townhall/parks/module.hpp"

#include "routes.hpp"
#include "service.hpp"
#include "townhall/bus/consumer_module.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::parks {

db::TableManifest table_manifest() {
  return bus::with_bus_tables({"facilities", "programs", "enrollments", "bookings", "client_digest_key"},
                              {"citizen_refs"});
}

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<bus::ConsumerModule<ParksService>>("parks", context, &parks::add_routes,
                                                             parse_settings(context.config.settings), auth);
}

}  // namespace townhall::parks
