#pragma once

#include <chrono>
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

// How long auth's token cache keeps an authenticated token
// (`modules.auth.settings.token_cache_ttl_ms`): the same bound for the processes of a split
// that reach auth over HTTP (HttpApiOptions::token_cache_ttl). Throws config::ConfigError
// on a bad setting.
std::chrono::milliseconds token_cache_ttl(const nlohmann::json& settings);

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

// `townhall admin reset-password`: a single-use password reset token for the active
// account (citizen or employee) with `email`, valid for password_reset_ttl_seconds,
// replacing the account's unused ones; only its hash is stored, the token is shown once.
// Without a running server (the data directory's lock). not_found for no active account.
struct IssuedPasswordReset {
  std::string token;
  std::string expires_at;
  std::string account;  // "citizen:42", "employee:7"
};
Result<IssuedPasswordReset> issue_password_reset(const db::ModuleDb& database, const nlohmann::json& settings,
                                                 const std::string& email);

}  // namespace townhall::auth
