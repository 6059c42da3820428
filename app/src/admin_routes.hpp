#pragma once

#include <functional>
#include <string_view>

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

}  // namespace townhall::app
