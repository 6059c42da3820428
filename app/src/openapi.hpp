#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string_view>

namespace townhall::http {
class Router;
}

namespace townhall::app {

// The OpenAPI 3.1 document of every route `router` serves (GET /openapi.json): paths and
// methods from the route table, path parameters, bearer security unless public, the
// documented request and response schemas (http::RouteDoc; a JSON object otherwise),
// and application/problem+json for every error.
nlohmann::json openapi_document(const http::Router& router, std::string_view version);

}  // namespace townhall::app
