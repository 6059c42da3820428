#include "routes.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "townhall/platform/input.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/routes.hpp"
#include "townhall/platform/schema.hpp"

namespace townhall::notify {
namespace {

using json = nlohmann::json;
using http::Request;

json notification_json(const store::Notification& n) {
  return {{"id", n.id},
          {"kind", n.kind},
          {"title", n.title},
          {"body", n.body},
          {"created_at", n.created_at},
          {"read_at", nullable(n.read_at)}};
}

json preferences_json(const Preferences& p) {
  json email = json::object();
  for (const auto& [kind, on] : p.email) email[kind] = on;
  return {{"email", email}, {"email_delivery", p.email_delivery}};
}

Error bad_query(std::string_view name, std::string_view expected) {
  return make_error(Errc::invalid_argument,
                    "query parameter '" + std::string(name) + "' must be " + std::string(expected));
}

// ?cursor=<id>&limit=1..100&unread=true|false
Result<InboxQuery> inbox_query(const Request& request) {
  InboxQuery query;
  if (auto cursor = request.query_param("cursor")) {
    auto id = input::parse_id(*cursor);
    if (!id) return bad_query("cursor", "the next_cursor of the previous page");
    query.cursor = *id;
  }
  if (auto limit = request.query_param("limit")) {
    int value = 0;
    auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), value);
    if (ec != std::errc() || end != limit->data() + limit->size() || value < 1 || value > 100)
      return bad_query("limit", "an integer from 1 to 100");
    query.limit = value;
  }
  auto unread = input::query_choice(request, "unread", {"true", "false"});
  if (!unread) return unread.error();
  query.unread_only = *unread == "true";
  return query;
}

struct Routes {
  NotifyService& service;

  routes::Reply inbox(Request& request) {
    auto query = inbox_query(request);
    if (!query) co_return http::problem(query.error());
    auto page = service.inbox(request.call_context(), *query);
    if (!page) co_return http::problem(page.error());
    json items = json::array();
    for (const auto& n : page->items) items.push_back(notification_json(n));
    co_return json_body(200, {{"items", items},
                              {"next_cursor", page->next_cursor ? json(*page->next_cursor) : json(nullptr)},
                              {"unread", page->unread}});
  }

  routes::Reply read(Request& request, std::int64_t id) {
    co_return routes::answer(co_await service.mark_read(request.call_context(), id), notification_json);
  }

  routes::Reply get_preferences(Request& request) {
    co_return routes::answer(service.preferences(request.call_context()), preferences_json);
  }

  routes::Reply set_preferences(Request& request) {
    auto body = input::Body::read(request.body, {"email"});
    auto email = body.required_object(
        "email", {"application_decided", "permit_issued", "invoice_opened", "invoice_overdue", "payment_completed",
                  "payment_failed", "payment_refunded", "booking_confirmed", "booking_cancelled", "booking_expired",
                  "license_expiring", "license_expired", "tax_record_opened"});
    std::map<std::string, bool> changes;
    for (auto kind : kKinds)
      if (auto on = email.optional_bool(kind)) changes[std::string(kind)] = *on;
    if (auto ok = email.status(); !ok) co_return http::problem(ok.error());
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto preferences = co_await service.set_preferences(request.call_context(), std::move(changes));
    co_return routes::answer(preferences, preferences_json);
  }
};

}  // namespace

void add_routes(http::Router& router, const std::string& prefix, NotifyService& service) {
  auto bind = routes::member_binder(std::make_shared<Routes>(Routes{service}));
  namespace s = schema;
  using http::Method;
  const auto notification = s::object({{"id", s::integer(1)},
                                       {"kind", s::string()},
                                       {"title", s::string()},
                                       {"body", s::string()},
                                       {"created_at", s::timestamp()},
                                       {"read_at", s::timestamp_or_null()}});
  std::vector<s::Field> kinds, optional_kinds;
  for (auto kind : kKinds) {
    kinds.push_back({std::string(kind), s::boolean(), true});
    optional_kinds.push_back(s::optional(std::string(kind), s::boolean()));
  }
  const auto preferences = s::object({{"email", s::object(kinds)}, {"email_delivery", s::boolean()}});
  const routes::RouteTable table(router, prefix);
  const s::Json none;
  table.add(
      Method::get, "/inbox", bind(&Routes::inbox),
      "The signed-in citizen's notifications, newest first (?cursor= from next_cursor, ?limit= 1-100, ?unread=true)",
      none,
      s::object({{"items", s::array(notification)}, {"next_cursor", s::integer_or_null()}, {"unread", s::integer(0)}}));
  table.add(Method::post, "/inbox/{id}/read", bind(&Routes::read, "no such notification"),
            "Mark one of the citizen's notifications read (no body)", s::object({}), notification);
  table.add(Method::get, "/preferences", bind(&Routes::get_preferences),
            "Email on or off per notification kind (on unless turned off)", none, preferences);
  table.add(Method::patch, "/preferences", bind(&Routes::set_preferences),
            "Turn email on or off for some kinds; the preferences after the change",
            s::object({{"email", s::object(optional_kinds)}}), preferences);
}

}  // namespace townhall::notify
