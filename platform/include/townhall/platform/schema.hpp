#pragma once

// Builders for the JSON Schemas routes document (Router::document → /openapi.json), so a
// route's request and response shapes read as one line each. Objects are closed
// (additionalProperties: false) and their fields required unless marked optional: what
// a route documents is all it sends, and a test (AuthorizationMatrix) checks each
// documented success response against its schema.

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "townhall/platform/http.hpp"

namespace townhall::schema {

using Json = nlohmann::json;

Json string();
Json string_or_null();
Json integer(std::int64_t minimum);
Json integer();
Json integer_or_null();
Json number();
Json boolean();
Json timestamp();  // RFC 3339 UTC
Json timestamp_or_null();
Json one_of(std::initializer_list<const char*> values);  // a string enum
Json array(Json items);
Json or_null(Json schema);  // {"anyOf": [schema, null]}

struct Field {
  std::string name;
  Json schema;
  bool required = true;
};
Field optional(std::string name, Json schema);
Json object(std::vector<Field> fields);
// {items: [item], next_cursor, page_size, total (with ?include=total)}: a list route's page.
Json page_of(Json item);

std::string text(const Json& schema);

// Router::document for a module's routes under its prefix: (method, path, summary,
// request schema, response schema, success status); a null schema documents none.
class RouteDocs {
 public:
  RouteDocs(http::Router& router, std::string prefix) : router_(router), prefix_(std::move(prefix)) {}
  void operator()(http::Method method, const std::string& path, std::string summary, const Json& request,
                  const Json& response, int status = 200) const;

 private:
  http::Router& router_;
  std::string prefix_;
};

}  // namespace townhall::schema
