#include "townhall/auth/module.hpp"

#include "townhall/platform/basic_module.hpp"

namespace townhall::auth {

db::TableManifest table_manifest() {
  return db::TableManifest{
      .owned = {"citizens", "employees", "departments", "roles", "permissions", "role_permissions", "user_roles",
                "sessions", "audit_log"},
      .cache = {},
  };
}

namespace {

class AuthModule final : public BasicModule {
 public:
  explicit AuthModule(ModuleContext& context) : BasicModule("auth", context) {}
};

}  // namespace

std::unique_ptr<Module> make_module(ModuleContext& context) { return std::make_unique<AuthModule>(context); }

}  // namespace townhall::auth
