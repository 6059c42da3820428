#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "townhall/auth/api.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/bus/payload.hpp"
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

// The citizen of a snapshot; `version` is the event's. Strict (issue 27.3): every field
// citizen_snapshot writes must be there with its type (the contact fields may be null),
// else bus::PermanentError names the field and the bus dead-letters the event at once
// with that reason: a snapshot that lacks a field would blank it in every cache.
inline Citizen citizen_from_snapshot(const nlohmann::json& snapshot, std::int64_t version) {
  if (!snapshot.is_object()) throw bus::PermanentError("malformed citizen snapshot: not an object");
  auto field = [&](const char* key) -> const nlohmann::json& {
    auto it = snapshot.find(key);
    if (it == snapshot.end())
      throw bus::PermanentError(std::string("malformed citizen snapshot: no field '") + key + "'");
    return *it;
  };
  auto wrong = [](const char* key, const char* type) {
    return bus::PermanentError(std::string("malformed citizen snapshot: field '") + key + "' must be " + type);
  };
  auto text = [&](const char* key) {
    const auto& value = field(key);
    if (!value.is_string()) throw wrong(key, "a string");
    return value.get<std::string>();
  };
  auto nullable_text = [&](const char* key) -> std::optional<std::string> {
    const auto& value = field(key);
    if (value.is_null()) return std::nullopt;
    if (!value.is_string()) throw wrong(key, "a string or null");
    return value.get<std::string>();
  };
  auto flag = [&](const char* key) {
    const auto& value = field(key);
    if (!value.is_boolean()) throw wrong(key, "true or false");
    return value.get<bool>();
  };
  const auto& id = field("id");
  if (!id.is_number_integer() || id.get<std::int64_t>() <= 0) throw wrong("id", "a positive integer");
  Citizen c;
  c.id = id.get<std::int64_t>();
  c.email = text("email");
  c.name = text("name");
  c.phone = nullable_text("phone");
  c.address = nullable_text("address");
  c.city = nullable_text("city");
  c.postal_code = nullable_text("postal_code");
  c.has_national_id = flag("has_national_id");
  c.email_verified = flag("email_verified");
  c.identity_verified = flag("identity_verified");
  c.is_active = flag("is_active");
  c.event_version = version;
  c.created_at = text("created_at");
  c.updated_at = text("updated_at");
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

// password_reset.requested (gov.auth.password_reset): an active account asked for a
// reset. No token: the mailer asks auth for it by `reference` when it sends
// (Api::password_reset_mail), so the token stands in no outbox, event or other file.
inline constexpr int kPasswordResetSchemaVersion = 1;
struct PasswordResetRequested {
  std::string reference;     // the reset's lookup key (the SHA-256 of its token, hex)
  std::string account_kind;  // citizen | employee
  std::int64_t account_id = 0;
  std::string email;  // where it goes: the account's sign-in address
  std::string name;
  std::string expires_at;
};

inline nlohmann::json password_reset_data(const PasswordResetRequested& r) {
  return {{bus::kSchemaVersionField, kPasswordResetSchemaVersion},
          {"reference", r.reference},
          {"account_kind", r.account_kind},
          {"account_id", r.account_id},
          {"email", r.email},
          {"name", r.name},
          {"expires_at", r.expires_at}};
}

// Strict: every field password_reset_data writes, with its type, else bus::PermanentError.
inline PasswordResetRequested password_reset_of(const bus::Event& event) {
  auto r = bus::payload_of(event, {kPasswordResetSchemaVersion});
  auto kind = r.text("account_kind");
  if (kind != "citizen" && kind != "employee")
    throw bus::PermanentError("password reset request: account_kind must be citizen or employee");
  return {r.text("reference"), kind, r.positive("account_id"), r.text("email"), r.text("name"), r.text("expires_at")};
}

}  // namespace townhall::auth::events
