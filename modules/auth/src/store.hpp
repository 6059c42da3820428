#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "townhall/auth/api.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/page_cursor.hpp"
#include "townhall/platform/row.hpp"

// auth.db's SQL, one function per statement or small group. Callers own transactions;
// writes run on the module's writer thread with a service-role connection.
namespace townhall::auth::store {

struct CitizenRow {
  Citizen citizen;
  std::string password_hash;
  std::optional<std::string> national_id_sealed;
  std::optional<std::string> national_id_digest;  // keyed digest (SecretBox::digest)
  std::optional<std::string> deleted_at;
  std::int64_t change_seq = 0;
};

std::optional<CitizenRow> find_citizen(db::Connection& connection, std::int64_t id);
std::optional<CitizenRow> find_active_citizen_by_email(db::Connection& connection, const std::string& email);
// True when an active citizen or any employee has this email.
bool email_in_use(db::Connection& connection, const std::string& email, std::int64_t except_citizen = 0);
// True when an active citizen other than `except_citizen` has this national id digest.
bool national_id_in_use(db::Connection& connection, const std::string& digest, std::int64_t except_citizen = 0);
// The active citizen other than `except_citizen` whose verified identity has this national
// id digest (at most one: auth migration 0007's unique index).
std::optional<std::int64_t> verified_national_id_holder(db::Connection& connection, const std::string& digest,
                                                        std::int64_t except_citizen);
// Every active citizen claiming the national id citizen `id` holds, `id` included, oldest
// first (staff settle competing claims).
struct NationalIdClaim {
  std::int64_t citizen_id = 0;
  bool identity_verified = false;
  std::string created_at;
};
std::vector<NationalIdClaim> national_id_claims(db::Connection& connection, std::int64_t id);
// How many times citizen `id`'s national id was set at or after `since` (audit_log).
std::int64_t national_id_changes_since(db::Connection& connection, std::int64_t id, const std::string& since);
// Active citizens whose national id has no digest yet (written before digests existed).
std::vector<std::pair<std::int64_t, std::string>> sealed_ids_without_digest(db::Connection& connection, int limit);
void set_national_id_digest(db::Connection& connection, std::int64_t id, const std::string& digest);
// One sealed national id (any citizen's, deleted ones too), to test a key against.
std::optional<std::string> any_sealed_national_id(db::Connection& connection);
// The key check value stored beside the sealed rows (migration 0006); nullopt before the
// first start with a key.
std::optional<std::string> key_check_value(db::Connection& connection);
void insert_key_check_value(db::Connection& connection, const std::string& check_value, const std::string& now);
// Inserts with event_version 1; fills row.citizen.id.
void insert_citizen(db::Connection& connection, CitizenRow& row);
// Writes row's mutable columns (including event_version and change_seq); `stored` is the
// row as read, so that indexed columns are written only when they changed.
void update_citizen(db::Connection& connection, const CitizenRow& stored, const CitizenRow& row);
std::int64_t next_change_seq(db::Connection& connection);

struct CitizenFilter {
  std::optional<std::string> email;  // exact (normalized)
  std::optional<std::string> name;   // case-insensitive substring
  bool include_deleted = false;
  bool none = false;  // a filter no citizen can match (an email that cannot be one)
};
// The citizens `filter` keeps, in id order. A name filter is a substring search no index
// serves: a page reads citizens in id order until it fills.
db::KeysetList<Citizen> citizens(const CitizenFilter& filter);
std::vector<CitizenVersion> citizen_versions(db::Connection& connection, std::int64_t after_id, int limit,
                                             const CitizenFields& fields);
consistency::Digest citizen_digest(db::Connection& connection, std::int64_t from_id, std::int64_t to_id,
                                   const CitizenFields& fields);
CitizenChanges citizens_since(db::Connection& connection, std::int64_t change_seq, int limit);

struct Department {
  std::string code;
  std::string name;
  std::int64_t event_version = 1;
  std::string created_at;
  std::string updated_at;
  bool is_active = true;  // migration 0011: an inactive one takes no new permit applications
};
std::optional<Department> find_department(db::Connection& connection, const std::string& code);
void insert_department(db::Connection& connection, const Department& department);
void update_department(db::Connection& connection, const Department& department);
std::vector<Department> list_departments(db::Connection& connection);

struct EmployeeRow {
  std::int64_t id = 0;
  std::string email;
  std::string password_hash;
  std::string name;
  std::optional<std::string> department_code;
  bool is_active = true;
  std::int64_t event_version = 1;
  std::string created_at;
  std::string updated_at;
};
std::optional<EmployeeRow> find_employee(db::Connection& connection, std::int64_t id);
std::optional<EmployeeRow> find_employee_by_email(db::Connection& connection, const std::string& email);
void insert_employee(db::Connection& connection, EmployeeRow& row);  // fills row.id
void update_employee(db::Connection& connection, const EmployeeRow& row);

// GET /employees' filters, each served by an index (migration 0011).
struct EmployeeFilter {
  // ?q=: employees whose email or name starts with it (case-insensitive).
  std::optional<std::string> search;
  std::optional<std::string> department_code;
  std::optional<std::string> role;
  std::optional<bool> active;
};
// The employees `filter` keeps, in id order.
db::KeysetList<EmployeeRow> employees(const EmployeeFilter& filter);

bool role_exists(db::Connection& connection, const std::string& role);
std::vector<std::string> roles_of(db::Connection& connection, Principal::Kind kind, std::int64_t id);
void set_roles(db::Connection& connection, Principal::Kind kind, std::int64_t id,
               const std::vector<std::string>& roles);
std::vector<std::string> permissions_of(db::Connection& connection, const std::vector<std::string>& roles);

struct Session {
  Principal::Kind kind = Principal::Kind::citizen;
  std::int64_t principal_id = 0;
  std::string expires_at;
  std::optional<std::string> revoked_at;
};
void insert_session(db::Connection& connection, const std::string& token_hash, const Session& session,
                    const std::string& created_at, const std::string& client_ip);
std::optional<Session> find_session(db::Connection& connection, const std::string& token_hash);
bool revoke_session(db::Connection& connection, const std::string& token_hash, const std::string& now);
int revoke_sessions_of(db::Connection& connection, Principal::Kind kind, std::int64_t id, const std::string& now);
// Every live session of the account but the one whose hash is `kept_token_hash`.
int revoke_other_sessions_of(db::Connection& connection, Principal::Kind kind, std::int64_t id,
                             const std::string& kept_token_hash, const std::string& now);
// A live session as its own account sees it: never its token nor the token's hash.
// `public_id` is the hash's first 16 hex digits: it names the session and opens nothing.
struct SessionListing {
  std::string public_id, created_at, expires_at;
  std::optional<std::string> client_ip;
  bool current = false;  // the caller's own (set by the service)
};
// The account's sessions neither revoked nor expired at `now`, in (created_at, id) order:
// up to `limit` past `after` (its key "<created_at> <public_id>").
std::vector<SessionListing> list_live_sessions(db::Connection& connection, Principal::Kind kind, std::int64_t id,
                                               const std::string& now, const std::optional<PageAfter>& after,
                                               int limit);
std::int64_t count_live_sessions(db::Connection& connection, Principal::Kind kind, std::int64_t id,
                                 const std::string& now);
// Deletes sessions that expired or were revoked before `before`.
int prune_sessions(db::Connection& connection, const std::string& before);

// An account that can sign in, citizen or employee, with what checks its password.
struct Account {
  Principal::Kind kind = Principal::Kind::citizen;
  std::int64_t id = 0;
  std::string email;
  std::string password_hash;
};
// "citizen:42", "employee:7": the account as audit rows name it.
std::string subject_of(Principal::Kind kind, std::int64_t id);
// An active account: an active employee, or a citizen not deleted. By email, an
// employee first, then a citizen (as login looks them up; emails are unique across both).
std::optional<Account> find_active_account(db::Connection& connection, Principal::Kind kind, std::int64_t id);
std::optional<Account> find_active_account_by_email(db::Connection& connection, const std::string& email);
// Replaces the account's password hash; false when there is no such row.
bool set_password_hash(db::Connection& connection, Principal::Kind kind, std::int64_t id, const std::string& hash);

// A password reset token, by the SHA-256 of the token. Only a token to be mailed is kept,
// sealed with auth.key (migration 0009), until it is used or expires.
struct PasswordReset {
  Principal::Kind kind = Principal::Kind::citizen;
  std::int64_t principal_id = 0;
  std::string issued_by;
  std::string created_at;
  std::string expires_at;
  std::optional<std::string> used_at;
  std::optional<std::string> sealed_token;
};
void insert_password_reset(db::Connection& connection, const std::string& token_hash, const PasswordReset& reset);
std::optional<PasswordReset> find_password_reset(db::Connection& connection, const std::string& token_hash);
// The sealed copy of a used token is no longer needed: dropped when it is used.
// Deletes the account's reset tokens not used yet (a new one replaces them).
int delete_unused_password_resets_of(db::Connection& connection, Principal::Kind kind, std::int64_t id);
// Marks the token used when it is unused and unexpired at `now`; false otherwise. The
// one statement that makes a token single use: of two confirmations, one changes the row.
bool use_password_reset(db::Connection& connection, const std::string& token_hash, const std::string& now);
// Deletes reset tokens that expired before `before`.
int prune_password_resets(db::Connection& connection, const std::string& before);

struct AuditEntry {
  std::string actor;
  std::string action;
  std::string subject;
  std::optional<std::string> purpose;
  std::string correlation_id;
  std::optional<std::string> detail;
};
void audit(db::Connection& connection, const AuditEntry& entry, const std::string& at);

// An audit_log row as GET /audit shows it and the retention job exports it, with the
// actor's email when the actor is an account ("employee:7", "citizen:42") that exists.
struct AuditRow {
  std::int64_t id = 0;
  std::string at;
  std::string actor;
  std::string action;
  std::string subject;
  std::optional<std::string> purpose;
  std::optional<std::string> correlation_id;
  std::optional<std::string> detail;
  std::optional<std::string> actor_email;
};
// GET /audit's filters (each through an index: migration 0011 and audit_log_subject).
struct AuditFilter {
  std::optional<std::string> actor;    // "employee:7"
  std::optional<std::string> subject;  // "citizen:42"
  std::optional<std::string> action;
  std::optional<std::string> from;  // at >= from (stored form)
  std::optional<std::string> to;    // at < to
};
// Newest first, (at, id) descending: up to `limit` rows past `after` (key: at).
std::vector<AuditRow> list_audit(db::Connection& connection, const AuditFilter& filter,
                                 const std::optional<PageAfter>& after, int limit);
std::int64_t count_audit(db::Connection& connection, const AuditFilter& filter);
// The oldest rows written before `before`, oldest first, at most `limit` (retention).
std::vector<AuditRow> audit_before(db::Connection& connection, const std::string& before, int limit);
// Deletes the rows written before `before` up to `last` in (at, id) order: those
// audit_before read, `last` its last row.
int delete_audit_through(db::Connection& connection, const std::string& before, const PageAfter& last);
std::int64_t count_audit(db::Connection& connection, const std::string& action, const std::string& subject);

}  // namespace townhall::auth::store
