#include "townhall/parks/module.hpp"

#include "townhall/platform/basic_module.hpp"

namespace townhall::parks {

db::TableManifest table_manifest() {
  return db::TableManifest{
      .owned = {"facilities", "programs", "bookings"},
      .cache = {"citizen_refs"},
  };
}

namespace {

class ParksModule final : public BasicModule {
 public:
  explicit ParksModule(ModuleContext& context) : BasicModule("parks", context) {}
};

}  // namespace

std::unique_ptr<Module> make_module(ModuleContext& context) { return std::make_unique<ParksModule>(context); }

}  // namespace townhall::parks
