#pragma once

#include <filesystem>
#include <stdexcept>

// One process writes a data directory: `serve`, `migrate`, `dlq replay`, `admin
// create-user` and the demo seed hold an exclusive lock on DIR/townhall.lock (flock, so
// the kernel releases it when the holder dies, even by kill -9). Read-only commands
// (`dlq list`, `backup`) do not take it and work beside a running server.
namespace townhall::db {

// Another process holds the lock; `holder_pid` is what it wrote into the file (0 when
// unknown).
class DataDirInUse : public std::runtime_error {
 public:
  DataDirInUse(const std::filesystem::path& dir, int holder_pid);
  int holder_pid() const { return holder_pid_; }

 private:
  int holder_pid_;
};

// Personal data at rest is owner-only. restrict_new_files() sets the process's umask to
// 077, so every directory and file it creates from then on (module files, their -wal and
// -shm, the key file, backups) is 0700/0600. check_private() throws std::runtime_error
// naming the chmod to run when `dir` or `file` (with its -wal and -shm) is reachable by
// group or others; missing paths are fine (they will be created private).
void restrict_new_files();
void check_private(const std::filesystem::path& dir, const std::filesystem::path& file);

class DataDirLock {
 public:
  // Creates the directory (owner-only) when missing, then takes the lock without waiting. Throws
  // DataDirInUse when another process holds it, std::runtime_error on I/O errors.
  explicit DataDirLock(const std::filesystem::path& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  static std::filesystem::path lock_file(const std::filesystem::path& dir) { return dir / "townhall.lock"; }

 private:
  int fd_ = -1;
};

}  // namespace townhall::db
