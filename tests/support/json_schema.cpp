#include "json_schema.hpp"

#include <set>

namespace townhall::testing {
namespace {

using nlohmann::json;

bool has_type(const json& value, const std::string& type) {
  if (type == "null") return value.is_null();
  if (type == "boolean") return value.is_boolean();
  if (type == "integer") return value.is_number_integer() || value.is_number_unsigned();
  if (type == "number") return value.is_number();
  if (type == "string") return value.is_string();
  if (type == "array") return value.is_array();
  if (type == "object") return value.is_object();
  return false;
}

}  // namespace

std::optional<std::string> schema_violation(const json& schema, const json& value, const std::string& path) {
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return std::nullopt;
    return path + ": not allowed here";
  }
  if (!schema.is_object()) return path + ": the schema is not an object";
  static const std::set<std::string> known = {"type",    "properties",  "required",  "additionalProperties",
                                              "items",   "enum",        "const",     "anyOf",
                                              "minimum", "maximum",     "minLength", "maxLength",
                                              "format",  "description", "title",     "examples",
                                              "default", "$schema"};
  for (const auto& [keyword, _] : schema.items())
    if (!known.contains(keyword)) return path + ": the schema uses '" + keyword + "', which this check does not know";

  if (schema.contains("type")) {
    const auto& type = schema["type"];
    bool ok = false;
    if (type.is_string()) ok = has_type(value, type.get<std::string>());
    for (const auto& one : type.is_array() ? type : json::array()) ok = ok || has_type(value, one.get<std::string>());
    if (!ok) return path + ": expected " + type.dump() + ", got " + std::string(value.type_name()) + " " + value.dump();
  }
  if (schema.contains("const") && value != schema["const"])
    return path + ": expected " + schema["const"].dump() + ", got " + value.dump();
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& option : schema["enum"]) found = found || option == value;
    if (!found) return path + ": " + value.dump() + " is not one of " + schema["enum"].dump();
  }
  if (schema.contains("anyOf")) {
    std::string reasons;
    bool matched = false;
    for (const auto& option : schema["anyOf"]) {
      auto violation = schema_violation(option, value, path);
      if (!violation) {
        matched = true;
        break;
      }
      reasons += (reasons.empty() ? "" : "; ") + *violation;
    }
    if (!matched) return path + ": matches none of anyOf (" + reasons + ")";
  }
  if (value.is_number()) {
    if (schema.contains("minimum") && value.get<double>() < schema["minimum"].get<double>())
      return path + ": " + value.dump() + " is below the minimum " + schema["minimum"].dump();
    if (schema.contains("maximum") && value.get<double>() > schema["maximum"].get<double>())
      return path + ": " + value.dump() + " is above the maximum " + schema["maximum"].dump();
  }
  if (value.is_string()) {
    auto length = value.get<std::string>().size();
    if (schema.contains("minLength") && length < schema["minLength"].get<std::size_t>())
      return path + ": shorter than " + schema["minLength"].dump();
    if (schema.contains("maxLength") && length > schema["maxLength"].get<std::size_t>())
      return path + ": longer than " + schema["maxLength"].dump();
  }
  if (value.is_array() && schema.contains("items")) {
    for (std::size_t i = 0; i < value.size(); ++i)
      if (auto violation = schema_violation(schema["items"], value[i], path + "[" + std::to_string(i) + "]"))
        return violation;
  }
  if (value.is_object()) {
    for (const auto& name : schema.value("required", json::array()))
      if (!value.contains(name.get<std::string>()))
        return path + ": the field '" + name.get<std::string>() + "' is missing";
    const json properties = schema.value("properties", json::object());
    for (const auto& [name, field] : value.items()) {
      if (properties.contains(name)) {
        if (auto violation = schema_violation(properties[name], field, path + "." + name)) return violation;
      } else if (schema.contains("additionalProperties")) {
        if (auto violation = schema_violation(schema["additionalProperties"], field, path + "." + name))
          return path + ": the field '" + name + "' is not documented (" + *violation + ")";
      }
    }
  }
  return std::nullopt;
}

}  // namespace townhall::testing
