#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "townhall/bus/payload.hpp"
#include "townhall/platform/json_fields.hpp"

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
  return bus::snapshot_data(kSchemaVersion, std::move(snapshot));
}

inline constexpr std::string_view kInvoiceTopic = "gov.revenue.invoice";
inline constexpr std::string_view kInvoiceCreated = "invoice.created";
inline constexpr std::string_view kInvoiceVoided = "invoice.voided";
// An event asked for an invoice revenue cannot open (revenue::invoiceable is false): the
// module that asked releases what it holds for it instead of waiting for a payment that
// cannot come (issue 21 §3.4). Its `snapshot` is an InvoiceRejection.
inline constexpr std::string_view kInvoiceRejected = "invoice.rejected";
// An open invoice with a due date (a tax bill's instalment) was not paid by the end of
// that day (UTC); the daily overdue job announces it once. It stays payable. Its
// `snapshot` is the invoice (status "overdue", due_date set): overdue_invoice_of.
inline constexpr std::string_view kInvoiceOverdue = "invoice.overdue";

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

// A tax record: one year's assessed value of a citizen's property and the tax due, as
// revenue staff record it (POST /tax-records).
inline constexpr std::string_view kTaxRecordTopic = "gov.revenue.tax_record";
inline constexpr std::string_view kTaxRecordOpened = "tax_record.opened";

inline constexpr std::array kTopics{kInvoiceTopic, kPaymentTopic, kLicenseTopic, kTaxRecordTopic};

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
  return json_fields("id", p.id, "invoice_id", p.invoice_id, "citizen_id", p.citizen_id, "amount_cents", p.amount_cents,
                     "currency", p.currency, "method", json_fields("type", p.method_type), "status", p.status,
                     "failure_reason", p.failure_reason, "provider_reference", p.provider_reference, "source_module",
                     p.source_module, "source_type", p.source_type, "source_id", p.source_id, "created_at",
                     p.created_at, "completed_at", p.completed_at, "refunded_at", p.refunded_at);
}

// Strict: every field payment_json writes, with its type, else bus::PermanentError.
inline PaymentSnapshot payment_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  return {s.positive("id"),
          s.positive("invoice_id"),
          s.positive("citizen_id"),
          s.integer("amount_cents"),
          s.text("currency"),
          s.object("method").text("type"),
          s.text("status"),
          s.nullable_text("failure_reason"),
          s.nullable_text("provider_reference"),
          s.text("source_module"),
          s.text("source_type"),
          s.text("source_id"),
          s.text("created_at"),
          s.nullable_text("completed_at"),
          s.nullable_text("refunded_at")};
}

struct InvoiceRejection {
  std::string source_module, source_type, source_id;  // what the invoice was asked for
  std::int64_t citizen_id = 0;
  std::int64_t amount_cents = 0;
  std::string currency;
  std::string reason;
};

inline nlohmann::json invoice_rejection_snapshot(const InvoiceRejection& r) {
  return json_fields("source_module", r.source_module, "source_type", r.source_type, "source_id", r.source_id,
                     "citizen_id", r.citizen_id, "amount_cents", r.amount_cents, "currency", r.currency, "reason",
                     r.reason);
}

// Strict, as payment_of.
inline InvoiceRejection invoice_rejection_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  return {s.text("source_module"),   s.text("source_type"), s.text("source_id"), s.positive("citizen_id"),
          s.integer("amount_cents"), s.text("currency"),    s.text("reason")};
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
  std::string status;  // open | overdue | paid | voided | refunded
};

inline InvoiceSnapshot invoice_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  auto source = s.object("source");
  return {s.positive("id"),          s.positive("citizen_id"), source.text("module"),
          source.text("type"),       source.text("id"),        s.text("description"),
          s.integer("amount_cents"), s.text("currency"),       s.text("status")};
}

// invoice.overdue's invoice: the snapshot and the day it was due by ("YYYY-MM-DD").
struct OverdueInvoice {
  InvoiceSnapshot invoice;
  std::string due_date;
};

// Strict, as payment_of.
inline OverdueInvoice overdue_invoice_of(const bus::Event& event) {
  auto invoice = invoice_of(event);
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  return {std::move(invoice), s.text("due_date")};
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
  return {s.positive("id"),  s.positive("citizen_id"),      s.text("business_name"),           s.text("status"),
          s.integer("term"), s.nullable_text("expires_at"), s.nullable_text("decision_reason")};
}

// A tax record as tax_record.opened carries it: what GET /tax-records/{id} shows, never
// the national id.
struct TaxRecordSnapshot {
  std::int64_t id = 0;
  std::int64_t citizen_id = 0;
  std::int64_t tax_year = 0;
  std::int64_t assessed_value_cents = 0;
  std::int64_t tax_due_cents = 0;
  std::string currency;
  std::string created_at;
};

inline nlohmann::json tax_record_snapshot(const TaxRecordSnapshot& t) {
  return json_fields("id", t.id, "citizen_id", t.citizen_id, "tax_year", t.tax_year, "assessed_value_cents",
                     t.assessed_value_cents, "tax_due_cents", t.tax_due_cents, "currency", t.currency, "created_at",
                     t.created_at);
}

// Strict, as payment_of.
inline TaxRecordSnapshot tax_record_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  return {
      s.positive("id"),           s.positive("citizen_id"), s.integer("tax_year"), s.integer("assessed_value_cents"),
      s.integer("tax_due_cents"), s.text("currency"),       s.text("created_at")};
}

}  // namespace townhall::revenue::events
