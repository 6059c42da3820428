#include "openapi.hpp"

#include <nlohmann/json.hpp>
#include <string>

#include "townhall/platform/http.hpp"

namespace townhall::app {
namespace {

using nlohmann::json;

json schema_or(const std::string& text, json fallback) {
  if (text.empty()) return fallback;
  auto parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) throw std::logic_error("a route's documented schema is not JSON: " + text);
  return parsed;
}

std::string operation_id(std::string_view method, const std::string& pattern) {
  std::string id(method);
  for (auto& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool upper = true;
  for (char c : pattern) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      id += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      upper = false;
    } else {
      upper = true;
    }
  }
  return id;
}

}  // namespace

json openapi_document(const http::Router& router, std::string_view version) {
  json paths = json::object();
  const json problem_response = {
      {"description", "A problem (RFC 9457)"},
      {"content", {{"application/problem+json", {{"schema", {{"$ref", "#/components/schemas/Problem"}}}}}}}};
  for (const auto& entry : router.entries()) {
    auto method = std::string(http::to_string(entry.method));
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    json operation = {
        {"operationId", operation_id(method, entry.pattern)},
        {"summary", entry.doc.summary.empty() ? std::string(http::to_string(entry.method)) + " " + entry.pattern
                                              : entry.doc.summary}};
    json parameters = json::array();
    for (std::size_t open = entry.pattern.find('{'); open != std::string::npos;
         open = entry.pattern.find('{', open + 1)) {
      auto name = entry.pattern.substr(open + 1, entry.pattern.find('}', open) - open - 1);
      bool numeric = name == "id" || name.ends_with("_id");
      parameters.push_back(
          {{"name", name},
           {"in", "path"},
           {"required", true},
           {"schema", numeric ? json{{"type", "integer"}, {"minimum", 1}} : json{{"type", "string"}}}});
    }
    if (!parameters.empty()) operation["parameters"] = parameters;
    operation["security"] =
        entry.access == http::Access::public_route ? json::array() : json::array({{{"bearer", json::array()}}});
    if (method == "post" || method == "put" || method == "patch")
      operation["requestBody"] = {
          {"required", false},
          {"content", {{"application/json", {{"schema", schema_or(entry.doc.request_schema, {{"type", "object"}})}}}}}};
    json responses = {{std::to_string(entry.doc.status),
                       {{"description", "Success"},
                        {"content",
                         {{entry.doc.content_type,
                           {{"schema", schema_or(entry.doc.response_schema, entry.doc.content_type == "application/json"
                                                                                ? json{{"type", "object"}}
                                                                                : json{{"type", "string"}})}}}}}}},
                      {"4XX", problem_response},
                      {"5XX", problem_response}};
    if (entry.doc.status == 204) responses[std::to_string(entry.doc.status)].erase("content");
    operation["responses"] = responses;
    paths[entry.pattern][method] = operation;
  }
  return {{"openapi", "3.1.0"},
          {"info",
           {{"title", "Townhall"},
            {"version", std::string(version)},
            {"description", "Municipal services: auth, permits, revenue, parks. Generated from the route table."}}},
          {"servers", json::array({{{"url", "/"}}})},
          {"paths", paths},
          {"components",
           {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}},
            {"schemas",
             {{"Problem",
               {{"type", "object"},
                {"required", json::array({"type", "title", "status"})},
                {"properties",
                 {{"type", {{"type", "string"}}},
                  {"title", {{"type", "string"}}},
                  {"status", {{"type", "integer"}}},
                  {"detail", {{"type", "string"}}}}}}}}}}}};
}

}  // namespace townhall::app
