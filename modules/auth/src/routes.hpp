#pragma once

#include <string>

#include "service.hpp"
#include "townhall/platform/http.hpp"

namespace townhall::auth {

// The HTTP face of the auth module (DESIGN.md §6): parse, call the service, map.
void add_routes(http::Router& router, const std::string& prefix, AuthService& service);

nlohmann::json citizen_json(const Citizen& citizen);
nlohmann::json principal_json(const Principal& principal);
// An audit row as GET /audit shows it and the retention job exports it.
nlohmann::json audit_json(const store::AuditRow& row);

}  // namespace townhall::auth
