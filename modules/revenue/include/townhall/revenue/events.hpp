#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

// The events revenue publishes (DESIGN.md §4). Payment snapshots carry the invoice's
// source (`source_module`, `source_type`, `source_id`) and `invoice_id`, so the module
// that asked for the money recognises its payment (docs/design-notes.md, deviation 16).
namespace townhall::revenue::events {

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

}  // namespace townhall::revenue::events
