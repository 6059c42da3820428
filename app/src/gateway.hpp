#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "townhall/platform/http.hpp"
#include "townhall/platform/module_gate.hpp"
#include "townhall/platform/rate_limiter.hpp"

namespace townhall::app {

// The HTTP gateway: rate limit per client IP, modules that are down answer 503, the
// router, then authentication (bearer token -> principal; signed-in routes answer 401
// without one). The server below it owns the protocol; the handlers own meaning.
class Gateway {
 public:
  // Token -> principal (auth::Api::authenticate). unauthorized for an unknown, expired or
  // revoked token; unavailable when auth cannot answer.
  using Authenticator = std::function<boost::asio::awaitable<Result<std::shared_ptr<const Principal>>>(
      std::string_view token, const std::string& request_id)>;

  // A module's prefix and its gate (module_gate.hpp): closed, the prefix answers 503.
  struct GatedModule {
    std::string name;
    std::string route_prefix;
    std::shared_ptr<const ModuleGate> gate;
  };

  Gateway(const http::Router& router, std::unique_ptr<http::RateLimiter> limiter, std::vector<GatedModule> gates,
          Authenticator authenticator)
      : router_(router),
        limiter_(std::move(limiter)),
        gates_(std::move(gates)),
        authenticator_(std::move(authenticator)) {}

  boost::asio::awaitable<http::Response> dispatch(http::Request& request);

 private:
  boost::asio::awaitable<std::optional<http::Response>> authenticate(http::Request& request, http::Access access);

  const http::Router& router_;
  std::unique_ptr<http::RateLimiter> limiter_;  // null: no rate limit
  std::vector<GatedModule> gates_;
  Authenticator authenticator_;  // null: no auth module configured; signed-in routes answer 503
};

}  // namespace townhall::app
