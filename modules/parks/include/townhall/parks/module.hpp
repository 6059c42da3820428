#pragma once

#include <memory>

#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"

namespace townhall::parks {

// The tables parks.db may hold (DESIGN.md §2); drives the connection-role authorizer.
db::TableManifest table_manifest();

std::unique_ptr<Module> make_module(ModuleContext& context);

}  // namespace townhall::parks
