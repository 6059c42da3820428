#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "townhall/auth/api.hpp"
#include "townhall/platform/json.hpp"

// The payloads of auth's events (DESIGN.md §4), written by auth and read by its
// consumers with the same code: gov.auth.citizen and gov.auth.department carry a
// `snapshot` of the aggregate. Never the national id or the password hash. Include it in
// .cpp files only (it brings in nlohmann/json).
namespace townhall::auth::events {

inline nlohmann::json citizen_snapshot(const Citizen& c) {
  auto optional = [](const std::optional<std::string>& value) { return nullable(value); };
  return {{"id", c.id},
          {"email", c.email},
          {"name", c.name},
          {"phone", optional(c.phone)},
          {"address", optional(c.address)},
          {"city", optional(c.city)},
          {"postal_code", optional(c.postal_code)},
          {"has_national_id", c.has_national_id},
          {"email_verified", c.email_verified},
          {"identity_verified", c.identity_verified},
          {"is_active", c.is_active},
          {"event_version", c.event_version},
          {"created_at", c.created_at},
          {"updated_at", c.updated_at}};
}

// The citizen of a snapshot; `version` is the event's. Throws nlohmann::json::exception
// when a required field is missing or mistyped (the bus dead-letters such an event at
// once: retrying cannot mend it).
inline Citizen citizen_from_snapshot(const nlohmann::json& snapshot, std::int64_t version) {
  auto optional = [&](const char* key) -> std::optional<std::string> {
    auto it = snapshot.find(key);
    if (it == snapshot.end() || it->is_null()) return std::nullopt;
    return it->get<std::string>();
  };
  auto flag = [&](const char* key, bool fallback) {
    auto it = snapshot.find(key);
    return it == snapshot.end() ? fallback : it->get<bool>();
  };
  Citizen c;
  c.id = snapshot.at("id").get<std::int64_t>();
  c.email = optional("email").value_or("");
  c.name = optional("name").value_or("");
  c.phone = optional("phone");
  c.address = optional("address");
  c.city = optional("city");
  c.postal_code = optional("postal_code");
  c.has_national_id = flag("has_national_id", false);
  c.email_verified = flag("email_verified", false);
  c.identity_verified = flag("identity_verified", false);
  c.is_active = flag("is_active", true);
  c.event_version = version;
  c.created_at = optional("created_at").value_or("");
  c.updated_at = optional("updated_at").value_or("");
  return c;
}

// The citizen a gov.auth.citizen event leaves behind, for a cache: a deleted one is
// inactive whatever its snapshot says.
inline Citizen citizen_after(std::string_view event_type, const nlohmann::json& snapshot, std::int64_t version) {
  auto citizen = citizen_from_snapshot(snapshot, version);
  if (event_type == kCitizenDeleted) citizen.is_active = false;
  return citizen;
}

inline nlohmann::json department_snapshot(const DepartmentRef& d, const std::string& created_at,
                                          const std::string& updated_at) {
  return {{"code", d.code},
          {"name", d.name},
          {"event_version", d.event_version},
          {"created_at", created_at},
          {"updated_at", updated_at}};
}

inline DepartmentRef department_from_snapshot(const nlohmann::json& snapshot, std::int64_t version) {
  return {snapshot.at("code").get<std::string>(), snapshot.at("name").get<std::string>(), version};
}

}  // namespace townhall::auth::events
