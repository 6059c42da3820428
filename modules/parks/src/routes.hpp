#pragma once

#include <string>

#include "service.hpp"
#include "townhall/platform/http.hpp"

namespace townhall::parks {

// The HTTP face of the parks module (DESIGN.md §6): parse, call the service, map.
void add_routes(http::Router& router, const std::string& prefix, ParksService& service);

}  // namespace townhall::parks
