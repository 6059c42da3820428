#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "credentials.hpp"
#include "throttle.hpp"

namespace townhall::auth {

// The auth module's registry section (`modules.auth.settings`); every key optional.
struct Settings {
  std::chrono::seconds session_ttl{12 * 3600};
  std::chrono::seconds password_reset_ttl{30 * 60};  // how long a reset token may be used
  std::chrono::milliseconds token_cache_ttl{5000};   // 0 turns the cache off
  std::filesystem::path key_file = "auth.key";       // relative to the data dir
  LoginThrottle::Limits login_throttle;
  PasswordCost password_cost;
  // Argon2 computations (logins, registrations, new staff) queued or running at once;
  // beyond, the request is refused (503 + Retry-After) instead of waiting behind them.
  std::size_t max_queued_password_hashes = 16;
  // How often a citizen may set their own national id in 24 h (429 beyond; staff are not
  // limited): each change is audited, and without a bound the answer could be probed.
  int national_id_changes_per_day = 3;
  // Audit retention (issue 26 §4): rows older than this are exported to a dated JSON-lines
  // file in audit_export_dir (relative to the data dir), then deleted, once a day.
  int audit_retention_days = 400;
  std::filesystem::path audit_export_dir = "audit-exports";
};

// Throws config::ConfigError naming the key ("modules.auth.settings.session_ttl_seconds:
// ..."), also for unknown keys.
Settings parse_settings(const nlohmann::json& section);

}  // namespace townhall::auth
