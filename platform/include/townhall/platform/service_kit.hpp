#pragma once

#include <functional>
#include <string_view>

#include "townhall/platform/db.hpp"
#include "townhall/platform/module_gate.hpp"
#include "townhall/platform/write_path.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::metrics {
class Registry;
}

namespace townhall {

// What the kit gives every module's service (BasicModule::service_dependencies() makes
// it from the ModuleContext; service tests build it by hand). A service is constructed
// from its settings, this, and its own extras (other modules' Apis, a provider).
struct ServiceDependencies {
  const db::ModuleDb& database;
  db::Writer& writer;  // the one thread that writes `database`
  db::ReaderPool& readers;
  std::function<void()> events_committed;  // wakes the bus after a commit that grew the outbox
  ModuleGate& gate;                        // the module's up/down (module_gate.hpp)
  metrics::Registry& metrics;
  // Crash points (ModuleContext::fault_hook); empty outside crash tests.
  std::function<void(std::string_view point)> fault_hook = {};
};

// The part every service shares: its dependencies, its one write path, and usable() (the
// gate's answer) at the top of each call. Services derive from it privately.
class ModuleService {
 protected:
  explicit ModuleService(ServiceDependencies dependencies)
      : deps_(std::move(dependencies)), writes_(deps_.database, deps_.writer, deps_.events_committed) {}

  Result<Unit> usable() const { return deps_.gate.check(); }

  ServiceDependencies deps_;
  db::WritePath writes_;  // the module's one write path
};

}  // namespace townhall
