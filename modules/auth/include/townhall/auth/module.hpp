#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "townhall/auth/api.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"

namespace townhall::auth {

// The tables auth.db may hold (DESIGN.md §2); drives the connection-role authorizer.
db::TableManifest table_manifest();

// The module (for app/ to start, stop and route) and the Api it serves to the other
// modules and the gateway; `api` lives as long as `module`. While the module is down
// the Api answers unavailable (tokens it has cached still authenticate until they age).
struct Instance {
  std::unique_ptr<Module> module;
  Api* api = nullptr;
};

// Reads the module's settings (`modules.auth.settings`) and its key file; throws
// config::ConfigError naming the key on a bad or unknown setting.
Instance make_module(ModuleContext& context);

// Where the key that seals auth.db's national ids lives (`modules.auth.settings.key_file`,
// relative to `data_dir`): auth.db is not whole without it, so backups copy it and
// restores install it beside the file. Throws config::ConfigError on a bad setting.
std::filesystem::path key_file(const nlohmann::json& settings, const std::filesystem::path& data_dir);

// `townhall admin create-user`: an employee with one role, creating the department
// when it does not exist, on a migrated auth.db without a running server (its events
// wait in the outbox for the next start).
struct StaffUser {
  std::string email;
  std::string password;
  std::string name;
  std::string role;
  std::optional<std::string> department_code;
};
struct CreatedStaffUser {
  std::int64_t id = 0;
  bool department_created = false;
};
Result<CreatedStaffUser> create_staff_user(const db::ModuleDb& database, const nlohmann::json& settings,
                                           const StaffUser& user);

}  // namespace townhall::auth
