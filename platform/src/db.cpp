#include "townhall/platform/db.hpp"

#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <thread>

#include "authorizer.hpp"
#include "checkpoint_trigger.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/thread_name.hpp"
#include "wal_write_vfs.hpp"

namespace townhall::db {

Connection::Connection(SQLite::Database database, std::unique_ptr<Guard> guard)
    : database_(std::move(database)), guard_(std::move(guard)) {
  sqlite3_set_authorizer(database_.getHandle(), &Guard::authorize, guard_.get());
}

Connection::~Connection() {
  statements_.clear();  // finalize before the connection closes
  if (database_.getHandle()) sqlite3_set_authorizer(database_.getHandle(), nullptr, nullptr);
}

Role Connection::role() const { return guard_->role; }
const std::string& Connection::module() const { return guard_->module; }

void Connection::rethrow(const SQLite::Exception& error) {
  if (!guard_->last_denial.empty()) {  // the authorizer refused something in this statement
    std::string why = std::move(guard_->last_denial);
    guard_->last_denial.clear();
    throw BoundaryViolation(why);
  }
  throw error;
}

SQLite::Statement Connection::prepare(const std::string& sql) {
  guard_->last_denial.clear();
  guard_->schema_write_pending = false;
  try {
    SQLite::Statement statement(database_, sql);
    if (guard_->schema_write_pending)  // a schema write that no DDL check followed: refuse
      throw BoundaryViolation("boundary violation in module '" + guard_->module + "': role '" +
                              std::string(to_string(guard_->role)) + "' may not write the schema table");
    return statement;
  } catch (const SQLite::Exception& error) {
    rethrow(error);
  }
}

CachedStatement Connection::cached(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    std::string text(sql);
    it = statements_.emplace(text, std::make_unique<SQLite::Statement>(prepare(text))).first;
  }
  auto& statement = *it->second;
  statement.reset();
  statement.clearBindings();
  return CachedStatement(statement);
}

int Connection::exec(const std::string& sql) {
  guard_->last_denial.clear();
  try {
    return database_.exec(sql);
  } catch (const SQLite::Exception& error) {
    rethrow(error);
  }
}

// Wakes on request and checkpoints the file: commits only flag that the WAL has frames
// to copy (CheckpointTrigger).
struct ModuleDb::CheckpointThread {
  std::mutex mutex;
  std::condition_variable wake;
  bool requested = false;
  bool stopping = false;
  std::thread thread;
  CheckpointTrigger trigger;

  void request() {
    {
      std::lock_guard lock(mutex);
      requested = true;
    }
    wake.notify_one();
  }

  static int on_commit(void* self, sqlite3* handle, const char* schema, int wal_frames) {
    auto* state = static_cast<CheckpointThread*>(self);
    switch (state->trigger.after_commit(wal_frames)) {
      case CheckpointTrigger::Action::none: break;
      case CheckpointTrigger::Action::ask_thread: state->request(); break;
      case CheckpointTrigger::Action::finish_here: {
        // The few frames the thread has not copied, on this connection (as SQLite's own
        // automatic checkpoint does from this hook): busy when the thread is at work.
        if (state->trigger.checkpoint(handle, schema) == SQLITE_BUSY) state->trigger.finish_was_busy();
        break;
      }
    }
    return SQLITE_OK;
  }
};

namespace {
// Process-wide SQLite settings, applied once before the first connection: no global
// memory statistics (they take a global mutex around every allocation).
void configure_sqlite_once() {
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return sqlite3_initialize() == SQLITE_OK;
  }();
  (void)configured;
}
}  // namespace

ModuleDb::ModuleDb(std::string module, std::filesystem::path file, TableManifest manifest, Options options,
                   metrics::Registry* metrics)
    : module_(std::move(module)),
      file_(std::move(file)),
      manifest_(std::move(manifest)),
      options_(options),
      metrics_(metrics) {
  configure_sqlite_once();
  for (auto& name : manifest_.owned) name = ascii_lower(name);
  for (auto& name : manifest_.cache) name = ascii_lower(name);
  checkpoint_thread_ = std::make_shared<CheckpointThread>();
  checkpoint_thread_->thread = std::thread([this, state = checkpoint_thread_.get()] {
    name_this_thread("ckpt:" + module_);
    std::unique_lock lock(state->mutex);
    for (;;) {
      state->wake.wait(lock, [state] { return state->requested || state->stopping; });
      if (state->stopping) return;
      state->requested = false;
      lock.unlock();
      checkpoint();
      lock.lock();
    }
  });
}

ModuleDb::~ModuleDb() {
  {
    std::lock_guard lock(checkpoint_thread_->mutex);
    checkpoint_thread_->stopping = true;
  }
  checkpoint_thread_->wake.notify_one();
  checkpoint_thread_->thread.join();
  // Be the last connection to close, read-write: SQLite then checkpoints the WAL into
  // the file and removes it (a read-only last connection would leave it behind).
  try {
    checkpointer_.reset();
    if (std::filesystem::is_regular_file(file_)) {
      SQLite::Database last(file_.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                            static_cast<int>(options_.busy_timeout.count()), wal_write_vfs(options_.vfs));
      last.exec("SELECT count(*) FROM sqlite_master");
    }
  } catch (const std::exception& error) {
    spdlog::debug("final checkpoint of {} skipped: {}", module_, error.what());
  }
}

std::unique_ptr<Connection> ModuleDb::open(Role role) const {
  int flags = SQLITE_OPEN_NOMUTEX;
  if (role == Role::reader)
    flags |= SQLITE_OPEN_READONLY;
  else if (role == Role::owner)
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  else
    flags |= SQLITE_OPEN_READWRITE;

  const auto generation = generation_.load(std::memory_order_acquire);
  SQLite::Database database(file_.string(), flags, static_cast<int>(options_.busy_timeout.count()),
                            wal_write_vfs(options_.vfs));
  sqlite3* handle = database.getHandle();
  sqlite3_db_config(handle, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(handle, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(handle, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_limit(handle, SQLITE_LIMIT_ATTACHED, 0);
  if (role != Role::reader) {
    database.exec("PRAGMA journal_mode=WAL");
    // Replaces the automatic checkpoint (which would run inside a commit) with a
    // request to this file's checkpoint thread.
    sqlite3_wal_hook(handle, &CheckpointThread::on_commit, checkpoint_thread_.get());
    database.exec(options_.synchronous == Synchronous::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    // Every command of a group commit and every event a consumer applies runs in its own
    // savepoint, whose statement journal (the pages it changed, kept for a rollback to
    // it) would otherwise go to a temporary file once a transaction passed 64 KiB: two
    // pwrites per page, never read unless a command fails. The owner role (migrations,
    // which may rewrite a whole table in one savepoint) keeps SQLite's default.
    if (role != Role::owner) database.exec("PRAGMA temp_store=MEMORY");
  }
  database.exec("PRAGMA foreign_keys=ON");
  if (options_.statement_observer)
    sqlite3_trace_v2(handle, SQLITE_TRACE_STMT, &ModuleDb::trace_statement, const_cast<ModuleDb*>(this));
  // Fails here, not at first use, when the file is not a database.
  database.exec("SELECT count(*) FROM sqlite_master");

  auto guard = std::make_unique<Connection::Guard>();
  guard->module = module_;
  guard->role = role;
  guard->manifest = std::make_shared<const TableManifest>(manifest_);
  if (metrics_)
    guard->violations =
        &metrics_->counter("townhall_boundary_violations_total", "Statements refused by a connection role's authorizer",
                           {"module", "role", "action"});
  auto connection = std::unique_ptr<Connection>(new Connection(std::move(database), std::move(guard)));
  connection->generation_ = generation;
  return connection;
}

int ModuleDb::trace_statement(unsigned, void* self, void* statement, void*) {
  const auto* db = static_cast<const ModuleDb*>(self);
  if (const char* sql = sqlite3_sql(static_cast<sqlite3_stmt*>(statement)))
    db->options_.statement_observer(db->module_, sql);
  return 0;
}

bool is_storage_failure(const SQLite::Exception& error) {
  switch (error.getErrorCode() & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
    case SQLITE_PERM:
    case SQLITE_NOLFS:
    case SQLITE_AUTH: return true;
    default: return false;
  }
}

void ModuleDb::note_failure(Access access, std::string_view what) const {
  {
    std::lock_guard lock(failure_mutex_);
    auto& slot = access == Access::write ? write_failure_ : read_failure_;
    if (slot.empty())
      spdlog::error("module {}: its file failed to {}; down until it works again: {}", module_,
                    access == Access::write ? "write" : "read", what);
    slot = what.empty() ? "unknown error" : std::string(what);
    failing_.store(true);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

void ModuleDb::clear_failure(Access access) const {
  std::lock_guard lock(failure_mutex_);
  bool was_failing = !read_failure_.empty() || !write_failure_.empty();
  read_failure_.clear();  // a write that committed read the file too
  if (access == Access::write) write_failure_.clear();
  failing_.store(!write_failure_.empty());
  if (was_failing && !failing_.load()) spdlog::info("module {}: its file works again", module_);
}

std::optional<std::string> ModuleDb::storage_failure() const {
  if (!failing_.load()) return std::nullopt;
  std::lock_guard lock(failure_mutex_);
  if (!write_failure_.empty()) return "cannot write its file: " + write_failure_;
  if (!read_failure_.empty()) return "cannot read its file: " + read_failure_;
  return std::nullopt;
}

bool ModuleDb::probe(const std::function<void(Connection&)>& write) const {
  try {
    auto connection = open(Role::service);
    SQLite::Transaction transaction(connection->sql(), SQLite::TransactionBehavior::IMMEDIATE);
    connection->exec("SELECT count(*) FROM schema_migrations");
    write(*connection);
    transaction.commit();
    note_success(Access::write);
    return true;
  } catch (const SQLite::Exception& error) {
    note_failure(Access::write, error.what());
    return false;
  }
}

void ModuleDb::checkpoint() const {
  std::lock_guard lock(checkpoint_mutex_);
  try {
    if (!checkpointer_) {
      checkpointer_ = std::make_unique<SQLite::Database>(file_.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                                         static_cast<int>(options_.busy_timeout.count()),
                                                         wal_write_vfs(options_.vfs));
      // A connection learns that the file is in WAL mode when it first reads it; until
      // then a checkpoint call is a silent no-op.
      checkpointer_->exec("SELECT count(*) FROM sqlite_master");
    }
    const int rc = checkpoint_thread_->trigger.checkpoint(checkpointer_->getHandle(), nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) throw SQLite::Exception(checkpointer_->getHandle(), rc);
  } catch (const std::exception& error) {
    checkpointer_.reset();
    spdlog::debug("checkpoint of {} failed: {}", module_, error.what());
  }
}

std::vector<std::string> ModuleDb::undeclared_tables(Connection& connection) const {
  std::vector<std::string> out;
  auto query = connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  while (query.executeStep()) {
    std::string name = query.getColumn(0).getString();
    if (!manifest_.classify(name)) out.push_back(name);
  }
  return out;
}

ReaderPool::ReaderPool(const ModuleDb& db, std::size_t size) : db_(db), size_(std::max<std::size_t>(1, size)) {}

ReaderPool::Lease ReaderPool::acquire() {
  {
    std::lock_guard lock(mutex_);
    const auto current = db_.generation();
    // Connections opened before the file last failed are retired, not reused.
    std::erase_if(idle_, [current](const auto& connection) { return connection->generation() != current; });
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(connection));
    }
  }
  return Lease(*this, db_.open(Role::reader));
}

ReaderPool::Lease::~Lease() {
  if (!connection_) return;
  std::lock_guard lock(pool_->mutex_);
  if (pool_->idle_.size() < pool_->size_ && connection_->generation() == pool_->db_.generation())
    pool_->idle_.push_back(std::move(connection_));
}

Error ReaderPool::storage_failure(const SQLite::Exception& error) {
  if (is_storage_failure(error))
    db_.note_failure(ModuleDb::Access::read, error.what());
  else
    spdlog::error("module {}: read failed: {}", db_.module(), error.what());
  return make_error(Errc::unavailable,
                    "the " + db_.module() + " module cannot read its data right now; try again later", 5);
}

}  // namespace townhall::db
