#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "townhall/platform/db.hpp"
#include "townhall/platform/page_cursor.hpp"
#include "townhall/platform/row.hpp"
#include "townhall/revenue/events.hpp"

// revenue.db's SQL, one function per statement; no transactions. Reads of citizens'
// records take a Scope (a citizen their own, staff everything), so no route forgets it.
namespace townhall::revenue::store {

struct Scope {
  std::optional<std::int64_t> citizen_id;
  static Scope everything() { return {}; }
};

// An invoice row: what its events carry (the contract's snapshot; status also refunded)
// and its bookkeeping.
struct Invoice : events::InvoiceSnapshot {
  std::int64_t event_version = 1;
  std::string created_at, updated_at;
  std::optional<std::string> paid_at, closed_at;
  std::optional<std::string> due_date;        // "YYYY-MM-DD" (UTC), payable through that day; tax bills
  std::optional<std::string> overdue_at;      // marked by the overdue job; status stays open
  std::optional<std::int64_t> tax_record_id;  // the tax record this bills
};

// Inserts unless an invoice for the same source exists; false then (a duplicate event).
bool insert_invoice(db::Connection& connection, Invoice& invoice);  // fills id
std::optional<Invoice> find_invoice(db::Connection& connection, std::int64_t id, const Scope& scope);
std::optional<Invoice> find_invoice_by_source(db::Connection& connection, const std::string& source_module,
                                              const std::string& source_type, const std::string& source_id);
struct InvoiceFilter {
  std::optional<std::string> status;  // as the API shows it: open (not overdue), overdue, paid, ...
  std::optional<std::int64_t> citizen_id;
};
// The invoices in `scope` that `filter` keeps, newest first.
db::KeysetList<Invoice> invoices(const Scope& scope, const InvoiceFilter& filter);
void update_invoice(db::Connection& connection, const Invoice& invoice);
// A tax record's invoices (its instalments), in order.
std::vector<Invoice> invoices_of_tax_record(db::Connection& connection, std::int64_t tax_record_id);
// Open invoices not yet marked overdue whose due date is before `today` ("YYYY-MM-DD").
std::vector<Invoice> invoices_past_due(db::Connection& connection, const std::string& today, int limit);

struct Payment {
  std::int64_t id = 0;
  std::int64_t invoice_id = 0;
  std::int64_t citizen_id = 0;
  std::string idempotency_key;  // the citizen's, for their retries
  std::string request_digest;
  // The processor's idempotency keys: random, never a row id (issue 27 §1). The refund
  // key is written with refund_pending, before the processor is asked.
  std::string processor_key;
  std::optional<std::string> refund_key;
  std::int64_t amount_cents = 0;
  std::string currency;
  std::string method_type;
  std::string status;  // pending | completed | failed | refund_pending | refunded
  std::optional<std::string> failure_reason;
  std::optional<std::string> provider_reference;
  std::int64_t event_version = 1;
  std::string created_at, updated_at;
  std::optional<std::string> completed_at, refunded_at;
  // A refund a revenue clerk asked for: why, and the employee (migrations/revenue/0008).
  std::optional<std::string> refund_reason;
  std::optional<std::int64_t> refunded_by;
};

void insert_payment(db::Connection& connection, Payment& payment);  // fills id
std::optional<Payment> find_payment(db::Connection& connection, std::int64_t id);
// A payment the scope may read: a citizen's own (the payer), any for staff.
std::optional<Payment> find_payment(db::Connection& connection, std::int64_t id, const Scope& scope);
std::optional<Payment> find_payment_by_key(db::Connection& connection, std::int64_t citizen_id,
                                           const std::string& idempotency_key);
// The invoice's payment that is being charged or holds money (at most one, by index).
std::optional<Payment> find_live_payment(db::Connection& connection, std::int64_t invoice_id);
std::vector<Payment> payments_of_invoice(db::Connection& connection, std::int64_t invoice_id);
// Payments whose outcome is not final yet (pending, refund_pending), oldest first.
std::vector<Payment> unresolved_payments(db::Connection& connection);
void update_payment(db::Connection& connection, const Payment& payment);

// The record as tax_record.opened carries it, and who recorded it (not announced).
struct TaxRecord : events::TaxRecordSnapshot {
  std::int64_t recorded_by = 0;
};
// False when the citizen already has a record for that year.
bool insert_tax_record(db::Connection& connection, TaxRecord& record);
std::optional<TaxRecord> find_tax_record(db::Connection& connection, std::int64_t id, const Scope& scope);
std::optional<TaxRecord> find_tax_record_of(db::Connection& connection, std::int64_t citizen_id, std::int64_t tax_year);

// The revenue report (GET /reports/revenue), from the sums migration 0009's triggers keep
// (issue 24: days, not payments, are read): money by UTC day ("YYYY-MM-DD"), the paid
// invoice's source and the currency, for the days [first_day, end_day).
struct MoneyByDay {
  std::string day;
  std::string source_module, source_type, currency;
  std::int64_t payments = 0, paid_cents = 0;     // completed that day (refunded ones too: they were received)
  std::int64_t refunds = 0, refunded_cents = 0;  // refunds made that day
};
std::vector<MoneyByDay> money_by_day(db::Connection& connection, const std::string& first_day,
                                     const std::string& end_day);
// What revenue_days and open_invoice_totals should hold, computed from the payments and
// invoices themselves (the consistency check's side; reads every row): table columns.
extern const char* const kRevenueDaysFromRows;
extern const char* const kOpenInvoiceTotalsFromRows;
// What open invoices (overdue ones included) still ask for, by currency, now.
struct Outstanding {
  std::string currency;
  std::int64_t invoices = 0, amount_cents = 0;
  std::int64_t overdue_invoices = 0, overdue_cents = 0;
};
std::vector<Outstanding> outstanding(db::Connection& connection);

struct BusinessLicense {
  std::int64_t id = 0;
  std::int64_t citizen_id = 0;
  std::string business_name, activity, address;
  std::string status;     // applied | approved_unpaid | active | rejected | expired | lapsed
  std::int64_t term = 0;  // terms paid for
  std::optional<std::string> expires_at;
  std::optional<std::int64_t> fee_invoice_id;  // the first term's fee, invoiced at approval
  std::optional<std::string> fee_due_at;       // approved_unpaid lapses after this
  std::optional<std::int64_t> renewal_invoice_id;
  std::optional<std::int64_t> decided_by;
  std::optional<std::string> decision_reason;
  std::int64_t event_version = 1;
  std::string created_at, updated_at;
};
void insert_license(db::Connection& connection, BusinessLicense& license);
std::optional<BusinessLicense> find_license(db::Connection& connection, std::int64_t id, const Scope& scope);
// The license whose first-term fee or open renewal is invoice `invoice_id`, if any.
std::optional<BusinessLicense> find_license_of_invoice(db::Connection& connection, std::int64_t invoice_id);
// Newest first: up to `limit` licenses past `after`.
std::vector<BusinessLicense> list_licenses(db::Connection& connection, const Scope& scope,
                                           const std::optional<PageAfter>& after, int limit);
std::int64_t count_licenses(db::Connection& connection, const Scope& scope);
// Active licenses whose expiry is before `now` (RFC 3339 UTC text compares in time order).
std::vector<BusinessLicense> expired_licenses(db::Connection& connection, const std::string& now, int limit);
// Approved licenses whose fee is still unpaid past its due date.
std::vector<BusinessLicense> unpaid_past_due(db::Connection& connection, const std::string& now, int limit);
void update_license(db::Connection& connection, const BusinessLicense& license);

struct CitizenRef {
  std::int64_t citizen_id = 0;
  std::optional<std::string> name, email;
  bool identity_verified = false;
  bool is_active = true;
  std::int64_t event_version = 0;
  std::string last_synced_at;
};
// The cache row (written by auth::CitizenRefTable, townhall/auth/citizen_refs.hpp).
std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id);

}  // namespace townhall::revenue::store
