// The modules compiled into this binary: adding one is an entry here (its name, table
// manifest, published topics and how to build it) and a line in kKnownModules.
#include "module_table.hpp"

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

constexpr ModuleFactory kFactories[] = {
    {"auth", auth::table_manifest, auth::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       auto instance = auth::make_module(context);
       apis.auth = instance.api;
       return std::move(instance.module);
     }},
    {"permits", permits::table_manifest, permits::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       if (!apis.auth)
         throw config::ConfigError("modules.permits: needs the auth module (list auth first, in depends_on)");
       return permits::make_module(context, *apis.auth);
     }},
    {"revenue", revenue::table_manifest, revenue::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       if (!apis.auth)
         throw config::ConfigError("modules.revenue: needs the auth module (list auth first, in depends_on)");
       return revenue::make_module(context, *apis.auth);
     }},
    {"parks", parks::table_manifest, parks::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       if (!apis.auth)
         throw config::ConfigError("modules.parks: needs the auth module (list auth first, in depends_on)");
       return parks::make_module(context, *apis.auth);
     }},
    {"notify", notify::table_manifest, notify::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       if (!apis.auth)
         throw config::ConfigError("modules.notify: needs the auth module (list auth first, in depends_on)");
       return notify::make_module(context, *apis.auth);
     }},
};
constexpr std::string_view kKnownModules[] = {"auth", "permits", "revenue", "parks", "notify"};

}  // namespace

const ModuleFactory& factory_for(std::string_view name) {
  for (const auto& factory : kFactories)
    if (factory.name == name) return factory;
  throw std::logic_error("no factory for module " + std::string(name));
}

std::span<const std::string_view> known_modules() { return kKnownModules; }

}  // namespace townhall::app
