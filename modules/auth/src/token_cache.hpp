#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "townhall/platform/principal.hpp"

namespace townhall::auth {

// Recently authenticated tokens (by token hash) -> principal, for a short TTL, so the
// gateway's per-request authentication is a hash lookup, not a database read. Logout,
// role changes and deletions invalidate at once. A lookup that read the database
// before an invalidation cannot re-insert a stale entry after it: insert() takes the
// generation seen before the read and is ignored if any invalidation happened since.
class TokenCache {
 public:
  using Clock = std::chrono::steady_clock;

  TokenCache(std::chrono::milliseconds ttl, std::size_t max_entries = 100'000) : ttl_(ttl), max_entries_(max_entries) {}

  bool enabled() const { return ttl_.count() > 0; }
  std::shared_ptr<const Principal> find(const std::string& token_hash, Clock::time_point now = Clock::now());
  std::uint64_t generation() const;
  // `session_expires`: the session's own expiry; the entry never outlives it.
  void insert(const std::string& token_hash, std::shared_ptr<const Principal> principal,
              std::chrono::system_clock::time_point session_expires, std::uint64_t seen_generation,
              Clock::time_point now = Clock::now());
  void erase(const std::string& token_hash);
  void erase_principal(Principal::Kind kind, std::int64_t id);
  std::size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const Principal> principal;
    Clock::time_point fresh_until;
    std::chrono::system_clock::time_point session_expires;
  };
  std::chrono::milliseconds ttl_;
  std::size_t max_entries_;
  mutable std::mutex mutex_;
  std::uint64_t generation_ = 0;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace townhall::auth
