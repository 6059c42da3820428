#include "townhall/platform/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace townhall::http {

RateLimiter::RateLimiter(double tokens_per_second, double burst, std::size_t max_clients)
    : rate_(tokens_per_second), burst_(std::max(1.0, burst)), max_clients_(std::max<std::size_t>(1, max_clients)) {}

RateLimiter::Decision RateLimiter::acquire(std::string_view client, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(std::string(client));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_clients_) evict(now);
    it = buckets_.emplace(std::string(client), Bucket{burst_, now}).first;
  }
  Bucket& bucket = it->second;
  double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  if (elapsed > 0) {
    bucket.tokens = std::min(burst_, bucket.tokens + elapsed * rate_);
    bucket.updated = now;
  }
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return {};
  }
  double wait = rate_ > 0 ? (1.0 - bucket.tokens) / rate_ : 60.0;
  return {false, std::chrono::seconds(static_cast<long>(std::max(1.0, std::ceil(wait))))};
}

std::size_t RateLimiter::tracked_clients() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

void RateLimiter::evict(Clock::time_point now) {
  // A bucket that has had time to refill completely is indistinguishable from a new one.
  double refill_seconds = rate_ > 0 ? burst_ / rate_ : 3600.0;
  auto refilled = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(refill_seconds));
  std::erase_if(buckets_, [&](const auto& entry) { return now - entry.second.updated >= refilled; });
  if (buckets_.size() < max_clients_) return;
  // Still full (a flood of distinct clients): drop the least recently used half.
  std::vector<std::pair<Clock::time_point, std::string>> by_age;
  by_age.reserve(buckets_.size());
  for (const auto& [key, bucket] : buckets_) by_age.emplace_back(bucket.updated, key);
  auto middle = by_age.begin() + static_cast<std::ptrdiff_t>(by_age.size() / 2);
  std::nth_element(by_age.begin(), middle, by_age.end());
  for (auto it = by_age.begin(); it != middle; ++it) buckets_.erase(it->second);
}

}  // namespace townhall::http
