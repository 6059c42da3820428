#include "admin_routes.hpp"

#include <nlohmann/json.hpp>

#include "townhall/bus/bus.hpp"
#include "townhall/platform/http.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::app {
namespace {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using nlohmann::json;

constexpr std::string_view kPermission = "bus:admin";

std::optional<Response> refuse_unless_admin(const Request& request) {
  if (request.principal && request.principal->has(kPermission)) return std::nullopt;
  return http::problem(make_error(Errc::forbidden, "the bus's admin routes need the bus:admin permission"));
}

json letter_json(const bus::DeadLetter& letter) {
  json event = json::parse(letter.event, nullptr, false);
  return {{"id", letter.id},
          {"module", letter.module},
          {"subscription", letter.subscription},
          {"event_id", letter.event_id},
          {"event", event.is_discarded() ? json(letter.event) : event},
          {"error", letter.error},
          {"attempts", letter.attempts},
          {"first_failed_at", letter.first_failed_at},
          {"last_failed_at", letter.last_failed_at},
          {"state", letter.replayed_at.empty() ? "pending" : "replayed"},
          {"replayed_at", letter.replayed_at.empty() ? json(nullptr) : json(letter.replayed_at)}};
}

}  // namespace

void add_bus_admin_routes(http::Router& router, bus::Bus& bus, WriterOf writer_of) {
  router.add(http::Method::get, "/admin/bus", [&bus](Request& request) -> asio::awaitable<Response> {
    if (auto refused = refuse_unless_admin(request)) co_return *refused;
    json feeds = json::array();
    for (const auto& feed : bus.status())
      feeds.push_back({{"consumer", feed.consumer},
                       {"subscription", feed.subscription},
                       {"source", feed.source},
                       {"consumer_up", feed.consumer_up},
                       {"cursor", feed.cursor},
                       {"source_head", feed.source_head},
                       {"bootstraps", feed.bootstraps},
                       {"lag_events", std::max<std::int64_t>(0, feed.source_head - feed.cursor)}});
    co_return json_body(200, {{"feeds", feeds}});
  });

  router.add(
      http::Method::get, "/admin/dead-letters", [&bus, writer_of](Request& request) -> asio::awaitable<Response> {
        if (auto refused = refuse_unless_admin(request)) co_return *refused;
        auto module = request.query_param("module");
        if (module && !writer_of(*module))
          co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'module': no such module"));
        std::string state = request.query_param("state").value_or("all");
        if (state != "all" && state != "pending" && state != "replayed")
          co_return http::problem(
              make_error(Errc::invalid_argument, "query parameter 'state': expected pending, replayed or all"));
        json items = json::array();
        for (const auto& letter : bus.dead_letters(module)) {
          bool pending = letter.replayed_at.empty();
          if ((state == "pending" && !pending) || (state == "replayed" && pending)) continue;
          items.push_back(letter_json(letter));
        }
        co_return json_body(200, {{"items", items}});
      });

  router.add(http::Method::post, "/admin/dead-letters/{module}/{id}/replay",
             [&bus, writer_of](Request& request) -> asio::awaitable<Response> {
               if (auto refused = refuse_unless_admin(request)) co_return *refused;
               std::string module(*request.param("module"));
               auto id = input::parse_id(*request.param("id"));
               db::Writer* writer = writer_of(module);
               if (!id || !writer) co_return http::problem(make_error(Errc::not_found, "no such dead letter"));
               // On the module's writer: the replay writes its file, and a network thread
               // must not wait for a batch the writer is applying.
               auto replay = [&bus, &module, letter = *id] { return bus.replay(module, letter); };
               auto done = co_await writer->run(replay);
               if (!done) co_return http::problem(done.error());
               co_return json_body(200, {{"id", *id}, {"module", module}, {"state", "replayed"}});
             });
}

void add_consistency_admin_routes(http::Router& router, RunCheck run, LastCheck last) {
  router.add(http::Method::post, "/admin/consistency", [run](Request& request) -> asio::awaitable<Response> {
    if (auto refused = refuse_unless_admin(request)) co_return *refused;
    auto module = request.query_param("module");
    auto repair_text = request.query_param("repair").value_or("false");
    if (repair_text != "true" && repair_text != "false")
      co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'repair': expected true or false"));
    auto report = co_await run(module, repair_text == "true");
    if (!report) {
      if (report.error().code == Errc::not_found)
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'module': no such module"));
      co_return http::problem(report.error());
    }
    co_return json_body(200, consistency::to_json(*report));
  });
  router.add(http::Method::get, "/admin/consistency", [last](Request& request) -> asio::awaitable<Response> {
    if (auto refused = refuse_unless_admin(request)) co_return *refused;
    auto report = last();
    if (!report) co_return http::problem(make_error(Errc::not_found, "no consistency check has run yet"));
    co_return json_body(200, consistency::to_json(*report));
  });
}

}  // namespace townhall::app
