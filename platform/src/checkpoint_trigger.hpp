#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>

namespace townhall::db {

// When a module file's commits ask its checkpoint thread for a checkpoint (once 1000
// frames of the WAL are not yet copied into the database file), and when the committing
// writer finishes one itself so that the log starts over.
//
// Under a steady load the log rarely starts over: the writer restarts it only when a
// checkpoint has copied all of it and no reader still needs it, and commits land while
// the thread copies. So its length says little: asking whenever the log is long
// (SQLite's own rule) asked after every commit, and the thread synced the file back to
// back (issue 24: the cache lag's stalls). Commits see the log start over (fewer frames
// than at the commit before); a checkpoint records how far it copied and which log
// that was. And because the thread alone never lets the log start over under load, a
// commit that leaves the log long (kLongLog) with few frames uncopied copies those few
// itself, in the writer, where no commit can land meanwhile: the next transaction then
// starts the log over (design note 64). Thread-safe: commits on the writer thread,
// checkpoints on the checkpoint thread.
class CheckpointTrigger {
 public:
  static constexpr int kFrames = 1000;
  static constexpr int kLongLog = 16 * kFrames;  // 64 MiB of 4 KiB pages
  // The writer finishes a long log only when this little is left to copy: it copies on
  // the commit path, and then syncs those pages (the cache lag's tail at 5,000 PATCH/s
  // was shorter than with 1000, bench/README.md "Citizen PATCH").
  static constexpr int kFinishBelow = kFrames / 10;

  enum class Action { none, ask_thread, finish_here };

  // After a commit that left `wal_frames` frames in the log: what to do now.
  Action after_commit(int wal_frames) {
    if (wal_frames < frames_at_last_commit_.exchange(wal_frames, std::memory_order_relaxed)) {
      restarts_.fetch_add(1, std::memory_order_relaxed);
      finished_at_.store(0, std::memory_order_relaxed);
    }
    const bool same_log =
        restarts_.load(std::memory_order_relaxed) == restarts_at_checkpoint_.load(std::memory_order_relaxed);
    const int not_copied = wal_frames - (same_log ? frames_copied_.load(std::memory_order_relaxed) : 0);
    // Once per kLongLog frames of a long log (a reader that kept the last try from copying
    // everything does not make every commit try again); at twice that, however much is
    // left, so that a writer the thread cannot keep up with still bounds the log.
    if (wal_frames >= kLongLog && wal_frames >= finished_at_.load(std::memory_order_relaxed) + kLongLog &&
        (not_copied < kFinishBelow || wal_frames >= 2 * kLongLog)) {
      finished_at_.store(wal_frames, std::memory_order_relaxed);
      return Action::finish_here;
    }
    return not_copied >= kFrames ? Action::ask_thread : Action::none;
  }

  // The writer's finish found the thread at work: the next commit tries again.
  void finish_was_busy() { finished_at_.store(0, std::memory_order_relaxed); }

  // Before a checkpoint starts: which log it will see (a restart seen later makes commits
  // count the whole log again: early, never late).
  std::uint64_t log_seen() const { return restarts_.load(std::memory_order_relaxed); }
  // A PASSIVE checkpoint of `schema` on `connection`, recorded: SQLITE_OK, SQLITE_BUSY
  // (another is running) or SQLite's error. Both the thread and a finishing writer.
  int checkpoint(sqlite3* connection, const char* schema) {
    const auto log = log_seen();
    int log_frames = 0, copied_frames = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(connection, schema, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied_frames);
    if (rc == SQLITE_OK) checkpointed(log, copied_frames);
    return rc;
  }

  // After a checkpoint of log `log` (log_seen() before it) copied `copied_frames` of it.
  void checkpointed(std::uint64_t log, int copied_frames) {
    frames_copied_.store(copied_frames, std::memory_order_relaxed);
    restarts_at_checkpoint_.store(log, std::memory_order_relaxed);
  }

 private:
  std::atomic<int> frames_at_last_commit_{0};
  std::atomic<std::uint64_t> restarts_{0};
  std::atomic<std::uint64_t> restarts_at_checkpoint_{0};
  std::atomic<int> frames_copied_{0};
  // The log's frames at the last finish_here. Commits run on the module's writer, but
  // the hook sees every connection's, the CLI's too.
  std::atomic<int> finished_at_{0};
};

}  // namespace townhall::db
