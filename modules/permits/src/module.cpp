#include "townhall/permits/module.hpp"

#include "townhall/platform/basic_module.hpp"

namespace townhall::permits {

db::TableManifest table_manifest() {
  return db::TableManifest{
      .owned = {"applications", "permits", "inspections"},
      .cache = {"citizen_refs", "department_refs"},
  };
}

namespace {

class PermitsModule final : public BasicModule {
 public:
  explicit PermitsModule(ModuleContext& context) : BasicModule("permits", context) {}
};

}  // namespace

std::unique_ptr<Module> make_module(ModuleContext& context) { return std::make_unique<PermitsModule>(context); }

}  // namespace townhall::permits
