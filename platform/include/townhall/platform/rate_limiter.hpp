#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace townhall::http {

// Token bucket per client key (the client IP). Memory is bounded: when the table is
// full, buckets idle long enough to be full again are dropped first.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Decision {
    bool allowed = true;
    std::chrono::seconds retry_after{0};
  };

  RateLimiter(double tokens_per_second, double burst, std::size_t max_clients = 100'000);

  Decision acquire(std::string_view client, Clock::time_point now = Clock::now());
  std::size_t tracked_clients() const;

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  void evict(Clock::time_point now);

  double rate_;
  double burst_;
  std::size_t max_clients_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace townhall::http
