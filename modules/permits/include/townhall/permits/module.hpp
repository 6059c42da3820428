#pragma once

#include <memory>

#include "townhall/auth/api.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"

namespace townhall::permits {

// The tables permits.db may hold (DESIGN.md §2); drives the connection-role authorizer.
db::TableManifest table_manifest();

// `auth` is the identity owner's Api (fresh identity checks before issuing a permit).
// The module is also a bus::Consumer (citizen and department caches, payments).
// Throws config::ConfigError on bad `modules.permits.settings`.
std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth);

}  // namespace townhall::permits
