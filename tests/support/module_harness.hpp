#pragma once

#include <SQLiteCpp/Transaction.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fake_auth.hpp"
#include "support.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/module_gate.hpp"
#include "townhall/platform/principal.hpp"
#include "townhall/platform/service_kit.hpp"
#include "townhall/platform/writer.hpp"

// What a module's service tests stand on: the callers the gateway would pass, and the
// module's own file with everything a service is built from (kit, service_kit.hpp).
namespace townhall::testing {

inline std::shared_ptr<const Principal> citizen_principal(std::int64_t id, std::vector<std::string> permissions = {}) {
  auto p = std::make_shared<Principal>();
  p->id = id;
  p->kind = Principal::Kind::citizen;
  p->permissions = std::move(permissions);
  return p;
}

inline std::shared_ptr<const Principal> employee_principal(std::int64_t id, std::vector<std::string> permissions,
                                                           std::string department = "") {
  auto p = std::make_shared<Principal>();
  p->id = id;
  p->kind = Principal::Kind::employee;
  p->permissions = std::move(permissions);
  p->department = std::move(department);
  return p;
}

inline CallContext as(std::shared_ptr<const Principal> principal) {
  CallContext context;
  context.principal = std::move(principal);
  return context;
}

// The module's file in a temp dir with its tables, its one writer, WAL readers, auth as
// its Api answers (FakeAuth), metrics and the module's gate. A fixture derives from it
// and builds its service from dependencies().
struct ModuleHarness {
  ModuleHarness(const std::string& module, db::TableManifest manifest, std::size_t reader_count = 2)
      : database(module, dir.path() / (module + ".db"), std::move(manifest)),
        writer(module),
        readers(database, reader_count),
        gate(module) {}

  ServiceDependencies dependencies(std::function<void()> events_committed = [] {}) {
    return ServiceDependencies{database, writer, readers, std::move(events_committed), gate, metrics, cursors};
  }

  // `handler(event, connection)` as the bus runs a subscription's handler: on the module's
  // writer (the service's own jobs write there too, so a test's connection would meet a
  // locked file), on a `role` connection, in a transaction; what it throws is rethrown.
  template <class Handler>
  bus::Outcome handle(Handler&& handler, const bus::Event& event, db::Role role = db::Role::service) {
    bus::Outcome outcome{};
    writer.call([&] {
      auto connection = database.open(role);
      SQLite::Transaction transaction(connection->sql());
      outcome = handler(event, *connection);
      transaction.commit();
    });
    return outcome;
  }

  // The answer of a query for one integer (a count) on a reader of the module's file.
  std::int64_t count(const std::string& sql) {
    auto reader = database.open(db::Role::reader);
    return reader->sql().execAndGet(sql).getInt64();
  }

  TempDir dir;
  db::ModuleDb database;
  db::Writer writer;
  db::ReaderPool readers;
  FakeAuth auth;
  metrics::Registry metrics;
  ModuleGate gate;
  PageCursors cursors = PageCursors::random();
};

}  // namespace townhall::testing
