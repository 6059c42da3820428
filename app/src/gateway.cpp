#include "gateway.hpp"

namespace townhall::app {
namespace {

bool under_prefix(std::string_view path, std::string_view prefix) {
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

}  // namespace

boost::asio::awaitable<http::Response> Gateway::dispatch(http::Request& request) {
  if (limiter_) {
    auto decision = limiter_->acquire(request.client_ip);
    if (!decision.allowed) {
      auto response = http::problem(
          429, "rate-limited", "Too Many Requests",
          "too many requests from this client; retry after " + std::to_string(decision.retry_after.count()) + " s");
      response.set_header("Retry-After", std::to_string(decision.retry_after.count()));
      co_return response;
    }
  }
  for (const auto& module : gates_) {
    if (!module.up->load(std::memory_order_relaxed) && under_prefix(request.path, module.route_prefix)) {
      request.route = module.route_prefix;
      auto response = http::problem(503, "module-unavailable", "Service Unavailable",
                                    "the " + module.name + " module is unavailable; see /readyz");
      response.set_header("Retry-After", "30");
      co_return response;
    }
  }
  auto match = router_.match(request.method, request.path, request.path_params);
  switch (match.outcome) {
    case http::Router::Outcome::not_found:
      co_return http::problem(404, "not-found", "Not Found", "no route matches this path");
    case http::Router::Outcome::method_not_allowed: {
      request.route = "method_not_allowed";
      auto response = http::problem(
          405, "method-not-allowed", "Method Not Allowed",
          std::string(http::to_string(request.method)) + " is not allowed on this path; allowed: " + match.allow);
      response.set_header("Allow", match.allow);
      co_return response;
    }
    case http::Router::Outcome::found: break;
  }
  request.route = match.pattern;
  co_return co_await (*match.handler)(request);
}

}  // namespace townhall::app
