#pragma once

#include <string>

#include "service.hpp"
#include "townhall/platform/http.hpp"

namespace townhall::revenue {

// The HTTP face of the revenue module (DESIGN.md §6): parse, call the service, map.
void add_routes(http::Router& router, const std::string& prefix, RevenueService& service);

}  // namespace townhall::revenue
