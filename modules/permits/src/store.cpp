#include "store.hpp"

namespace townhall::permits::store {
namespace {

using db::bind_optional;

void bind_scope(SQLite::Statement& statement, const Scope& scope) {
  bind_optional(statement, 1, scope.citizen_id);
  bind_optional(statement, 2, scope.department_code);
}

// ?1 citizen, ?2 department: NULL means "any".
constexpr const char* kScopeClause = "(?1 IS NULL OR a.citizen_id = ?1) AND (?2 IS NULL OR a.department_code = ?2)";

constexpr const char* kApplicationSelect =
    "SELECT a.id, a.citizen_id, a.permit_type, a.description, a.property_address, a.department_code, a.status, "
    "a.fee_cents, a.currency, a.invoice_id, a.decision_reason, a.decided_by, a.event_version, a.submitted_at, "
    "a.updated_at, a.decided_at, c.name, c.phone, c.last_synced_at, p.id "
    "FROM applications a LEFT JOIN citizen_refs c ON c.citizen_id = a.citizen_id "
    "LEFT JOIN permits p ON p.application_id = a.id ";

Application read_application(SQLite::Statement& row) {
  Application a;
  a.id = row.getColumn(0).getInt64();
  a.citizen_id = row.getColumn(1).getInt64();
  a.permit_type = row.getColumn(2).getString();
  a.description = row.getColumn(3).getString();
  a.property_address = row.getColumn(4).getString();
  a.department_code = row.getColumn(5).getString();
  a.status = row.getColumn(6).getString();
  a.fee_cents = row.getColumn(7).getInt64();
  a.currency = row.getColumn(8).getString();
  a.invoice_id = db::optional_text(row.getColumn(9));
  a.decision_reason = db::optional_text(row.getColumn(10));
  a.decided_by = db::optional_int(row.getColumn(11));
  a.event_version = row.getColumn(12).getInt64();
  a.submitted_at = row.getColumn(13).getString();
  a.updated_at = row.getColumn(14).getString();
  a.decided_at = db::optional_text(row.getColumn(15));
  if (!row.getColumn(18).isNull())
    a.applicant = Applicant{db::optional_text(row.getColumn(16)), db::optional_text(row.getColumn(17)),
                            row.getColumn(18).getString()};
  a.permit_id = db::optional_int(row.getColumn(19));
  return a;
}

constexpr const char* kPermitColumns =
    "SELECT a.id, a.application_id, a.citizen_id, a.permit_type, a.department_code, a.status, a.event_version, "
    "a.issued_at, a.issued_by, a.revoked_at, a.revoked_by, a.revoke_reason FROM permits a ";

}  // namespace

std::optional<Application> find_application(db::Connection& connection, std::int64_t id, const Scope& scope) {
  auto query = connection.cached(std::string(kApplicationSelect) + "WHERE " + kScopeClause + " AND a.id = ?3");
  bind_scope(*query, scope);
  query->bind(3, id);
  if (!query->executeStep()) return std::nullopt;
  return read_application(*query);
}

std::vector<Application> list_applications(db::Connection& connection, const Scope& scope,
                                           const ApplicationFilter& filter, std::int64_t offset, int limit,
                                           std::int64_t& total) {
  const std::string where = std::string("WHERE ") + kScopeClause +
                            " AND (?3 IS NULL OR a.status = ?3) AND (?4 IS NULL OR a.department_code = ?4)";
  auto bind = [&](SQLite::Statement& statement) {
    bind_scope(statement, scope);
    bind_optional(statement, 3, filter.status);
    bind_optional(statement, 4, filter.department_code);
  };
  auto count = connection.cached("SELECT count(*) FROM applications a " + where);
  bind(*count);
  count->executeStep();
  total = count->getColumn(0).getInt64();
  auto query = connection.cached(std::string(kApplicationSelect) + where + " ORDER BY a.id DESC LIMIT ?5 OFFSET ?6");
  bind(*query);
  query->bind(5, limit);
  query->bind(6, offset);
  std::vector<Application> out;
  while (query->executeStep()) out.push_back(read_application(*query));
  return out;
}

void insert_application(db::Connection& connection, Application& a) {
  auto insert = connection.cached(
      "INSERT INTO applications (citizen_id, permit_type, description, property_address, department_code, status, "
      "fee_cents, currency, event_version, submitted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, a.citizen_id);
  insert->bind(2, a.permit_type);
  insert->bind(3, a.description);
  insert->bind(4, a.property_address);
  insert->bind(5, a.department_code);
  insert->bind(6, a.status);
  insert->bind(7, a.fee_cents);
  insert->bind(8, a.currency);
  insert->bind(9, a.event_version);
  insert->bind(10, a.submitted_at);
  insert->bind(11, a.updated_at);
  insert->exec();
  a.id = connection.sql().getLastInsertRowid();
}

void update_application(db::Connection& connection, const Application& a) {
  auto update = connection.cached(
      "UPDATE applications SET status = ?, invoice_id = ?, decision_reason = ?, decided_by = ?, event_version = ?, "
      "updated_at = ?, decided_at = ? WHERE id = ?");
  update->bind(1, a.status);
  bind_optional(*update, 2, a.invoice_id);
  bind_optional(*update, 3, a.decision_reason);
  bind_optional(*update, 4, a.decided_by);
  update->bind(5, a.event_version);
  update->bind(6, a.updated_at);
  bind_optional(*update, 7, a.decided_at);
  update->bind(8, a.id);
  update->exec();
}

std::optional<Inspection> find_inspection(db::Connection& connection, std::int64_t id) {
  auto query = connection.cached(
      "SELECT id, application_id, scheduled_for, status, notes, scheduled_by, recorded_by, created_at, recorded_at "
      "FROM inspections WHERE id = ?");
  query->bind(1, id);
  if (!query->executeStep()) return std::nullopt;
  Inspection i;
  i.id = query->getColumn(0).getInt64();
  i.application_id = query->getColumn(1).getInt64();
  i.scheduled_for = query->getColumn(2).getString();
  i.status = query->getColumn(3).getString();
  i.notes = db::optional_text(query->getColumn(4));
  i.scheduled_by = query->getColumn(5).getInt64();
  i.recorded_by = db::optional_int(query->getColumn(6));
  i.created_at = query->getColumn(7).getString();
  i.recorded_at = db::optional_text(query->getColumn(8));
  return i;
}

void insert_inspection(db::Connection& connection, Inspection& i) {
  auto insert = connection.cached(
      "INSERT INTO inspections (application_id, scheduled_for, status, scheduled_by, created_at) VALUES (?, ?, ?, ?, "
      "?)");
  insert->bind(1, i.application_id);
  insert->bind(2, i.scheduled_for);
  insert->bind(3, i.status);
  insert->bind(4, i.scheduled_by);
  insert->bind(5, i.created_at);
  insert->exec();
  i.id = connection.sql().getLastInsertRowid();
}

void update_inspection(db::Connection& connection, const Inspection& i) {
  auto update =
      connection.cached("UPDATE inspections SET status = ?, notes = ?, recorded_by = ?, recorded_at = ? WHERE id = ?");
  update->bind(1, i.status);
  bind_optional(*update, 2, i.notes);
  bind_optional(*update, 3, i.recorded_by);
  bind_optional(*update, 4, i.recorded_at);
  update->bind(5, i.id);
  update->exec();
}

bool has_passed_inspection(db::Connection& connection, std::int64_t application_id) {
  auto query = connection.cached("SELECT 1 FROM inspections WHERE application_id = ? AND status = 'passed' LIMIT 1");
  query->bind(1, application_id);
  return query->executeStep();
}

std::optional<Permit> find_permit(db::Connection& connection, std::int64_t id, const Scope& scope) {
  auto query = connection.cached(std::string(kPermitColumns) + "WHERE " + kScopeClause + " AND a.id = ?3");
  bind_scope(*query, scope);
  query->bind(3, id);
  if (!query->executeStep()) return std::nullopt;
  Permit p;
  p.id = query->getColumn(0).getInt64();
  p.application_id = query->getColumn(1).getInt64();
  p.citizen_id = query->getColumn(2).getInt64();
  p.permit_type = query->getColumn(3).getString();
  p.department_code = query->getColumn(4).getString();
  p.status = query->getColumn(5).getString();
  p.event_version = query->getColumn(6).getInt64();
  p.issued_at = query->getColumn(7).getString();
  p.issued_by = query->getColumn(8).getInt64();
  p.revoked_at = db::optional_text(query->getColumn(9));
  p.revoked_by = db::optional_int(query->getColumn(10));
  p.revoke_reason = db::optional_text(query->getColumn(11));
  return p;
}

void insert_permit(db::Connection& connection, Permit& p) {
  auto insert = connection.cached(
      "INSERT INTO permits (application_id, citizen_id, permit_type, department_code, status, event_version, "
      "issued_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, p.application_id);
  insert->bind(2, p.citizen_id);
  insert->bind(3, p.permit_type);
  insert->bind(4, p.department_code);
  insert->bind(5, p.status);
  insert->bind(6, p.event_version);
  insert->bind(7, p.issued_at);
  insert->bind(8, p.issued_by);
  insert->exec();
  p.id = connection.sql().getLastInsertRowid();
}

void update_permit(db::Connection& connection, const Permit& p) {
  auto update = connection.cached(
      "UPDATE permits SET status = ?, event_version = ?, revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = "
      "?");
  update->bind(1, p.status);
  update->bind(2, p.event_version);
  bind_optional(*update, 3, p.revoked_at);
  bind_optional(*update, 4, p.revoked_by);
  bind_optional(*update, 5, p.revoke_reason);
  update->bind(6, p.id);
  update->exec();
}

std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id) {
  auto query = connection.cached(
      "SELECT citizen_id, name, email, phone, address, city, postal_code, email_verified, identity_verified, "
      "is_active, event_version, last_synced_at FROM citizen_refs WHERE citizen_id = ?");
  query->bind(1, citizen_id);
  if (!query->executeStep()) return std::nullopt;
  CitizenRef r;
  r.citizen_id = query->getColumn(0).getInt64();
  r.name = db::optional_text(query->getColumn(1));
  r.email = db::optional_text(query->getColumn(2));
  r.phone = db::optional_text(query->getColumn(3));
  r.address = db::optional_text(query->getColumn(4));
  r.city = db::optional_text(query->getColumn(5));
  r.postal_code = db::optional_text(query->getColumn(6));
  r.email_verified = query->getColumn(7).getInt() != 0;
  r.identity_verified = query->getColumn(8).getInt() != 0;
  r.is_active = query->getColumn(9).getInt() != 0;
  r.event_version = query->getColumn(10).getInt64();
  r.last_synced_at = query->getColumn(11).getString();
  return r;
}

bool upsert_department_ref(db::Connection& connection, const DepartmentRef& r) {
  auto upsert = connection.cached(
      "INSERT INTO department_refs (code, name, event_version, last_synced_at) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (code) DO UPDATE SET name = excluded.name, event_version = excluded.event_version, "
      "last_synced_at = excluded.last_synced_at WHERE excluded.event_version > department_refs.event_version");
  upsert->bind(1, r.code);
  upsert->bind(2, r.name);
  upsert->bind(3, r.event_version);
  upsert->bind(4, r.last_synced_at);
  return upsert->exec() > 0;
}

std::optional<DepartmentRef> find_department_ref(db::Connection& connection, const std::string& code) {
  auto query =
      connection.cached("SELECT code, name, event_version, last_synced_at FROM department_refs WHERE code = ?");
  query->bind(1, code);
  if (!query->executeStep()) return std::nullopt;
  return DepartmentRef{query->getColumn(0).getString(), query->getColumn(1).getString(), query->getColumn(2).getInt64(),
                       query->getColumn(3).getString()};
}

}  // namespace townhall::permits::store
