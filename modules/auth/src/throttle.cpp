#include "throttle.hpp"

#include <algorithm>

namespace townhall::auth {

int LoginThrottle::failures(Map& map, const std::string& key, Clock::time_point now, Clock::time_point* ends) {
  auto it = map.find(key);
  if (it == map.end()) return 0;
  auto end = it->second.start + limits_.window;
  if (now >= end) {
    map.erase(it);
    return 0;
  }
  if (ends) *ends = end;
  return it->second.failures;
}

void LoginThrottle::count(Map& map, const std::string& key, Clock::time_point now) {
  if (map.size() >= limits_.max_keys && !map.contains(key)) {
    std::erase_if(map, [&](const auto& entry) { return now >= entry.second.start + limits_.window; });
    if (map.size() >= limits_.max_keys) map.clear();
  }
  auto& window = map[key];
  if (window.failures == 0 || now >= window.start + limits_.window) window = Window{now, 0};
  ++window.failures;
}

LoginThrottle::Verdict LoginThrottle::check(const std::string& account, const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Verdict verdict;
  auto refuse_until = [&](Clock::time_point ends) {
    auto wait = std::max(std::chrono::ceil<std::chrono::seconds>(ends - now), std::chrono::seconds(1));
    verdict.refused = verdict.refused ? std::max(*verdict.refused, wait) : wait;
  };
  Clock::time_point ends;
  if (failures(pairs_, pair_key(account, ip), now, &ends) >= limits_.max_per_account_and_ip) refuse_until(ends);
  if (failures(ips_, ip, now, &ends) >= limits_.max_per_ip) refuse_until(ends);
  if (verdict.refused) return verdict;

  int beyond = failures(accounts_, account, now) - limits_.max_per_account_and_ip;
  if (beyond >= 0 && limits_.max_delay.count() > 0) {
    auto delay = limits_.base_delay;
    for (int i = 0; i < beyond && delay < limits_.max_delay; ++i) delay *= 2;
    verdict.delay = std::min(delay, limits_.max_delay);
  }
  return verdict;
}

void LoginThrottle::failed(const std::string& account, const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  count(pairs_, pair_key(account, ip), now);
  count(ips_, ip, now);
  count(accounts_, account, now);
}

void LoginThrottle::succeeded(const std::string& account, const std::string& ip) {
  std::lock_guard lock(mutex_);
  pairs_.erase(pair_key(account, ip));
  accounts_.erase(account);
}

}  // namespace townhall::auth
