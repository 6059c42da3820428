#include "store.hpp"

#include "townhall/platform/row.hpp"

namespace townhall::revenue::store {
namespace {

using db::all_rows, db::first_row, db::single_int;

// revenue.db's rows as the selects below read them (name beside member).
constexpr auto kInvoices = db::columns<Invoice>(
    "invoices", "id", &Invoice::id, "citizen_id", &Invoice::citizen_id, "source_module", &Invoice::source_module,
    "source_type", &Invoice::source_type, "source_id", &Invoice::source_id, "description", &Invoice::description,
    "amount_cents", &Invoice::amount_cents, "currency", &Invoice::currency, "status", &Invoice::status, "event_version",
    &Invoice::event_version, "created_at", &Invoice::created_at, "updated_at", &Invoice::updated_at, "paid_at",
    &Invoice::paid_at, "closed_at", &Invoice::closed_at, "due_date", &Invoice::due_date, "overdue_at",
    &Invoice::overdue_at, "tax_record_id", &Invoice::tax_record_id);

constexpr auto kPayments = db::columns<Payment>(
    "payments", "id", &Payment::id, "invoice_id", &Payment::invoice_id, "citizen_id", &Payment::citizen_id,
    "idempotency_key", &Payment::idempotency_key, "request_digest", &Payment::request_digest, "amount_cents",
    &Payment::amount_cents, "currency", &Payment::currency, "method_type", &Payment::method_type, "status",
    &Payment::status, "failure_reason", &Payment::failure_reason, "provider_reference", &Payment::provider_reference,
    "event_version", &Payment::event_version, "created_at", &Payment::created_at, "updated_at", &Payment::updated_at,
    "completed_at", &Payment::completed_at, "refunded_at", &Payment::refunded_at, "processor_key",
    &Payment::processor_key, "refund_key", &Payment::refund_key, "refund_reason", &Payment::refund_reason,
    "refunded_by", &Payment::refunded_by);

constexpr auto kLicenses = db::columns<BusinessLicense>(
    "business_licenses", "id", &BusinessLicense::id, "citizen_id", &BusinessLicense::citizen_id, "business_name",
    &BusinessLicense::business_name, "activity", &BusinessLicense::activity, "address", &BusinessLicense::address,
    "status", &BusinessLicense::status, "term", &BusinessLicense::term, "expires_at", &BusinessLicense::expires_at,
    "renewal_invoice_id", &BusinessLicense::renewal_invoice_id, "decided_by", &BusinessLicense::decided_by,
    "decision_reason", &BusinessLicense::decision_reason, "event_version", &BusinessLicense::event_version,
    "created_at", &BusinessLicense::created_at, "updated_at", &BusinessLicense::updated_at, "fee_invoice_id",
    &BusinessLicense::fee_invoice_id, "fee_due_at", &BusinessLicense::fee_due_at);

constexpr auto kTaxRecords = db::columns<TaxRecord>(
    "tax_records", "id", &TaxRecord::id, "citizen_id", &TaxRecord::citizen_id, "tax_year", &TaxRecord::tax_year,
    "assessed_value_cents", &TaxRecord::assessed_value_cents, "tax_due_cents", &TaxRecord::tax_due_cents, "currency",
    &TaxRecord::currency, "recorded_by", &TaxRecord::recorded_by, "created_at", &TaxRecord::created_at);

constexpr auto kCitizenRefs = db::columns<CitizenRef>(
    "citizen_refs", "citizen_id", &CitizenRef::citizen_id, "name", &CitizenRef::name, "email", &CitizenRef::email,
    "identity_verified", &CitizenRef::identity_verified, "is_active", &CitizenRef::is_active, "event_version",
    &CitizenRef::event_version, "last_synced_at", &CitizenRef::last_synced_at);

}  // namespace

// --- invoices --------------------------------------------------------------------------

bool insert_invoice(db::Connection& connection, Invoice& i) {
  auto id = db::insert_new_row(
      connection, "invoices", "source_module, source_type, source_id", "citizen_id", i.citizen_id, "source_module",
      i.source_module, "source_type", i.source_type, "source_id", i.source_id, "description", i.description,
      "amount_cents", i.amount_cents, "currency", i.currency, "status", i.status, "event_version", i.event_version,
      "created_at", i.created_at, "updated_at", i.updated_at, "due_date", i.due_date, "tax_record_id", i.tax_record_id);
  if (id) i.id = *id;
  return id.has_value();
}

std::optional<Invoice> find_invoice(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, kInvoices.select() + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
                   kInvoices.reader(), id, scope.citizen_id);
}

std::optional<Invoice> find_invoice_by_source(db::Connection& connection, const std::string& source_module,
                                              const std::string& source_type, const std::string& source_id) {
  return first_row(connection, kInvoices.select() + "WHERE source_module = ? AND source_type = ? AND source_id = ?",
                   kInvoices.reader(), source_module, source_type, source_id);
}

db::KeysetList<Invoice> invoices(const Scope& scope, const InvoiceFilter& filter) {
  db::KeysetList<Invoice> list{.select = kInvoices.select(),
                               .from = "FROM invoices",
                               .past = "id < ?",  // newest first
                               .order = "ORDER BY id DESC",
                               .read = kInvoices.reader()};
  list.where.add_if(scope.citizen_id, "citizen_id = ?");
  // Overdue is an open invoice the overdue job marked (migration 0006).
  if (filter.status == "open")
    list.where.add("status = 'open' AND overdue_at IS NULL");
  else if (filter.status == "overdue")
    list.where.add("status = 'open' AND overdue_at IS NOT NULL");
  else
    list.where.add_if(filter.status, "status = ?");
  list.where.add_if(filter.citizen_id, "citizen_id = ?");
  return list;
}

void update_invoice(db::Connection& connection, const Invoice& i) {
  db::execute(connection,
              "UPDATE invoices SET status = ?, event_version = ?, updated_at = ?, paid_at = ?, closed_at = ?, "
              "overdue_at = ? WHERE id = ?",
              i.status, i.event_version, i.updated_at, i.paid_at, i.closed_at, i.overdue_at, i.id);
}

std::vector<Invoice> invoices_of_tax_record(db::Connection& connection, std::int64_t tax_record_id) {
  return all_rows(connection, kInvoices.select() + "WHERE tax_record_id = ? ORDER BY id", kInvoices.reader(),
                  tax_record_id);
}

std::vector<Invoice> invoices_past_due(db::Connection& connection, const std::string& today, int limit) {
  return all_rows(connection,
                  kInvoices.select() +
                      "WHERE status = 'open' AND overdue_at IS NULL AND due_date IS NOT NULL AND due_date < ? "
                      "ORDER BY due_date LIMIT ?",
                  kInvoices.reader(), today, limit);
}

// --- payments --------------------------------------------------------------------------

void insert_payment(db::Connection& connection, Payment& p) {
  p.id =
      db::insert_row(connection, "payments", "invoice_id", p.invoice_id, "citizen_id", p.citizen_id, "idempotency_key",
                     p.idempotency_key, "request_digest", p.request_digest, "amount_cents", p.amount_cents, "currency",
                     p.currency, "method_type", p.method_type, "status", p.status, "event_version", p.event_version,
                     "created_at", p.created_at, "updated_at", p.updated_at, "processor_key", p.processor_key);
}

std::optional<Payment> find_payment(db::Connection& connection, std::int64_t id) {
  return first_row(connection, kPayments.select() + "WHERE id = ?", kPayments.reader(), id);
}

std::optional<Payment> find_payment(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, kPayments.select() + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
                   kPayments.reader(), id, scope.citizen_id);
}

std::optional<Payment> find_payment_by_key(db::Connection& connection, std::int64_t citizen_id,
                                           const std::string& idempotency_key) {
  return first_row(connection, kPayments.select() + "WHERE citizen_id = ? AND idempotency_key = ?", kPayments.reader(),
                   citizen_id, idempotency_key);
}

std::optional<Payment> find_live_payment(db::Connection& connection, std::int64_t invoice_id) {
  return first_row(connection,
                   kPayments.select() + "WHERE invoice_id = ? AND status IN ('pending', 'completed', 'refund_pending')",
                   kPayments.reader(), invoice_id);
}

std::vector<Payment> payments_of_invoice(db::Connection& connection, std::int64_t invoice_id) {
  return all_rows(connection, kPayments.select() + "WHERE invoice_id = ? ORDER BY id", kPayments.reader(), invoice_id);
}

std::vector<Payment> unresolved_payments(db::Connection& connection) {
  return all_rows(connection, kPayments.select() + "WHERE status IN ('pending', 'refund_pending') ORDER BY id",
                  kPayments.reader());
}

void update_payment(db::Connection& connection, const Payment& p) {
  db::execute(connection,
              "UPDATE payments SET status = ?, failure_reason = ?, provider_reference = ?, event_version = ?, "
              "updated_at = ?, completed_at = ?, refunded_at = ?, refund_key = ?, refund_reason = ?, refunded_by = ? "
              "WHERE id = ?",
              p.status, p.failure_reason, p.provider_reference, p.event_version, p.updated_at, p.completed_at,
              p.refunded_at, p.refund_key, p.refund_reason, p.refunded_by, p.id);
}

// --- tax records -----------------------------------------------------------------------

bool insert_tax_record(db::Connection& connection, TaxRecord& r) {
  auto id =
      db::insert_new_row(connection, "tax_records", "citizen_id, tax_year", "citizen_id", r.citizen_id, "tax_year",
                         r.tax_year, "assessed_value_cents", r.assessed_value_cents, "tax_due_cents", r.tax_due_cents,
                         "currency", r.currency, "recorded_by", r.recorded_by, "created_at", r.created_at);
  if (id) r.id = *id;
  return id.has_value();
}

std::optional<TaxRecord> find_tax_record(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, kTaxRecords.select() + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
                   kTaxRecords.reader(), id, scope.citizen_id);
}

std::optional<TaxRecord> find_tax_record_of(db::Connection& connection, std::int64_t citizen_id,
                                            std::int64_t tax_year) {
  return first_row(connection, kTaxRecords.select() + "WHERE citizen_id = ? AND tax_year = ?", kTaxRecords.reader(),
                   citizen_id, tax_year);
}

// --- the revenue report ----------------------------------------------------------------

std::vector<MoneyByDay> money_by_day(db::Connection& connection, const std::string& first_day,
                                     const std::string& end_day) {
  return all_rows(
      connection,
      "SELECT day, source_module, source_type, currency, payments, paid_cents, refunds, refunded_cents "
      "FROM revenue_days WHERE day >= ? AND day < ?",
      [](SQLite::Statement& row) {
        MoneyByDay out;
        db::read_columns(row, out.day, out.source_module, out.source_type, out.currency, out.payments, out.paid_cents,
                         out.refunds, out.refunded_cents);
        return out;
      },
      first_day, end_day);
}

// One row per currency with open invoices: a handful, read whole.
std::vector<Outstanding> outstanding(db::Connection& connection) {
  return all_rows(connection,
                  "SELECT currency, invoices, amount_cents, overdue_invoices, overdue_cents FROM open_invoice_totals "
                  "ORDER BY currency",
                  [](SQLite::Statement& row) {
                    Outstanding out;
                    db::read_columns(row, out.currency, out.invoices, out.amount_cents, out.overdue_invoices,
                                     out.overdue_cents);
                    return out;
                  });
}

// Migration 0009's sums, over the rows.
const char* const kRevenueDaysFromRows =
    "SELECT day, source_module, source_type, currency, sum(payments), sum(paid_cents), sum(refunds), "
    "sum(refunded_cents) FROM (SELECT substr(p.completed_at, 1, 10) AS day, i.source_module, i.source_type, "
    "p.currency, 1 AS payments, p.amount_cents AS paid_cents, 0 AS refunds, 0 AS refunded_cents FROM payments p "
    "JOIN invoices i ON i.id = p.invoice_id WHERE p.completed_at IS NOT NULL UNION ALL SELECT substr(p.refunded_at, "
    "1, 10), i.source_module, i.source_type, p.currency, 0, 0, 1, p.amount_cents FROM payments p JOIN invoices i ON "
    "i.id = p.invoice_id WHERE p.refunded_at IS NOT NULL) GROUP BY 1, 2, 3, 4";
const char* const kOpenInvoiceTotalsFromRows =
    "SELECT currency, count(*), sum(amount_cents), count(overdue_at), "
    "coalesce(sum(CASE WHEN overdue_at IS NOT NULL THEN amount_cents END), 0) FROM invoices WHERE status = 'open' "
    "GROUP BY currency";

// --- business licenses -----------------------------------------------------------------

// Every column: a license inserted with an expiry or a fee due date keeps it (issue 27
// §4: the demo's license was inserted active and its expiry dropped, so it never expired).
void insert_license(db::Connection& connection, BusinessLicense& l) {
  l.id =
      db::insert_row(connection, "business_licenses", "citizen_id", l.citizen_id, "business_name", l.business_name,
                     "activity", l.activity, "address", l.address, "status", l.status, "term", l.term, "expires_at",
                     l.expires_at, "fee_invoice_id", l.fee_invoice_id, "fee_due_at", l.fee_due_at, "renewal_invoice_id",
                     l.renewal_invoice_id, "decided_by", l.decided_by, "decision_reason", l.decision_reason,
                     "event_version", l.event_version, "created_at", l.created_at, "updated_at", l.updated_at);
}

std::optional<BusinessLicense> find_license(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, kLicenses.select() + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
                   kLicenses.reader(), id, scope.citizen_id);
}

std::optional<BusinessLicense> find_license_of_invoice(db::Connection& connection, std::int64_t invoice_id) {
  return first_row(connection, kLicenses.select() + "WHERE fee_invoice_id = ?1 OR renewal_invoice_id = ?1",
                   kLicenses.reader(), invoice_id);
}

std::vector<BusinessLicense> list_licenses(db::Connection& connection, const Scope& scope,
                                           const std::optional<PageAfter>& after, int limit) {
  db::Filter where;
  where.add_if(scope.citizen_id, "citizen_id = ?");
  if (after) where.add("id < ?", {after->id});  // newest first
  return db::filtered_rows(connection, kLicenses.select(), where, "ORDER BY id DESC", limit, kLicenses.reader());
}

std::int64_t count_licenses(db::Connection& connection, const Scope& scope) {
  return db::filtered_count(connection, "FROM business_licenses",
                            db::Filter().add_if(scope.citizen_id, "citizen_id = ?"));
}

std::vector<BusinessLicense> expired_licenses(db::Connection& connection, const std::string& now, int limit) {
  return all_rows(connection,
                  kLicenses.select() + "WHERE status = 'active' AND expires_at < ? ORDER BY expires_at LIMIT ?",
                  kLicenses.reader(), now, limit);
}

std::vector<BusinessLicense> unpaid_past_due(db::Connection& connection, const std::string& now, int limit) {
  return all_rows(
      connection,
      kLicenses.select() + "WHERE status = 'approved_unpaid' AND fee_due_at < ? ORDER BY fee_due_at LIMIT ?",
      kLicenses.reader(), now, limit);
}

void update_license(db::Connection& connection, const BusinessLicense& l) {
  db::execute(
      connection,
      "UPDATE business_licenses SET status = ?, term = ?, expires_at = ?, renewal_invoice_id = ?, decided_by = ?, "
      "decision_reason = ?, event_version = ?, updated_at = ?, fee_invoice_id = ?, fee_due_at = ? WHERE id = ?",
      l.status, l.term, l.expires_at, l.renewal_invoice_id, l.decided_by, l.decision_reason, l.event_version,
      l.updated_at, l.fee_invoice_id, l.fee_due_at, l.id);
}

// --- citizen_refs ----------------------------------------------------------------------

std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id) {
  return first_row(connection, kCitizenRefs.select() + "WHERE citizen_id = ?", kCitizenRefs.reader(), citizen_id);
}

}  // namespace townhall::revenue::store
