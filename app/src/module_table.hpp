#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"

namespace townhall::auth {
class Api;
}

namespace townhall::app {

// The Apis of the modules built so far, handed explicitly to the modules that need
// them (built after them: the registry lists modules in dependency order).
struct BuiltApis {
  auth::Api* auth = nullptr;
};

// How to build one module compiled into this binary (module_table.cpp lists them).
struct ModuleFactory {
  std::string_view name;
  db::TableManifest (*manifest)();
  std::span<const std::string_view> topics;  // what it publishes: its contract's kTopics
  std::unique_ptr<Module> (*make)(ModuleContext&, BuiltApis&);
};

// The factory of a module compiled in; std::logic_error for any other name (the
// registry's loader accepts only known_modules()).
const ModuleFactory& factory_for(std::string_view name);

}  // namespace townhall::app
