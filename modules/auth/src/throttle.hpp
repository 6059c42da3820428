#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace townhall::auth {

// Failed logins in fixed windows, kept so that an attacker cannot lock an owner out:
// - per (account, client address): too many failures refuse that pair until the window
//   ends (without checking the password, so a blocked guess costs nothing);
// - per client address: too many failures over any accounts refuse the address;
// - per account over all addresses: never a refusal (that would let anyone lock any
//   account from anywhere), only a delay before the password is checked that grows
//   with the failures and is bounded, which slows a distributed guesser.
// Bounded memory: past max_keys entries per map, ended windows are dropped first, then
// everything (fail open on memory, never grow).
class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    int max_per_account_and_ip = 5;
    int max_per_ip = 20;
    std::chrono::seconds window{900};
    // Delay once an account has max_per_account_and_ip failures from all addresses:
    // base_delay, doubling per further failure, at most max_delay (0 = no delay).
    std::chrono::milliseconds base_delay{200};
    std::chrono::milliseconds max_delay{3000};
    std::size_t max_keys = 100'000;
  };

  struct Verdict {
    std::optional<std::chrono::seconds> refused;  // engaged: answer 429 with this wait
    std::chrono::milliseconds delay{0};           // otherwise: wait this long, then verify
  };

  explicit LoginThrottle(Limits limits) : limits_(limits) {}

  Verdict check(const std::string& account, const std::string& ip, Clock::time_point now = Clock::now());
  void failed(const std::string& account, const std::string& ip, Clock::time_point now = Clock::now());
  // The owner proved the password: forget the account's failures (from every address).
  void succeeded(const std::string& account, const std::string& ip);

 private:
  struct Window {
    Clock::time_point start;
    int failures = 0;
  };
  using Map = std::unordered_map<std::string, Window>;

  // Failures in the current window of `key` (0 when none or ended); ends the window's
  // entry when it is over. `ends` is set to the end of a live window.
  int failures(Map& map, const std::string& key, Clock::time_point now, Clock::time_point* ends = nullptr);
  void count(Map& map, const std::string& key, Clock::time_point now);
  static std::string pair_key(const std::string& account, const std::string& ip) { return account + '\n' + ip; }

  Limits limits_;
  std::mutex mutex_;
  Map pairs_;     // account + '\n' + ip
  Map ips_;       // ip
  Map accounts_;  // account
};

}  // namespace townhall::auth
