#pragma once

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
  struct DownModule {
    std::string name;
    std::string route_prefix;
  };

  Gateway(const http::Router& router, std::unique_ptr<http::RateLimiter> limiter)
      : router_(router), limiter_(std::move(limiter)) {}

  void set_down_modules(std::vector<DownModule> down) { down_ = std::move(down); }

  boost::asio::awaitable<http::Response> dispatch(http::Request& request);

 private:
  const http::Router& router_;
  std::unique_ptr<http::RateLimiter> limiter_;  // null: no rate limit
  std::vector<DownModule> down_;
};

}  // namespace townhall::app
