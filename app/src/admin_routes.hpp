#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/platform/consistency.hpp"
#include "townhall/platform/result.hpp"

namespace townhall::http {
class Router;
}
namespace townhall::bus {
class Bus;
struct BusMeasurement;
}  // namespace townhall::bus
namespace townhall::config {
struct Config;
}
namespace townhall::db {
class Writer;
}

namespace townhall::app {

// The module's writer thread, or null when there is no such module.
using WriterOf = std::function<db::Writer*(std::string_view module)>;

// Operator routes for the event bus (DESIGN.md §4.6 and §6): its feeds and dead letters,
// list and replay. They need the "bus:admin" permission, which administrators ("*") hold.
//   GET  /admin/bus                                   feeds (cursor, head, lag in events and
//                                                      seconds, up) and outboxes (depth)
//   GET  /admin/dead-letters[?module=M&state=S]       S: pending | replayed | discarded | all
//   POST /admin/dead-letters/{module}/{id}/replay      apply it again with its handler
//   POST /admin/dead-letters/{module}/{id}/discard     never apply it; kept, marked discarded
void add_bus_admin_routes(http::Router& router, bus::Bus& bus, WriterOf writer_of);

// Each subscription's lag sampled at a fixed interval, the newest `capacity` samples
// (an hour by default), for the dashboard's chart. Thread-safe.
class LagHistory {
 public:
  explicit LagHistory(std::chrono::seconds interval = std::chrono::seconds(15), std::size_t capacity = 240)
      : interval_(interval), capacity_(capacity) {}
  std::chrono::seconds interval() const { return interval_; }
  void record(const bus::BusMeasurement& measured, std::chrono::system_clock::time_point at);
  // {"interval_seconds", "capacity", "samples": [{"at", "feeds": {key: {lag_events, lag_seconds}}}]}
  nlohmann::json to_json() const;

 private:
  struct FeedLag {
    std::string key;  // consumer.subscription<-source
    std::int64_t events;
    double seconds;
  };
  struct Sample {
    std::chrono::system_clock::time_point at;
    std::vector<FeedLag> feeds;
  };
  std::chrono::seconds interval_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Sample> samples_;
};

//   GET  /admin/bus/history                           LagHistory::to_json
void add_bus_history_route(http::Router& router, const LagHistory& history);

//   GET  /admin/registry                              the module/topic/Api graph (registry_graph_model)
void add_registry_admin_route(http::Router& router, const config::Config& config);

// What /openapi.json says of the routes above (after they are added).
void document_admin_routes(http::Router& router);

using RunCheck =
    std::function<boost::asio::awaitable<Result<consistency::Report>>(std::optional<std::string> module, bool repair)>;
using LastCheck = std::function<std::optional<consistency::Report>()>;

// The consistency check (README "Consistency check"), same permission:
//   POST /admin/consistency[?module=M&repair=true]   run it now; the report
//   GET  /admin/consistency                           the latest report (404 before the first)
void add_consistency_admin_routes(http::Router& router, RunCheck run, LastCheck last);

}  // namespace townhall::app
