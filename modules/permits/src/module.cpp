#include "townhall/permits/module.hpp"

#include "routes.hpp"
#include "service.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/basic_module.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::permits {

db::TableManifest table_manifest() {
  return bus::with_bus_tables({"applications", "permits", "inspections"}, {"citizen_refs", "department_refs"});
}

namespace {

class PermitsModule final : public BasicModule, public bus::Consumer, public consistency::Checked {
 public:
  PermitsModule(ModuleContext& context, auth::Api& auth)
      : BasicModule("permits", context),
        service_(parse_settings(context.config.settings),
                 PermitsService::Dependencies{context.db, context.writer, readers(), context.events_committed, auth}) {}

  void on_start() override { service_.start(); }
  void on_stop() override { service_.stop(); }
  void add_routes(http::Router& router, const std::string& prefix) override {
    BasicModule::add_routes(router, prefix);
    permits::add_routes(router, prefix, service_);
  }
  std::vector<bus::Subscription> subscriptions() override { return service_.subscriptions(); }
  std::vector<consistency::Cache> caches() override { return service_.caches(); }
  std::vector<consistency::KeyedCache> keyed_caches() override { return service_.keyed_caches(); }

 private:
  PermitsService service_;
};

}  // namespace

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<PermitsModule>(context, auth);
}

}  // namespace townhall::permits
