#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>

#include "townhall/auth/api.hpp"
#include "townhall/platform/coro.hpp"

// The client side of auth::Api that every module's citizen cache shares.
namespace townhall::auth {

// Every citizen auth has, oldest change first, read through Api::citizens_since in pages
// of 1000 as module `module`: a cache's bootstrap (bus::Subscription::bootstrap), on the
// consumer's writer thread. Throws std::runtime_error when auth cannot answer (the bus
// tries the bootstrap again later). Returns how many were visited.
inline std::size_t for_each_citizen(Api& auth, const std::string& module,
                                    const std::function<void(const Citizen&)>& visit) {
  std::int64_t seq = 0;
  std::size_t count = 0;
  for (;;) {
    auto page = run_blocking(auth.citizens_since(
        CallContext::as_service(module, "bootstrap:citizen_refs", std::chrono::seconds(30)), seq, 1000));
    if (!page) throw std::runtime_error("citizen_refs bootstrap: auth answered: " + page.error().message);
    for (const auto& citizen : page->citizens) visit(citizen);
    count += page->citizens.size();
    if (page->citizens.empty() || page->next <= seq) return count;
    seq = page->next;
  }
}

}  // namespace townhall::auth
