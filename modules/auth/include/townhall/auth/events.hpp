#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

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
  return json_fields("code", d.code, "name", d.name, "event_version", d.event_version, "created_at", created_at,
                     "updated_at", updated_at);
}

// The department of a gov.auth.department event, strictly (as citizen_of); its version is
// the event's.
inline DepartmentRef department_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  (void)s.text("created_at"), (void)s.text("updated_at");  // written by every auth: checked, not kept
  return {s.text("code"), s.text("name"), event.event_version};
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
