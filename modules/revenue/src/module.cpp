#include "townhall/revenue/module.hpp"

#include "townhall/platform/basic_module.hpp"

namespace townhall::revenue {

db::TableManifest table_manifest() {
  return db::TableManifest{
      .owned = {"invoices", "payments", "tax_records", "business_licenses"},
      .cache = {"citizen_refs"},
  };
}

namespace {

class RevenueModule final : public BasicModule {
 public:
  explicit RevenueModule(ModuleContext& context) : BasicModule("revenue", context) {}
};

}  // namespace

std::unique_ptr<Module> make_module(ModuleContext& context) { return std::make_unique<RevenueModule>(context); }

}  // namespace townhall::revenue
