#pragma once

#include <memory>

#include "townhall/auth/api.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"

namespace townhall::parks {

// The tables parks.db may hold (DESIGN.md §2); drives the connection-role authorizer.
db::TableManifest table_manifest();

// `auth` is the identity owner's Api (the citizen_refs bootstrap). The module is also a
// bus::Consumer (citizens, payments of its bookings). Throws config::ConfigError on bad
// `modules.parks.settings`.
std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth);

}  // namespace townhall::parks
