#include "settings.hpp"

#include <sodium.h>

#include <algorithm>

#include "townhall/platform/settings_reader.hpp"

namespace townhall::auth {

Settings parse_settings(const nlohmann::json& section) {
  config::SettingsReader reader(section, "modules.auth.settings");
  Settings s;
  s.session_ttl = std::chrono::seconds(reader.integer("session_ttl_seconds", 12 * 3600, 1, 90LL * 24 * 3600));
  s.password_reset_ttl = std::chrono::seconds(reader.integer("password_reset_ttl_seconds", 30 * 60, 1, 24 * 3600));
  s.token_cache_ttl = std::chrono::milliseconds(reader.integer("token_cache_ttl_ms", 5000, 0, 60'000));
  s.national_id_changes_per_day = static_cast<int>(reader.integer("national_id_changes_per_day", 3, 1, 100));
  s.audit_retention_days = static_cast<int>(reader.integer("audit_retention_days", 400, 30, 3650));
  if (const auto* dir = reader.value("audit_export_dir")) {
    if (!dir->is_string() || dir->get<std::string>().empty())
      reader.fail("audit_export_dir", "expected a non-empty path");
    s.audit_export_dir = dir->get<std::string>();
  }
  if (const auto* key_file = reader.value("key_file")) {
    if (!key_file->is_string() || key_file->get<std::string>().empty())
      reader.fail("key_file", "expected a non-empty path");
    s.key_file = key_file->get<std::string>();
  }
  if (reader.has("login_throttle")) {
    auto throttle = reader.section("login_throttle");
    auto& t = s.login_throttle;
    t.max_per_account_and_ip = static_cast<int>(throttle.integer("max_failures_per_account_and_ip", 5, 1, 1000));
    t.max_per_ip = static_cast<int>(throttle.integer("max_failures_per_ip", 20, 1, 100000));
    t.window = std::chrono::seconds(throttle.integer("window_seconds", 900, 1, 86400));
    t.max_delay = std::chrono::milliseconds(throttle.integer("max_delay_ms", 3000, 0, 60'000));
    t.base_delay = std::min(t.base_delay, t.max_delay);
    t.max_logins_per_account = static_cast<int>(throttle.integer("max_logins_per_account", 10, 1, 100000));
    t.max_logins_per_ip = static_cast<int>(throttle.integer("max_logins_per_ip", 30, 1, 1'000'000));
    t.login_window = std::chrono::seconds(throttle.integer("login_window_seconds", 60, 1, 86400));
    throttle.finish();
  }
  if (reader.has("password_hash")) {
    auto hash = reader.section("password_hash");
    s.password_cost.passes = static_cast<unsigned long long>(hash.integer("passes", 3, crypto_pwhash_OPSLIMIT_MIN, 10));
    auto min_kib = static_cast<std::int64_t>(crypto_pwhash_MEMLIMIT_MIN / 1024);
    s.password_cost.memory_bytes =
        static_cast<std::size_t>(hash.integer("memory_kib", 32 * 1024, min_kib, 1024 * 1024)) * 1024;
    s.max_queued_password_hashes = static_cast<std::size_t>(hash.integer("max_queued", 16, 1, 100'000));
    hash.finish();
  }
  reader.finish();
  return s;
}

}  // namespace townhall::auth
