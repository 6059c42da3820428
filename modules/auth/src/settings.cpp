#include "settings.hpp"

#include <sodium.h>

#include "townhall/platform/config.hpp"

namespace townhall::auth {
namespace {

using json = nlohmann::json;
constexpr std::string_view kPrefix = "modules.auth.settings.";

[[noreturn]] void fail(std::string_view key, std::string_view message) {
  throw config::ConfigError(std::string(kPrefix) + std::string(key) + ": " + std::string(message));
}

void reject_unknown(const json& object, std::string_view path, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (auto k : known) found = found || key == k;
    if (!found) fail(std::string(path) + key, "unknown setting");
  }
}

std::int64_t integer(const json& object, std::string_view path, const char* key, std::int64_t min, std::int64_t max,
                     std::int64_t fallback) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_number_integer() || it->get<std::int64_t>() < min || it->get<std::int64_t>() > max)
    fail(std::string(path) + key, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return it->get<std::int64_t>();
}

}  // namespace

Settings parse_settings(const json& section) {
  Settings s;
  if (!section.is_object()) fail("", "expected an object");
  reject_unknown(section, "",
                 {"session_ttl_seconds", "token_cache_ttl_ms", "key_file", "login_throttle", "password_hash",
                  "national_id_changes_per_day", "password_reset_ttl_seconds"});
  s.session_ttl = std::chrono::seconds(integer(section, "", "session_ttl_seconds", 1, 90LL * 24 * 3600, 12 * 3600));
  s.password_reset_ttl =
      std::chrono::seconds(integer(section, "", "password_reset_ttl_seconds", 1, 24 * 3600, 30 * 60));
  s.token_cache_ttl = std::chrono::milliseconds(integer(section, "", "token_cache_ttl_ms", 0, 60'000, 5000));
  s.national_id_changes_per_day = static_cast<int>(integer(section, "", "national_id_changes_per_day", 1, 100, 3));
  if (auto it = section.find("key_file"); it != section.end()) {
    if (!it->is_string() || it->get<std::string>().empty()) fail("key_file", "expected a non-empty path");
    s.key_file = it->get<std::string>();
  }
  if (auto it = section.find("login_throttle"); it != section.end()) {
    if (!it->is_object()) fail("login_throttle", "expected an object");
    reject_unknown(*it, "login_throttle.",
                   {"max_failures_per_account_and_ip", "max_failures_per_ip", "window_seconds", "max_delay_ms",
                    "max_logins_per_account", "max_logins_per_ip", "login_window_seconds"});
    auto& t = s.login_throttle;
    t.max_per_account_and_ip =
        static_cast<int>(integer(*it, "login_throttle.", "max_failures_per_account_and_ip", 1, 1000, 5));
    t.max_per_ip = static_cast<int>(integer(*it, "login_throttle.", "max_failures_per_ip", 1, 100000, 20));
    t.window = std::chrono::seconds(integer(*it, "login_throttle.", "window_seconds", 1, 86400, 900));
    t.max_delay = std::chrono::milliseconds(integer(*it, "login_throttle.", "max_delay_ms", 0, 60'000, 3000));
    t.base_delay = std::min(t.base_delay, t.max_delay);
    t.max_logins_per_account =
        static_cast<int>(integer(*it, "login_throttle.", "max_logins_per_account", 1, 100000, 10));
    t.max_logins_per_ip = static_cast<int>(integer(*it, "login_throttle.", "max_logins_per_ip", 1, 1'000'000, 30));
    t.login_window = std::chrono::seconds(integer(*it, "login_throttle.", "login_window_seconds", 1, 86400, 60));
  }
  if (auto it = section.find("password_hash"); it != section.end()) {
    if (!it->is_object()) fail("password_hash", "expected an object");
    reject_unknown(*it, "password_hash.", {"passes", "memory_kib", "max_queued"});
    s.password_cost.passes =
        static_cast<unsigned long long>(integer(*it, "password_hash.", "passes", crypto_pwhash_OPSLIMIT_MIN, 10, 3));
    auto min_kib = static_cast<std::int64_t>(crypto_pwhash_MEMLIMIT_MIN / 1024);
    s.password_cost.memory_bytes =
        static_cast<std::size_t>(integer(*it, "password_hash.", "memory_kib", min_kib, 1024 * 1024, 32 * 1024)) * 1024;
    s.max_queued_password_hashes =
        static_cast<std::size_t>(integer(*it, "password_hash.", "max_queued", 1, 100'000, 16));
  }
  return s;
}

}  // namespace townhall::auth
