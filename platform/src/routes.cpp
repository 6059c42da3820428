#include "townhall/platform/routes.hpp"

#include "townhall/platform/money.hpp"

namespace townhall::routes {

void RouteTable::add(http::Method method, const std::string& path, http::Handler handler, std::string summary,
                     const schema::Json& request, const schema::Json& response, int status) const {
  router_.add(method, prefix_ + path, std::move(handler));
  docs_(method, path, std::move(summary), request, response, status);
}

void RouteTable::add_public(http::Method method, const std::string& path, http::Handler handler, std::string summary,
                            const schema::Json& request, const schema::Json& response, int status) const {
  router_.add(method, prefix_ + path, std::move(handler), http::Access::public_route);
  docs_(method, path, std::move(summary), request, response, status);
}

std::optional<std::string> optional_currency(input::Body& body) {
  auto currency = body.optional_string("currency", {.max_bytes = 3});
  if (currency && !money::is_iso4217(*currency)) body.fail("currency", "must be an ISO 4217 code such as \"USD\"");
  return currency;
}

http::Response created_at(std::string location, const nlohmann::json& body) {
  auto response = json_body(201, body);
  response.set_header("Location", std::move(location));
  return response;
}

http::Response no_content(const Result<Unit>& result) {
  if (!result) return http::problem(result.error());
  http::Response response;
  response.status = 204;
  return response;
}

}  // namespace townhall::routes
