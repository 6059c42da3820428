#include "townhall/revenue/module.hpp"

#include "provider.hpp"
#include "routes.hpp"
#include "service.hpp"
#include "store.hpp"
#include "townhall/bus/consumer_module.hpp"
#include "townhall/platform/config.hpp"
#include "townhall/platform/write_path.hpp"

namespace townhall::revenue {

db::TableManifest table_manifest() {
  auto manifest = bus::with_bus_tables(
      {"invoices", "payments", "tax_records", "business_licenses", "revenue_days", "open_invoice_totals"},
      {"citizen_refs"});
  // The revenue report's sums (migration 0009), checked against the rows.
  manifest.derived.push_back({.table = "revenue_days",
                              .source = "payments",
                              .columns = {"day", "source_module", "source_type", "currency", "payments", "paid_cents",
                                          "refunds", "refunded_cents"},
                              .key_columns = 4,
                              .expected = store::kRevenueDaysFromRows});
  manifest.derived.push_back({.table = "open_invoice_totals",
                              .source = "invoices",
                              .columns = {"currency", "invoices", "amount_cents", "overdue_invoices", "overdue_cents"},
                              .key_columns = 1,
                              .expected = store::kOpenInvoiceTotalsFromRows});
  return manifest;
}

namespace {

// The payment provider lives as long as the module and is made before its service.
struct OwnedProvider {
  std::unique_ptr<PaymentProvider> provider;
};

class RevenueModule final : private OwnedProvider, public bus::ConsumerModule<RevenueService> {
 public:
  RevenueModule(ModuleContext& context, auth::Api& auth, Settings settings)
      : OwnedProvider{make_simulated_provider(context.db.path().parent_path() / settings.simulator_ledger,
                                              context.db.options().synchronous)},
        ConsumerModule("revenue", context, &revenue::add_routes, std::move(settings), auth, *provider) {}
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

Result<std::int64_t> mark_invoices_overdue(const db::ModuleDb& database) {
  auto service = database.open(db::Role::service);
  return db::run_in_transaction(*service,
                                [](db::Connection& connection) -> Result<std::int64_t> {
                                  return mark_overdue_invoices(connection, utc_today(), "cli:mark-overdue");
                                },
                                {});
}

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<RevenueModule>(context, auth, parse_settings(context.config.settings));
}

}  // namespace townhall::revenue
