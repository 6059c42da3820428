#pragma once

#include <string>

#include "service.hpp"
#include "townhall/platform/http.hpp"

namespace townhall::permits {

// The HTTP face of the permits module (DESIGN.md §6): parse, call the service, map.
void add_routes(http::Router& router, const std::string& prefix, PermitsService& service);

}  // namespace townhall::permits
