#include "townhall/platform/schema.hpp"

namespace townhall::schema {

Json string() { return {{"type", "string"}}; }
Json string_or_null() { return {{"type", Json::array({"string", "null"})}}; }
Json integer(std::int64_t minimum) { return {{"type", "integer"}, {"minimum", minimum}}; }
Json integer() { return {{"type", "integer"}}; }
Json integer_or_null() { return {{"type", Json::array({"integer", "null"})}}; }
Json number() { return {{"type", "number"}}; }
Json boolean() { return {{"type", "boolean"}}; }
Json timestamp() { return {{"type", "string"}, {"format", "date-time"}}; }
Json timestamp_or_null() { return {{"type", Json::array({"string", "null"})}, {"format", "date-time"}}; }

Json one_of(std::initializer_list<const char*> values) {
  Json out = {{"type", "string"}, {"enum", Json::array()}};
  for (const char* value : values) out["enum"].push_back(value);
  return out;
}

Json array(Json items) { return {{"type", "array"}, {"items", std::move(items)}}; }
Json or_null(Json schema) { return {{"anyOf", Json::array({std::move(schema), {{"type", "null"}}})}}; }

Field optional(std::string name, Json schema) { return {std::move(name), std::move(schema), false}; }

Json object(std::vector<Field> fields) {
  Json properties = Json::object();
  Json required = Json::array();
  for (auto& field : fields) {
    if (field.required) required.push_back(field.name);
    properties[field.name] = std::move(field.schema);
  }
  Json out = {{"type", "object"}, {"properties", std::move(properties)}, {"additionalProperties", false}};
  if (!required.empty()) out["required"] = std::move(required);
  return out;
}

Json page_of(Json item) {
  return object({{"items", array(std::move(item))},
                 {"next_cursor", string_or_null()},
                 {"page_size", integer(1)},
                 optional("total", integer(0))});
}

std::string text(const Json& schema) { return schema.dump(); }

void RouteDocs::operator()(http::Method method, const std::string& path, std::string summary, const Json& request,
                           const Json& response, int status) const {
  router_.document(method, prefix_ + path,
                   {std::move(summary), request.is_null() ? std::string() : text(request),
                    response.is_null() ? std::string() : text(response), status});
}

}  // namespace townhall::schema
