#include "store.hpp"

#include "townhall/platform/row.hpp"

namespace townhall::revenue::store {
namespace {

using db::all_rows;
using db::first_row;
using db::read_columns;
using db::single_int;

constexpr const char* kInvoiceSelect =
    "SELECT id, citizen_id, source_module, source_type, source_id, description, amount_cents, currency, status, "
    "event_version, created_at, updated_at, paid_at, closed_at FROM invoices ";

Invoice read_invoice(SQLite::Statement& row) {
  Invoice i;
  read_columns(row, i.id, i.citizen_id, i.source_module, i.source_type, i.source_id, i.description, i.amount_cents,
               i.currency, i.status, i.event_version, i.created_at, i.updated_at, i.paid_at, i.closed_at);
  return i;
}

constexpr const char* kPaymentSelect =
    "SELECT id, invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency, method_type, status, "
    "failure_reason, provider_reference, event_version, created_at, updated_at, completed_at, refunded_at, "
    "processor_key, refund_key FROM payments ";

Payment read_payment(SQLite::Statement& row) {
  Payment p;
  read_columns(row, p.id, p.invoice_id, p.citizen_id, p.idempotency_key, p.request_digest, p.amount_cents, p.currency,
               p.method_type, p.status, p.failure_reason, p.provider_reference, p.event_version, p.created_at,
               p.updated_at, p.completed_at, p.refunded_at, p.processor_key, p.refund_key);
  return p;
}

constexpr const char* kLicenseSelect =
    "SELECT id, citizen_id, business_name, activity, address, status, term, expires_at, renewal_invoice_id, "
    "decided_by, decision_reason, event_version, created_at, updated_at, fee_invoice_id, fee_due_at "
    "FROM business_licenses ";

BusinessLicense read_license(SQLite::Statement& row) {
  BusinessLicense l;
  read_columns(row, l.id, l.citizen_id, l.business_name, l.activity, l.address, l.status, l.term, l.expires_at,
               l.renewal_invoice_id, l.decided_by, l.decision_reason, l.event_version, l.created_at, l.updated_at,
               l.fee_invoice_id, l.fee_due_at);
  return l;
}

TaxRecord read_tax_record(SQLite::Statement& row) {
  TaxRecord r;
  read_columns(row, r.id, r.citizen_id, r.tax_year, r.assessed_value_cents, r.tax_due_cents, r.currency, r.recorded_by,
               r.created_at);
  return r;
}

CitizenRef read_citizen_ref(SQLite::Statement& row) {
  CitizenRef r;
  read_columns(row, r.citizen_id, r.name, r.email, r.identity_verified, r.is_active, r.event_version, r.last_synced_at);
  return r;
}

}  // namespace

// --- invoices --------------------------------------------------------------------------

bool insert_invoice(db::Connection& connection, Invoice& i) {
  if (db::execute(connection,
                  "INSERT INTO invoices (citizen_id, source_module, source_type, source_id, description, amount_cents, "
                  "currency, status, event_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (source_module, source_type, source_id) DO NOTHING",
                  i.citizen_id, i.source_module, i.source_type, i.source_id, i.description, i.amount_cents, i.currency,
                  i.status, i.event_version, i.created_at, i.updated_at) == 0)
    return false;
  i.id = connection.sql().getLastInsertRowid();
  return true;
}

std::optional<Invoice> find_invoice(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, std::string(kInvoiceSelect) + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
                   read_invoice, id, scope.citizen_id);
}

std::optional<Invoice> find_invoice_by_source(db::Connection& connection, const std::string& source_module,
                                              const std::string& source_type, const std::string& source_id) {
  return first_row(connection,
                   std::string(kInvoiceSelect) + "WHERE source_module = ? AND source_type = ? AND source_id = ?",
                   read_invoice, source_module, source_type, source_id);
}

std::vector<Invoice> list_invoices(db::Connection& connection, const Scope& scope, const InvoiceFilter& filter,
                                   std::int64_t offset, int limit, std::int64_t& total) {
  const std::string where =
      "WHERE (?1 IS NULL OR citizen_id = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR citizen_id = ?3) ";
  total = single_int(connection, "SELECT count(*) FROM invoices " + where, scope.citizen_id, filter.status,
                     filter.citizen_id);
  return all_rows(connection, std::string(kInvoiceSelect) + where + "ORDER BY id DESC LIMIT ?4 OFFSET ?5", read_invoice,
                  scope.citizen_id, filter.status, filter.citizen_id, limit, offset);
}

void update_invoice(db::Connection& connection, const Invoice& i) {
  db::execute(
      connection,
      "UPDATE invoices SET status = ?, event_version = ?, updated_at = ?, paid_at = ?, closed_at = ? WHERE id = ?",
      i.status, i.event_version, i.updated_at, i.paid_at, i.closed_at, i.id);
}

// --- payments --------------------------------------------------------------------------

void insert_payment(db::Connection& connection, Payment& p) {
  p.id = db::insert(
      connection,
      "INSERT INTO payments (invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency, "
      "method_type, status, event_version, created_at, updated_at, processor_key) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      p.invoice_id, p.citizen_id, p.idempotency_key, p.request_digest, p.amount_cents, p.currency, p.method_type,
      p.status, p.event_version, p.created_at, p.updated_at, p.processor_key);
}

std::optional<Payment> find_payment(db::Connection& connection, std::int64_t id) {
  return first_row(connection, std::string(kPaymentSelect) + "WHERE id = ?", read_payment, id);
}

std::optional<Payment> find_payment_by_key(db::Connection& connection, std::int64_t citizen_id,
                                           const std::string& idempotency_key) {
  return first_row(connection, std::string(kPaymentSelect) + "WHERE citizen_id = ? AND idempotency_key = ?",
                   read_payment, citizen_id, idempotency_key);
}

std::optional<Payment> find_live_payment(db::Connection& connection, std::int64_t invoice_id) {
  return first_row(
      connection,
      std::string(kPaymentSelect) + "WHERE invoice_id = ? AND status IN ('pending', 'completed', 'refund_pending')",
      read_payment, invoice_id);
}

std::vector<Payment> payments_of_invoice(db::Connection& connection, std::int64_t invoice_id) {
  return all_rows(connection, std::string(kPaymentSelect) + "WHERE invoice_id = ? ORDER BY id", read_payment,
                  invoice_id);
}

std::vector<Payment> unresolved_payments(db::Connection& connection) {
  return all_rows(connection, std::string(kPaymentSelect) + "WHERE status IN ('pending', 'refund_pending') ORDER BY id",
                  read_payment);
}

void update_payment(db::Connection& connection, const Payment& p) {
  db::execute(connection,
              "UPDATE payments SET status = ?, failure_reason = ?, provider_reference = ?, event_version = ?, "
              "updated_at = ?, completed_at = ?, refunded_at = ?, refund_key = ? WHERE id = ?",
              p.status, p.failure_reason, p.provider_reference, p.event_version, p.updated_at, p.completed_at,
              p.refunded_at, p.refund_key, p.id);
}

// --- tax records -----------------------------------------------------------------------

bool insert_tax_record(db::Connection& connection, TaxRecord& r) {
  if (db::execute(
          connection,
          "INSERT INTO tax_records (citizen_id, tax_year, assessed_value_cents, tax_due_cents, currency, recorded_by, "
          "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (citizen_id, tax_year) DO NOTHING",
          r.citizen_id, r.tax_year, r.assessed_value_cents, r.tax_due_cents, r.currency, r.recorded_by,
          r.created_at) == 0)
    return false;
  r.id = connection.sql().getLastInsertRowid();
  return true;
}

std::optional<TaxRecord> find_tax_record(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(
      connection,
      "SELECT id, citizen_id, tax_year, assessed_value_cents, tax_due_cents, currency, recorded_by, created_at "
      "FROM tax_records WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
      read_tax_record, id, scope.citizen_id);
}

// --- business licenses -----------------------------------------------------------------

// Every column: a license inserted with an expiry or a fee due date keeps it (issue 27
// §4: the demo's license was inserted active and its expiry dropped, so it never expired).
void insert_license(db::Connection& connection, BusinessLicense& l) {
  l.id = db::insert(
      connection,
      "INSERT INTO business_licenses (citizen_id, business_name, activity, address, status, term, expires_at, "
      "fee_invoice_id, fee_due_at, renewal_invoice_id, decided_by, decision_reason, event_version, created_at, "
      "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      l.citizen_id, l.business_name, l.activity, l.address, l.status, l.term, l.expires_at, l.fee_invoice_id,
      l.fee_due_at, l.renewal_invoice_id, l.decided_by, l.decision_reason, l.event_version, l.created_at, l.updated_at);
}

std::optional<BusinessLicense> find_license(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, std::string(kLicenseSelect) + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
                   read_license, id, scope.citizen_id);
}

std::optional<BusinessLicense> find_license_of_invoice(db::Connection& connection, std::int64_t invoice_id) {
  return first_row(connection, std::string(kLicenseSelect) + "WHERE fee_invoice_id = ?1 OR renewal_invoice_id = ?1",
                   read_license, invoice_id);
}

std::vector<BusinessLicense> list_licenses(db::Connection& connection, const Scope& scope, std::int64_t offset,
                                           int limit, std::int64_t& total) {
  total = single_int(connection, "SELECT count(*) FROM business_licenses WHERE ?1 IS NULL OR citizen_id = ?1",
                     scope.citizen_id);
  return all_rows(
      connection,
      std::string(kLicenseSelect) + "WHERE ?1 IS NULL OR citizen_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
      read_license, scope.citizen_id, limit, offset);
}

std::vector<BusinessLicense> expired_licenses(db::Connection& connection, const std::string& now, int limit) {
  return all_rows(
      connection,
      std::string(kLicenseSelect) + "WHERE status = 'active' AND expires_at < ? ORDER BY expires_at LIMIT ?",
      read_license, now, limit);
}

std::vector<BusinessLicense> unpaid_past_due(db::Connection& connection, const std::string& now, int limit) {
  return all_rows(
      connection,
      std::string(kLicenseSelect) + "WHERE status = 'approved_unpaid' AND fee_due_at < ? ORDER BY fee_due_at LIMIT ?",
      read_license, now, limit);
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
  return first_row(
      connection,
      "SELECT citizen_id, name, email, identity_verified, is_active, event_version, last_synced_at FROM citizen_refs "
      "WHERE citizen_id = ?",
      read_citizen_ref, citizen_id);
}

}  // namespace townhall::revenue::store
