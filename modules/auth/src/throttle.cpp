#include "throttle.hpp"

namespace townhall::auth {

std::optional<std::chrono::seconds> LoginThrottle::check(Map& map, const std::string& key, int max,
                                                         Clock::time_point now) {
  auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  auto ends = it->second.start + window_;
  if (now >= ends) {
    map.erase(it);
    return std::nullopt;
  }
  if (it->second.failures < max) return std::nullopt;
  auto wait = std::chrono::ceil<std::chrono::seconds>(ends - now);
  return std::max(wait, std::chrono::seconds(1));
}

void LoginThrottle::count(Map& map, const std::string& key, Clock::time_point now) {
  if (map.size() >= max_keys_ && !map.contains(key)) {
    std::erase_if(map, [&](const auto& entry) { return now >= entry.second.start + window_; });
    if (map.size() >= max_keys_) map.clear();
  }
  auto& window = map[key];
  if (window.failures == 0 || now >= window.start + window_) window = Window{now, 0};
  ++window.failures;
}

std::optional<std::chrono::seconds> LoginThrottle::refused(const std::string& account, const std::string& ip,
                                                           Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto by_account = check(accounts_, account, max_per_account_, now);
  auto by_ip = check(ips_, ip, max_per_ip_, now);
  if (by_account && by_ip) return std::max(*by_account, *by_ip);
  return by_account ? by_account : by_ip;
}

void LoginThrottle::failed(const std::string& account, const std::string& ip, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  count(accounts_, account, now);
  count(ips_, ip, now);
}

void LoginThrottle::succeeded(const std::string& account) {
  std::lock_guard lock(mutex_);
  accounts_.erase(account);
}

}  // namespace townhall::auth
