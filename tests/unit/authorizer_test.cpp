// The connection-role matrix (DESIGN.md §3): every role against every kind of table and
// every kind of statement, plus the statements no role may run.
#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "support.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/migrations.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/migrator.hpp"

namespace townhall::db {
namespace {

using testing::TempDir;

enum class Action { select, insert, update, remove, create, drop, alter };

const char* name(Action action) {
  switch (action) {
    case Action::select: return "SELECT";
    case Action::insert: return "INSERT";
    case Action::update: return "UPDATE";
    case Action::remove: return "DELETE";
    case Action::create: return "CREATE";
    case Action::drop: return "DROP";
    case Action::alter: return "ALTER";
  }
  return "?";
}

struct Table {
  std::string name;
  std::string kind;
  std::string column;
  std::string insert;
  std::string update;
};

const std::vector<Table>& tables() {
  static const std::vector<Table> all{
      {"records", "owned", "title", "INSERT INTO records (title) VALUES ('x')", "UPDATE records SET title = 'y'"},
      {"refs", "cache", "name", "INSERT INTO refs (id, name, event_version) VALUES (9, 'n', 1)",
       "UPDATE refs SET name = 'z'"},
      {"outbox", "outbox", "topic",
       "INSERT INTO outbox (topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, data) "
       "VALUES ('gov.test.record', 'record.created', 'record', '1', 1, '2026-01-01T00:00:00Z', '{}')",
       "UPDATE outbox SET occurred_at = '2026-01-01T00:00:00Z'"},
      {"processed_events", "bookkeeping", "subscription",
       "INSERT INTO processed_events (subscription, event_id, processed_at) VALUES ('s2', 'auth:1', 'now')",
       "UPDATE processed_events SET processed_at = 'later'"},
      {"bus_cursors", "cursors", "source",
       "INSERT INTO bus_cursors (subscription, source, position, updated_at) VALUES ('s2', 'auth', 1, 'now')",
       "UPDATE bus_cursors SET position = 2"},
      {"schema_migrations", "migrations", "name", "INSERT INTO schema_migrations VALUES ('x', 99, 'n', 'c', 'now')",
       "UPDATE schema_migrations SET name = 'n'"},
  };
  return all;
}

std::string statement(const Table& table, Action action) {
  switch (action) {
    case Action::select: return "SELECT * FROM " + table.name;
    case Action::insert: return table.insert;
    case Action::update: return table.update;
    case Action::remove: return "DELETE FROM " + table.name;
    case Action::create: return "CREATE INDEX idx_test ON " + table.name + " (" + table.column + ")";
    case Action::drop: return "DROP TABLE " + table.name;
    case Action::alter: return "ALTER TABLE " + table.name + " ADD COLUMN extra TEXT";
  }
  return {};
}

// The expected matrix, written out from DESIGN.md §3 rather than derived from the code.
bool expected_allowed(Role role, const std::string& kind, Action action) {
  bool ddl = action == Action::create || action == Action::drop || action == Action::alter;
  if (role == Role::owner) return true;
  if (ddl) return false;
  if (role == Role::reader) return action == Action::select;
  if (kind == "migrations") return action == Action::select && role != Role::relay;
  if (role == Role::service) {
    if (kind == "owned" || kind == "bookkeeping" || kind == "cursors") return true;
    if (kind == "cache") return action == Action::select;
    if (kind == "outbox") return action == Action::select || action == Action::insert;
  }
  if (role == Role::sync) return kind == "cache" || kind == "bookkeeping" || kind == "cursors";
  if (role == Role::relay) {
    if (kind == "outbox") return action != Action::insert;
    if (kind == "cursors") return action == Action::select;  // where subscriptions are
    return false;
  }
  return false;
}

}  // namespace

void PrintTo(Role role, std::ostream* out) { *out << to_string(role); }

namespace {

TableManifest test_manifest() { return bus::with_bus_tables({"records"}, {"refs"}); }

class AuthorizerTest : public ::testing::TestWithParam<Role> {
 protected:
  void SetUp() override {
    database_ =
        std::make_unique<ModuleDb>("testmod", dir_.path() / "testmod.db", test_manifest(), Options{}, &metrics_);
    auto owner = database_->open(Role::owner);
    Migrator migrator(*owner);
    auto bus = migrations_for(migrations::embedded_migrations(), "bus");
    migrator.apply(bus);
    owner->exec("CREATE TABLE records (id INTEGER PRIMARY KEY, title TEXT NOT NULL)");
    owner->exec("CREATE TABLE refs (id INTEGER PRIMARY KEY, name TEXT, event_version INTEGER NOT NULL)");
    owner->exec("INSERT INTO records (title) VALUES ('a')");
    owner->exec("INSERT INTO refs VALUES (1, 'r', 1)");
    owner->exec("INSERT INTO bus_cursors (subscription, source, position, updated_at) VALUES ('s1', 'auth', 0, 'now')");
  }

  TempDir dir_;
  metrics::Registry metrics_;
  std::unique_ptr<ModuleDb> database_;
};

TEST_P(AuthorizerTest, MatrixOfTablesAndActions) {
  Role role = GetParam();
  auto connection = database_->open(role);
  for (const auto& table : tables()) {
    for (Action action : {Action::select, Action::insert, Action::update, Action::remove, Action::create, Action::drop,
                          Action::alter}) {
      SCOPED_TRACE(std::string(to_string(role)) + " " + name(action) + " " + table.name);
      bool allowed = expected_allowed(role, table.kind, action);
      std::string sql = statement(table, action);
      if (allowed) {
        // Allowed statements run for real, then roll back so the next case sees the same file.
        if (role == Role::reader) {
          auto query = connection->prepare(sql);
          EXPECT_NO_THROW(query.executeStep());
        } else {
          SQLite::Transaction transaction(connection->sql());
          EXPECT_NO_THROW(connection->exec(sql));
        }
      } else {
        try {
          auto query = connection->prepare(sql);
          ADD_FAILURE() << "prepared, but the role should be refused: " << sql;
        } catch (const BoundaryViolation& violation) {
          std::string message = violation.what();
          EXPECT_NE(message.find("module 'testmod'"), std::string::npos) << message;
          EXPECT_NE(message.find("role '" + std::string(to_string(role)) + "'"), std::string::npos) << message;
          EXPECT_NE(message.find(table.name), std::string::npos) << message;
        }
      }
    }
  }
}

TEST_P(AuthorizerTest, NoRoleMayAttachDetachLoadExtensionsOrWritePragmas) {
  Role role = GetParam();
  auto connection = database_->open(role);
  for (std::string sql : {"ATTACH DATABASE ':memory:' AS other", "DETACH DATABASE main", "PRAGMA writable_schema=1",
                          "PRAGMA query_only=0", "PRAGMA journal_mode=DELETE", "SELECT load_extension('libm.so')"}) {
    SCOPED_TRACE(std::string(to_string(role)) + ": " + sql);
    EXPECT_THROW(connection->prepare(sql), BoundaryViolation);
  }
  // VACUUM INTO would copy the file elsewhere; it needs an attached database, which the
  // attach limit of 0 and the authorizer both refuse.
  auto copy = dir_.path() / "copy.db";
  EXPECT_THROW(connection->exec("VACUUM INTO '" + copy.string() + "'"), std::exception);
  EXPECT_FALSE(std::filesystem::exists(copy));
  // Reading pragmas is fine.
  EXPECT_NO_THROW(connection->prepare("PRAGMA journal_mode"));
  EXPECT_NO_THROW(connection->prepare("PRAGMA table_info(records)"));
}

TEST_P(AuthorizerTest, TriggersAndViewsAreForTheOwnerOnly) {
  Role role = GetParam();
  auto connection = database_->open(role);
  const std::string trigger =
      "CREATE TRIGGER t_after AFTER INSERT ON refs BEGIN UPDATE records SET title = 'pwned'; END";
  const std::string view = "CREATE VIEW v_records AS SELECT * FROM records";
  const std::string temp_trigger = "CREATE TEMP TRIGGER tt AFTER INSERT ON main.refs BEGIN DELETE FROM records; END";
  if (role == Role::owner) {
    SQLite::Transaction transaction(connection->sql());
    EXPECT_NO_THROW(connection->exec(trigger));
    EXPECT_NO_THROW(connection->exec(view));
  } else {
    EXPECT_THROW(connection->prepare(trigger), BoundaryViolation);
    EXPECT_THROW(connection->prepare(view), BoundaryViolation);
    EXPECT_THROW(connection->prepare(temp_trigger), BoundaryViolation);
  }
}

INSTANTIATE_TEST_SUITE_P(Roles, AuthorizerTest,
                         ::testing::Values(Role::owner, Role::service, Role::sync, Role::relay, Role::reader),
                         [](const auto& info) { return std::string(to_string(info.param)); });

class AuthorizerRulesTest : public AuthorizerTest {};

TEST_F(AuthorizerRulesTest, ErrorNamesModuleRoleTableAndAction) {
  auto sync = database_->open(Role::sync);
  try {
    sync->prepare("INSERT INTO records (title) VALUES ('x')");
    FAIL() << "sync wrote an owned table";
  } catch (const BoundaryViolation& violation) {
    EXPECT_STREQ(violation.what(),
                 "boundary violation in module 'testmod': role 'sync' may not INSERT on owned table 'records'");
  }
}

TEST_F(AuthorizerRulesTest, ViolationsAreCounted) {
  auto relay = database_->open(Role::relay);
  EXPECT_THROW(relay->prepare("SELECT * FROM records"), BoundaryViolation);
  EXPECT_THROW(relay->prepare("DELETE FROM refs"), BoundaryViolation);
  auto text = metrics_.render();
  EXPECT_NE(text.find("townhall_boundary_violations_total{module=\"testmod\",role=\"relay\",action=\"SELECT\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("townhall_boundary_violations_total{module=\"testmod\",role=\"relay\",action=\"DELETE\"} 1"),
            std::string::npos)
      << text;
}

TEST_F(AuthorizerRulesTest, UnknownTablesAreDeniedToEveryRoleButOwner) {
  auto owner = database_->open(Role::owner);
  owner->exec("CREATE TABLE stray (id INTEGER)");
  EXPECT_EQ(database_->undeclared_tables(*owner), std::vector<std::string>{"stray"});
  for (Role role : {Role::service, Role::sync, Role::relay, Role::reader}) {
    auto connection = database_->open(role);
    EXPECT_THROW(connection->prepare("SELECT * FROM stray"), BoundaryViolation) << to_string(role);
  }
}

TEST_F(AuthorizerRulesTest, RePrepareAfterSchemaChangeKeepsTheRule) {
  auto sync = database_->open(Role::sync);
  auto query = sync->prepare("SELECT name FROM refs");  // allowed: a cache table
  ASSERT_TRUE(query.executeStep());
  query.reset();

  // The owner replaces the cache table with a view over an owned table. The prepared
  // statement is re-prepared on its next step, and the authorizer runs again.
  auto owner = database_->open(Role::owner);
  owner->exec("DROP TABLE refs");
  owner->exec("CREATE VIEW refs AS SELECT id, title AS name FROM records");
  EXPECT_THROW(query.executeStep(), SQLite::Exception);

  // A statement still allowed after the change keeps working through re-prepare.
  auto service = database_->open(Role::service);
  auto records = service->prepare("SELECT title FROM records");
  owner->exec("ALTER TABLE records ADD COLUMN note TEXT");
  EXPECT_TRUE(records.executeStep());
}

TEST_F(AuthorizerRulesTest, ReaderConnectionIsReadOnlyEvenWithoutTheAuthorizer) {
  auto reader = database_->open(Role::reader);
  EXPECT_TRUE(sqlite3_db_readonly(reader->sql().getHandle(), "main") == 1);
}

TEST_F(AuthorizerRulesTest, NotADatabaseFailsAtOpen) {
  auto path = dir_.path() / "garbage.db";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::string junk(4096, 'x');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  ModuleDb broken("broken", path, test_manifest());
  EXPECT_THROW(broken.open(Role::owner), SQLite::Exception);
}

}  // namespace
}  // namespace townhall::db
