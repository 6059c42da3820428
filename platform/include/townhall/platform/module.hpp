#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "townhall/platform/http.hpp"

namespace townhall::config {
struct Module;
}
namespace townhall::db {
class ModuleDb;
class Writer;
}  // namespace townhall::db
namespace townhall::metrics {
class Registry;
}

namespace townhall {

class ModuleGate;
class PageCursors;

struct ModuleHealth {
  bool up = true;
  std::string detail;
  // Up, but part of what it serves is unavailable (detail says what and how to fix it):
  // e.g. auth without a key that opens its sealed national ids. Shown in /readyz and
  // townhall_module_degraded; the module keeps serving the rest.
  bool degraded = false;
};

// What the composition root hands a module. References outlive the module.
struct ModuleContext {
  const config::Module& config;
  db::ModuleDb& db;
  db::Writer& writer;  // the one thread that writes db
  // Whether the module serves (module_gate.hpp): the one owner of its up/down.
  ModuleGate& gate;
  metrics::Registry& metrics;
  const PageCursors& cursors;  // the installation's list cursors (page_cursor.hpp)
  // Wakes the bus for this module's outbox; the module's db::WritePath calls it after a
  // commit that grew the outbox (and the CLI's or demo seed's run_in_transaction).
  std::function<void()> events_committed;
  bool demo = false;
  // The newest event id in this module's outbox (the bus reads it); empty: 0.
  std::function<std::int64_t()> outbox_head = {};
  // Crash points: called with "<module>.<point>" where a kill -9 tests a guarantee. Set
  // only by the test build of the binary (townhall_faulty, TOWNHALL_CRASH_AT); empty in
  // `townhall`, which has no way to set it.
  std::function<void(std::string_view point)> fault_hook = {};
  // Whether the module has applied every event its sources had committed by now (the
  // bus's answer); empty: nothing to wait for. A job that must not run on a stale view
  // after a start waits for it (parks' hold expiry).
  std::function<bool()> inputs_caught_up = {};
};

// A module: constructed with its dependencies (no I/O in the constructor), started once
// its file is open and migrated, stopped by app/ in reverse dependency order. A module
// that cannot start is down (its gate closed); app/ retries it and its routes answer 503
// meanwhile.
class Module {
 public:
  virtual ~Module() = default;
  virtual std::string_view name() const = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
  // Registers the module's routes under `prefix` (from the registry).
  virtual void add_routes(http::Router& router, const std::string& prefix) = 0;
  virtual ModuleHealth health() const = 0;
};

}  // namespace townhall
