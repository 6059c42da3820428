#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "townhall/platform/consistency.hpp"
#include "townhall/platform/result.hpp"

namespace townhall::http {
class Router;
}
namespace townhall::bus {
class Bus;
}
namespace townhall::db {
class Writer;
}

namespace townhall::app {

// The module's writer thread, or null when there is no such module.
using WriterOf = std::function<db::Writer*(std::string_view module)>;

// Operator routes for the event bus (DESIGN.md §4.6 and §6): its feeds and dead letters,
// list and replay. They need the "bus:admin" permission, which administrators ("*") hold.
//   GET  /admin/bus                                   feeds: cursor, head, lag, up
//   GET  /admin/dead-letters[?module=M&state=S]       S: pending | replayed | all (default)
//   POST /admin/dead-letters/{module}/{id}/replay      apply it again with its handler
void add_bus_admin_routes(http::Router& router, bus::Bus& bus, WriterOf writer_of);

using RunCheck =
    std::function<boost::asio::awaitable<Result<consistency::Report>>(std::optional<std::string> module, bool repair)>;
using LastCheck = std::function<std::optional<consistency::Report>()>;

// The consistency check (docs/operations.md), same permission:
//   POST /admin/consistency[?module=M&repair=true]   run it now; the report
//   GET  /admin/consistency                           the latest report (404 before the first)
void add_consistency_admin_routes(http::Router& router, RunCheck run, LastCheck last);

}  // namespace townhall::app
