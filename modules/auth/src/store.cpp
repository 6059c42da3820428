#include "store.hpp"

#include <algorithm>

namespace townhall::auth::store {
namespace {

constexpr const char* kCitizenColumns =
    "id, email, name, phone, address, city, postal_code, national_id_sealed IS NOT NULL, email_verified, "
    "identity_verified, is_active, event_version, created_at, updated_at, password_hash, national_id_sealed, "
    "deleted_at, change_seq, national_id_digest";

using db::bind_optional;
using db::bind_optional_blob;
using db::optional_text;

Citizen read_public(SQLite::Statement& row) {
  Citizen c;
  c.id = row.getColumn(0).getInt64();
  c.email = row.getColumn(1).getString();
  c.name = row.getColumn(2).getString();
  c.phone = optional_text(row.getColumn(3));
  c.address = optional_text(row.getColumn(4));
  c.city = optional_text(row.getColumn(5));
  c.postal_code = optional_text(row.getColumn(6));
  c.has_national_id = row.getColumn(7).getInt() != 0;
  c.email_verified = row.getColumn(8).getInt() != 0;
  c.identity_verified = row.getColumn(9).getInt() != 0;
  c.is_active = row.getColumn(10).getInt() != 0;
  c.event_version = row.getColumn(11).getInt64();
  c.created_at = row.getColumn(12).getString();
  c.updated_at = row.getColumn(13).getString();
  return c;
}

CitizenRow read_citizen(SQLite::Statement& row) {
  CitizenRow out;
  out.citizen = read_public(row);
  out.password_hash = row.getColumn(14).getString();
  if (!row.getColumn(15).isNull()) {
    const auto& column = row.getColumn(15);
    out.national_id_sealed = std::string(static_cast<const char*>(column.getBlob()), column.getBytes());
  }
  out.deleted_at = optional_text(row.getColumn(16));
  out.change_seq = row.getColumn(17).getInt64();
  if (!row.getColumn(18).isNull()) {
    const auto& column = row.getColumn(18);
    out.national_id_digest = std::string(static_cast<const char*>(column.getBlob()), column.getBytes());
  }
  return out;
}

EmployeeRow read_employee(SQLite::Statement& row) {
  EmployeeRow e;
  e.id = row.getColumn(0).getInt64();
  e.email = row.getColumn(1).getString();
  e.password_hash = row.getColumn(2).getString();
  e.name = row.getColumn(3).getString();
  e.department_code = optional_text(row.getColumn(4));
  e.is_active = row.getColumn(5).getInt() != 0;
  e.event_version = row.getColumn(6).getInt64();
  e.created_at = row.getColumn(7).getString();
  e.updated_at = row.getColumn(8).getString();
  return e;
}

constexpr const char* kEmployeeColumns =
    "id, email, password_hash, name, department_code, is_active, event_version, created_at, updated_at";

}  // namespace

std::optional<CitizenRow> find_citizen(db::Connection& connection, std::int64_t id) {
  auto query = connection.cached(std::string("SELECT ") + kCitizenColumns + " FROM citizens WHERE id = ?");
  query->bind(1, id);
  if (!query->executeStep()) return std::nullopt;
  return read_citizen(*query);
}

std::optional<CitizenRow> find_active_citizen_by_email(db::Connection& connection, const std::string& email) {
  auto query = connection.cached(std::string("SELECT ") + kCitizenColumns +
                                 " FROM citizens WHERE email = ? AND deleted_at IS NULL");
  query->bind(1, email);
  if (!query->executeStep()) return std::nullopt;
  return read_citizen(*query);
}

bool email_in_use(db::Connection& connection, const std::string& email, std::int64_t except_citizen) {
  auto query = connection.cached(
      "SELECT EXISTS (SELECT 1 FROM citizens WHERE email = ?1 AND deleted_at IS NULL AND id <> ?2) "
      "OR EXISTS (SELECT 1 FROM employees WHERE email = ?1)");
  query->bind(1, email);
  query->bind(2, except_citizen);
  query->executeStep();
  return query->getColumn(0).getInt() != 0;
}

bool national_id_in_use(db::Connection& connection, const std::string& digest, std::int64_t except_citizen) {
  auto query = connection.cached(
      "SELECT EXISTS (SELECT 1 FROM citizens WHERE national_id_digest = ? AND deleted_at IS NULL AND id <> ?)");
  query->bind(1, digest.data(), static_cast<int>(digest.size()));
  query->bind(2, except_citizen);
  query->executeStep();
  return query->getColumn(0).getInt() != 0;
}

std::optional<std::int64_t> verified_national_id_holder(db::Connection& connection, const std::string& digest,
                                                        std::int64_t except_citizen) {
  auto query = connection.cached(
      "SELECT id FROM citizens WHERE national_id_digest = ? AND deleted_at IS NULL AND identity_verified = 1 AND id <> "
      "? LIMIT 1");
  query->bind(1, digest.data(), static_cast<int>(digest.size()));
  query->bind(2, except_citizen);
  if (!query->executeStep()) return std::nullopt;
  auto holder = query->getColumn(0).getInt64();
  query->reset();
  return holder;
}

std::vector<NationalIdClaim> national_id_claims(db::Connection& connection, std::int64_t id) {
  auto query = connection.cached(
      "SELECT c.id, c.identity_verified, c.created_at FROM citizens c JOIN citizens me ON me.id = ? "
      "WHERE me.national_id_digest IS NOT NULL AND c.national_id_digest = me.national_id_digest "
      "AND c.deleted_at IS NULL ORDER BY c.created_at, c.id LIMIT 100");
  query->bind(1, id);
  std::vector<NationalIdClaim> out;
  while (query->executeStep())
    out.push_back({query->getColumn(0).getInt64(), query->getColumn(1).getInt() != 0, query->getColumn(2).getString()});
  return out;
}

std::int64_t national_id_changes_since(db::Connection& connection, std::int64_t id, const std::string& since) {
  auto query = connection.cached(
      "SELECT count(*) FROM audit_log WHERE subject = ? AND action = 'citizen.national_id.set' AND at >= ?");
  query->bind(1, "citizen:" + std::to_string(id));
  query->bind(2, since);
  query->executeStep();
  auto count = query->getColumn(0).getInt64();
  query->reset();
  return count;
}

std::vector<std::pair<std::int64_t, std::string>> sealed_ids_without_digest(db::Connection& connection, int limit) {
  auto query = connection.cached(
      "SELECT id, national_id_sealed FROM citizens WHERE national_id_sealed IS NOT NULL AND national_id_digest IS "
      "NULL AND deleted_at IS NULL ORDER BY id LIMIT ?");
  query->bind(1, limit);
  std::vector<std::pair<std::int64_t, std::string>> out;
  while (query->executeStep()) {
    const auto& column = query->getColumn(1);
    out.emplace_back(query->getColumn(0).getInt64(),
                     std::string(static_cast<const char*>(column.getBlob()), column.getBytes()));
  }
  return out;
}

std::optional<std::string> any_sealed_national_id(db::Connection& connection) {
  auto query =
      connection.cached("SELECT national_id_sealed FROM citizens WHERE national_id_sealed IS NOT NULL LIMIT 1");
  if (!query->executeStep()) return std::nullopt;
  const auto& column = query->getColumn(0);
  std::string out(static_cast<const char*>(column.getBlob()), column.getBytes());
  query->reset();
  return out;
}

std::optional<std::string> key_check_value(db::Connection& connection) {
  auto query = connection.cached("SELECT check_value FROM key_check WHERE id = 1");
  if (!query->executeStep()) return std::nullopt;
  const auto& column = query->getColumn(0);
  std::string out(static_cast<const char*>(column.getBlob()), column.getBytes());
  query->reset();
  return out;
}

void insert_key_check_value(db::Connection& connection, const std::string& check_value, const std::string& now) {
  auto insert = connection.cached("INSERT INTO key_check (id, check_value, created_at) VALUES (1, ?, ?)");
  insert->bind(1, check_value.data(), static_cast<int>(check_value.size()));
  insert->bind(2, now);
  insert->exec();
}

void set_national_id_digest(db::Connection& connection, std::int64_t id, const std::string& digest) {
  auto update = connection.cached("UPDATE citizens SET national_id_digest = ? WHERE id = ?");
  update->bind(1, digest.data(), static_cast<int>(digest.size()));
  update->bind(2, id);
  update->exec();
}

std::int64_t next_change_seq(db::Connection& connection) {
  auto query = connection.cached("SELECT coalesce(max(change_seq), 0) + 1 FROM citizens");
  query->executeStep();
  return query->getColumn(0).getInt64();
}

void insert_citizen(db::Connection& connection, CitizenRow& row) {
  auto insert = connection.cached(
      "INSERT INTO citizens (email, password_hash, name, phone, address, city, postal_code, national_id_sealed, "
      "email_verified, identity_verified, is_active, event_version, change_seq, created_at, updated_at, "
      "national_id_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)");
  const auto& c = row.citizen;
  insert->bind(1, c.email);
  insert->bind(2, row.password_hash);
  insert->bind(3, c.name);
  bind_optional(*insert, 4, c.phone);
  bind_optional(*insert, 5, c.address);
  bind_optional(*insert, 6, c.city);
  bind_optional(*insert, 7, c.postal_code);
  bind_optional_blob(*insert, 8, row.national_id_sealed);
  insert->bind(9, c.email_verified ? 1 : 0);
  insert->bind(10, c.identity_verified ? 1 : 0);
  insert->bind(11, c.event_version);
  insert->bind(12, row.change_seq);
  insert->bind(13, c.created_at);
  insert->bind(14, c.updated_at);
  bind_optional_blob(*insert, 15, row.national_id_digest);
  insert->exec();
  row.citizen.id = connection.sql().getLastInsertRowid();
}

void update_citizen(db::Connection& connection, const CitizenRow& row) {
  auto update = connection.cached(
      "UPDATE citizens SET email = ?, password_hash = ?, name = ?, phone = ?, address = ?, city = ?, "
      "postal_code = ?, national_id_sealed = ?, email_verified = ?, identity_verified = ?, is_active = ?, "
      "event_version = ?, change_seq = ?, updated_at = ?, deleted_at = ?, national_id_digest = ? WHERE id = ?");
  const auto& c = row.citizen;
  update->bind(1, c.email);
  update->bind(2, row.password_hash);
  update->bind(3, c.name);
  bind_optional(*update, 4, c.phone);
  bind_optional(*update, 5, c.address);
  bind_optional(*update, 6, c.city);
  bind_optional(*update, 7, c.postal_code);
  bind_optional_blob(*update, 8, row.national_id_sealed);
  update->bind(9, c.email_verified ? 1 : 0);
  update->bind(10, c.identity_verified ? 1 : 0);
  update->bind(11, c.is_active ? 1 : 0);
  update->bind(12, c.event_version);
  update->bind(13, row.change_seq);
  update->bind(14, c.updated_at);
  bind_optional(*update, 15, row.deleted_at);
  bind_optional_blob(*update, 16, row.national_id_digest);
  update->bind(17, c.id);
  update->exec();
}

std::vector<Citizen> list_citizens(db::Connection& connection, const CitizenFilter& filter, std::int64_t offset,
                                   int limit, std::int64_t& total) {
  // Fixed SQL with optional filters (NULL parameters switch a filter off): no string
  // building from input.
  const std::string where =
      " FROM citizens WHERE (?1 IS NULL OR email = ?1) AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0) "
      "AND (?3 = 1 OR deleted_at IS NULL)";
  auto bind = [&](SQLite::Statement& statement) {
    bind_optional(statement, 1, filter.email);
    bind_optional(statement, 2, filter.name);
    statement.bind(3, filter.include_deleted ? 1 : 0);
  };
  auto count = connection.cached("SELECT count(*)" + where);
  bind(*count);
  count->executeStep();
  total = count->getColumn(0).getInt64();

  auto query = connection.cached(std::string("SELECT ") + kCitizenColumns + where + " ORDER BY id LIMIT ?4 OFFSET ?5");
  bind(*query);
  query->bind(4, limit);
  query->bind(5, offset);
  std::vector<Citizen> out;
  while (query->executeStep()) out.push_back(read_public(*query));
  return out;
}

std::vector<CitizenVersion> citizen_versions(db::Connection& connection, std::int64_t after_id, int limit,
                                             const CitizenFields& fields) {
  auto query =
      connection.cached(std::string("SELECT ") + kCitizenColumns + " FROM citizens WHERE id > ? ORDER BY id LIMIT ?");
  query->bind(1, after_id);
  query->bind(2, limit);
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
  query->bind(1, from_id);
  query->bind(2, to_id);
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
  query->bind(1, change_seq);
  query->bind(2, limit);
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
  auto query =
      connection.cached("SELECT code, name, event_version, created_at, updated_at FROM departments WHERE code = ?");
  query->bind(1, code);
  if (!query->executeStep()) return std::nullopt;
  return Department{query->getColumn(0).getString(), query->getColumn(1).getString(), query->getColumn(2).getInt64(),
                    query->getColumn(3).getString(), query->getColumn(4).getString()};
}

void insert_department(db::Connection& connection, const Department& department) {
  auto insert = connection.cached(
      "INSERT INTO departments (code, name, event_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?)");
  insert->bind(1, department.code);
  insert->bind(2, department.name);
  insert->bind(3, department.event_version);
  insert->bind(4, department.created_at);
  insert->bind(5, department.updated_at);
  insert->exec();
}

void update_department(db::Connection& connection, const Department& department) {
  auto update = connection.cached("UPDATE departments SET name = ?, event_version = ?, updated_at = ? WHERE code = ?");
  update->bind(1, department.name);
  update->bind(2, department.event_version);
  update->bind(3, department.updated_at);
  update->bind(4, department.code);
  update->exec();
}

std::vector<Department> list_departments(db::Connection& connection) {
  auto query =
      connection.cached("SELECT code, name, event_version, created_at, updated_at FROM departments ORDER BY code");
  std::vector<Department> out;
  while (query->executeStep())
    out.push_back({query->getColumn(0).getString(), query->getColumn(1).getString(), query->getColumn(2).getInt64(),
                   query->getColumn(3).getString(), query->getColumn(4).getString()});
  return out;
}

std::optional<EmployeeRow> find_employee(db::Connection& connection, std::int64_t id) {
  auto query = connection.cached(std::string("SELECT ") + kEmployeeColumns + " FROM employees WHERE id = ?");
  query->bind(1, id);
  if (!query->executeStep()) return std::nullopt;
  return read_employee(*query);
}

std::optional<EmployeeRow> find_employee_by_email(db::Connection& connection, const std::string& email) {
  auto query = connection.cached(std::string("SELECT ") + kEmployeeColumns + " FROM employees WHERE email = ?");
  query->bind(1, email);
  if (!query->executeStep()) return std::nullopt;
  return read_employee(*query);
}

void insert_employee(db::Connection& connection, EmployeeRow& row) {
  auto insert = connection.cached(
      "INSERT INTO employees (email, password_hash, name, department_code, is_active, event_version, created_at, "
      "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, row.email);
  insert->bind(2, row.password_hash);
  insert->bind(3, row.name);
  bind_optional(*insert, 4, row.department_code);
  insert->bind(5, row.is_active ? 1 : 0);
  insert->bind(6, row.event_version);
  insert->bind(7, row.created_at);
  insert->bind(8, row.updated_at);
  insert->exec();
  row.id = connection.sql().getLastInsertRowid();
}

void update_employee(db::Connection& connection, const EmployeeRow& row) {
  auto update = connection.cached(
      "UPDATE employees SET email = ?, password_hash = ?, name = ?, department_code = ?, is_active = ?, "
      "event_version = ?, updated_at = ? WHERE id = ?");
  update->bind(1, row.email);
  update->bind(2, row.password_hash);
  update->bind(3, row.name);
  bind_optional(*update, 4, row.department_code);
  update->bind(5, row.is_active ? 1 : 0);
  update->bind(6, row.event_version);
  update->bind(7, row.updated_at);
  update->bind(8, row.id);
  update->exec();
}

bool role_exists(db::Connection& connection, const std::string& role) {
  auto query = connection.cached("SELECT 1 FROM roles WHERE name = ?");
  query->bind(1, role);
  return query->executeStep();
}

std::vector<std::string> roles_of(db::Connection& connection, Principal::Kind kind, std::int64_t id) {
  auto query =
      connection.cached("SELECT role FROM user_roles WHERE principal_kind = ? AND principal_id = ? ORDER BY role");
  query->bind(1, std::string(to_string(kind)));
  query->bind(2, id);
  std::vector<std::string> out;
  while (query->executeStep()) out.push_back(query->getColumn(0).getString());
  return out;
}

void set_roles(db::Connection& connection, Principal::Kind kind, std::int64_t id,
               const std::vector<std::string>& roles) {
  auto clear = connection.cached("DELETE FROM user_roles WHERE principal_kind = ? AND principal_id = ?");
  clear->bind(1, std::string(to_string(kind)));
  clear->bind(2, id);
  clear->exec();
  for (const auto& role : roles) {
    auto insert =
        connection.cached("INSERT OR IGNORE INTO user_roles (principal_kind, principal_id, role) VALUES (?, ?, ?)");
    insert->bind(1, std::string(to_string(kind)));
    insert->bind(2, id);
    insert->bind(3, role);
    insert->exec();
  }
}

std::vector<std::string> permissions_of(db::Connection& connection, const std::vector<std::string>& roles) {
  std::vector<std::string> out;
  for (const auto& role : roles) {
    auto query = connection.cached("SELECT permission FROM role_permissions WHERE role = ? ORDER BY permission");
    query->bind(1, role);
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
  auto insert = connection.cached(
      "INSERT INTO sessions (token_hash, principal_kind, principal_id, created_at, expires_at, client_ip) "
      "VALUES (?, ?, ?, ?, ?, ?)");
  insert->bind(1, token_hash);
  insert->bind(2, std::string(to_string(session.kind)));
  insert->bind(3, session.principal_id);
  insert->bind(4, created_at);
  insert->bind(5, session.expires_at);
  insert->bind(6, client_ip);
  insert->exec();
}

std::optional<Session> find_session(db::Connection& connection, const std::string& token_hash) {
  auto query = connection.cached(
      "SELECT principal_kind, principal_id, expires_at, revoked_at FROM sessions WHERE token_hash = ?");
  query->bind(1, token_hash);
  if (!query->executeStep()) return std::nullopt;
  Session session;
  session.kind = query->getColumn(0).getString() == "employee" ? Principal::Kind::employee : Principal::Kind::citizen;
  session.principal_id = query->getColumn(1).getInt64();
  session.expires_at = query->getColumn(2).getString();
  session.revoked_at = optional_text(query->getColumn(3));
  return session;
}

bool revoke_session(db::Connection& connection, const std::string& token_hash, const std::string& now) {
  auto update = connection.cached("UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL");
  update->bind(1, now);
  update->bind(2, token_hash);
  return update->exec() > 0;
}

int revoke_sessions_of(db::Connection& connection, Principal::Kind kind, std::int64_t id, const std::string& now) {
  auto update = connection.cached(
      "UPDATE sessions SET revoked_at = ? WHERE principal_kind = ? AND principal_id = ? AND revoked_at IS NULL");
  update->bind(1, now);
  update->bind(2, std::string(to_string(kind)));
  update->bind(3, id);
  return update->exec();
}

int prune_sessions(db::Connection& connection, const std::string& before) {
  auto remove = connection.cached("DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1");
  remove->bind(1, before);
  return remove->exec();
}

void audit(db::Connection& connection, const AuditEntry& entry, const std::string& at) {
  auto insert = connection.cached(
      "INSERT INTO audit_log (at, actor, action, subject, purpose, correlation_id, detail) VALUES (?, ?, ?, ?, ?, ?, "
      "?)");
  insert->bind(1, at);
  insert->bind(2, entry.actor);
  insert->bind(3, entry.action);
  insert->bind(4, entry.subject);
  bind_optional(*insert, 5, entry.purpose);
  insert->bind(6, entry.correlation_id);
  bind_optional(*insert, 7, entry.detail);
  insert->exec();
}

std::int64_t count_audit(db::Connection& connection, const std::string& action, const std::string& subject) {
  auto query = connection.cached("SELECT count(*) FROM audit_log WHERE action = ? AND subject = ?");
  query->bind(1, action);
  query->bind(2, subject);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

}  // namespace townhall::auth::store
