// When commits ask for a checkpoint (design note 64): by the WAL frames the last
// checkpoint did not copy, counted from the log's last restart; never after every commit
// of a log that stays long.
#include "checkpoint_trigger.hpp"

#include <gtest/gtest.h>

namespace townhall::db {
namespace {

TEST(CheckpointTrigger, AsksOnceAThousandFramesWaitAndNotAgainUntilAThousandMore) {
  CheckpointTrigger trigger;
  EXPECT_FALSE(trigger.after_commit(500));
  EXPECT_TRUE(trigger.after_commit(1000));
  trigger.checkpointed(trigger.log_seen(), 1000);
  // The log did not start over (a steady load): it is long, but all but a few of its
  // frames are in the database file. SQLite's rule (the log's length) asks here.
  EXPECT_FALSE(trigger.after_commit(1010));
  EXPECT_FALSE(trigger.after_commit(1999));
  EXPECT_TRUE(trigger.after_commit(2000));
}

TEST(CheckpointTrigger, ALogThatStartedOverIsCountedFromItsStart) {
  CheckpointTrigger trigger;
  EXPECT_TRUE(trigger.after_commit(3000));
  trigger.checkpointed(trigger.log_seen(), 3000);
  EXPECT_FALSE(trigger.after_commit(12));  // fewer frames than before: a new log
  EXPECT_FALSE(trigger.after_commit(999));
  // 1000 uncopied frames of the new log, though fewer than the old log copied.
  EXPECT_TRUE(trigger.after_commit(1000));
}

TEST(CheckpointTrigger, ARestartDuringACheckpointCountsTheWholeNewLog) {
  CheckpointTrigger trigger;
  EXPECT_TRUE(trigger.after_commit(2500));
  const auto log = trigger.log_seen();     // the checkpoint starts on the 2,500-frame log
  EXPECT_FALSE(trigger.after_commit(40));  // meanwhile the log starts over
  trigger.checkpointed(log, 2500);         // what it copied was of the old log
  EXPECT_TRUE(trigger.after_commit(1000));
}

TEST(CheckpointTrigger, FramesAReaderKeptFromTheCheckpointStillAsk) {
  CheckpointTrigger trigger;
  EXPECT_TRUE(trigger.after_commit(1500));
  trigger.checkpointed(trigger.log_seen(), 200);  // a reader's snapshot held the rest back
  EXPECT_TRUE(trigger.after_commit(1501));
}

}  // namespace
}  // namespace townhall::db
