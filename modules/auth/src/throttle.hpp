#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace townhall::auth {

// Failed logins per account and per client IP in fixed windows. A key with too many
// failures in its window is refused until the window ends (without checking the
// password, so a blocked guess costs nothing). Bounded: past max_keys entries, ended
// windows are dropped first, then everything (fail open on memory, never grow).
class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  LoginThrottle(int max_per_account, int max_per_ip, std::chrono::seconds window, std::size_t max_keys = 100'000)
      : max_per_account_(max_per_account), max_per_ip_(max_per_ip), window_(window), max_keys_(max_keys) {}

  // How long to wait when this attempt is refused; nullopt when it may go ahead.
  std::optional<std::chrono::seconds> refused(const std::string& account, const std::string& ip,
                                              Clock::time_point now = Clock::now());
  void failed(const std::string& account, const std::string& ip, Clock::time_point now = Clock::now());
  void succeeded(const std::string& account);

 private:
  struct Window {
    Clock::time_point start;
    int failures = 0;
  };
  using Map = std::unordered_map<std::string, Window>;

  std::optional<std::chrono::seconds> check(Map& map, const std::string& key, int max, Clock::time_point now);
  void count(Map& map, const std::string& key, Clock::time_point now);

  int max_per_account_;
  int max_per_ip_;
  std::chrono::seconds window_;
  std::size_t max_keys_;
  std::mutex mutex_;
  Map accounts_;
  Map ips_;
};

}  // namespace townhall::auth
