#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace townhall::testing {

// A shim SQLite VFS over the default one that fails chosen calls on chosen files: the
// storage faults a real disk produces (an I/O error, a full disk, a failed fsync or
// shared-memory call), at the OS-call boundary, under real SQLite. Files are matched by
// their module file's name ("permits.db" also covers permits.db-wal and its shm).
// Registered under name() while it lives; point db::Options::vfs at it.
class FaultVfs {
 public:
  enum class Call { read, write, sync, shm };
  enum class Kind {
    io_error,  // SQLITE_IOERR_* for the call
    disk_full  // writes only: SQLITE_FULL, what ENOSPC becomes
  };
  struct Fault {
    std::string file;         // "permits.db"
    Call call = Call::write;  //
    std::size_t after = 0;    // calls let through before the first failure
    bool persistent = true;   // false: fail once, then let everything through
    Kind kind = Kind::io_error;
  };

  // as_default: every database opened without naming a VFS uses this one (a whole
  // server process under faults: tests/soak/faulty_server.cpp).
  explicit FaultVfs(bool as_default = false);
  ~FaultVfs();
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  const std::string& name() const;
  // Replaces the current fault (one at a time).
  void inject(Fault fault);
  // The disk is repaired: every call goes through again.
  void clear();
  // Calls failed since the last inject().
  std::size_t failures() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace townhall::testing
