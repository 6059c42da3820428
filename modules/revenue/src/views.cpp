// The records as the API shows them (and as their events carry them).
#include "service.hpp"
#include "townhall/platform/json_fields.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::revenue {

using json = nlohmann::json;

std::string shown_status(const store::Invoice& invoice) {
  return invoice.status == "open" && invoice.overdue_at ? "overdue" : invoice.status;
}

json invoice_json(const store::Invoice& i) {
  return json_fields("id", i.id, "citizen_id", i.citizen_id, "source",
                     json_fields("module", i.source_module, "type", i.source_type, "id", i.source_id), "description",
                     i.description, "amount_cents", i.amount_cents, "balance_cents",
                     i.status == "open" ? i.amount_cents : 0, "currency", i.currency, "status", shown_status(i),
                     "due_date", i.due_date, "created_at", i.created_at, "updated_at", i.updated_at, "paid_at",
                     i.paid_at, "closed_at", i.closed_at);
}

// A receipt is numbered by its payment: one payment, one receipt.
json receipt_json(const Receipt& r) {
  const auto& p = r.payment;
  const auto& i = r.invoice;
  return json_fields("receipt_number", "R-" + std::to_string(p.id), "payment_id", p.id, "invoice_id", i.id,
                     "citizen_id", p.citizen_id, "payer_name", r.payer_name, "description", i.description, "source",
                     json_fields("module", i.source_module, "type", i.source_type, "id", i.source_id), "amount_cents",
                     p.amount_cents, "currency", p.currency, "method", json_fields("type", p.method_type),
                     "provider_reference", p.provider_reference, "status", p.status, "paid_at", p.completed_at,
                     "refunded_at", p.refunded_at);
}

// Also the snapshot of gov.revenue.payment events: the invoice's source travels with it
// (docs/design-notes.md, deviation 16), so permits and parks find what was paid for.
json payment_json(const store::Payment& p, const store::Invoice& invoice) {
  return events::payment_json({p.id, p.invoice_id, p.citizen_id, p.amount_cents, p.currency, p.method_type, p.status,
                               p.failure_reason, p.provider_reference, invoice.source_module, invoice.source_type,
                               invoice.source_id, p.created_at, p.completed_at, p.refunded_at});
}

json license_json(const store::BusinessLicense& l) {
  return json_fields("id", l.id, "citizen_id", l.citizen_id, "business_name", l.business_name, "activity", l.activity,
                     "address", l.address, "status", l.status, "term", l.term, "expires_at", l.expires_at,
                     "fee_invoice_id", l.fee_invoice_id, "fee_due_at", l.fee_due_at, "renewal_invoice_id",
                     l.renewal_invoice_id, "decision_reason", l.decision_reason, "created_at", l.created_at,
                     "updated_at", l.updated_at);
}

}  // namespace townhall::revenue
