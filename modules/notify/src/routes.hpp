#pragma once

#include <string>

#include "service.hpp"
#include "townhall/platform/http.hpp"

namespace townhall::notify {

// GET <prefix>/inbox, POST <prefix>/inbox/{id}/read, GET|PATCH <prefix>/preferences.
void add_routes(http::Router& router, const std::string& prefix, NotifyService& service);

}  // namespace townhall::notify
