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
    "a.updated_at, a.decided_at, c.name, c.phone, c.last_synced_at, p.id, a.permit_type_version "
    "FROM applications a LEFT JOIN citizen_refs c ON c.citizen_id = a.citizen_id "
    "LEFT JOIN permits p ON p.application_id = a.id ";

Application read_application(SQLite::Statement& row) {
  Application a;
  Applicant applicant;
  std::optional<std::string> synced_at;  // NULL when the citizen has no cached copy
  read_columns(row, a.id, a.citizen_id, a.permit_type, a.description, a.property_address, a.department_code, a.status,
               a.fee_cents, a.currency, a.invoice_id, a.decision_reason, a.decided_by, a.event_version, a.submitted_at,
               a.updated_at, a.decided_at, applicant.name, applicant.phone, synced_at, a.permit_id,
               a.permit_type_version);
  if (synced_at) {
    applicant.synced_at = std::move(*synced_at);
    a.applicant = std::move(applicant);
  }
  return a;
}

// The permits.db rows read below, each column named beside its member.
constexpr auto kPermits = db::columns<Permit>(
    "permits a", "a.id", &Permit::id, "a.application_id", &Permit::application_id, "a.citizen_id", &Permit::citizen_id,
    "a.permit_type", &Permit::permit_type, "a.department_code", &Permit::department_code, "a.status", &Permit::status,
    "a.event_version", &Permit::event_version, "a.issued_at", &Permit::issued_at, "a.issued_by", &Permit::issued_by,
    "a.revoked_at", &Permit::revoked_at, "a.revoked_by", &Permit::revoked_by, "a.revoke_reason",
    &Permit::revoke_reason);

constexpr auto kInspections = db::columns<Inspection>(
    "inspections", "id", &Inspection::id, "application_id", &Inspection::application_id, "scheduled_for",
    &Inspection::scheduled_for, "status", &Inspection::status, "notes", &Inspection::notes, "scheduled_by",
    &Inspection::scheduled_by, "recorded_by", &Inspection::recorded_by, "created_at", &Inspection::created_at,
    "recorded_at", &Inspection::recorded_at);

constexpr auto kCitizenRefs = db::columns<CitizenRef>(
    "citizen_refs", "citizen_id", &CitizenRef::citizen_id, "name", &CitizenRef::name, "email", &CitizenRef::email,
    "phone", &CitizenRef::phone, "address", &CitizenRef::address, "city", &CitizenRef::city, "postal_code",
    &CitizenRef::postal_code, "email_verified", &CitizenRef::email_verified, "identity_verified",
    &CitizenRef::identity_verified, "is_active", &CitizenRef::is_active, "event_version", &CitizenRef::event_version,
    "last_synced_at", &CitizenRef::last_synced_at);

constexpr auto kPermitTypes = db::columns<PermitTypeVersion>(
    "permit_type_versions v", "v.permit_type", &PermitTypeVersion::permit_type, "v.version",
    &PermitTypeVersion::version, "v.fee_cents", &PermitTypeVersion::fee_cents, "v.currency",
    &PermitTypeVersion::currency, "v.inspection_required", &PermitTypeVersion::inspection_required, "v.active",
    &PermitTypeVersion::active, "v.changed_by", &PermitTypeVersion::changed_by, "v.changed_at",
    &PermitTypeVersion::changed_at);

// The current version of each type: no higher version of it exists.
constexpr const char* kCurrentVersion =
    "v.version = (SELECT max(h.version) FROM permit_type_versions h WHERE h.permit_type = v.permit_type)";

constexpr auto kDepartmentRefs =
    db::columns<DepartmentRef>("department_refs", "code", &DepartmentRef::code, "name", &DepartmentRef::name,
                               "event_version", &DepartmentRef::event_version, "last_synced_at",
                               &DepartmentRef::last_synced_at, "is_active", &DepartmentRef::is_active);

}  // namespace

std::optional<Application> find_application(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, std::string(kApplicationSelect) + "WHERE " + kScopeClause + " AND a.id = ?3",
                   read_application, scope.citizen_id, scope.department_code, id);
}

db::KeysetList<Application> applications(const Scope& scope, const ApplicationFilter& filter) {
  db::KeysetList<Application> list{.select = kApplicationSelect,
                                   .from = "FROM applications a",
                                   .past = "a.id < ?",  // newest first
                                   .order = "ORDER BY a.id DESC",
                                   .read = read_application};
  list.where.add_if(scope.citizen_id, "a.citizen_id = ?");
  list.where.add_if(scope.department_code, "a.department_code = ?");
  list.where.add_if(filter.status, "a.status = ?");
  list.where.add_if(filter.department_code, "a.department_code = ?");
  return list;
}

void insert_application(db::Connection& connection, Application& a) {
  a.id = db::insert_row(connection, "applications", "citizen_id", a.citizen_id, "permit_type", a.permit_type,
                        "description", a.description, "property_address", a.property_address, "department_code",
                        a.department_code, "status", a.status, "fee_cents", a.fee_cents, "currency", a.currency,
                        "event_version", a.event_version, "submitted_at", a.submitted_at, "updated_at", a.updated_at,
                        "permit_type_version", a.permit_type_version);
}

void update_application(db::Connection& connection, const Application& a) {
  db::execute(
      connection,
      "UPDATE applications SET status = ?, invoice_id = ?, decision_reason = ?, decided_by = ?, event_version = ?, "
      "updated_at = ?, decided_at = ? WHERE id = ?",
      a.status, a.invoice_id, a.decision_reason, a.decided_by, a.event_version, a.updated_at, a.decided_at, a.id);
}

std::optional<Inspection> find_inspection(db::Connection& connection, std::int64_t id) {
  return first_row(connection, kInspections.select() + "WHERE id = ?", kInspections.reader(), id);
}

std::vector<Inspection> list_inspections(db::Connection& connection, std::int64_t application_id,
                                         const std::optional<PageAfter>& after, int limit) {
  db::Filter where;
  where.add("application_id = ?", {application_id});
  if (after) where.add("id > ?", {after->id});
  return db::filtered_rows(connection, kInspections.select(), where, "ORDER BY id", limit, kInspections.reader());
}

std::int64_t count_inspections(db::Connection& connection, std::int64_t application_id) {
  db::Filter where;
  where.add("application_id = ?", {application_id});
  return db::filtered_count(connection, "FROM inspections", where);
}

void insert_inspection(db::Connection& connection, Inspection& i) {
  i.id = db::insert_row(connection, "inspections", "application_id", i.application_id, "scheduled_for", i.scheduled_for,
                        "status", i.status, "scheduled_by", i.scheduled_by, "created_at", i.created_at);
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
  return first_row(connection, kPermits.select() + "WHERE " + kScopeClause + " AND a.id = ?3", kPermits.reader(),
                   scope.citizen_id, scope.department_code, id);
}

void insert_permit(db::Connection& connection, Permit& p) {
  p.id = db::insert_row(connection, "permits", "application_id", p.application_id, "citizen_id", p.citizen_id,
                        "permit_type", p.permit_type, "department_code", p.department_code, "status", p.status,
                        "event_version", p.event_version, "issued_at", p.issued_at, "issued_by", p.issued_by);
}

void update_permit(db::Connection& connection, const Permit& p) {
  db::execute(connection,
              "UPDATE permits SET status = ?, event_version = ?, revoked_at = ?, revoked_by = ?, revoke_reason = ? "
              "WHERE id = ?",
              p.status, p.event_version, p.revoked_at, p.revoked_by, p.revoke_reason, p.id);
}

std::optional<PermitTypeVersion> find_permit_type(db::Connection& connection, const std::string& permit_type,
                                                  std::optional<std::int64_t> version) {
  if (version)
    return first_row(connection, kPermitTypes.select() + "WHERE v.permit_type = ? AND v.version = ?",
                     kPermitTypes.reader(), permit_type, *version);
  return first_row(connection, kPermitTypes.select() + "WHERE v.permit_type = ? ORDER BY v.version DESC LIMIT 1",
                   kPermitTypes.reader(), permit_type);
}

std::vector<PermitTypeVersion> list_permit_types(db::Connection& connection, bool all,
                                                 const std::optional<PageAfter>& after, int limit) {
  db::Filter where;
  where.add(kCurrentVersion, {});
  if (!all) where.add("v.active = 1", {});
  if (after) where.add("v.permit_type > ?", {after->key});
  return db::filtered_rows(connection, kPermitTypes.select(), where, "ORDER BY v.permit_type", limit,
                           kPermitTypes.reader());
}

std::int64_t count_permit_types(db::Connection& connection, bool all) {
  db::Filter where;
  where.add(kCurrentVersion, {});
  if (!all) where.add("v.active = 1", {});
  return db::filtered_count(connection, "FROM permit_type_versions v", where);
}

std::vector<PermitTypeVersion> permit_type_history(db::Connection& connection, const std::string& permit_type) {
  return all_rows(connection, kPermitTypes.select() + "WHERE v.permit_type = ? ORDER BY v.version DESC",
                  kPermitTypes.reader(), permit_type);
}

void insert_permit_type_version(db::Connection& connection, const PermitTypeVersion& v) {
  db::insert_row(connection, "permit_type_versions", "permit_type", v.permit_type, "version", v.version, "fee_cents",
                 v.fee_cents, "currency", v.currency, "inspection_required", v.inspection_required, "active", v.active,
                 "changed_by", v.changed_by, "changed_at", v.changed_at);
}

void each_submitted_day(
    db::Connection& connection, const std::string& first_day, const std::string& end_day,
    const std::optional<std::string>& department_code,
    const std::function<void(const std::string&, const std::string&, std::int64_t, std::int64_t)>& row) {
  // Two statements, not "?3 IS NULL OR": only a plain equality lets a department's report
  // search application_days_department instead of reading every department's days.
  constexpr const char* kColumns = "SELECT department_code, status, bucket, applications FROM application_days ";
  auto query = department_code
                   ? connection.prepare(std::string(kColumns) + "WHERE department_code = ?3 AND day >= ?1 AND day < ?2")
                   : connection.prepare(std::string(kColumns) + "WHERE day >= ?1 AND day < ?2");
  if (department_code)
    db::bind_params(query, first_day, end_day, *department_code);
  else
    db::bind_params(query, first_day, end_day);
  while (query.executeStep())
    row(query.getColumn(0).getString(), query.getColumn(1).getString(), query.getColumn(2).getInt64(),
        query.getColumn(3).getInt64());
}

// The bucket rule of migration 0006's triggers, over the rows.
const char* const kApplicationDaysFromRows =
    "SELECT substr(submitted_at, 1, 10), department_code, status, "
    "CASE WHEN decided_at IS NULL THEN -1 "
    "WHEN (julianday(decided_at) - julianday(submitted_at)) * 86400.0 < 1.0 THEN 0 "
    "ELSE 1 + CAST(floor(ln((julianday(decided_at) - julianday(submitted_at)) * 86400.0) / ln(1.02)) AS INTEGER) END, "
    "count(*) FROM applications GROUP BY 1, 2, 3, 4";

std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id) {
  return first_row(connection, kCitizenRefs.select() + "WHERE citizen_id = ?", kCitizenRefs.reader(), citizen_id);
}

bool upsert_department_ref(db::Connection& connection, const DepartmentRef& r) {
  return db::execute(connection,
                     "INSERT INTO department_refs (code, name, event_version, last_synced_at, is_active) VALUES (?, ?, "
                     "?, ?, ?) "
                     "ON CONFLICT (code) DO UPDATE SET name = excluded.name, event_version = excluded.event_version, "
                     "last_synced_at = excluded.last_synced_at, is_active = excluded.is_active "
                     "WHERE excluded.event_version > department_refs.event_version",
                     r.code, r.name, r.event_version, r.last_synced_at, r.is_active) > 0;
}

std::optional<DepartmentRef> find_department_ref(db::Connection& connection, const std::string& code) {
  return first_row(connection, kDepartmentRefs.select() + "WHERE code = ?", kDepartmentRefs.reader(), code);
}

}  // namespace townhall::permits::store
