#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "townhall/auth/api.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/bus/payload.hpp"
#include "townhall/platform/json_fields.hpp"

// The payloads of auth's events (DESIGN.md §4), written by auth and read by its
// consumers with the same code: each event's data is {"schema_version": N, "snapshot":
// {...}} (and "changes" on an update), the snapshot of the aggregate. Never the national
// id or the password hash. Include it in .cpp files only (it brings in nlohmann/json).
namespace townhall::auth::events {

// The payload version auth writes; its consumers know it. Every auth since events began
// (ce534ab) wrote these same fields without a schema_version, so a payload without one is
// version 1 (bus::payload_of's rule) and an outbox from before versions still reads.
inline constexpr int kSchemaVersion = 1;

// An event's data ({"snapshot": ..., "changes": ...}) with the version of its shape.
inline nlohmann::json versioned(nlohmann::json data) {
  data[bus::kSchemaVersionField] = kSchemaVersion;
  return data;
}

inline nlohmann::json citizen_snapshot(const Citizen& c) {
  return json_fields("id", c.id, "email", c.email, "name", c.name, "phone", c.phone, "address", c.address, "city",
                     c.city, "postal_code", c.postal_code, "has_national_id", c.has_national_id, "email_verified",
                     c.email_verified, "identity_verified", c.identity_verified, "is_active", c.is_active,
                     "event_version", c.event_version, "created_at", c.created_at, "updated_at", c.updated_at);
}

// The citizen a gov.auth.citizen event leaves behind, for a cache; its version is the
// event's. Strict (issue 27.3): every field citizen_snapshot writes must be there with its
// type (the contact fields may be null), else bus::PermanentError names the field and the
// bus dead-letters the event at once with that reason: a snapshot that lacks a field would
// blank it in every cache. A deleted citizen is inactive whatever its snapshot says.
inline Citizen citizen_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  Citizen c{s.positive("id"),
            s.text("email"),
            s.text("name"),
            s.nullable_text("phone"),
            s.nullable_text("address"),
            s.nullable_text("city"),
            s.nullable_text("postal_code"),
            s.flag("has_national_id"),
            s.flag("email_verified"),
            s.flag("identity_verified"),
            s.flag("is_active"),
            event.event_version,
            s.text("created_at"),
            s.text("updated_at")};
  if (event.event_type == kCitizenDeleted) c.is_active = false;
  return c;
}

inline nlohmann::json department_snapshot(const DepartmentRef& d, const std::string& created_at,
                                          const std::string& updated_at) {
  return json_fields("code", d.code, "name", d.name, "event_version", d.event_version, "is_active", d.is_active,
                     "created_at", created_at, "updated_at", updated_at);
}

// The department of a gov.auth.department event, strictly (as citizen_of); its version is
// the event's. is_active came with issue 26: a snapshot written before has none and its
// department is active; one that has it must be a boolean. A deactivation event leaves
// the department inactive whatever its snapshot says.
inline DepartmentRef department_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  (void)s.text("created_at"), (void)s.text("updated_at");  // written by every auth: checked, not kept
  DepartmentRef d{s.text("code"), s.text("name"), event.event_version, !s.has("is_active") || s.flag("is_active")};
  if (event.event_type == kDepartmentDeactivated) d.is_active = false;
  return d;
}

// gov.auth.employee (employee.assigned, role.changed, employee.deactivated,
// employee.reactivated): the employee after the change. Never the password hash.
struct EmployeeSnapshot {
  std::int64_t id = 0;
  std::string email;
  std::string name;
  std::optional<std::string> department_code;
  bool is_active = true;
  std::vector<std::string> roles;  // sorted
};

inline nlohmann::json employee_snapshot(const EmployeeSnapshot& e) {
  return json_fields("id", e.id, "email", e.email, "name", e.name, "department_code", e.department_code, "is_active",
                     e.is_active, "roles", e.roles);
}

namespace detail {
// A JSON array of strings at `key` of `object`, else bus::PermanentError naming it.
inline std::vector<std::string> strings_at(const nlohmann::json& object, const char* key, const std::string& what) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_array())
    throw bus::PermanentError(what + ": '" + key + "' must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : *it) {
    if (!item.is_string()) throw bus::PermanentError(what + ": '" + key + "' must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}
}  // namespace detail

// The employee a gov.auth.employee event leaves behind, strictly (as citizen_of). A
// deactivation leaves the employee inactive whatever its snapshot says.
inline EmployeeSnapshot employee_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  EmployeeSnapshot e{
      s.positive("id"), s.text("email"), s.text("name"), s.nullable_text("department_code"), s.flag("is_active"), {}};
  e.roles = detail::strings_at(event.data.at("snapshot"), "roles", "employee snapshot");
  if (event.event_type == kEmployeeDeactivated) e.is_active = false;
  return e;
}

// The data of a gov.auth.employee event: the snapshot, and for role.changed the roles
// before and after ({"changes": {"roles": {"old": [...], "new": [...]}}}).
inline nlohmann::json employee_data(const EmployeeSnapshot& employee, nlohmann::json changes = nullptr) {
  nlohmann::json data{{"snapshot", employee_snapshot(employee)}};
  if (!changes.is_null()) data["changes"] = std::move(changes);
  return versioned(std::move(data));
}

struct RolesChange {
  std::vector<std::string> old_roles;
  std::vector<std::string> new_roles;
};
// The roles a role.changed event replaced and set, strictly.
inline RolesChange roles_change_of(const bus::Event& event) {
  (void)bus::payload_of(event, {kSchemaVersion});
  const auto& data = event.data;
  if (!data.contains("changes") || !data["changes"].is_object() || !data["changes"].contains("roles") ||
      !data["changes"]["roles"].is_object())
    throw bus::PermanentError("role change: 'changes.roles' must be an object");
  const auto& roles = data["changes"]["roles"];
  return {detail::strings_at(roles, "old", "role change"), detail::strings_at(roles, "new", "role change")};
}

// password_reset.requested (gov.auth.password_reset): an active account asked for a
// reset. No token: the mailer asks auth for it by `reference` when it sends
// (Api::password_reset_mail), so the token stands in no outbox, event or other file.
struct PasswordResetRequested {
  std::string reference;     // the reset's lookup key (the SHA-256 of its token, hex)
  std::string account_kind;  // citizen | employee
  std::int64_t account_id = 0;
  std::string email;  // where it goes: the account's sign-in address
  std::string name;
  std::string expires_at;
};

inline nlohmann::json password_reset_data(const PasswordResetRequested& r) {
  return versioned(json_fields("reference", r.reference, "account_kind", r.account_kind, "account_id", r.account_id,
                               "email", r.email, "name", r.name, "expires_at", r.expires_at));
}

// Strict: every field password_reset_data writes, with its type, else bus::PermanentError.
inline PasswordResetRequested password_reset_of(const bus::Event& event) {
  auto r = bus::payload_of(event, {kSchemaVersion});
  auto kind = r.text("account_kind");
  if (kind != "citizen" && kind != "employee")
    throw bus::PermanentError("password reset request: account_kind must be citizen or employee");
  return {r.text("reference"), kind, r.positive("account_id"), r.text("email"), r.text("name"), r.text("expires_at")};
}

}  // namespace townhall::auth::events
