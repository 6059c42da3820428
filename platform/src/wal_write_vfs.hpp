#pragma once

#include <cstdint>
#include <string>

namespace townhall::db {

// A VFS over another (the default when `base` is empty) that writes each transaction's
// WAL frames with one write call instead of two per frame (design note 65).
//
// SQLite writes a frame as two calls, its 24-byte header then its page, and the page
// straddles two kernel pages: a commit of ten frames is twenty pwrites touching thirty
// page-cache pages. Here a WAL file's writes are gathered in memory while they are
// contiguous and written together when the commit frame's page arrives, before SQLite
// publishes the commit to readers, so a commit that returned is in the file exactly as
// with the plain VFS (kill -9 loses nothing). Every other call on the WAL file (read,
// sync, truncate, size) writes what is gathered first, and so does the connection
// releasing the log's write lock (a rollback's spilled frames, written while no other
// connection can write the log). Files other than WAL files pass straight through.
//
// A write that ends the log (not one over frames in place) is padded with zeros to a
// 4 KiB boundary (design note 68): the kernel then never has to read an evicted page of
// an older log from disk before it can write the commit's last partial block into it.
// Recovery stops at the zeros as it stops at an older log's frames.
//
// Returns the registered name of the VFS over `base` (registered on first use, for the
// process's lifetime).
const std::string& wal_write_vfs(const std::string& base);

// For the process, for tests and metrics: write calls SQLite made on WAL files through
// these VFSes, the calls that reached the base VFS, and the bytes gathered now (none
// outside a write transaction).
struct WalWriteCounts {
  std::uint64_t asked = 0;
  std::uint64_t written = 0;
  std::uint64_t gathered = 0;
  std::uint64_t padded = 0;  // zero bytes added to end writes on a block boundary
};
WalWriteCounts wal_write_counts();

}  // namespace townhall::db
