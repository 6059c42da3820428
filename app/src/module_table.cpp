// The modules compiled into this binary: adding one is an entry here (its name, table
// manifest, published topics and how to build it).
#include "module_table.hpp"

#include <array>
#include <iterator>
#include <stdexcept>

#include "townhall/app/application.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/notify/events.hpp"
#include "townhall/notify/module.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/parks/module.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/permits/module.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/module.hpp"

namespace townhall::app {
namespace {

// The auth Api a module is built with; auth must come first in the registry.
auth::Api& needs_auth(const BuiltApis& apis, std::string_view module) {
  if (!apis.auth)
    throw config::ConfigError("modules." + std::string(module) +
                              ": needs the auth module (list auth first, in depends_on)");
  return *apis.auth;
}

// A module whose only dependency is auth's Api.
template <std::unique_ptr<Module> (*make)(ModuleContext&, auth::Api&)>
std::unique_ptr<Module> with_auth(ModuleContext& context, BuiltApis& apis) {
  return make(context, needs_auth(apis, context.config.name));
}

constexpr ModuleFactory kFactories[] = {
    {"auth", auth::table_manifest, auth::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       auto instance = auth::make_module(context);
       apis.auth = instance.api;
       return std::move(instance.module);
     }},
    {"permits", permits::table_manifest, permits::events::kTopics, with_auth<permits::make_module>},
    {"revenue", revenue::table_manifest, revenue::events::kTopics, with_auth<revenue::make_module>},
    {"parks", parks::table_manifest, parks::events::kTopics, with_auth<parks::make_module>},
    {"notify", notify::table_manifest, notify::events::kTopics, with_auth<notify::make_module>},
};

constexpr auto kKnownModules = [] {
  std::array<std::string_view, std::size(kFactories)> names{};
  for (std::size_t i = 0; i < names.size(); ++i) names[i] = kFactories[i].name;
  return names;
}();

}  // namespace

const ModuleFactory& factory_for(std::string_view name) {
  for (const auto& factory : kFactories)
    if (factory.name == name) return factory;
  throw std::logic_error("no factory for module " + std::string(name));
}

std::span<const std::string_view> known_modules() { return kKnownModules; }

}  // namespace townhall::app
