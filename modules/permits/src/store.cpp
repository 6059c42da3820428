#include "store.hpp"

#include "townhall/platform/row.hpp"

namespace townhall::permits::store {
namespace {

using db::all_rows;
using db::first_row;
using db::read_columns;
using db::single_int;

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
  Applicant applicant;
  std::optional<std::string> synced_at;  // NULL when the citizen has no cached copy
  read_columns(row, a.id, a.citizen_id, a.permit_type, a.description, a.property_address, a.department_code, a.status,
               a.fee_cents, a.currency, a.invoice_id, a.decision_reason, a.decided_by, a.event_version, a.submitted_at,
               a.updated_at, a.decided_at, applicant.name, applicant.phone, synced_at, a.permit_id);
  if (synced_at) {
    applicant.synced_at = std::move(*synced_at);
    a.applicant = std::move(applicant);
  }
  return a;
}

constexpr const char* kPermitColumns =
    "SELECT a.id, a.application_id, a.citizen_id, a.permit_type, a.department_code, a.status, a.event_version, "
    "a.issued_at, a.issued_by, a.revoked_at, a.revoked_by, a.revoke_reason FROM permits a ";

Inspection read_inspection(SQLite::Statement& row) {
  Inspection i;
  read_columns(row, i.id, i.application_id, i.scheduled_for, i.status, i.notes, i.scheduled_by, i.recorded_by,
               i.created_at, i.recorded_at);
  return i;
}

Permit read_permit(SQLite::Statement& row) {
  Permit p;
  read_columns(row, p.id, p.application_id, p.citizen_id, p.permit_type, p.department_code, p.status, p.event_version,
               p.issued_at, p.issued_by, p.revoked_at, p.revoked_by, p.revoke_reason);
  return p;
}

CitizenRef read_citizen_ref(SQLite::Statement& row) {
  CitizenRef r;
  read_columns(row, r.citizen_id, r.name, r.email, r.phone, r.address, r.city, r.postal_code, r.email_verified,
               r.identity_verified, r.is_active, r.event_version, r.last_synced_at);
  return r;
}

DepartmentRef read_department_ref(SQLite::Statement& row) {
  DepartmentRef r;
  read_columns(row, r.code, r.name, r.event_version, r.last_synced_at);
  return r;
}

}  // namespace

std::optional<Application> find_application(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, std::string(kApplicationSelect) + "WHERE " + kScopeClause + " AND a.id = ?3",
                   read_application, scope.citizen_id, scope.department_code, id);
}

std::vector<Application> list_applications(db::Connection& connection, const Scope& scope,
                                           const ApplicationFilter& filter, std::int64_t offset, int limit,
                                           std::int64_t& total) {
  const std::string where = std::string("WHERE ") + kScopeClause +
                            " AND (?3 IS NULL OR a.status = ?3) AND (?4 IS NULL OR a.department_code = ?4)";
  total = single_int(connection, "SELECT count(*) FROM applications a " + where, scope.citizen_id,
                     scope.department_code, filter.status, filter.department_code);
  return all_rows(connection, std::string(kApplicationSelect) + where + " ORDER BY a.id DESC LIMIT ?5 OFFSET ?6",
                  read_application, scope.citizen_id, scope.department_code, filter.status, filter.department_code,
                  limit, offset);
}

void insert_application(db::Connection& connection, Application& a) {
  a.id = db::insert(
      connection,
      "INSERT INTO applications (citizen_id, permit_type, description, property_address, department_code, status, "
      "fee_cents, currency, event_version, submitted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      a.citizen_id, a.permit_type, a.description, a.property_address, a.department_code, a.status, a.fee_cents,
      a.currency, a.event_version, a.submitted_at, a.updated_at);
}

void update_application(db::Connection& connection, const Application& a) {
  db::execute(
      connection,
      "UPDATE applications SET status = ?, invoice_id = ?, decision_reason = ?, decided_by = ?, event_version = ?, "
      "updated_at = ?, decided_at = ? WHERE id = ?",
      a.status, a.invoice_id, a.decision_reason, a.decided_by, a.event_version, a.updated_at, a.decided_at, a.id);
}

std::optional<Inspection> find_inspection(db::Connection& connection, std::int64_t id) {
  return first_row(
      connection,
      "SELECT id, application_id, scheduled_for, status, notes, scheduled_by, recorded_by, created_at, recorded_at "
      "FROM inspections WHERE id = ?",
      read_inspection, id);
}

void insert_inspection(db::Connection& connection, Inspection& i) {
  i.id = db::insert(connection,
                    "INSERT INTO inspections (application_id, scheduled_for, status, scheduled_by, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    i.application_id, i.scheduled_for, i.status, i.scheduled_by, i.created_at);
}

void update_inspection(db::Connection& connection, const Inspection& i) {
  db::execute(connection, "UPDATE inspections SET status = ?, notes = ?, recorded_by = ?, recorded_at = ? WHERE id = ?",
              i.status, i.notes, i.recorded_by, i.recorded_at, i.id);
}

bool has_passed_inspection(db::Connection& connection, std::int64_t application_id) {
  return first_row(connection, "SELECT 1 FROM inspections WHERE application_id = ? AND status = 'passed' LIMIT 1",
                   db::int_column, application_id)
      .has_value();
}

std::optional<Permit> find_permit(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, std::string(kPermitColumns) + "WHERE " + kScopeClause + " AND a.id = ?3", read_permit,
                   scope.citizen_id, scope.department_code, id);
}

void insert_permit(db::Connection& connection, Permit& p) {
  p.id = db::insert(
      connection,
      "INSERT INTO permits (application_id, citizen_id, permit_type, department_code, status, event_version, "
      "issued_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      p.application_id, p.citizen_id, p.permit_type, p.department_code, p.status, p.event_version, p.issued_at,
      p.issued_by);
}

void update_permit(db::Connection& connection, const Permit& p) {
  db::execute(connection,
              "UPDATE permits SET status = ?, event_version = ?, revoked_at = ?, revoked_by = ?, revoke_reason = ? "
              "WHERE id = ?",
              p.status, p.event_version, p.revoked_at, p.revoked_by, p.revoke_reason, p.id);
}

std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id) {
  return first_row(
      connection,
      "SELECT citizen_id, name, email, phone, address, city, postal_code, email_verified, identity_verified, "
      "is_active, event_version, last_synced_at FROM citizen_refs WHERE citizen_id = ?",
      read_citizen_ref, citizen_id);
}

bool upsert_department_ref(db::Connection& connection, const DepartmentRef& r) {
  return db::execute(
             connection,
             "INSERT INTO department_refs (code, name, event_version, last_synced_at) VALUES (?, ?, ?, ?) "
             "ON CONFLICT (code) DO UPDATE SET name = excluded.name, event_version = excluded.event_version, "
             "last_synced_at = excluded.last_synced_at WHERE excluded.event_version > department_refs.event_version",
             r.code, r.name, r.event_version, r.last_synced_at) > 0;
}

std::optional<DepartmentRef> find_department_ref(db::Connection& connection, const std::string& code) {
  return first_row(connection, "SELECT code, name, event_version, last_synced_at FROM department_refs WHERE code = ?",
                   read_department_ref, code);
}

}  // namespace townhall::permits::store
