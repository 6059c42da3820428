#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
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
  outbox,       // the bus's outbox
  bookkeeping,  // bus_cursors, processed_events, dead_letters
  migrations,   // schema_migrations
  system,       // sqlite_schema, sqlite_sequence, sqlite_stat*
};
std::string_view to_string(TableKind kind);

// The tables a module file may hold, by kind. The bus and SQLite tables are implied.
struct TableManifest {
  std::vector<std::string> owned;
  std::vector<std::string> cache;

  std::optional<TableKind> classify(std::string_view table) const;
};

enum class Synchronous { normal, full };

struct Options {
  Synchronous synchronous = Synchronous::normal;
  std::chrono::milliseconds busy_timeout{5000};
};

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

 private:
  friend class ModuleDb;
  struct Guard;
  Connection(SQLite::Database database, std::unique_ptr<Guard> guard);
  [[noreturn]] void rethrow(const SQLite::Exception& error);

  SQLite::Database database_;
  std::unique_ptr<Guard> guard_;
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

  ~ModuleDb();

  // Copies committed WAL frames into the database file without blocking writers
  // (PASSIVE). A background thread of this ModuleDb runs it whenever a commit leaves the
  // WAL over 1000 pages, so no commit pays for a checkpoint. Thread-safe.
  void checkpoint() const;

  // Tables present in the file that the manifest does not declare (should be none).
  std::vector<std::string> undeclared_tables(Connection& connection) const;

 private:
  std::string module_;
  std::filesystem::path file_;
  TableManifest manifest_;
  Options options_;
  metrics::Registry* metrics_;
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
      if (failing_.load(std::memory_order_relaxed)) failing_.store(false);
      return result;
    } catch (const BoundaryViolation&) {
      throw;
    } catch (const SQLite::Exception& error) {
      return R(storage_failure(error));
    }
  }

  // Why the latest read() failed on storage, while no read has succeeded since: the
  // module reports itself down (health) until its file can be read again.
  std::optional<std::string> failing() const;

 private:
  Error storage_failure(const SQLite::Exception& error);

  std::atomic<bool> failing_{false};
  mutable std::mutex failure_mutex_;
  std::string failure_;

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
