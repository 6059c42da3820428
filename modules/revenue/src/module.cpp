#include "townhall/revenue/module.hpp"

#include "provider.hpp"
#include "routes.hpp"
#include "service.hpp"
#include "townhall/platform/basic_module.hpp"
#include "townhall/platform/config.hpp"
#include "townhall/platform/write_path.hpp"

namespace townhall::revenue {

db::TableManifest table_manifest() {
  return db::TableManifest{
      .owned = {"invoices", "payments", "tax_records", "business_licenses"},
      .cache = {"citizen_refs"},
  };
}

namespace {

class RevenueModule final : public BasicModule, public bus::Consumer, public consistency::Checked {
 public:
  RevenueModule(ModuleContext& context, auth::Api& auth, Settings settings)
      : BasicModule("revenue", context),
        provider_(make_simulated_provider(context.db.path().parent_path() / settings.simulator_ledger)),
        service_(std::move(settings), RevenueService::Dependencies{context.db, context.writer, readers(),
                                                                   context.events_committed, auth, *provider_}) {}

  void on_start() override {
    service_.start();
    if (context().demo) service_.seed_demo();
  }
  void on_stop() override { service_.stop(); }
  void add_routes(http::Router& router, const std::string& prefix) override {
    BasicModule::add_routes(router, prefix);
    revenue::add_routes(router, prefix, service_);
  }
  std::vector<bus::Subscription> subscriptions() override { return service_.subscriptions(); }
  std::vector<consistency::Cache> caches() override { return service_.caches(); }

 private:
  std::unique_ptr<PaymentProvider> provider_;
  RevenueService service_;
};

}  // namespace

Result<std::int64_t> expire_lapsed_licenses(const db::ModuleDb& database) {
  auto service = database.open(db::Role::service);
  return db::run_in_transaction(*service,
                                [](db::Connection& connection) -> Result<std::int64_t> {
                                  auto sweep = close_due_licenses(connection, "cli:expire-licenses");
                                  return sweep.expired + sweep.lapsed;
                                },
                                {});
}

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<RevenueModule>(context, auth, parse_settings(context.config.settings));
}

}  // namespace townhall::revenue
