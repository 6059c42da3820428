#include "store.hpp"

#include <algorithm>
#include <map>

#include "townhall/platform/row.hpp"

namespace townhall::auth::store {
namespace {

constexpr const char* kCitizenColumns =
    "id, email, name, phone, address, city, postal_code, national_id_sealed IS NOT NULL, email_verified, "
    "identity_verified, is_active, event_version, created_at, updated_at, password_hash, national_id_sealed, "
    "deleted_at, change_seq, national_id_digest";

using db::all_rows;
using db::bind_params;
using db::blob;
using db::first_row;
using db::read_columns;
using db::single_int;

CitizenRow read_citizen(SQLite::Statement& row) {
  CitizenRow out;
  auto& c = out.citizen;
  read_columns(row, c.id, c.email, c.name, c.phone, c.address, c.city, c.postal_code, c.has_national_id,
               c.email_verified, c.identity_verified, c.is_active, c.event_version, c.created_at, c.updated_at,
               out.password_hash, out.national_id_sealed, out.deleted_at, out.change_seq, out.national_id_digest);
  return out;
}

Citizen read_public(SQLite::Statement& row) { return read_citizen(row).citizen; }

EmployeeRow read_employee(SQLite::Statement& row) {
  EmployeeRow e;
  read_columns(row, e.id, e.email, e.password_hash, e.name, e.department_code, e.is_active, e.event_version,
               e.created_at, e.updated_at);
  return e;
}

constexpr const char* kEmployeeColumns =
    "id, email, password_hash, name, department_code, is_active, event_version, created_at, updated_at";

Department read_department(SQLite::Statement& row) {
  Department d;
  read_columns(row, d.code, d.name, d.event_version, d.created_at, d.updated_at, d.is_active);
  return d;
}

constexpr const char* kDepartmentSelect =
    "SELECT code, name, event_version, created_at, updated_at, is_active FROM departments ";

// "employee" or "citizen", as sessions and password resets store it.
Principal::Kind principal_kind(const std::string& kind) {
  return kind == "employee" ? Principal::Kind::employee : Principal::Kind::citizen;
}

NationalIdClaim read_claim(SQLite::Statement& row) {
  NationalIdClaim claim;
  read_columns(row, claim.citizen_id, claim.identity_verified, claim.created_at);
  return claim;
}

std::pair<std::int64_t, std::string> read_sealed_id(SQLite::Statement& row) {
  std::pair<std::int64_t, std::string> sealed;
  read_columns(row, sealed.first, sealed.second);  // the BLOB's bytes
  return sealed;
}

Session read_session(SQLite::Statement& row) {
  Session session;
  std::string kind;
  read_columns(row, kind, session.principal_id, session.expires_at, session.revoked_at);
  session.kind = principal_kind(kind);
  return session;
}

PasswordReset read_password_reset(SQLite::Statement& row) {
  PasswordReset reset;
  std::string kind;
  read_columns(row, kind, reset.principal_id, reset.issued_by, reset.created_at, reset.expires_at, reset.used_at,
               reset.sealed_token);
  reset.kind = principal_kind(kind);
  return reset;
}

// A list of one table's rows (`columns` of `from`, "FROM citizens") in id order.
template <class T>
db::KeysetList<T> in_id_order(std::string_view columns, std::string_view from, T (*read)(SQLite::Statement&)) {
  return {.select = "SELECT " + std::string(columns) + " " + std::string(from),
          .from = from,
          .past = "id > ?",
          .order = "ORDER BY id",
          .read = read};
}

}  // namespace

std::optional<CitizenRow> find_citizen(db::Connection& connection, std::int64_t id) {
  return first_row(connection, std::string("SELECT ") + kCitizenColumns + " FROM citizens WHERE id = ?", read_citizen,
                   id);
}

std::optional<CitizenRow> find_active_citizen_by_email(db::Connection& connection, const std::string& email) {
  return first_row(connection,
                   std::string("SELECT ") + kCitizenColumns + " FROM citizens WHERE email = ? AND deleted_at IS NULL",
                   read_citizen, email);
}

bool email_in_use(db::Connection& connection, const std::string& email, std::int64_t except_citizen) {
  return single_int(connection,
                    "SELECT EXISTS (SELECT 1 FROM citizens WHERE email = ?1 AND deleted_at IS NULL AND id <> ?2) "
                    "OR EXISTS (SELECT 1 FROM employees WHERE email = ?1)",
                    email, except_citizen) != 0;
}

bool national_id_in_use(db::Connection& connection, const std::string& digest, std::int64_t except_citizen) {
  return single_int(
             connection,
             "SELECT EXISTS (SELECT 1 FROM citizens WHERE national_id_digest = ? AND deleted_at IS NULL AND id <> ?)",
             blob(digest), except_citizen) != 0;
}

std::optional<std::int64_t> verified_national_id_holder(db::Connection& connection, const std::string& digest,
                                                        std::int64_t except_citizen) {
  return first_row(
      connection,
      "SELECT id FROM citizens WHERE national_id_digest = ? AND deleted_at IS NULL AND identity_verified = 1 "
      "AND id <> ? LIMIT 1",
      db::int_column, blob(digest), except_citizen);
}

std::vector<NationalIdClaim> national_id_claims(db::Connection& connection, std::int64_t id) {
  return all_rows(connection,
                  "SELECT c.id, c.identity_verified, c.created_at FROM citizens c JOIN citizens me ON me.id = ? "
                  "WHERE me.national_id_digest IS NOT NULL AND c.national_id_digest = me.national_id_digest "
                  "AND c.deleted_at IS NULL ORDER BY c.created_at, c.id LIMIT 100",
                  read_claim, id);
}

std::int64_t national_id_changes_since(db::Connection& connection, std::int64_t id, const std::string& since) {
  return single_int(
      connection, "SELECT count(*) FROM audit_log WHERE subject = ? AND action = 'citizen.national_id.set' AND at >= ?",
      "citizen:" + std::to_string(id), since);
}

std::vector<std::pair<std::int64_t, std::string>> sealed_ids_without_digest(db::Connection& connection, int limit) {
  return all_rows(
      connection,
      "SELECT id, national_id_sealed FROM citizens WHERE national_id_sealed IS NOT NULL AND national_id_digest IS "
      "NULL AND deleted_at IS NULL ORDER BY id LIMIT ?",
      read_sealed_id, limit);
}

std::optional<std::string> any_sealed_national_id(db::Connection& connection) {
  return first_row(connection, "SELECT national_id_sealed FROM citizens WHERE national_id_sealed IS NOT NULL LIMIT 1",
                   db::text_column);  // the BLOB's bytes
}

std::optional<std::string> key_check_value(db::Connection& connection) {
  return first_row(connection, "SELECT check_value FROM key_check WHERE id = 1", db::text_column);  // BLOB bytes
}

void insert_key_check_value(db::Connection& connection, const std::string& check_value, const std::string& now) {
  db::execute(connection, "INSERT INTO key_check (id, check_value, created_at) VALUES (1, ?, ?)", blob(check_value),
              now);
}

void set_national_id_digest(db::Connection& connection, std::int64_t id, const std::string& digest) {
  db::execute(connection, "UPDATE citizens SET national_id_digest = ? WHERE id = ?", blob(digest), id);
}

std::int64_t next_change_seq(db::Connection& connection) {
  return single_int(connection, "SELECT coalesce(max(change_seq), 0) + 1 FROM citizens");
}

void insert_citizen(db::Connection& connection, CitizenRow& row) {
  const auto& c = row.citizen;
  row.citizen.id = db::insert(
      connection,
      "INSERT INTO citizens (email, password_hash, name, phone, address, city, postal_code, national_id_sealed, "
      "email_verified, identity_verified, is_active, event_version, change_seq, created_at, updated_at, "
      "national_id_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
      c.email, row.password_hash, c.name, c.phone, c.address, c.city, c.postal_code, blob(row.national_id_sealed),
      c.email_verified, c.identity_verified, c.event_version, row.change_seq, c.created_at, c.updated_at,
      blob(row.national_id_digest));
}

void update_citizen(db::Connection& connection, const CitizenRow& stored, const CitizenRow& row) {
  const auto& was = stored.citizen;
  const auto& c = row.citizen;
  // Indexed columns, and those a partial index's WHERE reads, only when they changed.
  db::update_row(
      connection, "citizens", "id = ?", c.id, db::set_if_changed("email", was.email, c.email),
      db::set("password_hash", row.password_hash), db::set_if_changed("name", was.name, c.name),
      db::set("phone", c.phone), db::set("address", c.address), db::set("city", c.city),
      db::set("postal_code", c.postal_code),
      db::set_if_changed("national_id_sealed", blob(stored.national_id_sealed), blob(row.national_id_sealed)),
      db::set("email_verified", c.email_verified),
      db::set_if_changed("identity_verified", was.identity_verified, c.identity_verified),
      db::set("is_active", c.is_active), db::set("event_version", c.event_version),
      db::set("change_seq", row.change_seq), db::set("updated_at", c.updated_at),
      db::set_if_changed("deleted_at", stored.deleted_at, row.deleted_at),
      db::set_if_changed("national_id_digest", blob(stored.national_id_digest), blob(row.national_id_digest)));
}

db::KeysetList<Citizen> citizens(const CitizenFilter& filter) {
  auto list = in_id_order(kCitizenColumns, "FROM citizens", read_public);
  if (filter.none) list.where.add("0");
  list.where.add_if(filter.email, "email = ?");
  list.where.add_if(filter.name, "instr(lower(name), lower(?)) > 0");
  if (!filter.include_deleted) list.where.add("deleted_at IS NULL");
  return list;
}

std::vector<CitizenVersion> citizen_versions(db::Connection& connection, std::int64_t after_id, int limit,
                                             const CitizenFields& fields) {
  auto query =
      connection.cached(std::string("SELECT ") + kCitizenColumns + " FROM citizens WHERE id > ? ORDER BY id LIMIT ?");
  bind_params(*query, after_id, limit);
  std::vector<CitizenVersion> out;
  while (query->executeStep()) {
    auto c = read_public(*query);
    out.push_back({c.id, c.event_version, c.is_active, cached_content(c, fields)});
  }
  return out;
}

consistency::Digest citizen_digest(db::Connection& connection, std::int64_t from_id, std::int64_t to_id,
                                   const CitizenFields& fields) {
  auto query = connection.cached(std::string("SELECT ") + kCitizenColumns +
                                 " FROM citizens WHERE id >= ? AND id < ? ORDER BY id");
  bind_params(*query, from_id, to_id);
  consistency::Digest digest;
  while (query->executeStep()) {
    auto c = read_public(*query);
    consistency::add(digest, c.id, c.event_version, cached_content(c, fields));
  }
  return digest;
}

CitizenChanges citizens_since(db::Connection& connection, std::int64_t change_seq, int limit) {
  auto query = connection.cached(std::string("SELECT ") + kCitizenColumns +
                                 " FROM citizens WHERE change_seq > ? ORDER BY change_seq LIMIT ?");
  bind_params(*query, change_seq, limit);
  CitizenChanges out;
  out.next = change_seq;
  while (query->executeStep()) {
    auto row = read_citizen(*query);
    out.next = row.change_seq;
    out.citizens.push_back(std::move(row.citizen));
  }
  return out;
}

std::optional<Department> find_department(db::Connection& connection, const std::string& code) {
  return first_row(connection, std::string(kDepartmentSelect) + "WHERE code = ?", read_department, code);
}

void insert_department(db::Connection& connection, const Department& department) {
  db::execute(connection,
              "INSERT INTO departments (code, name, event_version, created_at, updated_at, is_active) "
              "VALUES (?, ?, ?, ?, ?, ?)",
              department.code, department.name, department.event_version, department.created_at, department.updated_at,
              department.is_active);
}

void update_department(db::Connection& connection, const Department& department) {
  db::execute(connection,
              "UPDATE departments SET name = ?, event_version = ?, updated_at = ?, is_active = ? WHERE code = ?",
              department.name, department.event_version, department.updated_at, department.is_active, department.code);
}

std::vector<Department> list_departments(db::Connection& connection) {
  return all_rows(connection, std::string(kDepartmentSelect) + "ORDER BY code", read_department);
}

std::optional<EmployeeRow> find_employee(db::Connection& connection, std::int64_t id) {
  return first_row(connection, std::string("SELECT ") + kEmployeeColumns + " FROM employees WHERE id = ?",
                   read_employee, id);
}

std::optional<EmployeeRow> find_employee_by_email(db::Connection& connection, const std::string& email) {
  return first_row(connection, std::string("SELECT ") + kEmployeeColumns + " FROM employees WHERE email = ?",
                   read_employee, email);
}

void insert_employee(db::Connection& connection, EmployeeRow& row) {
  row.id = db::insert(
      connection,
      "INSERT INTO employees (email, password_hash, name, department_code, is_active, event_version, created_at, "
      "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      row.email, row.password_hash, row.name, row.department_code, row.is_active, row.event_version, row.created_at,
      row.updated_at);
}

void update_employee(db::Connection& connection, const EmployeeRow& row) {
  db::execute(connection,
              "UPDATE employees SET email = ?, password_hash = ?, name = ?, department_code = ?, is_active = ?, "
              "event_version = ?, updated_at = ? WHERE id = ?",
              row.email, row.password_hash, row.name, row.department_code, row.is_active, row.event_version,
              row.updated_at, row.id);
}

namespace {

// The upper bound of the strings that start with `prefix` (byte order, as NOCASE compares
// past ASCII): the prefix followed by the highest code point.
std::string prefix_end(const std::string& prefix) { return prefix + "\xF4\x8F\xBF\xBF"; }

}  // namespace

db::KeysetList<EmployeeRow> employees(const EmployeeFilter& filter) {
  auto list = in_id_order(kEmployeeColumns, "FROM employees", read_employee);
  if (filter.search) {
    // Two index ranges (the email's unique index, employees_name), read by id.
    std::string email = *filter.search;
    for (auto& c : email)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // emails are stored case-folded
    list.where.add(
        "id IN (SELECT id FROM employees WHERE email >= ? AND email < ? UNION ALL "
        "SELECT id FROM employees WHERE name >= ? COLLATE NOCASE AND name < ? COLLATE NOCASE)",
        {email, prefix_end(email), *filter.search, prefix_end(*filter.search)});
  }
  list.where.add_if(filter.department_code, "department_code = ?");
  list.where.add_if(filter.role,
                    "id IN (SELECT principal_id FROM user_roles WHERE role = ? AND principal_kind = 'employee')");
  if (filter.active) list.where.add("is_active = ?", {std::int64_t{*filter.active ? 1 : 0}});
  return list;
}

bool role_exists(db::Connection& connection, const std::string& role) {
  return first_row(connection, "SELECT 1 FROM roles WHERE name = ?", db::int_column, role).has_value();
}

std::vector<std::string> roles_of(db::Connection& connection, Principal::Kind kind, std::int64_t id) {
  return all_rows(connection, "SELECT role FROM user_roles WHERE principal_kind = ? AND principal_id = ? ORDER BY role",
                  db::text_column, std::string(to_string(kind)), id);
}

void set_roles(db::Connection& connection, Principal::Kind kind, std::int64_t id,
               const std::vector<std::string>& roles) {
  db::execute(connection, "DELETE FROM user_roles WHERE principal_kind = ? AND principal_id = ?",
              std::string(to_string(kind)), id);
  for (const auto& role : roles) {
    db::execute(connection, "INSERT OR IGNORE INTO user_roles (principal_kind, principal_id, role) VALUES (?, ?, ?)",
                std::string(to_string(kind)), id, role);
  }
}

std::vector<std::string> permissions_of(db::Connection& connection, const std::vector<std::string>& roles) {
  std::vector<std::string> out;
  for (const auto& role : roles) {
    auto query = connection.cached("SELECT permission FROM role_permissions WHERE role = ? ORDER BY permission");
    bind_params(*query, role);
    while (query->executeStep()) {
      auto permission = query->getColumn(0).getString();
      if (std::find(out.begin(), out.end(), permission) == out.end()) out.push_back(std::move(permission));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void insert_session(db::Connection& connection, const std::string& token_hash, const Session& session,
                    const std::string& created_at, const std::string& client_ip) {
  db::execute(connection,
              "INSERT INTO sessions (token_hash, principal_kind, principal_id, created_at, expires_at, client_ip) "
              "VALUES (?, ?, ?, ?, ?, ?)",
              token_hash, std::string(to_string(session.kind)), session.principal_id, created_at, session.expires_at,
              client_ip);
}

std::optional<Session> find_session(db::Connection& connection, const std::string& token_hash) {
  return first_row(connection,
                   "SELECT principal_kind, principal_id, expires_at, revoked_at FROM sessions WHERE token_hash = ?",
                   read_session, token_hash);
}

bool revoke_session(db::Connection& connection, const std::string& token_hash, const std::string& now) {
  return db::execute(connection, "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL", now,
                     token_hash) > 0;
}

int revoke_sessions_of(db::Connection& connection, Principal::Kind kind, std::int64_t id, const std::string& now) {
  return db::execute(
      connection,
      "UPDATE sessions SET revoked_at = ? WHERE principal_kind = ? AND principal_id = ? AND revoked_at IS NULL", now,
      std::string(to_string(kind)), id);
}

int revoke_other_sessions_of(db::Connection& connection, Principal::Kind kind, std::int64_t id,
                             const std::string& kept_token_hash, const std::string& now) {
  return db::execute(
      connection,
      "UPDATE sessions SET revoked_at = ? WHERE principal_kind = ? AND principal_id = ? AND revoked_at IS NULL "
      "AND token_hash <> ?",
      now, std::string(to_string(kind)), id, kept_token_hash);
}

namespace {

db::Filter live_sessions_of(Principal::Kind kind, std::int64_t id, const std::string& now) {
  db::Filter where;
  where.add("principal_kind = ? AND principal_id = ? AND revoked_at IS NULL AND expires_at > ?",
            {std::string(to_string(kind)), id, now});
  return where;
}

}  // namespace

std::vector<SessionListing> list_live_sessions(db::Connection& connection, Principal::Kind kind, std::int64_t id,
                                               const std::string& now, const std::optional<PageAfter>& after,
                                               int limit) {
  auto where = live_sessions_of(kind, id, now);
  if (after) where.add("created_at || ' ' || substr(token_hash, 1, 16) > ?", {after->key});
  return db::filtered_rows(connection,
                           "SELECT substr(token_hash, 1, 16), created_at, expires_at, client_ip FROM sessions", where,
                           "ORDER BY created_at, token_hash", limit, [](SQLite::Statement& row) {
                             return SessionListing{row.getColumn(0).getString(), row.getColumn(1).getString(),
                                                   row.getColumn(2).getString(), db::optional_text(row.getColumn(3))};
                           });
}

std::int64_t count_live_sessions(db::Connection& connection, Principal::Kind kind, std::int64_t id,
                                 const std::string& now) {
  return db::filtered_count(connection, "FROM sessions", live_sessions_of(kind, id, now));
}

int prune_sessions(db::Connection& connection, const std::string& before) {
  return db::execute(connection, "DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1", before);
}

std::string subject_of(Principal::Kind kind, std::int64_t id) {
  return std::string(to_string(kind)) + ":" + std::to_string(id);
}

std::optional<Account> find_active_account(db::Connection& connection, Principal::Kind kind, std::int64_t id) {
  if (kind == Principal::Kind::employee) {
    auto employee = find_employee(connection, id);
    if (!employee || !employee->is_active) return std::nullopt;
    return Account{kind, id, employee->email, employee->password_hash};
  }
  auto citizen = find_citizen(connection, id);
  if (!citizen || citizen->deleted_at || !citizen->citizen.is_active) return std::nullopt;
  return Account{kind, id, citizen->citizen.email, citizen->password_hash};
}

std::optional<Account> find_active_account_by_email(db::Connection& connection, const std::string& email) {
  if (auto employee = find_employee_by_email(connection, email)) {
    if (!employee->is_active) return std::nullopt;
    return Account{Principal::Kind::employee, employee->id, employee->email, employee->password_hash};
  }
  auto citizen = find_active_citizen_by_email(connection, email);
  if (!citizen || !citizen->citizen.is_active) return std::nullopt;
  return Account{Principal::Kind::citizen, citizen->citizen.id, citizen->citizen.email, citizen->password_hash};
}

bool set_password_hash(db::Connection& connection, Principal::Kind kind, std::int64_t id, const std::string& hash) {
  // No event and no event_version: the password is not part of any snapshot.
  return db::execute(connection,
                     kind == Principal::Kind::employee ? "UPDATE employees SET password_hash = ? WHERE id = ?"
                                                       : "UPDATE citizens SET password_hash = ? WHERE id = ?",
                     hash, id) > 0;
}

void insert_password_reset(db::Connection& connection, const std::string& token_hash, const PasswordReset& reset) {
  db::execute(
      connection,
      "INSERT INTO password_resets (token_hash, principal_kind, principal_id, issued_by, created_at, expires_at, "
      "sealed_token) VALUES (?, ?, ?, ?, ?, ?, ?)",
      token_hash, std::string(to_string(reset.kind)), reset.principal_id, reset.issued_by, reset.created_at,
      reset.expires_at, blob(reset.sealed_token));
}

std::optional<PasswordReset> find_password_reset(db::Connection& connection, const std::string& token_hash) {
  return first_row(connection,
                   "SELECT principal_kind, principal_id, issued_by, created_at, expires_at, used_at, sealed_token "
                   "FROM password_resets "
                   "WHERE token_hash = ?",
                   read_password_reset, token_hash);
}

int delete_unused_password_resets_of(db::Connection& connection, Principal::Kind kind, std::int64_t id) {
  return db::execute(connection,
                     "DELETE FROM password_resets WHERE principal_kind = ? AND principal_id = ? AND used_at IS NULL",
                     std::string(to_string(kind)), id);
}

bool use_password_reset(db::Connection& connection, const std::string& token_hash, const std::string& now) {
  return db::execute(connection,
                     "UPDATE password_resets SET used_at = ?1, sealed_token = NULL "
                     "WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1",
                     now, token_hash) > 0;
}

int prune_password_resets(db::Connection& connection, const std::string& before) {
  return db::execute(connection, "DELETE FROM password_resets WHERE expires_at < ?", before);
}

void audit(db::Connection& connection, const AuditEntry& entry, const std::string& at) {
  db::execute(connection,
              "INSERT INTO audit_log (at, actor, action, subject, purpose, correlation_id, detail) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)",
              at, entry.actor, entry.action, entry.subject, entry.purpose, entry.correlation_id, entry.detail);
}

namespace {

constexpr const char* kAuditSelect =
    "SELECT id, at, actor, action, subject, purpose, correlation_id, detail FROM audit_log";

AuditRow read_audit(SQLite::Statement& row) {
  AuditRow a;
  read_columns(row, a.id, a.at, a.actor, a.action, a.subject, a.purpose, a.correlation_id, a.detail);
  return a;
}

db::Filter audit_filter(const AuditFilter& filter) {
  db::Filter where;
  where.add_if(filter.actor, "actor = ?");
  where.add_if(filter.subject, "subject = ?");
  where.add_if(filter.action, "action = ?");
  where.add_if(filter.from, "at >= ?");
  where.add_if(filter.to, "at < ?");
  return where;
}

// The email of an account actor ("employee:7", "citizen:42"): a point read each.
std::optional<std::string> actor_email(db::Connection& connection, const std::string& actor) {
  auto colon = actor.find(':');
  if (colon == std::string::npos) return std::nullopt;
  auto kind = actor.substr(0, colon);
  std::int64_t id = 0;
  try {
    id = std::stoll(actor.substr(colon + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (kind == "employee") return first_row(connection, "SELECT email FROM employees WHERE id = ?", db::text_column, id);
  if (kind == "citizen") return first_row(connection, "SELECT email FROM citizens WHERE id = ?", db::text_column, id);
  return std::nullopt;
}

void name_actors(db::Connection& connection, std::vector<AuditRow>& rows) {
  std::map<std::string, std::optional<std::string>> emails;
  for (auto& row : rows) {
    auto [it, fresh] = emails.try_emplace(row.actor);
    if (fresh) it->second = actor_email(connection, row.actor);
    row.actor_email = it->second;
  }
}

}  // namespace

std::vector<AuditRow> list_audit(db::Connection& connection, const AuditFilter& filter,
                                 const std::optional<PageAfter>& after, int limit) {
  auto where = audit_filter(filter);
  if (after) where.add("(at, id) < (?, ?)", {after->key, after->id});
  auto rows = db::filtered_rows(connection, kAuditSelect, where, "ORDER BY at DESC, id DESC", limit, read_audit);
  name_actors(connection, rows);
  return rows;
}

std::int64_t count_audit(db::Connection& connection, const AuditFilter& filter) {
  return db::filtered_count(connection, "FROM audit_log", audit_filter(filter));
}

std::vector<AuditRow> audit_before(db::Connection& connection, const std::string& before, int limit) {
  auto rows = all_rows(connection, std::string(kAuditSelect) + " WHERE at < ? ORDER BY at, id LIMIT ?", read_audit,
                       before, limit);
  name_actors(connection, rows);
  return rows;
}

int delete_audit_through(db::Connection& connection, const std::string& before, const PageAfter& last) {
  return db::execute(connection, "DELETE FROM audit_log WHERE at < ? AND (at, id) <= (?, ?)", before, last.key,
                     last.id);
}

std::int64_t count_audit(db::Connection& connection, const std::string& action, const std::string& subject) {
  return single_int(connection, "SELECT count(*) FROM audit_log WHERE action = ? AND subject = ?", action, subject);
}

}  // namespace townhall::auth::store
