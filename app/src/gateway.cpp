#include "gateway.hpp"

namespace townhall::app {
namespace {

bool under_prefix(std::string_view path, std::string_view prefix) {
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

http::Response unauthorized(std::string_view detail, bool invalid_token) {
  auto response = http::problem(401, "unauthorized", "Unauthorized", detail);
  response.set_header("WWW-Authenticate", invalid_token ? R"(Bearer realm="townhall", error="invalid_token")"
                                                        : R"(Bearer realm="townhall")");
  return response;
}

// The token of "Authorization: Bearer <token>"; nullopt when there is no such header,
// an empty view when the header is there but is not a bearer token.
std::optional<std::string_view> bearer_token(const http::Request& request) {
  auto header = request.header("Authorization");
  if (header.empty()) return std::nullopt;
  constexpr std::string_view scheme = "bearer ";
  if (header.size() <= scheme.size()) return std::string_view{};
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != scheme[i]) return std::string_view{};
  }
  auto token = header.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace

// Resolves the principal. Returns a response when the request must stop here.
boost::asio::awaitable<std::optional<http::Response>> Gateway::authenticate(http::Request& request,
                                                                            http::Access access) {
  bool required = access == http::Access::signed_in;
  auto token = bearer_token(request);
  if (!token) {
    if (required) co_return unauthorized("this route needs a bearer token (Authorization: Bearer <token>)", false);
    co_return std::nullopt;
  }
  if (token->empty()) {
    if (required) co_return unauthorized("the Authorization header must be 'Bearer <token>'", true);
    co_return std::nullopt;
  }
  if (!authenticator_) {
    if (required)
      co_return http::problem(503, "unavailable", "Service Unavailable", "authentication is not configured");
    co_return std::nullopt;
  }
  auto principal = co_await authenticator_(*token, request.request_id);
  if (principal) {
    request.principal = std::move(principal.value());
    co_return std::nullopt;
  }
  if (!required) co_return std::nullopt;  // a stale token does not stop a public route
  if (principal.error().code == Errc::unauthorized) co_return unauthorized(principal.error().message, true);
  auto response = http::problem(principal.error());
  if (response.status == 503) response.set_header("Retry-After", "5");
  co_return response;
}

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
    if (!module.gate->is_open() && under_prefix(request.path, module.route_prefix)) {
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
  if (auto refused = co_await authenticate(request, match.access)) co_return std::move(*refused);
  co_return co_await (*match.handler)(request);
}

}  // namespace townhall::app
