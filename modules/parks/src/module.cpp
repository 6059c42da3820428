#include "townhall/parks/module.hpp"

#include "routes.hpp"
#include "service.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/basic_module.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::parks {

db::TableManifest table_manifest() {
  return bus::with_bus_tables({"facilities", "programs", "enrollments", "bookings", "client_digest_key"},
                              {"citizen_refs"});
}

namespace {

class ParksModule final : public BasicModule, public bus::Consumer, public consistency::Checked {
 public:
  ParksModule(ModuleContext& context, auth::Api& auth)
      : BasicModule("parks", context),
        service_(parse_settings(context.config.settings),
                 ParksService::Dependencies{context.db, context.writer, readers(), context.events_committed, auth}) {}

  void on_start() override {
    service_.start();
    if (context().demo) service_.seed_demo();
  }
  void on_stop() override { service_.stop(); }
  void add_routes(http::Router& router, const std::string& prefix) override {
    BasicModule::add_routes(router, prefix);
    parks::add_routes(router, prefix, service_);
  }
  std::vector<bus::Subscription> subscriptions() override { return service_.subscriptions(); }
  std::vector<consistency::Cache> caches() override { return service_.caches(); }

 private:
  ParksService service_;
};

}  // namespace

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<ParksModule>(context, auth);
}

}  // namespace townhall::parks
