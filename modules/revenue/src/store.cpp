#include "store.hpp"

namespace townhall::revenue::store {
namespace {

using db::bind_optional;
using db::optional_int;
using db::optional_text;

constexpr const char* kInvoiceSelect =
    "SELECT id, citizen_id, source_module, source_type, source_id, description, amount_cents, currency, status, "
    "event_version, created_at, updated_at, paid_at, closed_at FROM invoices ";

Invoice read_invoice(SQLite::Statement& row) {
  Invoice i;
  i.id = row.getColumn(0).getInt64();
  i.citizen_id = row.getColumn(1).getInt64();
  i.source_module = row.getColumn(2).getString();
  i.source_type = row.getColumn(3).getString();
  i.source_id = row.getColumn(4).getString();
  i.description = row.getColumn(5).getString();
  i.amount_cents = row.getColumn(6).getInt64();
  i.currency = row.getColumn(7).getString();
  i.status = row.getColumn(8).getString();
  i.event_version = row.getColumn(9).getInt64();
  i.created_at = row.getColumn(10).getString();
  i.updated_at = row.getColumn(11).getString();
  i.paid_at = optional_text(row.getColumn(12));
  i.closed_at = optional_text(row.getColumn(13));
  return i;
}

constexpr const char* kPaymentSelect =
    "SELECT id, invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency, method_type, status, "
    "failure_reason, provider_reference, event_version, created_at, updated_at, completed_at, refunded_at, "
    "processor_key, refund_key FROM payments ";

Payment read_payment(SQLite::Statement& row) {
  Payment p;
  p.id = row.getColumn(0).getInt64();
  p.invoice_id = row.getColumn(1).getInt64();
  p.citizen_id = row.getColumn(2).getInt64();
  p.idempotency_key = row.getColumn(3).getString();
  p.request_digest = row.getColumn(4).getString();
  p.amount_cents = row.getColumn(5).getInt64();
  p.currency = row.getColumn(6).getString();
  p.method_type = row.getColumn(7).getString();
  p.status = row.getColumn(8).getString();
  p.failure_reason = optional_text(row.getColumn(9));
  p.provider_reference = optional_text(row.getColumn(10));
  p.event_version = row.getColumn(11).getInt64();
  p.created_at = row.getColumn(12).getString();
  p.updated_at = row.getColumn(13).getString();
  p.completed_at = optional_text(row.getColumn(14));
  p.refunded_at = optional_text(row.getColumn(15));
  p.processor_key = row.getColumn(16).getString();
  p.refund_key = optional_text(row.getColumn(17));
  return p;
}

std::optional<Payment> one_payment(db::CachedStatement& query) {
  if (!query->executeStep()) return std::nullopt;
  return read_payment(*query);
}

constexpr const char* kLicenseSelect =
    "SELECT id, citizen_id, business_name, activity, address, status, term, expires_at, renewal_invoice_id, "
    "decided_by, decision_reason, event_version, created_at, updated_at, fee_invoice_id, fee_due_at "
    "FROM business_licenses ";

BusinessLicense read_license(SQLite::Statement& row) {
  BusinessLicense l;
  l.id = row.getColumn(0).getInt64();
  l.citizen_id = row.getColumn(1).getInt64();
  l.business_name = row.getColumn(2).getString();
  l.activity = row.getColumn(3).getString();
  l.address = row.getColumn(4).getString();
  l.status = row.getColumn(5).getString();
  l.term = row.getColumn(6).getInt64();
  l.expires_at = optional_text(row.getColumn(7));
  l.renewal_invoice_id = optional_int(row.getColumn(8));
  l.decided_by = optional_int(row.getColumn(9));
  l.decision_reason = optional_text(row.getColumn(10));
  l.event_version = row.getColumn(11).getInt64();
  l.created_at = row.getColumn(12).getString();
  l.updated_at = row.getColumn(13).getString();
  l.fee_invoice_id = optional_int(row.getColumn(14));
  l.fee_due_at = optional_text(row.getColumn(15));
  return l;
}

}  // namespace

// --- invoices --------------------------------------------------------------------------

bool insert_invoice(db::Connection& connection, Invoice& i) {
  auto insert = connection.cached(
      "INSERT INTO invoices (citizen_id, source_module, source_type, source_id, description, amount_cents, currency, "
      "status, event_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (source_module, source_type, source_id) DO NOTHING");
  insert->bind(1, i.citizen_id);
  insert->bind(2, i.source_module);
  insert->bind(3, i.source_type);
  insert->bind(4, i.source_id);
  insert->bind(5, i.description);
  insert->bind(6, i.amount_cents);
  insert->bind(7, i.currency);
  insert->bind(8, i.status);
  insert->bind(9, i.event_version);
  insert->bind(10, i.created_at);
  insert->bind(11, i.updated_at);
  if (insert->exec() == 0) return false;
  i.id = connection.sql().getLastInsertRowid();
  return true;
}

std::optional<Invoice> find_invoice(db::Connection& connection, std::int64_t id, const Scope& scope) {
  auto query = connection.cached(std::string(kInvoiceSelect) + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)");
  query->bind(1, id);
  bind_optional(*query, 2, scope.citizen_id);
  if (!query->executeStep()) return std::nullopt;
  return read_invoice(*query);
}

std::optional<Invoice> find_invoice_by_source(db::Connection& connection, const std::string& source_module,
                                              const std::string& source_type, const std::string& source_id) {
  auto query =
      connection.cached(std::string(kInvoiceSelect) + "WHERE source_module = ? AND source_type = ? AND source_id = ?");
  query->bind(1, source_module);
  query->bind(2, source_type);
  query->bind(3, source_id);
  if (!query->executeStep()) return std::nullopt;
  return read_invoice(*query);
}

std::vector<Invoice> list_invoices(db::Connection& connection, const Scope& scope, const InvoiceFilter& filter,
                                   std::int64_t offset, int limit, std::int64_t& total) {
  const std::string where =
      "WHERE (?1 IS NULL OR citizen_id = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR citizen_id = ?3) ";
  auto bind = [&](SQLite::Statement& statement) {
    bind_optional(statement, 1, scope.citizen_id);
    bind_optional(statement, 2, filter.status);
    bind_optional(statement, 3, filter.citizen_id);
  };
  auto count = connection.cached("SELECT count(*) FROM invoices " + where);
  bind(*count);
  count->executeStep();
  total = count->getColumn(0).getInt64();
  auto query = connection.cached(std::string(kInvoiceSelect) + where + "ORDER BY id DESC LIMIT ?4 OFFSET ?5");
  bind(*query);
  query->bind(4, limit);
  query->bind(5, offset);
  std::vector<Invoice> out;
  while (query->executeStep()) out.push_back(read_invoice(*query));
  return out;
}

void update_invoice(db::Connection& connection, const Invoice& i) {
  auto update = connection.cached(
      "UPDATE invoices SET status = ?, event_version = ?, updated_at = ?, paid_at = ?, closed_at = ? WHERE id = ?");
  update->bind(1, i.status);
  update->bind(2, i.event_version);
  update->bind(3, i.updated_at);
  bind_optional(*update, 4, i.paid_at);
  bind_optional(*update, 5, i.closed_at);
  update->bind(6, i.id);
  update->exec();
}

// --- payments --------------------------------------------------------------------------

void insert_payment(db::Connection& connection, Payment& p) {
  auto insert = connection.cached(
      "INSERT INTO payments (invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency, "
      "method_type, status, event_version, created_at, updated_at, processor_key) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, p.invoice_id);
  insert->bind(2, p.citizen_id);
  insert->bind(3, p.idempotency_key);
  insert->bind(4, p.request_digest);
  insert->bind(5, p.amount_cents);
  insert->bind(6, p.currency);
  insert->bind(7, p.method_type);
  insert->bind(8, p.status);
  insert->bind(9, p.event_version);
  insert->bind(10, p.created_at);
  insert->bind(11, p.updated_at);
  insert->bind(12, p.processor_key);
  insert->exec();
  p.id = connection.sql().getLastInsertRowid();
}

std::optional<Payment> find_payment(db::Connection& connection, std::int64_t id) {
  auto query = connection.cached(std::string(kPaymentSelect) + "WHERE id = ?");
  query->bind(1, id);
  return one_payment(query);
}

std::optional<Payment> find_payment_by_key(db::Connection& connection, std::int64_t citizen_id,
                                           const std::string& idempotency_key) {
  auto query = connection.cached(std::string(kPaymentSelect) + "WHERE citizen_id = ? AND idempotency_key = ?");
  query->bind(1, citizen_id);
  query->bind(2, idempotency_key);
  return one_payment(query);
}

std::optional<Payment> find_live_payment(db::Connection& connection, std::int64_t invoice_id) {
  auto query = connection.cached(std::string(kPaymentSelect) +
                                 "WHERE invoice_id = ? AND status IN ('pending', 'completed', 'refund_pending')");
  query->bind(1, invoice_id);
  return one_payment(query);
}

std::vector<Payment> payments_of_invoice(db::Connection& connection, std::int64_t invoice_id) {
  auto query = connection.cached(std::string(kPaymentSelect) + "WHERE invoice_id = ? ORDER BY id");
  query->bind(1, invoice_id);
  std::vector<Payment> out;
  while (query->executeStep()) out.push_back(read_payment(*query));
  return out;
}

std::vector<Payment> unresolved_payments(db::Connection& connection) {
  auto query =
      connection.cached(std::string(kPaymentSelect) + "WHERE status IN ('pending', 'refund_pending') ORDER BY id");
  std::vector<Payment> out;
  while (query->executeStep()) out.push_back(read_payment(*query));
  return out;
}

void update_payment(db::Connection& connection, const Payment& p) {
  auto update = connection.cached(
      "UPDATE payments SET status = ?, failure_reason = ?, provider_reference = ?, event_version = ?, "
      "updated_at = ?, completed_at = ?, refunded_at = ?, refund_key = ? WHERE id = ?");
  update->bind(1, p.status);
  bind_optional(*update, 2, p.failure_reason);
  bind_optional(*update, 3, p.provider_reference);
  update->bind(4, p.event_version);
  update->bind(5, p.updated_at);
  bind_optional(*update, 6, p.completed_at);
  bind_optional(*update, 7, p.refunded_at);
  bind_optional(*update, 8, p.refund_key);
  update->bind(9, p.id);
  update->exec();
}

// --- tax records -----------------------------------------------------------------------

bool insert_tax_record(db::Connection& connection, TaxRecord& r) {
  auto insert = connection.cached(
      "INSERT INTO tax_records (citizen_id, tax_year, assessed_value_cents, tax_due_cents, currency, recorded_by, "
      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (citizen_id, tax_year) DO NOTHING");
  insert->bind(1, r.citizen_id);
  insert->bind(2, r.tax_year);
  insert->bind(3, r.assessed_value_cents);
  insert->bind(4, r.tax_due_cents);
  insert->bind(5, r.currency);
  insert->bind(6, r.recorded_by);
  insert->bind(7, r.created_at);
  if (insert->exec() == 0) return false;
  r.id = connection.sql().getLastInsertRowid();
  return true;
}

std::optional<TaxRecord> find_tax_record(db::Connection& connection, std::int64_t id, const Scope& scope) {
  auto query = connection.cached(
      "SELECT id, citizen_id, tax_year, assessed_value_cents, tax_due_cents, currency, recorded_by, created_at "
      "FROM tax_records WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)");
  query->bind(1, id);
  bind_optional(*query, 2, scope.citizen_id);
  if (!query->executeStep()) return std::nullopt;
  TaxRecord r;
  r.id = query->getColumn(0).getInt64();
  r.citizen_id = query->getColumn(1).getInt64();
  r.tax_year = query->getColumn(2).getInt64();
  r.assessed_value_cents = query->getColumn(3).getInt64();
  r.tax_due_cents = query->getColumn(4).getInt64();
  r.currency = query->getColumn(5).getString();
  r.recorded_by = query->getColumn(6).getInt64();
  r.created_at = query->getColumn(7).getString();
  return r;
}

// --- business licenses -----------------------------------------------------------------

// Every column: a license inserted with an expiry or a fee due date keeps it (issue 27
// §4: the demo's license was inserted active and its expiry dropped, so it never expired).
void insert_license(db::Connection& connection, BusinessLicense& l) {
  auto insert = connection.cached(
      "INSERT INTO business_licenses (citizen_id, business_name, activity, address, status, term, expires_at, "
      "fee_invoice_id, fee_due_at, renewal_invoice_id, decided_by, decision_reason, event_version, created_at, "
      "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, l.citizen_id);
  insert->bind(2, l.business_name);
  insert->bind(3, l.activity);
  insert->bind(4, l.address);
  insert->bind(5, l.status);
  insert->bind(6, l.term);
  bind_optional(*insert, 7, l.expires_at);
  bind_optional(*insert, 8, l.fee_invoice_id);
  bind_optional(*insert, 9, l.fee_due_at);
  bind_optional(*insert, 10, l.renewal_invoice_id);
  bind_optional(*insert, 11, l.decided_by);
  bind_optional(*insert, 12, l.decision_reason);
  insert->bind(13, l.event_version);
  insert->bind(14, l.created_at);
  insert->bind(15, l.updated_at);
  insert->exec();
  l.id = connection.sql().getLastInsertRowid();
}

std::optional<BusinessLicense> find_license(db::Connection& connection, std::int64_t id, const Scope& scope) {
  auto query = connection.cached(std::string(kLicenseSelect) + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)");
  query->bind(1, id);
  bind_optional(*query, 2, scope.citizen_id);
  if (!query->executeStep()) return std::nullopt;
  return read_license(*query);
}

std::optional<BusinessLicense> find_license_of_invoice(db::Connection& connection, std::int64_t invoice_id) {
  auto query = connection.cached(std::string(kLicenseSelect) + "WHERE fee_invoice_id = ?1 OR renewal_invoice_id = ?1");
  query->bind(1, invoice_id);
  if (!query->executeStep()) return std::nullopt;
  return read_license(*query);
}

std::vector<BusinessLicense> list_licenses(db::Connection& connection, const Scope& scope, std::int64_t offset,
                                           int limit, std::int64_t& total) {
  auto count = connection.cached("SELECT count(*) FROM business_licenses WHERE ?1 IS NULL OR citizen_id = ?1");
  bind_optional(*count, 1, scope.citizen_id);
  count->executeStep();
  total = count->getColumn(0).getInt64();
  auto query = connection.cached(std::string(kLicenseSelect) +
                                 "WHERE ?1 IS NULL OR citizen_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3");
  bind_optional(*query, 1, scope.citizen_id);
  query->bind(2, limit);
  query->bind(3, offset);
  std::vector<BusinessLicense> out;
  while (query->executeStep()) out.push_back(read_license(*query));
  return out;
}

std::vector<BusinessLicense> expired_licenses(db::Connection& connection, const std::string& now, int limit) {
  auto query = connection.cached(std::string(kLicenseSelect) +
                                 "WHERE status = 'active' AND expires_at < ? ORDER BY expires_at LIMIT ?");
  query->bind(1, now);
  query->bind(2, limit);
  std::vector<BusinessLicense> out;
  while (query->executeStep()) out.push_back(read_license(*query));
  return out;
}

std::vector<BusinessLicense> unpaid_past_due(db::Connection& connection, const std::string& now, int limit) {
  auto query = connection.cached(std::string(kLicenseSelect) +
                                 "WHERE status = 'approved_unpaid' AND fee_due_at < ? ORDER BY fee_due_at LIMIT ?");
  query->bind(1, now);
  query->bind(2, limit);
  std::vector<BusinessLicense> out;
  while (query->executeStep()) out.push_back(read_license(*query));
  return out;
}

void update_license(db::Connection& connection, const BusinessLicense& l) {
  auto update = connection.cached(
      "UPDATE business_licenses SET status = ?, term = ?, expires_at = ?, renewal_invoice_id = ?, decided_by = ?, "
      "decision_reason = ?, event_version = ?, updated_at = ?, fee_invoice_id = ?, fee_due_at = ? WHERE id = ?");
  update->bind(1, l.status);
  update->bind(2, l.term);
  bind_optional(*update, 3, l.expires_at);
  bind_optional(*update, 4, l.renewal_invoice_id);
  bind_optional(*update, 5, l.decided_by);
  bind_optional(*update, 6, l.decision_reason);
  update->bind(7, l.event_version);
  update->bind(8, l.updated_at);
  bind_optional(*update, 9, l.fee_invoice_id);
  bind_optional(*update, 10, l.fee_due_at);
  update->bind(11, l.id);
  update->exec();
}

// --- citizen_refs ----------------------------------------------------------------------

std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id) {
  auto query = connection.cached(
      "SELECT citizen_id, name, email, identity_verified, is_active, event_version, last_synced_at FROM citizen_refs "
      "WHERE citizen_id = ?");
  query->bind(1, citizen_id);
  if (!query->executeStep()) return std::nullopt;
  CitizenRef r;
  r.citizen_id = query->getColumn(0).getInt64();
  r.name = optional_text(query->getColumn(1));
  r.email = optional_text(query->getColumn(2));
  r.identity_verified = query->getColumn(3).getInt() != 0;
  r.is_active = query->getColumn(4).getInt() != 0;
  r.event_version = query->getColumn(5).getInt64();
  r.last_synced_at = query->getColumn(6).getString();
  return r;
}

}  // namespace townhall::revenue::store
