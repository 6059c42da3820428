#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "townhall/platform/result.hpp"

namespace townhall::metrics {
class Registry;
class Counter;
}  // namespace townhall::metrics

namespace townhall::db {

// What a connection is opened for; the authorizer enforces it on every statement.
enum class Role { owner, service, sync, relay, reader };
std::string_view to_string(Role role);

enum class TableKind {
  owned,        // the module's own data, single writer: the module
  cache,        // read-only copies of other modules' data, written by sync handlers
  outbox,       // an event log the service role appends to (the bus's outbox)
  bookkeeping,  // consumer state the sync and service roles write (the bus's)
  cursors,      // bookkeeping the relay role also reads (the bus's read positions)
  migrations,   // schema_migrations
  system,       // sqlite_schema, sqlite_sequence, sqlite_stat*
};
std::string_view to_string(TableKind kind);

// The tables a module file may hold, by kind. SQLite's own tables and schema_migrations
// are implied; the tables of what every module file carries besides its data (the bus's
// outbox and bookkeeping) are declared by their owner (bus::with_bus_tables), so the
// platform names none of them.
// An owned table the module derives from its own rows (a report's per-day counts, kept by
// triggers in the transaction of each write): `expected` is a SELECT over the rows giving
// what the table should hold, in `columns`' order, the first `key_columns` of them its
// key. The consistency check compares the two and its repair rewrites the table from
// `expected` (consistency::check; design note 60).
struct DerivedTable {
  std::string table;                 // "application_days"
  std::string source;                // what it is derived from: "applications"
  std::vector<std::string> columns;  // key columns first
  std::size_t key_columns = 0;
  std::string expected;
};

struct TableManifest {
  std::vector<std::string> owned;
  std::vector<std::string> cache;
  std::vector<std::pair<std::string, TableKind>> infrastructure = {};
  std::vector<DerivedTable> derived = {};  // each also in `owned`

  std::optional<TableKind> classify(std::string_view table) const;
};

enum class Synchronous { normal, full };

struct Options {
  Synchronous synchronous = Synchronous::normal;
  std::chrono::milliseconds busy_timeout{5000};
  // The SQLite VFS the files are opened through; empty for the default. The storage
  // fault tests open module files through a fault-injecting shim.
  std::string vfs;
  // Called with the module's name and the text of every statement its connections start
  // (tests: the query plan check). Empty in the server.
  std::function<void(std::string_view module, std::string_view sql)> statement_observer = {};
};

// Whether an SQLite error says the file cannot be used (I/O, full disk, corruption, a
// missing, locked or read-only file), as opposed to a statement's own failure (a
// constraint, a misuse).
bool is_storage_failure(const SQLite::Exception& error);

// A statement refused by the authorizer.
class BoundaryViolation : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ModuleDb;

// A connection's cached statement, borrowed for one use: reset when the borrow ends, so
// a half-read statement never keeps an old read snapshot (or a lock) alive.
class CachedStatement {
 public:
  explicit CachedStatement(SQLite::Statement& statement) : statement_(&statement) {}
  CachedStatement(const CachedStatement&) = delete;
  CachedStatement& operator=(const CachedStatement&) = delete;
  ~CachedStatement() { statement_->tryReset(); }
  SQLite::Statement* operator->() { return statement_; }
  SQLite::Statement& operator*() { return *statement_; }

 private:
  SQLite::Statement* statement_;
};

// One SQLite connection opened for one role. Not thread-safe: one user at a time.
class Connection {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Prepare/exec translate an authorizer denial into BoundaryViolation naming module,
  // role, table and action; other SQLite failures stay SQLite::Exception.
  SQLite::Statement prepare(const std::string& sql);
  int exec(const std::string& sql);
  // A prepared statement kept for this connection's lifetime, handed out reset and
  // unbound, for statements run again and again (hot paths).
  CachedStatement cached(std::string_view sql);  // no allocation once prepared

  SQLite::Database& sql() { return database_; }
  Role role() const;
  const std::string& module() const;
  // ModuleDb::generation() when this connection was opened.
  std::uint64_t generation() const { return generation_; }

  // Events appended on this connection so far (bus::append counts each). A transaction
  // compares it before and after to know whether its commit must wake the bus; one whose
  // appends were rolled back to a savepoint wakes it for nothing, which is harmless.
  std::uint64_t events_appended() const { return events_appended_; }
  void note_event_appended() { ++events_appended_; }

 private:
  friend class ModuleDb;
  struct Guard;
  Connection(SQLite::Database database, std::unique_ptr<Guard> guard);
  [[noreturn]] void rethrow(const SQLite::Exception& error);

  SQLite::Database database_;
  std::unique_ptr<Guard> guard_;
  std::uint64_t generation_ = 0;
  std::uint64_t events_appended_ = 0;
  std::map<std::string, std::unique_ptr<SQLite::Statement>, std::less<>> statements_;
};

// A module's one database file. Opens connections per role with the module's pragmas
// and an authorizer driven by its table manifest.
class ModuleDb {
 public:
  ModuleDb(std::string module, std::filesystem::path file, TableManifest manifest, Options options = {},
           metrics::Registry* metrics = nullptr);

  // Throws SQLite::Exception when the file cannot be opened or is not a database.
  std::unique_ptr<Connection> open(Role role) const;

  const std::string& module() const { return module_; }
  const std::filesystem::path& path() const { return file_; }
  const TableManifest& manifest() const { return manifest_; }
  const Options& options() const { return options_; }

  ~ModuleDb();

  // Copies committed WAL frames into the database file without blocking writers
  // (PASSIVE). A background thread of this ModuleDb runs it whenever a commit leaves 1000
  // WAL frames the last checkpoint did not copy (CheckpointTrigger), so no commit pays for
  // a checkpoint. Thread-safe.
  void checkpoint() const;

  // Tables present in the file that the manifest does not declare (should be none).
  std::vector<std::string> undeclared_tables(Connection& connection) const;

  // The file's health, shared by every connection to it. A read or write that fails on
  // storage records why (the module reports itself down) and retires every connection
  // opened so far: each is reopened before its next use, so a file repaired or replaced
  // in place comes back without a restart. A successful read clears a read failure; a
  // write failure clears on the next committed write (a request's or probe()'s).
  enum class Access { read, write };
  void note_failure(Access access, std::string_view what) const;
  void note_success(Access access) const {
    if (failing_.load(std::memory_order_relaxed)) clear_failure(access);
  }
  // "cannot write its file: …" while a failure is recorded.
  std::optional<std::string> storage_failure() const;
  // Bumped by every recorded failure; a connection from an older generation is reopened.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // On a fresh service connection: reads the schema and commits `write` (one small
  // write, e.g. bus::touch_storage_probe). Records the outcome; true when the file reads
  // and writes again.
  bool probe(const std::function<void(Connection&)>& write) const;

 private:
  void clear_failure(Access access) const;
  static int trace_statement(unsigned type, void* self, void* statement, void* text);

  std::string module_;
  std::filesystem::path file_;
  TableManifest manifest_;
  Options options_;
  metrics::Registry* metrics_;
  mutable std::atomic<bool> failing_{false};
  mutable std::atomic<std::uint64_t> generation_{1};
  mutable std::mutex failure_mutex_;
  mutable std::string read_failure_;   // empty when reads work
  mutable std::string write_failure_;  // empty when writes work
  mutable std::mutex checkpoint_mutex_;
  mutable std::unique_ptr<SQLite::Database> checkpointer_;
  struct CheckpointThread;
  std::shared_ptr<CheckpointThread> checkpoint_thread_;
};

// A small pool of reader connections for short reads on any thread.
class ReaderPool {
 public:
  ReaderPool(const ModuleDb& db, std::size_t size);

  class Lease {
   public:
    Lease(ReaderPool& pool, std::unique_ptr<Connection> connection)
        : pool_(&pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept = default;
    ~Lease();
    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  Lease acquire();

  // Runs `read` (Connection& -> Result<T>) on a pooled connection. A storage failure
  // (an SQLite error: I/O, corruption, a missing or locked file) becomes
  // Errc::unavailable and is logged, so callers treat a broken file like any dependency
  // that cannot answer (503), never a 500. A BoundaryViolation, a programming error,
  // propagates.
  template <class F>
  auto read(F&& read) -> decltype(read(std::declval<Connection&>())) {
    using R = decltype(read(std::declval<Connection&>()));
    try {
      auto lease = acquire();
      auto result = read(*lease);
      db_.note_success(ModuleDb::Access::read);
      return result;
    } catch (const BoundaryViolation&) {
      throw;
    } catch (const SQLite::Exception& error) {
      return R(storage_failure(error));
    }
  }

 private:
  Error storage_failure(const SQLite::Exception& error);

  const ModuleDb& db_;
  std::size_t size_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

// NULL for an empty optional, the value otherwise; and back. Every store binds and reads
// optional columns with these.
template <class T>
void bind_optional(SQLite::Statement& statement, int index, const std::optional<T>& value) {
  if (value)
    statement.bind(index, *value);
  else
    statement.bind(index);
}
// A BLOB (bytes in a string), or NULL.
inline void bind_optional_blob(SQLite::Statement& statement, int index, const std::optional<std::string>& value) {
  if (value)
    statement.bind(index, value->data(), static_cast<int>(value->size()));
  else
    statement.bind(index);
}
inline std::optional<std::string> optional_text(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getString();
}
inline std::optional<std::int64_t> optional_int(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getInt64();
}

}  // namespace townhall::db
