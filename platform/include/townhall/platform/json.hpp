#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "townhall/platform/http.hpp"
#include "townhall/platform/input.hpp"

namespace townhall {

// An optional value as JSON: the value, or null. (Responses and event snapshots show
// absent optional fields as null rather than leaving them out.)
template <class T>
nlohmann::json nullable(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// A JSON response body; invalid UTF-8 in stored text is replaced rather than thrown on.
inline http::Response json_body(int status, const nlohmann::json& value) {
  return http::json_response(status, value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// A page of a list as responses show it: {items, next_cursor, page_size, total when asked
// for}. `list` is an input::Listed.
template <class List, class F>
nlohmann::json listed_json(const List& list, F&& to_json) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& item : list.items) items.push_back(to_json(item));
  nlohmann::json out = {
      {"items", std::move(items)}, {"next_cursor", nullable(list.next_cursor)}, {"page_size", list.page_size}};
  if (list.total) out["total"] = *list.total;
  return out;
}

}  // namespace townhall
