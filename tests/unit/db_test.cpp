// ModuleDb beyond the authorizer: checkpoints off the commit path, reader pool.
#include "townhall/platform/db.hpp"

#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sqlite3.h>

#include "fault_vfs.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/write_path.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::db {
namespace {

TEST(ModuleDb, LongWalIsCheckpointedInTheBackground) {
  testing::TempDir dir;
  ModuleDb database("blob", dir.path() / "blob.db", TableManifest{.owned = {"blobs"}, .cache = {}});
  auto owner = database.open(Role::owner);
  owner->exec("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  auto file_size = [&] { return std::filesystem::file_size(dir.path() / "blob.db"); };
  auto before = file_size();
  // ~8 MB in small transactions: the WAL passes 1000 pages (4 MB) and the commits only
  // signal; the database file grows only when the checkpoint thread copies pages into it.
  auto service = database.open(Role::service);
  auto insert = service->prepare("INSERT INTO blobs (data) VALUES (zeroblob(8000))");
  for (int i = 0; i < 1000; ++i) {
    SQLite::Transaction transaction(service->sql());
    insert.exec();
    insert.reset();
    transaction.commit();
  }
  EXPECT_TRUE(testing::wait_until([&] { return file_size() > before + 4 * 1024 * 1024; }))
      << "database file still " << file_size() << " bytes";
}

// A group commit's commands and a consumer's events each run in a savepoint: their
// statement journals stay in memory on the roles that write at run time (two pwrites per
// changed page otherwise), not on the owner's (a migration may rewrite a whole table).
TEST(ModuleDb, RunTimeWritersKeepTheirStatementJournalsInMemory) {
  testing::TempDir dir;
  ModuleDb database("journal", dir.path() / "journal.db", TableManifest{.owned = {"rows"}, .cache = {}});
  auto temp_store = [&](Role role) {  // 0: SQLite's default (a file past 64 KiB), 2: memory
    auto connection = database.open(role);
    sqlite3_set_authorizer(connection->sql().getHandle(), nullptr, nullptr);  // the pragma is not a role's to read
    return connection->sql().execAndGet("PRAGMA temp_store").getInt();
  };
  EXPECT_EQ(temp_store(Role::owner), 0);
  for (Role role : {Role::service, Role::sync, Role::relay}) EXPECT_EQ(temp_store(role), 2) << to_string(role);
}

TEST(ModuleDb, ReaderPoolReusesConnections) {
  testing::TempDir dir;
  ModuleDb database("pool", dir.path() / "pool.db", TableManifest{.owned = {"t"}, .cache = {}});
  database.open(Role::owner)->exec("CREATE TABLE t (id INTEGER)");
  ReaderPool pool(database, 2);
  Connection* first = nullptr;
  {
    auto lease = pool.acquire();
    first = &*lease;
    EXPECT_EQ(lease->role(), Role::reader);
  }
  auto again = pool.acquire();
  EXPECT_EQ(&*again, first);  // returned to the pool and handed out again
  auto second = pool.acquire();
  EXPECT_NE(&*second, first);  // a busy connection is not shared
}

// A storage failure on any connection retires them all: the write path and the reader
// pool reopen the file before their next use (a file repaired or replaced in place is
// the one they then use); the module reports itself down until a write or the probe works.
TEST(ModuleDb, AStorageFailureRetiresEveryConnectionUntilTheFileWorks) {
  testing::FaultVfs vfs;
  testing::TempDir dir;
  Options options;
  options.vfs = vfs.name();
  ModuleDb database("heal", dir.path() / "heal.db", TableManifest{.owned = {"t", "probe"}, .cache = {}}, options);
  testing::migrate_module(database, "none");  // the bus tables only
  database.open(Role::owner)->exec("CREATE TABLE t (id INTEGER PRIMARY KEY); CREATE TABLE probe (at TEXT)");
  Writer writer("heal");
  WritePath write_path(database, writer, {});
  write_path.open();
  ReaderPool readers(database, 2);
  // What the probe writes (the server's is bus::touch_storage_probe).
  auto touch = [](Connection& connection) { connection.exec("INSERT INTO probe VALUES (datetime('now'))"); };
  auto insert = [](Connection& connection) -> Result<std::uint64_t> {
    connection.exec("INSERT INTO t DEFAULT VALUES");
    return connection.generation();
  };
  auto read = [](Connection& connection) -> Result<std::uint64_t> {
    connection.exec("SELECT count(*) FROM t");
    return connection.generation();
  };
  auto first_write = write_path.call(insert);
  auto first_read = readers.read(read);
  ASSERT_TRUE(first_write && first_read);
  EXPECT_FALSE(database.storage_failure());

  vfs.inject({"heal.db", testing::FaultVfs::Call::write});
  auto refused = write_path.call(insert);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unavailable);
  ASSERT_TRUE(database.storage_failure());
  EXPECT_NE(database.storage_failure()->find("cannot write its file"), std::string::npos);
  EXPECT_FALSE(database.probe(touch));  // still failing
  // Reads work, and on a fresh connection; the module stays down for writes.
  auto read_during = readers.read(read);
  ASSERT_TRUE(read_during);
  EXPECT_GT(*read_during, *first_read);
  EXPECT_TRUE(database.storage_failure());

  vfs.clear();
  EXPECT_TRUE(database.probe(touch));
  EXPECT_FALSE(database.storage_failure());
  auto healed = write_path.call(insert);
  ASSERT_TRUE(healed);
  EXPECT_GT(*healed, *first_write);  // reopened, not the connection that failed
  EXPECT_EQ(*readers.read([](Connection& c) -> Result<std::int64_t> {
    auto count = c.prepare("SELECT count(*) FROM t");
    count.executeStep();
    return count.getColumn(0).getInt64();
  }),
            2);  // the refused insert left nothing
  write_path.close();
  writer.stop();
}

TEST(ModuleDb, AStatementsOwnFailureIsNotAStorageFailure) {
  testing::TempDir dir;
  ModuleDb database("own", dir.path() / "own.db", TableManifest{.owned = {"t"}, .cache = {}});
  testing::migrate_module(database, "none");  // the bus tables only
  database.open(Role::owner)->exec("CREATE TABLE t (id INTEGER PRIMARY KEY)");
  Writer writer("own");
  WritePath write_path(database, writer, {});
  write_path.open();
  auto duplicate = [](Connection& connection) -> Result<int> {
    connection.exec("INSERT INTO t (id) VALUES (1)");
    return connection.exec("INSERT INTO t (id) VALUES (1)");
  };
  EXPECT_FALSE(write_path.call(duplicate));
  EXPECT_FALSE(database.storage_failure());  // a constraint is the statement's, not the disk's
  write_path.close();
  writer.stop();
}

}  // namespace
}  // namespace townhall::db

namespace townhall::db {
namespace {

TEST(Writer, CallRunsOnTheWriterWaitsAndRethrows) {
  Writer writer("test");
  std::thread::id ran_on;
  writer.call([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_THROW(writer.call([] { throw std::runtime_error("boom"); }), std::runtime_error);
  // From the writer thread itself it runs in place instead of waiting on itself.
  bool nested = false;
  writer.call([&] { writer.call([&] { nested = writer.on_writer_thread(); }); });
  EXPECT_TRUE(nested);
  writer.stop();
}

// top -H, perf and gdb tell the writers apart by name (a long name is cut to Linux's 15 bytes).
TEST(Writer, ItsThreadIsNamedAfterIt) {
  auto thread_name = [](Writer& writer) {
    std::string name;
    writer.call([&] {
      char buffer[16] = {};
      pthread_getname_np(pthread_self(), buffer, sizeof buffer);
      name = buffer;
    });
    return name;
  };
  Writer permits("permits");
  EXPECT_EQ(thread_name(permits), "w:permits");
  Writer long_name("a-module-with-a-long-name");
  EXPECT_EQ(thread_name(long_name), "w:a-module-with");
}

}  // namespace
}  // namespace townhall::db

namespace townhall::db {
namespace {

// A commit says on its connection whether it appended events (bus::append counts them),
// so only a commit that did wakes the bus: not a plain write, not a rolled-back append.
TEST(WritePath, OnlyACommitThatAppendedEventsWakesTheBus) {
  testing::TempDir dir;
  ModuleDb database("src", dir.path() / "src.db", bus::with_bus_tables({"t"}, {}));
  testing::migrate_module(database, "none");  // the bus tables only
  database.open(Role::owner)->exec("CREATE TABLE t (id INTEGER PRIMARY KEY)");
  Writer writer("src");
  int wakes = 0;
  WritePath write_path(database, writer, [&] { ++wakes; });
  write_path.open();
  auto append = [](Connection& service) {
    bus::append(service,
                bus::NewEvent{"gov.src.thing", "thing.made", "thing", "1", 1, nlohmann::json::object(), "test", ""});
  };

  ASSERT_TRUE(write_path.call([](Connection& service) -> Result<Unit> {
    service.exec("INSERT INTO t DEFAULT VALUES");
    return Unit{};
  }));
  EXPECT_EQ(wakes, 0);
  ASSERT_TRUE(write_path.call([&](Connection& service) -> Result<Unit> {
    append(service);
    return Unit{};
  }));
  EXPECT_EQ(wakes, 1);
  auto refused = write_path.call([&](Connection& service) -> Result<Unit> {
    append(service);
    return make_error(Errc::conflict, "rolled back");
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(wakes, 1);
  auto reader = database.open(Role::reader);
  auto count = reader->prepare("SELECT count(*) FROM outbox");
  ASSERT_TRUE(count.executeStep());
  EXPECT_EQ(count.getColumn(0).getInt(), 1);
}

}  // namespace
}  // namespace townhall::db
