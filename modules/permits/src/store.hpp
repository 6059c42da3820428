#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "townhall/permits/events.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/page_cursor.hpp"
#include "townhall/platform/row.hpp"

// permits.db's SQL. Every read of applications and permits takes a Scope: the seeds'
// row-level rule lives here, so no route can forget it.
namespace townhall::permits::store {

// Which rows a caller may see: a citizen their own, staff their department's, admins all.
struct Scope {
  std::optional<std::int64_t> citizen_id;
  std::optional<std::string> department_code;
  static Scope everything() { return {}; }
};

struct Applicant {
  std::optional<std::string> name;
  std::optional<std::string> phone;
  std::string synced_at;
};

// An application row: what its events carry (the contract's snapshot) and what stays here.
struct Application : events::ApplicationSnapshot {
  std::string description;
  std::optional<std::string> invoice_id;
  std::optional<std::int64_t> decided_by;
  std::int64_t event_version = 1;
  std::optional<std::string> decided_at;
  std::optional<Applicant> applicant;  // from citizen_refs, when synced
  std::optional<std::int64_t> permit_id;
  std::optional<std::int64_t> permit_type_version;  // NULL: submitted before types had versions (the first)
};

std::optional<Application> find_application(db::Connection& connection, std::int64_t id, const Scope& scope);
struct ApplicationFilter {
  std::optional<std::string> status;
  std::optional<std::string> department_code;
};
// The applications in `scope` that `filter` keeps, newest first.
db::KeysetList<Application> applications(const Scope& scope, const ApplicationFilter& filter);
void insert_application(db::Connection& connection, Application& application);  // fills id
void update_application(db::Connection& connection, const Application& application);

struct Inspection {
  std::int64_t id = 0;
  std::int64_t application_id = 0;
  std::string scheduled_for;
  std::string status;
  std::optional<std::string> notes;
  std::int64_t scheduled_by = 0;
  std::optional<std::int64_t> recorded_by;
  std::string created_at;
  std::optional<std::string> recorded_at;
};
std::optional<Inspection> find_inspection(db::Connection& connection, std::int64_t id);
void insert_inspection(db::Connection& connection, Inspection& inspection);
void update_inspection(db::Connection& connection, const Inspection& inspection);
bool has_passed_inspection(db::Connection& connection, std::int64_t application_id);
// An application's inspections in id order: up to `limit` past `after`.
std::vector<Inspection> list_inspections(db::Connection& connection, std::int64_t application_id,
                                         const std::optional<PageAfter>& after, int limit);
std::int64_t count_inspections(db::Connection& connection, std::int64_t application_id);

// A permit row: its events' snapshot (also what GET /permits/{id} shows) and who acted.
struct Permit : events::PermitSnapshot {
  std::int64_t event_version = 1;
  std::int64_t issued_by = 0;
  std::optional<std::int64_t> revoked_by;
};
std::optional<Permit> find_permit(db::Connection& connection, std::int64_t id, const Scope& scope);
void insert_permit(db::Connection& connection, Permit& permit);
void update_permit(db::Connection& connection, const Permit& permit);

// A permit type as of one version (issue 26.5): the highest version is the current one.
struct PermitTypeVersion {
  std::string permit_type;
  std::int64_t version = 1;
  std::int64_t fee_cents = 0;
  std::string currency;
  bool inspection_required = false;
  bool active = true;
  std::optional<std::int64_t> changed_by;  // NULL: seeded from the registry
  std::string changed_at;
};
// The current version, or the given one.
std::optional<PermitTypeVersion> find_permit_type(db::Connection& connection, const std::string& permit_type,
                                                  std::optional<std::int64_t> version = std::nullopt);
// Current versions in code order past `after` (its key), active ones only unless `all`.
std::vector<PermitTypeVersion> list_permit_types(db::Connection& connection, bool all,
                                                 const std::optional<PageAfter>& after, int limit);
std::int64_t count_permit_types(db::Connection& connection, bool all);
// Every version of one type, newest first.
std::vector<PermitTypeVersion> permit_type_history(db::Connection& connection, const std::string& permit_type);
void insert_permit_type_version(db::Connection& connection, const PermitTypeVersion& version);

// Reports (issue 26.3): applications submitted on the UTC days [first_day, end_day)
// ("YYYY-MM-DD"), counted by day in application_days (migration 0006, kept by triggers),
// streamed to `row` as (department, status, decision-time bucket, applications): bucket
// -1 is undecided, 0 decided within a second, b >= 1 within [1.02^(b-1), 1.02^b) seconds.
// Reads days, not applications (issue 24).
void each_submitted_day(db::Connection& connection, const std::string& first_day, const std::string& end_day,
                        const std::optional<std::string>& department_code,
                        const std::function<void(const std::string& department, const std::string& status,
                                                 std::int64_t bucket, std::int64_t applications)>& row);
// What application_days should hold, computed from the applications themselves (the
// consistency check's side; reads every application): its columns in table order.
extern const char* const kApplicationDaysFromRows;

// Caches (sync role).
struct CitizenRef {
  std::int64_t citizen_id = 0;
  std::optional<std::string> name, email, phone, address, city, postal_code;
  bool email_verified = false;
  bool identity_verified = false;
  bool is_active = true;
  std::int64_t event_version = 0;
  std::string last_synced_at;
};
// The cache row (written by auth::CitizenRefTable, townhall/auth/citizen_refs.hpp).
std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id);

struct DepartmentRef {
  std::string code;
  std::string name;
  std::int64_t event_version = 0;
  std::string last_synced_at;
  bool is_active = true;  // false: no new applications (migration 0003)
};
bool upsert_department_ref(db::Connection& connection, const DepartmentRef& ref);
std::optional<DepartmentRef> find_department_ref(db::Connection& connection, const std::string& code);

}  // namespace townhall::permits::store
