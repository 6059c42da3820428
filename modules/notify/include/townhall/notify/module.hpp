#pragma once

#include <memory>

#include "townhall/auth/api.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"

namespace townhall::notify {

// The tables notify.db may hold (DESIGN.md §2); drives the connection-role authorizer.
db::TableManifest table_manifest();

// `auth` is the identity owner's Api (the citizen cache's bootstrap and consistency
// check). The module is a bus::Consumer of the other modules' events; it publishes none.
// Throws config::ConfigError on bad `modules.notify.settings`.
std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth);

}  // namespace townhall::notify
