#include "token_cache.hpp"

namespace townhall::auth {

std::shared_ptr<const Principal> TokenCache::find(const std::string& token_hash, Clock::time_point now) {
  if (!enabled()) return nullptr;
  std::lock_guard lock(mutex_);
  auto it = entries_.find(token_hash);
  if (it == entries_.end()) return nullptr;
  if (now >= it->second.fresh_until || std::chrono::system_clock::now() >= it->second.session_expires) {
    entries_.erase(it);
    return nullptr;
  }
  return it->second.principal;
}

std::uint64_t TokenCache::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

void TokenCache::insert(const std::string& token_hash, std::shared_ptr<const Principal> principal,
                        std::chrono::system_clock::time_point session_expires, std::uint64_t seen_generation,
                        Clock::time_point now) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  if (seen_generation != generation_) return;
  if (entries_.size() >= max_entries_) {
    std::erase_if(entries_, [&](const auto& entry) { return now >= entry.second.fresh_until; });
    if (entries_.size() >= max_entries_) entries_.clear();
  }
  entries_[token_hash] = Entry{std::move(principal), now + ttl_, session_expires};
}

void TokenCache::erase(const std::string& token_hash) {
  std::lock_guard lock(mutex_);
  ++generation_;
  entries_.erase(token_hash);
}

void TokenCache::erase_principal(Principal::Kind kind, std::int64_t id) {
  std::lock_guard lock(mutex_);
  ++generation_;
  std::erase_if(entries_, [&](const auto& entry) {
    return entry.second.principal->kind == kind && entry.second.principal->id == id;
  });
}

std::size_t TokenCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace townhall::auth
