// The VFS that writes a transaction's WAL frames with one call (design note 65): fewer
// writes, and nothing a plain-VFS reader or a kill -9 could tell apart from SQLite's own.
#include "wal_write_vfs.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

namespace townhall::db {
namespace {

const int kGatheringOpenFlags = SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE;

SQLite::Database open_gathering(const std::filesystem::path& file) {
  SQLite::Database database(file.string(), kGatheringOpenFlags, 5000, wal_write_vfs(""));
  database.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0");
  return database;
}

// What another connection finds through SQLite's own VFS: the file as written.
std::int64_t plain_count(const std::filesystem::path& file, const std::string& sql) {
  SQLite::Database plain(file.string(), SQLite::OPEN_READONLY, 5000, "unix");
  return plain.execAndGet(sql).getInt64();
}

// Inserts `rows` rows whose body is the SQL expression `body` (one statement).
void insert_rows(SQLite::Database& database, int rows, const std::string& body) {
  database.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(rows) +
                ") INSERT INTO rows (body) SELECT " + body + " FROM n");
}

std::string plain_integrity(const std::filesystem::path& file) {
  SQLite::Database plain(file.string(), SQLite::OPEN_READONLY, 5000, "unix");
  return plain.execAndGet("PRAGMA integrity_check").getString();
}

// The bytes of a file, to read a log as recovery would.
std::vector<unsigned char> file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(WalWriteVfs, ACommitOfManyFramesIsOneWriteThatAPlainReaderSees) {
  testing::TempDir dir;
  const auto file = dir.path() / "frames.db";
  auto database = open_gathering(file);
  database.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL, tag TEXT NOT NULL)");
  database.exec("CREATE INDEX rows_tag ON rows (tag)");
  const auto before = wal_write_counts();
  {
    SQLite::Transaction transaction(database);
    // ~12 pages of rows, index and table: a dozen frames, two write calls each.
    database.exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) "
        "INSERT INTO rows (body, tag) SELECT printf('%.1000c', 'x'), 'tag-' || i FROM n");
    transaction.commit();
  }
  const auto after = wal_write_counts();
  EXPECT_GE(after.asked - before.asked, 20u);
  EXPECT_EQ(after.written - before.written, 1u);
  EXPECT_EQ(after.gathered, 0u);
  EXPECT_EQ(plain_count(file, "SELECT count(*) FROM rows WHERE tag LIKE 'tag-%'"), 40);
}

TEST(WalWriteVfs, ATransactionThatSpillsReadsItsFramesBackAndARollbackLeavesNothing) {
  testing::TempDir dir;
  const auto file = dir.path() / "spill.db";
  auto database = open_gathering(file);
  database.exec("PRAGMA cache_size=8");  // pages: a big transaction spills frames to the WAL early
  database.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  database.exec("INSERT INTO rows (body) VALUES (zeroblob(100))");
  auto fill = [&](int rows) { insert_rows(database, rows, "randomblob(3000)"); };
  {
    SQLite::Transaction transaction(database);
    fill(600);  // ~1.8 MB: spills, and passes what is gathered before a write
    // Read back through the cache's eight pages: the spilled frames come from the file.
    EXPECT_EQ(database.execAndGet("SELECT count(*) FROM rows WHERE length(body) = 3000").getInt64(), 600);
  }  // rolled back
  {
    SQLite::Transaction transaction(database);
    database.exec("INSERT INTO rows (body) VALUES (zeroblob(200))");
    transaction.commit();
  }
  EXPECT_EQ(plain_count(file, "SELECT count(*) FROM rows"), 2);
  EXPECT_EQ(plain_integrity(file), "ok");
  {
    SQLite::Transaction transaction(database);
    fill(600);
    transaction.commit();
  }
  EXPECT_EQ(plain_count(file, "SELECT count(*) FROM rows"), 602);
  // The log starts over after a checkpoint: the next frames go to its start.
  database.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  database.exec("INSERT INTO rows (body) VALUES (zeroblob(300))");
  EXPECT_EQ(plain_count(file, "SELECT count(*) FROM rows"), 603);
  EXPECT_EQ(plain_integrity(file), "ok");
}

// A transaction that spilled frames and rolled back leaves them gathered; another
// connection then commits frames at the same place in the log. Written after that, the
// rolled-back frames would replace the committed ones.
TEST(WalWriteVfs, ARolledBackTransactionsFramesNeverLandOnAnotherConnectionsCommit) {
  testing::TempDir dir;
  const auto file = dir.path() / "two.db";
  auto first = open_gathering(file);
  first.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  first.exec("PRAGMA cache_size=8");
  auto second = open_gathering(file);
  {
    SQLite::Transaction transaction(first);
    // Spills: frames gathered, not written.
    insert_rows(first, 40, "randomblob(3000)");
    EXPECT_GT(wal_write_counts().gathered, 0u);
  }                                            // rolled back
  EXPECT_EQ(wal_write_counts().gathered, 0u);  // written before the write lock went
  insert_rows(second, 40, "zeroblob(3000)");
  // The first connection reads the second's rows from the log (a read writes what is
  // gathered first), then closes.
  EXPECT_EQ(first.execAndGet("SELECT count(*) FROM rows WHERE body = zeroblob(3000)").getInt64(), 40);
  EXPECT_EQ(plain_count(file, "SELECT count(*) FROM rows WHERE body = zeroblob(3000)"), 40);
  EXPECT_EQ(plain_integrity(file), "ok");
}

// The rule the test above depends on, without SQLite's own reads in between: bytes
// gathered while the connection holds the log's write lock are in the file before it
// releases the lock (here a frame as a cache spill writes it, then a rollback).
TEST(WalWriteVfs, WhatIsGatheredIsWrittenBeforeTheWriteLockGoes) {
  testing::TempDir dir;
  const auto file = dir.path() / "lock.db";
  auto database = open_gathering(file);
  database.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY)");
  sqlite3_file* wal = nullptr;
  ASSERT_EQ(sqlite3_file_control(database.getHandle(), "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal), SQLITE_OK);
  ASSERT_NE(wal, nullptr);
  const auto end = static_cast<sqlite3_int64>(std::filesystem::file_size(dir.path() / "lock.db-wal"));
  database.exec("BEGIN IMMEDIATE");                        // takes the write lock
  const std::array<unsigned char, 24> header{0, 0, 0, 2};  // page 2, no commit mark
  const std::vector<char> page(4096, 'x');
  ASSERT_EQ(wal->pMethods->xWrite(wal, header.data(), 24, end), SQLITE_OK);
  ASSERT_EQ(wal->pMethods->xWrite(wal, page.data(), 4096, end + 24), SQLITE_OK);
  EXPECT_EQ(wal_write_counts().gathered, 4120u);
  database.exec("ROLLBACK");
  EXPECT_EQ(wal_write_counts().gathered, 0u);
  // In the file (the write that ends the log is padded to a block boundary after it).
  const auto bytes = file_bytes(dir.path() / "lock.db-wal");
  ASSERT_GE(bytes.size(), static_cast<std::size_t>(end + 4120));
  EXPECT_TRUE(
      std::all_of(bytes.begin() + end + 24, bytes.begin() + end + 4120, [](unsigned char b) { return b == 'x'; }));
  database.exec("INSERT INTO rows DEFAULT VALUES");
  EXPECT_EQ(plain_count(file, "SELECT count(*) FROM rows"), 1);
  EXPECT_EQ(plain_integrity(file), "ok");
}

// A transaction that changes pages it already spilled writes over their frames, then
// rewrites the checksums of every frame from there to its commit frame: the file as it
// stands (copied without the shared-memory index, so SQLite recovers it from the log
// alone, as after a crash) holds the commit.
TEST(WalWriteVfs, ACommitWhoseChecksumsWereRewrittenIsRecoveredFromTheLogAlone) {
  testing::TempDir dir;
  const auto file = dir.path() / "rewrite.db";
  auto database = open_gathering(file);
  database.exec("PRAGMA cache_size=8");
  database.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  {
    SQLite::Transaction transaction(database);
    insert_rows(database, 300, "randomblob(3000)");
    database.exec("UPDATE rows SET body = zeroblob(10) WHERE id <= 50");  // pages already in the log
    transaction.commit();
  }
  const auto copy = dir.path() / "copy";
  std::filesystem::create_directory(copy);
  std::filesystem::copy_file(file, copy / "rewrite.db");
  std::filesystem::copy_file(dir.path() / "rewrite.db-wal", copy / "rewrite.db-wal");
  EXPECT_EQ(plain_count(copy / "rewrite.db", "SELECT count(*) FROM rows"), 300);
  EXPECT_EQ(plain_count(copy / "rewrite.db", "SELECT count(*) FROM rows WHERE length(body) = 10"), 50);
  EXPECT_EQ(plain_integrity(copy / "rewrite.db"), "ok");
}

// Where the valid log ends: the first frame whose salts differ from the log header's
// (an older log's frame, or zeros) is past it.
std::size_t valid_log_end(const std::vector<unsigned char>& wal, std::size_t page_size) {
  const std::size_t frame = 24 + page_size;
  std::size_t end = 32;
  while (end + frame <= wal.size() && std::equal(wal.begin() + 16, wal.begin() + 24, wal.begin() + end + 8))
    end += frame;
  return end;
}

// Design note 68: a commit's write is padded with zeros to a 4 KiB boundary, so the
// kernel never reads the old block it would otherwise write into only in part. Once the
// log starts over, that block held an older log's frames; now it holds zeros, and the
// log recovers from the file alone as before.
TEST(WalWriteVfs, ACommitEndsItsWriteOnABlockBoundaryAndTheLogStillRecovers) {
  testing::TempDir dir;
  const auto file = dir.path() / "blocks.db";
  const auto wal = dir.path() / "blocks.db-wal";
  auto database = open_gathering(file);
  database.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  const auto padded_before = wal_write_counts().padded;
  for (int i = 0; i < 20; ++i) {
    database.exec("INSERT INTO rows (body) VALUES (randomblob(2500))");
    EXPECT_EQ(std::filesystem::file_size(wal) % 4096, 0u) << "after commit " << i;
  }
  EXPECT_GT(wal_write_counts().padded, padded_before);
  // The log starts over: the next commit writes over the first frames of the old one.
  database.exec("PRAGMA wal_checkpoint(RESTART)");
  database.exec("INSERT INTO rows (body) VALUES (zeroblob(100))");
  const auto bytes = file_bytes(wal);
  const auto end = valid_log_end(bytes, 4096);
  ASSERT_GT(end, 32u);
  ASSERT_LT(end, bytes.size());  // the old log's frames are still past the new one
  const auto block_end = (end + 4095) / 4096 * 4096;
  EXPECT_TRUE(std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(end),
                          bytes.begin() + static_cast<std::ptrdiff_t>(block_end),
                          [](unsigned char b) { return b == 0; }))
      << "bytes " << end << " to " << block_end << " are not padding";
  // Recovered from the log alone (no shared-memory index), as after a crash.
  const auto copy = dir.path() / "copy";
  std::filesystem::create_directory(copy);
  std::filesystem::copy_file(file, copy / "blocks.db");
  std::filesystem::copy_file(wal, copy / "blocks.db-wal");
  EXPECT_EQ(plain_count(copy / "blocks.db", "SELECT count(*) FROM rows"), 21);
  EXPECT_EQ(plain_integrity(copy / "blocks.db"), "ok");
}

// A child commits one row a transaction through the VFS and reports each commit down a
// pipe; it is killed with SIGKILL mid-stream. Every row it reported is in the file.
TEST(WalWriteVfs, EveryCommitReportedBeforeAKillMinusNineIsInTheFile) {
  testing::TempDir dir;
  const auto file = dir.path() / "crash.db";
  {
    auto database = open_gathering(file);
    database.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    auto database = open_gathering(file);
    SQLite::Statement insert(database, "INSERT INTO rows (id, body) VALUES (?, printf('%.500c', 'y'))");
    for (std::int64_t id = 1;; ++id) {
      insert.bind(1, id);
      insert.exec();  // autocommit: one transaction
      insert.reset();
      if (write(fds[1], &id, sizeof id) != sizeof id) _exit(1);
    }
  }
  close(fds[1]);
  std::int64_t reported = 0, id = 0;
  while (reported < 3000 && read(fds[0], &id, sizeof id) == sizeof id) reported = id;
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  while (read(fds[0], &id, sizeof id) == sizeof id) reported = id;  // reported before it died
  close(fds[0]);
  ASSERT_GE(reported, 3000);
  EXPECT_GE(plain_count(file, "SELECT count(*) FROM rows"), reported);
  EXPECT_EQ(plain_count(file, "SELECT max(id) - count(*) FROM rows"), 0);  // no gap
  EXPECT_EQ(plain_integrity(file), "ok");
}

// Constructed before main, so before the VFS registry: destroyed after it at exit.
std::unique_ptr<SQLite::Database> connection_held_until_exit;

TEST(WalWriteVfs, AConnectionHeldByAStaticClosesCleanlyAtExit) {
  testing::TempDir dir;
  const auto file = dir.path() / "static.db";
  EXPECT_EXIT(
      {
        connection_held_until_exit = std::make_unique<SQLite::Database>(open_gathering(file));
        connection_held_until_exit->exec("CREATE TABLE rows (id INTEGER PRIMARY KEY)");
        std::exit(0);  // static destructors run; the connection closes through the VFS
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(WalWriteVfs, OnlyTheWalIsGatheredAndAnUnknownBaseIsAnError) {
  testing::TempDir dir;
  const auto file = dir.path() / "journal.db";
  SQLite::Database database(file.string(), kGatheringOpenFlags, 5000, wal_write_vfs(""));
  database.exec("PRAGMA journal_mode=DELETE");
  database.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY)");
  const auto before = wal_write_counts();
  database.exec("INSERT INTO rows DEFAULT VALUES");
  EXPECT_EQ(wal_write_counts().asked, before.asked);
  EXPECT_EQ(plain_count(file, "SELECT count(*) FROM rows"), 1);
  EXPECT_EQ(wal_write_vfs(""), wal_write_vfs(""));
  EXPECT_THROW(wal_write_vfs("no-such-vfs"), std::runtime_error);
}

}  // namespace
}  // namespace townhall::db
