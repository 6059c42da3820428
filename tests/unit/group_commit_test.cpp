// Issue 24 §2: group commit on a module's write path. Commands queued while the writer is
// busy share one transaction, each in a savepoint: a failing one is undone and answered
// alone, every other is answered only after the commit that holds it, the bus is woken
// once per commit, and a storage failure keeps none of the group.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <latch>
#include <stdexcept>

#include "fault_vfs.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/row.hpp"
#include "townhall/platform/write_path.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::db {
namespace {

namespace asio = boost::asio;

class GroupCommit : public ::testing::Test {
 protected:
  void SetUp() override {
    options.vfs = vfs.name();
    database = std::make_unique<ModuleDb>("group", dir.path() / "group.db", TableManifest{.owned = {"t"}, .cache = {}},
                                          options);
    testing::migrate_module(*database, "none");
    database->open(Role::owner)->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE)");
    path = std::make_unique<WritePath>(
        *database, writer, [this] { ++wakes; }, &metrics);
    path->open();
  }
  void TearDown() override {
    path->close();
    writer.stop();
  }

  // Runs `commands` concurrently from one io_context while the writer is held busy, so
  // they all queue and meet in groups; each answer in its command's slot.
  template <class F>
  std::vector<Result<std::int64_t>> run_together(int count, F make_command,
                                                 std::vector<std::exception_ptr>* thrown = nullptr) {
    std::vector<Result<std::int64_t>> answers(count);
    if (thrown) thrown->assign(count, nullptr);
    std::promise<void> release;
    auto released = release.get_future().share();
    writer.post([released] { released.wait(); });  // the writer is busy committing
    asio::io_context io;
    for (int i = 0; i < count; ++i)
      asio::co_spawn(
          io,
          [&, i]() -> asio::awaitable<void> {
            try {
              answers[i] = co_await path->run(make_command(i));
            } catch (...) {
              if (thrown) (*thrown)[i] = std::current_exception();
            }
          },
          asio::detached);
    io.poll();  // every command is queued now
    release.set_value();
    io.run();  // returns when every command has its answer
    return answers;
  }

  std::int64_t rows() { return database->open(Role::reader)->sql().execAndGet("SELECT count(*) FROM t").getInt64(); }
  std::uint64_t commits() {
    return metrics.counter("townhall_write_commits_total", "", {"module"}).with({"group"}).value();
  }

  testing::FaultVfs vfs;
  testing::TempDir dir;
  Options options;
  std::unique_ptr<ModuleDb> database;
  Writer writer{"group"};
  metrics::Registry metrics;
  int wakes = 0;
  std::unique_ptr<WritePath> path;
};

// An insert of `n` that appends an event; number 17 breaks its check after writing.
auto insert_or_fail(int failing) {
  return [failing](int i) {
    return [i, failing](Connection& service) -> Result<std::int64_t> {
      service.exec("INSERT INTO t (n) VALUES (" + std::to_string(i) + ")");
      service.note_event_appended();
      if (i == failing) return make_error(Errc::conflict, "command " + std::to_string(i) + " refused");
      return service.sql().getLastInsertRowid();
    };
  };
}

TEST_F(GroupCommit, FiftyCommandsOneFailingAreOneCommitAndTheFailingOneLeavesNothing) {
  auto answers = run_together(50, insert_or_fail(17));
  for (int i = 0; i < 50; ++i) {
    if (i == 17) {
      ASSERT_FALSE(answers[i]);
      EXPECT_EQ(answers[i].error().code, Errc::conflict);
      EXPECT_EQ(answers[i].error().message, "command 17 refused");
    } else {
      EXPECT_TRUE(answers[i]) << i << ": " << answers[i].error().message;
    }
  }
  EXPECT_EQ(rows(), 49);
  EXPECT_EQ(database->open(Role::reader)->sql().execAndGet("SELECT count(*) FROM t WHERE n = 17").getInt(), 0);
  EXPECT_EQ(commits(), 1u) << "queued together, committed together";
  EXPECT_EQ(wakes, 1) << "the bus is woken once per commit, not per command";
}

TEST_F(GroupCommit, AGroupIsAtMostMaxGroupCommandsAndTheRestFollows) {
  auto answers = run_together(static_cast<int>(WritePath::kMaxGroup) + 6, insert_or_fail(-1));
  for (auto& answer : answers) EXPECT_TRUE(answer);
  EXPECT_EQ(rows(), static_cast<std::int64_t>(WritePath::kMaxGroup) + 6);
  EXPECT_EQ(commits(), 2u);
}

TEST_F(GroupCommit, AThrowingCommandIsUndoneAloneAndItsCallerGetsTheException) {
  std::vector<std::exception_ptr> thrown;
  auto answers = run_together(
      5,
      [](int i) {
        return [i](Connection& service) -> Result<std::int64_t> {
          service.exec("INSERT INTO t (n) VALUES (" + std::to_string(i) + ")");
          if (i == 2) throw std::runtime_error("a bug in command 2");
          if (i == 3) service.exec("INSERT INTO t (n) VALUES (0)");  // a constraint: UNIQUE n
          return i;
        };
      },
      &thrown);
  ASSERT_TRUE(thrown[2]);
  EXPECT_THROW(std::rethrow_exception(thrown[2]), std::runtime_error);
  EXPECT_EQ(answers[3].error().code, Errc::unavailable) << "a constraint failure is the command's alone";
  for (int i : {0, 1, 4}) EXPECT_TRUE(answers[i]) << i;
  EXPECT_EQ(rows(), 3);
  EXPECT_FALSE(database->storage_failure()) << "neither is a storage failure";
}

TEST_F(GroupCommit, AStorageFailureKeepsNoneOfTheGroupAndAnswersEachUnavailable) {
  vfs.inject({"group.db", testing::FaultVfs::Call::write});
  auto answers = run_together(10, insert_or_fail(4));
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(answers[i]) << i;
    EXPECT_EQ(answers[i].error().code, i == 4 ? Errc::conflict : Errc::unavailable) << i;
  }
  vfs.clear();
  EXPECT_EQ(rows(), 0) << "nothing of the failed group was kept";
  EXPECT_EQ(wakes, 0);
  ASSERT_TRUE(database->probe([](Connection& c) { c.exec("INSERT INTO t (n) VALUES (1000)"); }));
  auto after = run_together(3, insert_or_fail(-1));
  for (auto& answer : after) EXPECT_TRUE(answer);
  EXPECT_EQ(rows(), 4);
}

// A command alone runs without a savepoint: the transaction is undone whole when it
// fails (after writing and appending), so it leaves no row, no commit and no wake.
TEST_F(GroupCommit, ACommandAloneThatFailsIsRolledBackWholeAndCommitsNothing) {
  auto refused = run_together(1, insert_or_fail(0));
  ASSERT_FALSE(refused[0]);
  EXPECT_EQ(refused[0].error().code, Errc::conflict);
  std::vector<std::exception_ptr> thrown;
  run_together(
      1,
      [](int) {
        return [](Connection& service) -> Result<std::int64_t> {
          service.exec("INSERT INTO t (n) VALUES (7)");
          throw std::runtime_error("a bug");
        };
      },
      &thrown);
  EXPECT_TRUE(thrown[0]);
  EXPECT_EQ(rows(), 0);
  EXPECT_EQ(commits(), 0u);
  EXPECT_EQ(wakes, 0);
  auto kept = run_together(1, insert_or_fail(-1));
  ASSERT_TRUE(kept[0]);
  EXPECT_EQ(rows(), 1);
  EXPECT_EQ(commits(), 1u);
  EXPECT_EQ(wakes, 1);
}

TEST_F(GroupCommit, AClosedPathAnswersUnavailableAndRunsNothing) {
  path->close();
  auto answers = run_together(3, insert_or_fail(-1));
  for (auto& answer : answers) EXPECT_EQ(answer.error().code, Errc::unavailable);
  EXPECT_EQ(rows(), 0);
  path->open();
}

}  // namespace
}  // namespace townhall::db
