#include "authorizer.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace townhall::db {
std::string ascii_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

namespace {

constexpr std::array<std::string_view, 6> kSystemTables{"sqlite_master",   "sqlite_schema", "sqlite_temp_master",
                                                        "sqlite_sequence", "sqlite_stat1",  "sqlite_stat4"};

// Pragmas that only read, allowed bare ("PRAGMA journal_mode").
constexpr std::array<std::string_view, 27> kReadPragmas{
    "application_id",   "auto_vacuum",        "busy_timeout",   "cache_size",    "collation_list",
    "compile_options",  "data_version",       "database_list",  "encoding",      "foreign_key_check",
    "foreign_key_list", "foreign_keys",       "freelist_count", "function_list", "integrity_check",
    "journal_mode",     "journal_size_limit", "page_count",     "page_size",     "pragma_list",
    "query_only",       "quick_check",        "schema_version", "synchronous",   "table_list",
    "user_version",     "wal_autocheckpoint"};
// Pragmas whose argument names what to read, not a value to write.
constexpr std::array<std::string_view, 9> kReadPragmasWithArgument{
    "table_info",       "table_xinfo",     "index_list",  "index_info",       "index_xinfo",
    "foreign_key_list", "integrity_check", "quick_check", "foreign_key_check"};

bool is_schema_table(std::string_view table) {
  return table == "sqlite_master" || table == "sqlite_schema" || table == "sqlite_temp_master" ||
         table == "sqlite_temp_schema";
}

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& set, std::string_view value) {
  return std::find(set.begin(), set.end(), value) != set.end();
}

std::string_view action_name(int action) {
  switch (action) {
    case SQLITE_CREATE_INDEX: return "CREATE INDEX";
    case SQLITE_CREATE_TABLE: return "CREATE TABLE";
    case SQLITE_CREATE_TEMP_INDEX: return "CREATE TEMP INDEX";
    case SQLITE_CREATE_TEMP_TABLE: return "CREATE TEMP TABLE";
    case SQLITE_CREATE_TEMP_TRIGGER: return "CREATE TEMP TRIGGER";
    case SQLITE_CREATE_TEMP_VIEW: return "CREATE TEMP VIEW";
    case SQLITE_CREATE_TRIGGER: return "CREATE TRIGGER";
    case SQLITE_CREATE_VIEW: return "CREATE VIEW";
    case SQLITE_DELETE: return "DELETE";
    case SQLITE_DROP_INDEX: return "DROP INDEX";
    case SQLITE_DROP_TABLE: return "DROP TABLE";
    case SQLITE_DROP_TEMP_INDEX: return "DROP TEMP INDEX";
    case SQLITE_DROP_TEMP_TABLE: return "DROP TEMP TABLE";
    case SQLITE_DROP_TEMP_TRIGGER: return "DROP TEMP TRIGGER";
    case SQLITE_DROP_TEMP_VIEW: return "DROP TEMP VIEW";
    case SQLITE_DROP_TRIGGER: return "DROP TRIGGER";
    case SQLITE_DROP_VIEW: return "DROP VIEW";
    case SQLITE_INSERT: return "INSERT";
    case SQLITE_PRAGMA: return "PRAGMA";
    case SQLITE_READ: return "SELECT";
    case SQLITE_SELECT: return "SELECT";
    case SQLITE_TRANSACTION: return "TRANSACTION";
    case SQLITE_UPDATE: return "UPDATE";
    case SQLITE_ATTACH: return "ATTACH";
    case SQLITE_DETACH: return "DETACH";
    case SQLITE_ALTER_TABLE: return "ALTER TABLE";
    case SQLITE_REINDEX: return "REINDEX";
    case SQLITE_ANALYZE: return "ANALYZE";
    case SQLITE_CREATE_VTABLE: return "CREATE VIRTUAL TABLE";
    case SQLITE_DROP_VTABLE: return "DROP VIRTUAL TABLE";
    case SQLITE_FUNCTION: return "FUNCTION";
    case SQLITE_SAVEPOINT: return "SAVEPOINT";
    case SQLITE_RECURSIVE: return "RECURSIVE";
    default: return "UNKNOWN";
  }
}

bool is_schema_change(int action) {
  switch (action) {
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_ALTER_TABLE:
    case SQLITE_REINDEX:
    case SQLITE_ANALYZE:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE: return true;
    default: return false;
  }
}

bool may_read(Role role, TableKind kind) {
  switch (role) {
    case Role::owner:
    case Role::reader: return true;
    case Role::service: return true;
    case Role::sync: return kind != TableKind::owned && kind != TableKind::outbox;
    case Role::relay: return kind == TableKind::outbox || kind == TableKind::system || kind == TableKind::cursors;
  }
  return false;
}

bool may_write(Role role, TableKind kind, int action) {
  switch (role) {
    case Role::owner: return true;
    case Role::reader: return false;
    case Role::service:
      return kind == TableKind::owned || kind == TableKind::bookkeeping || kind == TableKind::cursors ||
             (kind == TableKind::outbox && action == SQLITE_INSERT);
    case Role::sync: return kind == TableKind::cache || kind == TableKind::bookkeeping || kind == TableKind::cursors;
    case Role::relay: return kind == TableKind::outbox && (action == SQLITE_UPDATE || action == SQLITE_DELETE);
  }
  return false;
}

}  // namespace

std::string_view to_string(Role role) {
  switch (role) {
    case Role::owner: return "owner";
    case Role::service: return "service";
    case Role::sync: return "sync";
    case Role::relay: return "relay";
    case Role::reader: return "reader";
  }
  return "unknown";
}

std::string_view to_string(TableKind kind) {
  switch (kind) {
    case TableKind::owned: return "owned";
    case TableKind::cache: return "cache";
    case TableKind::outbox: return "outbox";
    case TableKind::bookkeeping: return "bookkeeping";
    case TableKind::cursors: return "cursors";
    case TableKind::migrations: return "migrations";
    case TableKind::system: return "system";
  }
  return "unknown";
}

std::optional<TableKind> TableManifest::classify(std::string_view table) const {
  std::string name = ascii_lower(table);
  if (std::find(owned.begin(), owned.end(), name) != owned.end()) return TableKind::owned;
  if (std::find(cache.begin(), cache.end(), name) != cache.end()) return TableKind::cache;
  for (const auto& [table_name, kind] : infrastructure)
    if (table_name == name) return kind;
  if (name == "schema_migrations") return TableKind::migrations;
  if (contains(kSystemTables, name)) return TableKind::system;
  return std::nullopt;
}

std::string Connection::Guard::decide(int action, const char* arg1, const char* arg2) const {
  std::string_view a1 = arg1 ? arg1 : "";
  std::string_view a2 = arg2 ? arg2 : "";
  auto denied = [&](std::string_view what) {
    return "boundary violation in module '" + module + "': role '" + std::string(to_string(role)) + "' may not " +
           std::string(what);
  };
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
    case SQLITE_RECURSIVE: return {};
    case SQLITE_ATTACH: return denied("ATTACH a database");
    case SQLITE_DETACH: return denied("DETACH a database");
    case SQLITE_FUNCTION:
      if (ascii_lower(a2) == "load_extension") return denied("call load_extension()");
      return {};
    case SQLITE_PRAGMA: {
      std::string pragma = ascii_lower(a1);
      bool read_only = arg2 == nullptr ? contains(kReadPragmas, pragma) : contains(kReadPragmasWithArgument, pragma);
      if (read_only) return {};
      return denied("run PRAGMA " + pragma + (arg2 ? " = " + std::string(a2) : std::string()) +
                    " (only read-only pragmas are allowed)");
    }
    case SQLITE_READ:
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE: {
      auto kind = manifest->classify(a1);
      std::string verb(action_name(action));
      // DDL first asks to write the schema table, then asks for the DDL action itself.
      // Pass the first so the second is refused with a message naming the object; a
      // direct write to the schema table is still impossible (SQLITE_DBCONFIG_DEFENSIVE
      // and the writable_schema pragma is refused).
      if (action != SQLITE_READ && kind == TableKind::system && is_schema_table(a1)) {
        if (role == Role::owner) return {};
        schema_write_pending = true;
        return {};
      }
      if (!kind) {
        if (role == Role::owner) return {};
        return denied(verb + " on table '" + std::string(a1) + "' (not in the module's manifest)");
      }
      bool allowed = action == SQLITE_READ ? may_read(role, *kind) : may_write(role, *kind, action);
      if (allowed) return {};
      return denied(verb + " on " + std::string(to_string(*kind)) + " table '" + std::string(a1) + "'");
    }
    default:
      if (is_schema_change(action)) {
        schema_write_pending = false;
        if (role == Role::owner) return {};
        // ALTER TABLE reports (database, table); CREATE INDEX/TRIGGER report (name, table).
        std::string object = action == SQLITE_ALTER_TABLE ? "table '" + std::string(a2) + "'"
                             : !a2.empty() ? "'" + std::string(a1) + "' on table '" + std::string(a2) + "'"
                                           : "'" + std::string(a1) + "'";
        return denied(std::string(action_name(action)) + " " + object + " (schema changes are for migrations)");
      }
      return denied("perform unknown action " + std::to_string(action));
  }
}

int Connection::Guard::authorize(void* user, int action, const char* arg1, const char* arg2, const char* /*database*/,
                                 const char* /*trigger*/) noexcept {
  try {
    auto* guard = static_cast<Guard*>(user);
    std::string why = guard->decide(action, arg1, arg2);
    if (why.empty()) return SQLITE_OK;
    if (guard->violations)
      guard->violations->with({guard->module, std::string(to_string(guard->role)), std::string(action_name(action))})
          .inc();
    spdlog::warn("{}", why);
    guard->last_denial = std::move(why);
    return SQLITE_DENY;
  } catch (...) {
    return SQLITE_DENY;  // fail closed
  }
}

}  // namespace townhall::db
