#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "townhall/bus/payload.hpp"
#include "townhall/platform/json_fields.hpp"

// The events permits publishes (DESIGN.md §4), written by permits and read by its
// consumers with the same code (revenue opens the fee invoice of application.submitted).
// Each event's data is {"schema_version": N, "snapshot": {...}}. Include it in .cpp
// files only (it brings in nlohmann/json).
namespace townhall::permits::events {

inline constexpr std::string_view kApplicationTopic = "gov.permits.application";
inline constexpr std::string_view kApplicationSubmitted = "application.submitted";
inline constexpr std::string_view kApplicationApproved = "application.approved";
inline constexpr std::string_view kApplicationRejected = "application.rejected";

inline constexpr std::string_view kPermitTopic = "gov.permits.permit";
inline constexpr std::string_view kPermitIssued = "permit.issued";
inline constexpr std::string_view kPermitRevoked = "permit.revoked";

inline constexpr std::array kTopics{kApplicationTopic, kPermitTopic};
// The payload version permits writes; its consumers know it.
inline constexpr int kSchemaVersion = 1;

// An application as its events carry it (no description: free text stays in permits).
struct ApplicationSnapshot {
  std::int64_t id = 0;
  std::int64_t citizen_id = 0;
  std::string permit_type;
  std::string department_code;
  std::string property_address;
  std::string status;  // fee_due | under_review | approved | rejected
  std::int64_t fee_cents = 0;
  std::string currency;
  std::optional<std::string> decision_reason;
  std::string submitted_at;
  std::string updated_at;
};

struct PermitSnapshot {
  std::int64_t id = 0;
  std::int64_t application_id = 0;
  std::int64_t citizen_id = 0;
  std::string permit_type;
  std::string department_code;
  std::string status;  // active | revoked
  std::string issued_at;
  std::optional<std::string> revoked_at;
  std::optional<std::string> revoke_reason;
};

inline nlohmann::json application_data(const ApplicationSnapshot& a) {
  return bus::snapshot_data(
      kSchemaVersion,
      json_fields("id", a.id, "citizen_id", a.citizen_id, "permit_type", a.permit_type, "department_code",
                  a.department_code, "property_address", a.property_address, "status", a.status, "fee_cents",
                  a.fee_cents, "currency", a.currency, "decision_reason", a.decision_reason, "submitted_at",
                  a.submitted_at, "updated_at", a.updated_at));
}

// Strict: every field application_data writes, with its type, else bus::PermanentError.
inline ApplicationSnapshot application_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  return {s.positive("id"),          s.positive("citizen_id"),   s.text("permit_type"),
          s.text("department_code"), s.text("property_address"), s.text("status"),
          s.integer("fee_cents"),    s.text("currency"),         s.nullable_text("decision_reason"),
          s.text("submitted_at"),    s.text("updated_at")};
}

// The permit's JSON (also what GET /permits/{id} answers).
inline nlohmann::json permit_json(const PermitSnapshot& p) {
  return json_fields("id", p.id, "application_id", p.application_id, "citizen_id", p.citizen_id, "permit_type",
                     p.permit_type, "department_code", p.department_code, "status", p.status, "issued_at", p.issued_at,
                     "revoked_at", p.revoked_at, "revoke_reason", p.revoke_reason);
}

inline nlohmann::json permit_data(const PermitSnapshot& p) {
  return bus::snapshot_data(kSchemaVersion, permit_json(p));
}

inline PermitSnapshot permit_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  return {s.positive("id"),      s.positive("application_id"),  s.positive("citizen_id"),
          s.text("permit_type"), s.text("department_code"),     s.text("status"),
          s.text("issued_at"),   s.nullable_text("revoked_at"), s.nullable_text("revoke_reason")};
}

}  // namespace townhall::permits::events
