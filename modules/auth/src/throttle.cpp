#include "throttle.hpp"

#include <algorithm>

namespace townhall::auth {

int LoginThrottle::events(Map& map, const std::string& key, std::chrono::seconds window, Clock::time_point now,
                          Clock::time_point* ends) {
  auto it = map.find(key);
  if (it == map.end()) return 0;
  auto end = it->second.start + window;
  if (now >= end) {
    map.erase(it);
    return 0;
  }
  if (ends) *ends = end;
  return it->second.events;
}

void LoginThrottle::count(Map& map, const std::string& key, std::chrono::seconds window, Clock::time_point now) {
  if (map.size() >= limits_.max_keys && !map.contains(key)) {
    std::erase_if(map, [&](const auto& entry) { return now >= entry.second.start + window; });
    if (map.size() >= limits_.max_keys) map.clear();
  }
  auto& current = map[key];
  if (current.events == 0 || now >= current.start + window) current = Window{now, 0};
  ++current.events;
}

LoginThrottle::Verdict LoginThrottle::check(const std::string& account, const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Verdict verdict;
  auto refuse_until = [&](Clock::time_point ends, Reason reason) {
    auto wait = std::max(std::chrono::ceil<std::chrono::seconds>(ends - now), std::chrono::seconds(1));
    if (!verdict.refused || wait > *verdict.refused) verdict.refused = wait, verdict.reason = reason;
  };
  Clock::time_point ends;
  if (events(pairs_, pair_key(account, ip), limits_.window, now, &ends) >= limits_.max_per_account_and_ip)
    refuse_until(ends, Reason::failures);
  if (events(ips_, ip, limits_.window, now, &ends) >= limits_.max_per_ip) refuse_until(ends, Reason::failures);
  if (events(account_logins_, account, limits_.login_window, now, &ends) >= limits_.max_logins_per_account)
    refuse_until(ends, Reason::logins);
  if (events(ip_logins_, ip, limits_.login_window, now, &ends) >= limits_.max_logins_per_ip)
    refuse_until(ends, Reason::logins);
  if (verdict.refused) return verdict;

  int beyond = events(accounts_, account, limits_.window, now) - limits_.max_per_account_and_ip;
  if (beyond >= 0 && limits_.max_delay.count() > 0) {
    auto delay = limits_.base_delay;
    for (int i = 0; i < beyond && delay < limits_.max_delay; ++i) delay *= 2;
    verdict.delay = std::min(delay, limits_.max_delay);
  }
  return verdict;
}

void LoginThrottle::failed(const std::string& account, const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  count(pairs_, pair_key(account, ip), limits_.window, now);
  count(ips_, ip, limits_.window, now);
  count(accounts_, account, limits_.window, now);
}

void LoginThrottle::succeeded(const std::string& account, const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  pairs_.erase(pair_key(account, ip));
  accounts_.erase(account);
  count(account_logins_, account, limits_.login_window, now);
  count(ip_logins_, ip, limits_.login_window, now);
}

}  // namespace townhall::auth
