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
// Successful logins are bounded too (issue 28 §7): each costs an Argon2 verification,
// so a few addresses signing one account in at the rate limit would keep the hashing
// threads busy and make everyone else's login wait. Past max_logins_per_account
// successes of one account (from anywhere), or max_logins_per_ip from one address, in
// login_window, further attempts there are refused before the password is checked. Only
// someone who knows the password can spend an account's share.
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
    // Successful logins per window, per account (from all addresses) and per address.
    int max_logins_per_account = 10;
    int max_logins_per_ip = 30;
    std::chrono::seconds login_window{60};
    std::size_t max_keys = 100'000;
  };

  // Why an attempt is refused: the failures of the pair or the address, or the
  // successful logins of the account or the address.
  enum class Reason { failures, logins };

  struct Verdict {
    std::optional<std::chrono::seconds> refused;  // engaged: answer 429 with this wait
    Reason reason = Reason::failures;             // of a refusal
    std::chrono::milliseconds delay{0};           // otherwise: wait this long, then verify
  };

  explicit LoginThrottle(Limits limits) : limits_(limits) {}

  Verdict check(const std::string& account, const std::string& ip, Clock::time_point now = Clock::now());
  void failed(const std::string& account, const std::string& ip, Clock::time_point now = Clock::now());
  // The owner proved the password: forget the account's failures (from every address)
  // and count the login against the account's and the address's share.
  void succeeded(const std::string& account, const std::string& ip, Clock::time_point now = Clock::now());

 private:
  struct Window {
    Clock::time_point start;
    int events = 0;
  };
  using Map = std::unordered_map<std::string, Window>;

  // Events in the current window (of length `window`) of `key` (0 when none or ended);
  // ends the window's entry when it is over. `ends` is set to the end of a live window.
  int events(Map& map, const std::string& key, std::chrono::seconds window, Clock::time_point now,
             Clock::time_point* ends = nullptr);
  void count(Map& map, const std::string& key, std::chrono::seconds window, Clock::time_point now);
  static std::string pair_key(const std::string& account, const std::string& ip) { return account + '\n' + ip; }

  Limits limits_;
  std::mutex mutex_;
  Map pairs_;     // account + '\n' + ip
  Map ips_;       // ip
  Map accounts_;  // account
  // Successful logins, in login_window.
  Map account_logins_;  // account
  Map ip_logins_;       // ip
};

}  // namespace townhall::auth
