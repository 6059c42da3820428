#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "townhall/platform/http.hpp"

namespace townhall::config {
struct Module;
}
namespace townhall::db {
class ModuleDb;
}
namespace townhall::metrics {
class Registry;
}

namespace townhall {

struct ModuleHealth {
  bool up = true;
  std::string detail;
};

// What the composition root hands a module. References outlive the module.
struct ModuleContext {
  const config::Module& config;
  db::ModuleDb& db;
  metrics::Registry& metrics;
  bool demo = false;
};

// A module: constructed with its dependencies, started and stopped by app/ in
// dependency order (stopped in reverse).
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
