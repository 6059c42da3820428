// ModuleDb beyond the authorizer: checkpoints off the commit path, reader pool.
#include "townhall/platform/db.hpp"

#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>

#include "support.hpp"
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

}  // namespace
}  // namespace townhall::db
