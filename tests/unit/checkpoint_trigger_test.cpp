// When commits ask for a checkpoint (design note 64): by the WAL frames the last
// checkpoint did not copy, counted from the log's last restart; never after every commit
// of a log that stays long; and a long log's last frames copied by the writer itself, so
// that the log starts over under a load that never pauses.
#include "checkpoint_trigger.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "support.hpp"
#include "townhall/platform/db.hpp"

namespace townhall::db {
namespace {

using Checkpoint = CheckpointTrigger::Action;

TEST(CheckpointTrigger, AsksOnceAThousandFramesWaitAndNotAgainUntilAThousandMore) {
  CheckpointTrigger trigger;
  EXPECT_EQ(trigger.after_commit(500), Checkpoint::none);
  EXPECT_EQ(trigger.after_commit(1000), Checkpoint::ask_thread);
  trigger.checkpointed(trigger.log_seen(), 1000);
  // The log did not start over (a steady load): it is long, but all but a few of its
  // frames are in the database file. SQLite's rule (the log's length) asks here.
  EXPECT_EQ(trigger.after_commit(1010), Checkpoint::none);
  EXPECT_EQ(trigger.after_commit(1999), Checkpoint::none);
  EXPECT_EQ(trigger.after_commit(2000), Checkpoint::ask_thread);
}

TEST(CheckpointTrigger, ALogThatStartedOverIsCountedFromItsStart) {
  CheckpointTrigger trigger;
  EXPECT_EQ(trigger.after_commit(3000), Checkpoint::ask_thread);
  trigger.checkpointed(trigger.log_seen(), 3000);
  EXPECT_EQ(trigger.after_commit(12), Checkpoint::none);  // fewer frames than before: a new log
  EXPECT_EQ(trigger.after_commit(999), Checkpoint::none);
  // 1000 uncopied frames of the new log, though fewer than the old log copied.
  EXPECT_EQ(trigger.after_commit(1000), Checkpoint::ask_thread);
}

TEST(CheckpointTrigger, ARestartDuringACheckpointCountsTheWholeNewLog) {
  CheckpointTrigger trigger;
  EXPECT_EQ(trigger.after_commit(2500), Checkpoint::ask_thread);
  const auto log = trigger.log_seen();                    // the checkpoint starts on the 2,500-frame log
  EXPECT_EQ(trigger.after_commit(40), Checkpoint::none);  // meanwhile the log starts over
  trigger.checkpointed(log, 2500);                        // what it copied was of the old log
  EXPECT_EQ(trigger.after_commit(1000), Checkpoint::ask_thread);
}

TEST(CheckpointTrigger, FramesAReaderKeptFromTheCheckpointStillAsk) {
  CheckpointTrigger trigger;
  EXPECT_EQ(trigger.after_commit(1500), Checkpoint::ask_thread);
  trigger.checkpointed(trigger.log_seen(), 200);  // a reader's snapshot held the rest back
  EXPECT_EQ(trigger.after_commit(1501), Checkpoint::ask_thread);
}

TEST(CheckpointTrigger, ALongLogMostlyCopiedIsFinishedByTheWriterOncePerLongLog) {
  constexpr int kLong = CheckpointTrigger::kLongLog;
  static_assert(CheckpointTrigger::kFinishBelow == 100);
  CheckpointTrigger trigger;
  EXPECT_EQ(trigger.after_commit(kLong - 100), Checkpoint::ask_thread);
  trigger.checkpointed(trigger.log_seen(), kLong - 100);
  EXPECT_EQ(trigger.after_commit(kLong + 150), Checkpoint::none);  // long, but 250 frames to copy: the thread's
  trigger.checkpointed(trigger.log_seen(), kLong + 150);
  EXPECT_EQ(trigger.after_commit(kLong + 200), Checkpoint::finish_here);  // long, 50 frames to copy
  // Its copy could not take everything (a reader): not again at every commit.
  trigger.checkpointed(trigger.log_seen(), kLong + 180);
  EXPECT_EQ(trigger.after_commit(kLong + 210), Checkpoint::none);
  EXPECT_EQ(trigger.after_commit(kLong + 1000), Checkpoint::none);
  trigger.checkpointed(trigger.log_seen(), kLong + 1000);
  EXPECT_EQ(trigger.after_commit(2 * kLong - 1000), Checkpoint::ask_thread);
  trigger.checkpointed(trigger.log_seen(), 2 * kLong - 1000);
  // kLongLog frames after the last try, at twice the long log: whatever is left.
  EXPECT_EQ(trigger.after_commit(2 * kLong + 250), Checkpoint::finish_here);
  EXPECT_EQ(trigger.after_commit(30), Checkpoint::none);  // it started over
  trigger.checkpointed(trigger.log_seen(), 30);
  EXPECT_EQ(trigger.after_commit(kLong), Checkpoint::ask_thread);  // a new log: much uncopied
  trigger.checkpointed(trigger.log_seen(), kLong);
  EXPECT_EQ(trigger.after_commit(kLong + 10), Checkpoint::finish_here);  // its first try
}

TEST(CheckpointTrigger, AWriterTheThreadCannotKeepUpWithFinishesTheLogAtTwiceTheLongLog) {
  constexpr int kLong = CheckpointTrigger::kLongLog;
  CheckpointTrigger trigger;
  EXPECT_EQ(trigger.after_commit(3000), Checkpoint::ask_thread);
  trigger.checkpointed(trigger.log_seen(), 1000);
  EXPECT_EQ(trigger.after_commit(2 * kLong - 1), Checkpoint::ask_thread);  // long, but much uncopied
  EXPECT_EQ(trigger.after_commit(2 * kLong), Checkpoint::finish_here);
  trigger.finish_was_busy();  // the thread was copying: the next commit tries again
  EXPECT_EQ(trigger.after_commit(2 * kLong + 1), Checkpoint::finish_here);
}

// The file itself: one writer committing without a pause while the checkpoint thread
// copies. Without the writer finishing a long log, the log never starts over and holds
// every frame written (here 48,000 rows, ~147,000 frames).
TEST(CheckpointTrigger, TheLogStartsOverUnderAWriterThatNeverPauses) {
  testing::TempDir dir;
  ModuleDb database("steady", dir.path() / "steady.db", TableManifest{.owned = {"rows"}, .cache = {}});
  database.open(Role::owner)->exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  auto service = database.open(Role::service);
  auto insert = service->prepare("INSERT INTO rows (data) VALUES (zeroblob(3000))");  // a page a row
  for (int i = 0; i < 3 * CheckpointTrigger::kLongLog; ++i) {
    insert.exec();  // autocommit: one transaction each
    insert.reset();
  }
  const auto wal_bytes = std::filesystem::file_size(dir.path() / "steady.db-wal");
  const auto frame_bytes = 4096 + 24;
  // Bounded at twice the long log, plus what commits while the thread's pass ends (its
  // syncs on a busy disk: 53,859 frames seen with four of these at once); without the
  // writer's finish, ~147,000 frames.
  EXPECT_LT(wal_bytes, static_cast<std::uintmax_t>(5 * CheckpointTrigger::kLongLog) * frame_bytes)
      << "the log holds " << wal_bytes / frame_bytes << " frames";
}

}  // namespace
}  // namespace townhall::db
