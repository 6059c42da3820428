#pragma once

#include <nlohmann/json.hpp>
#include <optional>

// A JSON object written as one list of its fields, name beside value — json_fields("id",
// a.id, "note", a.note) — the way row.hpp's read_columns/bind_params list a row: the views
// and event snapshots of the module contracts are written with it. An empty optional is
// null (as nullable(): absent fields show as null rather than being left out).
namespace townhall {
namespace json_detail {

template <class T>
nlohmann::json field_value(const T& value) {
  return nlohmann::json(value);
}
template <class T>
nlohmann::json field_value(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

inline void add_fields(nlohmann::json&) {}
template <class Value, class... Rest>
void add_fields(nlohmann::json& out, const char* name, const Value& value, const Rest&... rest) {
  out[name] = field_value(value);
  add_fields(out, rest...);
}

}  // namespace json_detail

template <class... Fields>
nlohmann::json json_fields(const Fields&... fields) {
  static_assert(sizeof...(Fields) % 2 == 0, "json_fields takes name, value pairs");
  auto out = nlohmann::json::object();
  json_detail::add_fields(out, fields...);
  return out;
}

}  // namespace townhall
