#include "admin_routes.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "townhall/app/application.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/http.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/schema.hpp"
#include "townhall/platform/time.hpp"
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
          {"state", letter.state()},
          {"replayed_at", letter.replayed_at.empty() ? json(nullptr) : json(letter.replayed_at)},
          {"discarded_at", letter.discarded_at.empty() ? json(nullptr) : json(letter.discarded_at)}};
}

json feed_json(const bus::FeedStatus& feed) {
  return {{"consumer", feed.consumer},      {"subscription", feed.subscription},
          {"source", feed.source},          {"consumer_up", feed.consumer_up},
          {"cursor", feed.cursor},          {"source_head", feed.source_head},
          {"bootstraps", feed.bootstraps},  {"lag_events", feed.lag_events},
          {"lag_seconds", feed.lag_seconds}};
}

std::string feed_key(const bus::FeedStatus& feed) {
  return feed.consumer + "." + feed.subscription + "<-" + feed.source;
}

// A dead letter's module and id from the path; nullopt when either is not one.
struct LetterRef {
  std::string module;
  std::int64_t id;
  db::Writer* writer;
};
std::optional<LetterRef> letter_ref(const Request& request, const WriterOf& writer_of) {
  std::string module(*request.param("module"));
  auto id = input::parse_id(*request.param("id"));
  db::Writer* writer = writer_of(module);
  if (!id || !writer) return std::nullopt;
  return LetterRef{module, *id, writer};
}

}  // namespace

void LagHistory::record(const bus::BusMeasurement& measured, std::chrono::system_clock::time_point at) {
  Sample sample{at, {}};
  for (const auto& feed : measured.feeds) sample.feeds.push_back({feed_key(feed), feed.lag_events, feed.lag_seconds});
  std::lock_guard lock(mutex_);
  samples_.push_back(std::move(sample));
  while (samples_.size() > capacity_) samples_.pop_front();
}

json LagHistory::to_json() const {
  std::lock_guard lock(mutex_);
  json samples = json::array();
  for (const auto& sample : samples_) {
    json feeds = json::object();
    for (const auto& feed : sample.feeds)
      feeds[feed.key] = {{"lag_events", feed.events}, {"lag_seconds", feed.seconds}};
    samples.push_back({{"at", utc::format(sample.at)}, {"feeds", feeds}});
  }
  return {{"interval_seconds", interval_.count()}, {"capacity", capacity_}, {"samples", samples}};
}

void add_bus_admin_routes(http::Router& router, bus::Bus& bus, WriterOf writer_of) {
  router.add(http::Method::get, "/admin/bus", [&bus](Request& request) -> asio::awaitable<Response> {
    if (auto refused = refuse_unless_admin(request)) co_return *refused;
    auto measured = bus.measure();
    json feeds = json::array();
    for (const auto& feed : measured.feeds) feeds.push_back(feed_json(feed));
    json outboxes = json::array();
    for (const auto& outbox : measured.outboxes)
      outboxes.push_back({{"module", outbox.module},
                          {"readable", outbox.readable},
                          {"head", outbox.head},
                          {"pending", outbox.pending},
                          {"held", outbox.held}});
    co_return json_body(200, {{"feeds", feeds}, {"outboxes", outboxes}});
  });

  router.add(
      http::Method::get, "/admin/dead-letters", [&bus, writer_of](Request& request) -> asio::awaitable<Response> {
        if (auto refused = refuse_unless_admin(request)) co_return *refused;
        auto module = request.query_param("module");
        if (module && !writer_of(*module))
          co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'module': no such module"));
        std::string state = request.query_param("state").value_or("all");
        if (state != "all" && state != "pending" && state != "replayed" && state != "discarded")
          co_return http::problem(make_error(Errc::invalid_argument,
                                             "query parameter 'state': expected pending, replayed, discarded or all"));
        json items = json::array();
        for (const auto& letter : bus.dead_letters(module))
          if (state == "all" || letter.state() == state) items.push_back(letter_json(letter));
        co_return json_body(200, {{"items", items}});
      });

  router.add(http::Method::post, "/admin/dead-letters/{module}/{id}/replay",
             [&bus, writer_of](Request& request) -> asio::awaitable<Response> {
               if (auto refused = refuse_unless_admin(request)) co_return *refused;
               auto letter = letter_ref(request, writer_of);
               if (!letter) co_return http::problem(make_error(Errc::not_found, "no such dead letter"));
               // On the module's writer: the replay writes its file, and a network thread
               // must not wait for a batch the writer is applying.
               auto replay = [&bus, &letter] { return bus.replay(letter->module, letter->id); };
               auto done = co_await letter->writer->run(replay);
               if (!done) co_return http::problem(done.error());
               co_return json_body(200, {{"id", letter->id}, {"module", letter->module}, {"state", "replayed"}});
             });

  router.add(http::Method::post, "/admin/dead-letters/{module}/{id}/discard",
             [&bus, writer_of](Request& request) -> asio::awaitable<Response> {
               if (auto refused = refuse_unless_admin(request)) co_return *refused;
               auto letter = letter_ref(request, writer_of);
               if (!letter) co_return http::problem(make_error(Errc::not_found, "no such dead letter"));
               spdlog::warn("admin: {} discards dead letter {} of {}", request.principal->email, letter->id,
                            letter->module);
               auto discard = [&bus, &letter] { return bus.discard(letter->module, letter->id); };
               auto done = co_await letter->writer->run(discard);
               if (!done) co_return http::problem(done.error());
               co_return json_body(200, {{"id", letter->id}, {"module", letter->module}, {"state", "discarded"}});
             });
}

void add_bus_history_route(http::Router& router, const LagHistory& history) {
  router.add(http::Method::get, "/admin/bus/history", [&history](Request& request) -> asio::awaitable<Response> {
    if (auto refused = refuse_unless_admin(request)) co_return *refused;
    co_return json_body(200, history.to_json());
  });
}

void add_registry_admin_route(http::Router& router, const config::Config& config) {
  router.add(http::Method::get, "/admin/registry", [&config](Request& request) -> asio::awaitable<Response> {
    if (auto refused = refuse_unless_admin(request)) co_return *refused;
    auto graph = registry_graph_model(config);
    json modules = json::array();
    for (const auto& module : graph.modules)
      modules.push_back({{"name", module.name}, {"db_file", module.db_file}, {"route_prefix", module.route_prefix}});
    json edges = json::array();
    for (const auto& edge : graph.edges)
      edges.push_back({{"from", edge.from}, {"to", edge.to}, {"kind", edge.kind}, {"label", edge.label}});
    co_return json_body(200, {{"modules", modules}, {"edges", edges}});
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

void document_admin_routes(http::Router& router) {
  using http::Method;
  namespace s = schema;
  const auto feed = s::object({{"consumer", s::string()},
                               {"subscription", s::string()},
                               {"source", s::string()},
                               {"consumer_up", s::boolean()},
                               {"cursor", s::integer(0)},
                               {"source_head", s::integer(0)},
                               {"bootstraps", s::integer(0)},
                               {"lag_events", s::integer(0)},
                               {"lag_seconds", s::number()}});
  const auto outbox = s::object({{"module", s::string()},
                                 {"readable", s::boolean()},
                                 {"head", s::integer(0)},
                                 {"pending", s::integer(0)},
                                 {"held", s::integer(0)}});
  const auto letter = s::object({{"id", s::integer(1)},
                                 {"module", s::string()},
                                 {"subscription", s::string()},
                                 {"event_id", s::string()},
                                 {"event", {{"type", s::Json::array({"object", "string"})}}},
                                 {"error", s::string()},
                                 {"attempts", s::integer(0)},
                                 {"first_failed_at", s::timestamp()},
                                 {"last_failed_at", s::timestamp()},
                                 {"state", s::one_of({"pending", "replayed", "discarded"})},
                                 {"replayed_at", s::timestamp_or_null()},
                                 {"discarded_at", s::timestamp_or_null()}});
  // Ids, or keys for a text-keyed cache (department_refs).
  const auto ids = s::array({{"type", s::Json::array({"integer", "string"})}});
  const auto cache =
      s::object({{"cache", s::string()},
                 {"source", s::string()},
                 {"source_rows", s::integer(0)},
                 {"cache_rows", s::integer(0)},
                 {"missing", s::integer(0)},
                 {"stale", s::integer(0)},
                 {"extra", s::integer(0)},
                 {"missing_ids", ids},
                 {"stale_ids", ids},
                 {"extra_ids", ids},
                 {"repaired", s::integer(0)},
                 {"full_resync", s::boolean()},
                 {"source_calls",
                  s::object({{"digests", s::integer(0)}, {"entry_pages", s::integer(0)}, {"records", s::integer(0)}})},
                 {"duration_seconds", s::number()},
                 s::optional("error", s::string())});
  const auto report = s::object({{"started_at", s::timestamp()},
                                 {"repair", s::boolean()},
                                 {"consistent", s::boolean()},
                                 {"missing", s::integer(0)},
                                 {"stale", s::integer(0)},
                                 {"extra", s::integer(0)},
                                 {"repaired", s::integer(0)},
                                 {"duration_seconds", s::number()},
                                 {"rewound", s::array(s::string())},
                                 {"caches", s::array(cache)}});
  const auto lag = s::object({{"lag_events", s::integer(0)}, {"lag_seconds", s::number()}});
  const auto letter_state = [](const char* state) {
    return s::text(s::object({{"id", s::integer(1)}, {"module", s::string()}, {"state", s::one_of({state})}}));
  };
  router.document(Method::get, "/admin/bus",
                  {"The bus: every feed's cursor, head and lag; every outbox's depth (bus:admin)", "",
                   s::text(s::object({{"feeds", s::array(feed)}, {"outboxes", s::array(outbox)}}))});
  router.document(
      Method::get, "/admin/bus/history",
      {"Every feed's lag sampled at a fixed interval, the newest samples (bus:admin)", "",
       s::text(s::object(
           {{"interval_seconds", s::integer(1)},
            {"capacity", s::integer(1)},
            {"samples", s::array(s::object({{"at", s::timestamp()},
                                            {"feeds", {{"type", "object"}, {"additionalProperties", lag}}}}))}}))});
  router.document(Method::get, "/admin/dead-letters",
                  {"Dead letters (?module= ?state=pending|replayed|discarded|all) (bus:admin)", "",
                   s::text(s::object({{"items", s::array(letter)}}))});
  router.document(Method::post, "/admin/dead-letters/{module}/{id}/replay",
                  {"Apply a pending dead letter again with its handler (bus:admin)", s::text(s::object({})),
                   letter_state("replayed")});
  router.document(Method::post, "/admin/dead-letters/{module}/{id}/discard",
                  {"Never apply a pending dead letter; it is kept, marked discarded (bus:admin)",
                   s::text(s::object({})), letter_state("discarded")});
  router.document(Method::post, "/admin/consistency",
                  {"Run the consistency check now (?module= ?repair=true|false) (bus:admin)", s::text(s::object({})),
                   s::text(report)});
  router.document(Method::get, "/admin/consistency",
                  {"The latest consistency report; 404 before the first run (bus:admin)", "", s::text(report)});
  router.document(
      Method::get, "/admin/registry",
      {"The registry's modules, topics (events edges) and Api dependencies (api edges) (bus:admin)", "",
       s::text(s::object(
           {{"modules",
             s::array(s::object({{"name", s::string()}, {"db_file", s::string()}, {"route_prefix", s::string()}}))},
            {"edges", s::array(s::object({{"from", s::string()},
                                          {"to", s::string()},
                                          {"kind", s::one_of({"events", "api"})},
                                          {"label", s::string()}}))}}))});
}

}  // namespace townhall::app
