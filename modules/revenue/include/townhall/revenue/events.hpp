#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "townhall/bus/payload.hpp"
#include "townhall/platform/json.hpp"

// The events revenue publishes (DESIGN.md §4). Each event's data is
// {"schema_version": N, "snapshot": {...}}. Payment snapshots carry the invoice's source
// (`source_module`, `source_type`, `source_id`) and `invoice_id`, so the module that
// asked for the money recognises its payment (docs/design-notes.md, deviation 16).
// Include it in .cpp files only (it brings in nlohmann/json).
namespace townhall::revenue::events {

// The payload version revenue writes; its consumers know it.
inline constexpr int kSchemaVersion = 1;

// An event's data around its snapshot.
inline nlohmann::json event_data(nlohmann::json snapshot) {
  return {{bus::kSchemaVersionField, kSchemaVersion}, {"snapshot", std::move(snapshot)}};
}

inline constexpr std::string_view kInvoiceTopic = "gov.revenue.invoice";
inline constexpr std::string_view kInvoiceCreated = "invoice.created";
inline constexpr std::string_view kInvoiceVoided = "invoice.voided";
// An event asked for an invoice revenue cannot open (revenue::invoiceable is false): the
// module that asked releases what it holds for it instead of waiting for a payment that
// cannot come (issue 21 §3.4). Its `snapshot` is an InvoiceRejection.
inline constexpr std::string_view kInvoiceRejected = "invoice.rejected";

inline constexpr std::string_view kPaymentTopic = "gov.revenue.payment";
inline constexpr std::string_view kPaymentCompleted = "payment.completed";
inline constexpr std::string_view kPaymentFailed = "payment.failed";
inline constexpr std::string_view kPaymentRefunded = "payment.refunded";

// A business license: applied -> approved (approved_unpaid, its fee invoice open until
// fee_due_at) -> activated when that fee is paid (the first term starts at the payment)
// -> renewed (each term's fee paid) -> expired; unpaid by fee_due_at it lapses (its fee
// invoice voided); or applied -> rejected.
inline constexpr std::string_view kLicenseTopic = "gov.revenue.license";
inline constexpr std::string_view kLicenseApplied = "license.applied";
inline constexpr std::string_view kLicenseApproved = "license.approved";
inline constexpr std::string_view kLicenseActivated = "license.activated";
inline constexpr std::string_view kLicenseLapsed = "license.lapsed";
inline constexpr std::string_view kLicenseRejected = "license.rejected";
inline constexpr std::string_view kLicenseRenewed = "license.renewed";
inline constexpr std::string_view kLicenseExpired = "license.expired";

inline constexpr std::array kTopics{kInvoiceTopic, kPaymentTopic, kLicenseTopic};

// A payment as gov.revenue.payment carries it (and GET /payments shows it).
struct PaymentSnapshot {
  std::int64_t id = 0;
  std::int64_t invoice_id = 0;
  std::int64_t citizen_id = 0;
  std::int64_t amount_cents = 0;
  std::string currency;
  std::string method_type;  // card | ...
  std::string status;       // pending | completed | failed | refund_pending | refunded
  std::optional<std::string> failure_reason;
  std::optional<std::string> provider_reference;
  std::string source_module, source_type, source_id;  // what the invoice was for
  std::string created_at;
  std::optional<std::string> completed_at, refunded_at;

  // Whether this pays for `module`'s `type` (e.g. permits' "application").
  bool pays_for(std::string_view module, std::string_view type) const {
    return source_module == module && source_type == type;
  }
};

inline nlohmann::json payment_json(const PaymentSnapshot& p) {
  return {{"id", p.id},
          {"invoice_id", p.invoice_id},
          {"citizen_id", p.citizen_id},
          {"amount_cents", p.amount_cents},
          {"currency", p.currency},
          {"method", {{"type", p.method_type}}},
          {"status", p.status},
          {"failure_reason", nullable(p.failure_reason)},
          {"provider_reference", nullable(p.provider_reference)},
          {"source_module", p.source_module},
          {"source_type", p.source_type},
          {"source_id", p.source_id},
          {"created_at", p.created_at},
          {"completed_at", nullable(p.completed_at)},
          {"refunded_at", nullable(p.refunded_at)}};
}

// Strict: every field payment_json writes, with its type, else bus::PermanentError.
inline PaymentSnapshot payment_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  PaymentSnapshot p;
  p.id = s.positive("id");
  p.invoice_id = s.positive("invoice_id");
  p.citizen_id = s.positive("citizen_id");
  p.amount_cents = s.integer("amount_cents");
  p.currency = s.text("currency");
  p.method_type = s.object("method").text("type");
  p.status = s.text("status");
  p.failure_reason = s.nullable_text("failure_reason");
  p.provider_reference = s.nullable_text("provider_reference");
  p.source_module = s.text("source_module");
  p.source_type = s.text("source_type");
  p.source_id = s.text("source_id");
  p.created_at = s.text("created_at");
  p.completed_at = s.nullable_text("completed_at");
  p.refunded_at = s.nullable_text("refunded_at");
  return p;
}

struct InvoiceRejection {
  std::string source_module, source_type, source_id;  // what the invoice was asked for
  std::int64_t citizen_id = 0;
  std::int64_t amount_cents = 0;
  std::string currency;
  std::string reason;
};

inline nlohmann::json invoice_rejection_snapshot(const InvoiceRejection& r) {
  return {{"source_module", r.source_module},
          {"source_type", r.source_type},
          {"source_id", r.source_id},
          {"citizen_id", r.citizen_id},
          {"amount_cents", r.amount_cents},
          {"currency", r.currency},
          {"reason", r.reason}};
}

// Throws nlohmann::json::exception when a field is missing or mistyped (a dead letter).
inline InvoiceRejection invoice_rejection_from_snapshot(const nlohmann::json& snapshot) {
  return {snapshot.at("source_module").get<std::string>(), snapshot.at("source_type").get<std::string>(),
          snapshot.at("source_id").get<std::string>(),     snapshot.at("citizen_id").get<std::int64_t>(),
          snapshot.at("amount_cents").get<std::int64_t>(), snapshot.at("currency").get<std::string>(),
          snapshot.at("reason").get<std::string>()};
}

// An invoice as gov.revenue.invoice's created/voided events carry it (and the API shows
// it); the fields a consumer reads, decoded strictly.
struct InvoiceSnapshot {
  std::int64_t id = 0;
  std::int64_t citizen_id = 0;
  std::string source_module, source_type, source_id;
  std::string description;
  std::int64_t amount_cents = 0;
  std::string currency;
  std::string status;  // open | paid | voided
};

inline InvoiceSnapshot invoice_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  InvoiceSnapshot i;
  i.id = s.positive("id");
  i.citizen_id = s.positive("citizen_id");
  auto source = s.object("source");
  i.source_module = source.text("module");
  i.source_type = source.text("type");
  i.source_id = source.text("id");
  i.description = s.text("description");
  i.amount_cents = s.integer("amount_cents");
  i.currency = s.text("currency");
  i.status = s.text("status");
  return i;
}

// A business license as gov.revenue.license carries it; the fields a consumer reads.
struct LicenseSnapshot {
  std::int64_t id = 0;
  std::int64_t citizen_id = 0;
  std::string business_name;
  std::string status;  // applied | approved_unpaid | active | expired | lapsed | rejected
  std::int64_t term = 0;
  std::optional<std::string> expires_at;
  std::optional<std::string> decision_reason;
};

inline LicenseSnapshot license_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  LicenseSnapshot l;
  l.id = s.positive("id");
  l.citizen_id = s.positive("citizen_id");
  l.business_name = s.text("business_name");
  l.status = s.text("status");
  l.term = s.integer("term");
  l.expires_at = s.nullable_text("expires_at");
  l.decision_reason = s.nullable_text("decision_reason");
  return l;
}

}  // namespace townhall::revenue::events
