#include "notices.hpp"

#include <algorithm>

#include "townhall/bus/bus.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::notify {
namespace {

namespace permits_events = permits::events;
namespace revenue_events = revenue::events;
namespace parks_events = parks::events;

std::string label(std::string text) {
  std::replace(text.begin(), text.end(), '_', ' ');
  return text;
}

// "2026-12-05T10:00:00.000Z" -> "2026-12-05 10:00 UTC": what a person reads.
std::string when(const std::string& timestamp) {
  if (timestamp.size() < 16) return timestamp;
  return timestamp.substr(0, 10) + " " + timestamp.substr(11, 5) + " UTC";
}

std::optional<Notice> application_notice(const bus::Event& event) {
  if (event.event_type != permits_events::kApplicationApproved &&
      event.event_type != permits_events::kApplicationRejected)
    return std::nullopt;
  auto a = permits_events::application_of(event);
  const bool approved = event.event_type == permits_events::kApplicationApproved;
  Notice notice{a.citizen_id, "application_decided",
                "Your " + label(a.permit_type) + " permit application was " + (approved ? "approved" : "rejected"),
                "Application " + std::to_string(a.id) + " for " + a.property_address + " was " +
                    (approved ? "approved." : "rejected.")};
  if (a.decision_reason && !a.decision_reason->empty()) notice.body += " Reason: " + *a.decision_reason;
  return notice;
}

std::optional<Notice> permit_notice(const bus::Event& event) {
  if (event.event_type != permits_events::kPermitIssued) return std::nullopt;
  auto p = permits_events::permit_of(event);
  return Notice{p.citizen_id, "permit_issued", "Your " + label(p.permit_type) + " permit was issued",
                "Permit " + std::to_string(p.id) + " (application " + std::to_string(p.application_id) +
                    ") is valid from " + when(p.issued_at) + "."};
}

std::optional<Notice> invoice_notice(const bus::Event& event) {
  if (event.event_type == revenue_events::kInvoiceOverdue) {
    auto [i, due_date] = revenue_events::overdue_invoice_of(event);
    return Notice{i.citizen_id, "invoice_overdue", "Invoice overdue: " + money_text(i.amount_cents, i.currency),
                  i.description + ". Invoice " + std::to_string(i.id) + " for " +
                      money_text(i.amount_cents, i.currency) + " was due by " + due_date +
                      " and is not paid yet. You can still pay it."};
  }
  if (event.event_type != revenue_events::kInvoiceCreated) return std::nullopt;
  auto i = revenue_events::invoice_of(event);
  return Notice{i.citizen_id, "invoice_opened", "New invoice: " + money_text(i.amount_cents, i.currency),
                i.description + ". Invoice " + std::to_string(i.id) + " asks for " +
                    money_text(i.amount_cents, i.currency) + "."};
}

std::optional<Notice> payment_notice(const bus::Event& event) {
  const auto& type = event.event_type;
  if (type != revenue_events::kPaymentCompleted && type != revenue_events::kPaymentFailed &&
      type != revenue_events::kPaymentRefunded)
    return std::nullopt;
  auto p = revenue_events::payment_of(event);
  const auto amount = money_text(p.amount_cents, p.currency);
  const auto invoice = "invoice " + std::to_string(p.invoice_id);
  if (type == revenue_events::kPaymentCompleted)
    return Notice{p.citizen_id, "payment_completed", "Payment received: " + amount,
                  "Your payment of " + amount + " for " + invoice + " was received."};
  if (type == revenue_events::kPaymentFailed)
    return Notice{p.citizen_id, "payment_failed", "Payment failed: " + amount,
                  "Your payment of " + amount + " for " + invoice + " did not go through" +
                      (p.failure_reason ? " (" + *p.failure_reason + ")" : std::string()) +
                      ". The invoice is still open."};
  return Notice{p.citizen_id, "payment_refunded", "Payment refunded: " + amount,
                "Your payment of " + amount + " for " + invoice + " was refunded."};
}

std::optional<Notice> booking_notice(const bus::Event& event) {
  const auto& type = event.event_type;
  if (type != parks_events::kBookingConfirmed && type != parks_events::kBookingCancelled) return std::nullopt;
  auto b = parks_events::booking_of(event);
  const auto slot = when(b.starts_at) + " to " + when(b.ends_at);
  const auto id = "Booking " + std::to_string(b.id);
  if (type == parks_events::kBookingConfirmed)
    return Notice{b.citizen_id, "booking_confirmed", "Booking confirmed", id + " (" + slot + ") is confirmed."};
  if (b.cancel_reason == parks_events::kHoldExpiredReason)
    return Notice{b.citizen_id, "booking_expired", "Booking expired unpaid",
                  id + " (" + slot + ") was released: it was not paid in time."};
  return Notice{b.citizen_id, "booking_cancelled", "Booking cancelled",
                id + " (" + slot + ") was cancelled" + (b.cancel_reason ? ": " + *b.cancel_reason : std::string()) +
                    (b.refund_payment && b.amount_cents > 0 ? ". Any payment is refunded." : ".")};
}

// A waitlisted place given to its citizen: enrolled (free), or held for a payment by a
// deadline (priced; the invoice comes with its own notice).
std::optional<Notice> enrollment_notice(const bus::Event& event) {
  if (event.event_type != parks_events::kEnrollmentPromoted) return std::nullopt;
  auto p = parks_events::promotion_of(event);
  const auto& e = p.enrollment;
  const auto what = "Enrollment " + std::to_string(e.id) + ": a place in " + p.program_name + " came free";
  if (p.hold_expires_at)
    return Notice{e.citizen_id, "enrollment_promoted", "A place in " + p.program_name + " is yours",
                  what + " and is held for you until " + when(*p.hold_expires_at) + ". Pay its " +
                      money_text(e.amount_cents, e.currency) + " invoice by then to keep it."};
  return Notice{e.citizen_id, "enrollment_promoted", "A place in " + p.program_name + " is yours",
                what + ": you are enrolled."};
}

std::optional<Notice> license_notice(const bus::Event& event) {
  if (event.event_type != revenue_events::kLicenseExpired) return std::nullopt;
  auto l = revenue_events::license_of(event);
  return Notice{l.citizen_id, "license_expired", "Your business license expired",
                "The business license of " + l.business_name + " (license " + std::to_string(l.id) +
                    ") has expired. Renew it to keep trading."};
}

std::optional<Notice> tax_record_notice(const bus::Event& event) {
  if (event.event_type != revenue_events::kTaxRecordOpened) return std::nullopt;
  auto t = revenue_events::tax_record_of(event);
  const auto year = std::to_string(t.tax_year);
  return Notice{t.citizen_id, "tax_record_opened",
                "Your " + year + " tax record: " + money_text(t.tax_due_cents, t.currency) + " due",
                "Revenue recorded your " + year + " property tax: assessed value " +
                    money_text(t.assessed_value_cents, t.currency) + ", tax due " +
                    money_text(t.tax_due_cents, t.currency) + " (tax record " + std::to_string(t.id) + ")."};
}

}  // namespace

bool is_kind(std::string_view kind) { return std::find(kKinds.begin(), kKinds.end(), kind) != kKinds.end(); }

std::string money_text(std::int64_t amount_cents, const std::string& currency) {
  const bool negative = amount_cents < 0;
  const auto magnitude =
      negative ? std::uint64_t{0} - static_cast<std::uint64_t>(amount_cents) : static_cast<std::uint64_t>(amount_cents);
  auto cents = std::to_string(magnitude % 100);
  if (cents.size() < 2) cents.insert(0, "0");
  return (negative ? "-" : "") + std::to_string(magnitude / 100) + "." + cents + " " + currency;
}

std::optional<Notice> notice_for(const bus::Event& event) {
  if (event.topic == permits_events::kApplicationTopic) return application_notice(event);
  if (event.topic == permits_events::kPermitTopic) return permit_notice(event);
  if (event.topic == revenue_events::kInvoiceTopic) return invoice_notice(event);
  if (event.topic == revenue_events::kPaymentTopic) return payment_notice(event);
  if (event.topic == revenue_events::kLicenseTopic) return license_notice(event);
  if (event.topic == revenue_events::kTaxRecordTopic) return tax_record_notice(event);
  if (event.topic == parks_events::kBookingTopic) return booking_notice(event);
  if (event.topic == parks_events::kEnrollmentTopic) return enrollment_notice(event);
  return std::nullopt;
}

Notice license_expiring(std::int64_t citizen_id, std::int64_t license_id, const std::string& business_name,
                        const std::string& expires_at) {
  return {citizen_id, "license_expiring", "Your business license expires on " + expires_at.substr(0, 10),
          "The business license of " + business_name + " (license " + std::to_string(license_id) + ") expires on " +
              when(expires_at) + ". Renew it before then to keep trading."};
}

}  // namespace townhall::notify
