#pragma once

#include <string_view>

// The events revenue publishes (DESIGN.md §4). Payment snapshots carry the invoice's
// source (`source_module`, `source_type`, `source_id`) and `invoice_id`, so the module
// that asked for the money recognises its payment (docs/design-notes.md, deviation 16).
namespace townhall::revenue::events {

inline constexpr std::string_view kInvoiceTopic = "gov.revenue.invoice";
inline constexpr std::string_view kInvoiceCreated = "invoice.created";
inline constexpr std::string_view kInvoiceVoided = "invoice.voided";

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

}  // namespace townhall::revenue::events
