#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "townhall/platform/http.hpp"
#include "townhall/platform/rate_limiter.hpp"

namespace townhall::app {

// The HTTP gateway: rate limit per client IP, modules that are down answer 503, then
// the router. The server below it owns the protocol; the handlers above it own meaning.
class Gateway {
 public:
  // A module's prefix and whether the module is up (flipped by the composition root).
  struct ModuleGate {
    std::string name;
    std::string route_prefix;
    std::shared_ptr<const std::atomic<bool>> up;
  };

  Gateway(const http::Router& router, std::unique_ptr<http::RateLimiter> limiter, std::vector<ModuleGate> gates)
      : router_(router), limiter_(std::move(limiter)), gates_(std::move(gates)) {}

  boost::asio::awaitable<http::Response> dispatch(http::Request& request);

 private:
  const http::Router& router_;
  std::unique_ptr<http::RateLimiter> limiter_;  // null: no rate limit
  std::vector<ModuleGate> gates_;
};

}  // namespace townhall::app
