#include "wal_write_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "townhall/platform/vfs_forward.hpp"

namespace townhall::db {
namespace {

constexpr int kFrameHeaderSize = 24;  // SQLite's WAL_FRAME_HDRSIZE
constexpr int kWalHeaderSize = 32;    // WAL_HDRSIZE: frames start after it
// A transaction bigger than this (a bulk load, a migration) is written in pieces of
// about this size: only its last piece has to wait for the commit.
constexpr std::size_t kMaxGathered = 1 << 20;
// The unix VFS writes at most 128 KiB - 1 bytes a call (seekAndWriteFd masks the length
// with 0x1ffff): a longer write comes back short, as SQLITE_FULL.
constexpr std::size_t kMaxWrite = 31 * 4096;
// A write that covers a file-system block only in part makes the kernel read the block
// first when its page is not in the page cache: a synchronous disk read on the commit
// path. Frames are 24 bytes longer than a page, so every commit's last block is partial,
// and once the log starts over that block holds an older log's frames, long enough ago
// for the page to have been evicted (5-10 ms stalls under checkpoint I/O, bench/README.md).
// A write that ends the log is padded with zeros to this boundary (ext4's usual block
// size and the common page size): nothing valid lies past the end of the log.
constexpr sqlite3_int64 kBlock = 4096;

std::atomic<std::uint64_t> writes_asked{0};
std::atomic<std::uint64_t> writes_made{0};
std::atomic<std::uint64_t> bytes_gathered{0};
std::atomic<std::uint64_t> bytes_padded{0};

void forget(std::vector<char>& gathered) {
  bytes_gathered -= gathered.size();
  gathered.clear();
}

struct Vfs {
  sqlite3_vfs vfs{};
  std::string name;
  std::atomic<sqlite3_vfs*> base{nullptr};
};

// What SQLite allocates per open file (szOsFile): this header, then the base VFS's file.
struct File {
  sqlite3_file methods;  // pMethods: kMethods once the base file is open
  // The last frame header written carried a commit mark (a database size): the writes
  // that follow end the transaction, so each is written at once.
  bool in_commit_frame = false;
  // The last call was a read: SQLite rewriting the checksums of frames a transaction
  // wrote over (walRewriteChecksums) reads each frame, then writes its header alone.
  bool after_read = false;
  sqlite3_int64 gathered_at = 0;  // file offset of gathered[0]
  // The furthest byte written since the connection took the log's write lock: past it,
  // no frame is valid (an older log's, or beyond the file's end).
  sqlite3_int64 log_end = 0;
  // A WAL file's writes not yet made; null for any other file (nothing is gathered).
  std::vector<char>* gathered = nullptr;
  // A database file and the WAL file of the same connection, each pointing at the other
  // while both are open (sqlite3_database_file_object, when the WAL opens).
  File* partner = nullptr;

  sqlite3_file* base() { return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(this) + base_offset()); }
  static constexpr std::size_t base_offset() { return (sizeof(File) + 15) & ~std::size_t{15}; }
};

File* file_of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
sqlite3_file* base_of(sqlite3_file* f) { return file_of(f)->base(); }

// Writes what is gathered. On failure it is dropped: SQLite rolls the transaction back,
// and frames past the last commit are never read.
int flush(File* file) {
  if (!file->gathered || file->gathered->empty()) return SQLITE_OK;
  auto* base = file->base();
  auto& gathered = *file->gathered;
  const sqlite3_int64 end = file->gathered_at + static_cast<sqlite3_int64>(gathered.size());
  // Only a write that ends the log: one over frames in place (a rewrite) has valid
  // frames after it.
  if (const auto pad = static_cast<std::size_t>((kBlock - end % kBlock) % kBlock); pad > 0 && end >= file->log_end) {
    try {
      gathered.resize(gathered.size() + pad, '\0');
      bytes_gathered += pad;
      bytes_padded += pad;
      file->log_end = end + static_cast<sqlite3_int64>(pad);
    } catch (const std::bad_alloc&) {
      // Unpadded: the write is as SQLite asked, only possibly slower.
    }
  }
  int rc = SQLITE_OK;
  for (std::size_t done = 0; done < gathered.size() && rc == SQLITE_OK; done += kMaxWrite) {
    ++writes_made;
    const auto amount = static_cast<int>(std::min(kMaxWrite, gathered.size() - done));
    rc = base->pMethods->xWrite(base, gathered.data() + done, amount,
                                file->gathered_at + static_cast<sqlite3_int64>(done));
  }
  forget(*file->gathered);
  return rc;
}

int x_close(sqlite3_file* f) {
  auto* file = file_of(f);
  // Only frames of a transaction that never committed can be left here (a commit writes
  // its own, a rollback's go when the write lock is released): dropped, never written
  // now, when another connection may have written the log since.
  if (file->gathered) forget(*file->gathered);
  delete file->gathered;
  file->gathered = nullptr;
  if (file->partner) file->partner->partner = nullptr;
  return file->base()->pMethods->xClose(file->base());
}

int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  file_of(f)->after_read = true;
  // A transaction that spilled its cache reads its own frames back.
  if (int rc = flush(file_of(f)); rc != SQLITE_OK) return rc;
  return base_of(f)->pMethods->xRead(base_of(f), out, amount, offset);
}

int write_through(File* file, const void* data, int amount, sqlite3_int64 offset) {
  ++writes_made;
  return file->base()->pMethods->xWrite(file->base(), data, amount, offset);
}

int x_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  auto* file = file_of(f);
  if (!file->gathered) return file->base()->pMethods->xWrite(file->base(), data, amount, offset);
  ++writes_asked;
  const bool after_read = std::exchange(file->after_read, false);
  const bool header = amount == kFrameHeaderSize && offset >= kWalHeaderSize;
  if (header) {
    // Bytes 4..7 of a frame header: the database size after a commit, zero otherwise.
    const auto* bytes = static_cast<const unsigned char*>(data);
    file->in_commit_frame = (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
  }
  file->log_end = std::max(file->log_end, offset + amount);
  auto& gathered = *file->gathered;
  if (!gathered.empty() && offset != file->gathered_at + static_cast<sqlite3_int64>(gathered.size())) {
    // Not where the last write ended (a frame written over in place, frames a rollback
    // to a savepoint dropped): what is gathered goes first, in SQLite's order.
    if (int rc = flush(file); rc != SQLITE_OK) return rc;
  }
  try {
    if (gathered.empty()) file->gathered_at = offset;
    const auto* bytes = static_cast<const char*>(data);
    gathered.insert(gathered.end(), bytes, bytes + amount);
    bytes_gathered += static_cast<std::uint64_t>(amount);
  } catch (const std::bad_alloc&) {
    if (int rc = flush(file); rc != SQLITE_OK) return rc;
    return write_through(file, data, amount, offset);
  }
  // The commit frame's page (and any padding SQLite repeats it with) is the end of the
  // transaction: SQLite publishes it to readers as soon as this call returns. So is a
  // commit frame's header rewritten alone after the commit frame was written (its new
  // checksum is what recovery after a crash checks).
  const bool ends_transaction = file->in_commit_frame && (!header || after_read);
  if (ends_transaction || gathered.size() >= kMaxGathered) return flush(file);
  return SQLITE_OK;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = flush(file_of(f)); rc != SQLITE_OK) return rc;
  return base_of(f)->pMethods->xTruncate(base_of(f), size);
}
int x_sync(sqlite3_file* f, int flags) {
  if (int rc = flush(file_of(f)); rc != SQLITE_OK) return rc;
  return base_of(f)->pMethods->xSync(base_of(f), flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  if (int rc = flush(file_of(f)); rc != SQLITE_OK) return rc;
  return base_of(f)->pMethods->xFileSize(base_of(f), size);
}
int x_lock(sqlite3_file* f, int level) { return base_of(f)->pMethods->xLock(base_of(f), level); }
int x_unlock(sqlite3_file* f, int level) { return base_of(f)->pMethods->xUnlock(base_of(f), level); }
int x_check_reserved(sqlite3_file* f, int* out) { return base_of(f)->pMethods->xCheckReservedLock(base_of(f), out); }
int x_file_control(sqlite3_file* f, int op, void* arg) {
  if (int rc = flush(file_of(f)); rc != SQLITE_OK) return rc;
  return base_of(f)->pMethods->xFileControl(base_of(f), op, arg);
}
int x_sector_size(sqlite3_file* f) { return base_of(f)->pMethods->xSectorSize(base_of(f)); }
int x_device_characteristics(sqlite3_file* f) { return base_of(f)->pMethods->xDeviceCharacteristics(base_of(f)); }
int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return base_of(f)->pMethods->xShmMap(base_of(f), region, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  // The connection is giving up the log's write lock (WAL_WRITE_LOCK, lock 0): after a
  // commit nothing is gathered; after a rollback the frames it spilled are, and they go
  // now, while no other connection can write the log (as SQLite wrote them, before it
  // released the lock). Written later, they would land on frames another connection
  // committed meanwhile.
  constexpr int kWriteLock = 0;
  auto* wal = file_of(f)->partner;
  if (wal && (flags & SQLITE_SHM_LOCK) && (flags & SQLITE_SHM_EXCLUSIVE) && offset <= kWriteLock &&
      kWriteLock < offset + n) {
    // A new write transaction: what this connection wrote before may have been
    // overwritten since (another connection's commits, a log started over).
    wal->log_end = 0;
  }
  if (wal && (flags & SQLITE_SHM_UNLOCK) && (flags & SQLITE_SHM_EXCLUSIVE) && offset <= kWriteLock &&
      kWriteLock < offset + n) {
    flush(wal);  // a failure needs no report: a rollback's frames are never read
  }
  return base_of(f)->pMethods->xShmLock(base_of(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { base_of(f)->pMethods->xShmBarrier(base_of(f)); }
int x_shm_unmap(sqlite3_file* f, int remove) { return base_of(f)->pMethods->xShmUnmap(base_of(f), remove); }
int x_fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return base_of(f)->pMethods->xFetch(base_of(f), offset, amount, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* page) {
  return base_of(f)->pMethods->xUnfetch(base_of(f), offset, page);
}

// Version 3 methods, but a base file with fewer gets only the ones it has.
sqlite3_io_methods methods_for(int version) {
  sqlite3_io_methods m{};
  m.iVersion = version;
  m.xClose = x_close;
  m.xRead = x_read;
  m.xWrite = x_write;
  m.xTruncate = x_truncate;
  m.xSync = x_sync;
  m.xFileSize = x_file_size;
  m.xLock = x_lock;
  m.xUnlock = x_unlock;
  m.xCheckReservedLock = x_check_reserved;
  m.xFileControl = x_file_control;
  m.xSectorSize = x_sector_size;
  m.xDeviceCharacteristics = x_device_characteristics;
  if (version >= 2) {
    m.xShmMap = x_shm_map;
    m.xShmLock = x_shm_lock;
    m.xShmBarrier = x_shm_barrier;
    m.xShmUnmap = x_shm_unmap;
  }
  if (version >= 3) {
    m.xFetch = x_fetch;
    m.xUnfetch = x_unfetch;
  }
  return m;
}
const sqlite3_io_methods kMethods[] = {methods_for(1), methods_for(2), methods_for(3)};

sqlite3_vfs* base_vfs(sqlite3_vfs* vfs) { return static_cast<Vfs*>(vfs->pAppData)->base.load(); }

int x_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* base = base_vfs(vfs);
  auto* file = new (f) File{};
  int rc = base->xOpen(base, name, file->base(), flags, out_flags);
  const sqlite3_io_methods* opened = file->base()->pMethods;
  if (rc != SQLITE_OK || !opened) {
    file->methods.pMethods = nullptr;  // SQLite calls no method of a file that did not open
    return rc;
  }
  if (flags & SQLITE_OPEN_WAL) {
    // Gathering needs to see the connection release its write lock, on its database
    // file: without one through this VFS, the log is written through.
    sqlite3_file* database = sqlite3_database_file_object(name);
    if (database && database->pMethods && database->pMethods->xClose == x_close) {
      file->gathered = new (std::nothrow) std::vector<char>();
      if (!file->gathered) {
        opened->xClose(file->base());
        file->methods.pMethods = nullptr;
        return SQLITE_NOMEM;
      }
      file->partner = file_of(database);
      file_of(database)->partner = file;
    }
  }
  file->methods.pMethods = &kMethods[std::clamp(opened->iVersion, 1, 3) - 1];
  return SQLITE_OK;
}

}  // namespace

const std::string& wal_write_vfs(const std::string& base_name) {
  // One per base, never unregistered and never destroyed: a connection held by a static
  // constructed before this registry closes after static destructors would have freed it.
  // A base found again under its name replaces the one recorded (the storage tests
  // register and drop fault VFSes under fresh names).
  static std::mutex mutex;
  static auto& registered = *new std::map<std::string, std::unique_ptr<Vfs>>();
  std::lock_guard lock(mutex);
  sqlite3_initialize();
  sqlite3_vfs* base = sqlite3_vfs_find(base_name.empty() ? nullptr : base_name.c_str());
  if (!base) throw std::runtime_error("no SQLite VFS named '" + base_name + "'");
  auto& entry = registered[base_name];
  if (entry) {
    entry->base = base;
    return entry->name;
  }
  if (base->iVersion < 2) throw std::runtime_error("SQLite VFS '" + base_name + "' is too old to wrap");
  auto vfs = std::make_unique<Vfs>();
  vfs->name = "townhall-wal" + (base_name.empty() ? std::string() : "+" + base_name);
  vfs->base = base;
  auto& v = vfs->vfs;
  v.iVersion = 2;
  v.szOsFile = static_cast<int>(File::base_offset()) + base->szOsFile;
  v.mxPathname = base->mxPathname;
  v.zName = vfs->name.c_str();
  v.pAppData = vfs.get();
  v.xOpen = x_open;
  forward_vfs_calls<base_vfs>(v);
  if (sqlite3_vfs_register(&v, 0) != SQLITE_OK) throw std::runtime_error("cannot register " + vfs->name);
  entry = std::move(vfs);
  return entry->name;
}

WalWriteCounts wal_write_counts() {
  return {writes_asked.load(), writes_made.load(), bytes_gathered.load(), bytes_padded.load()};
}

}  // namespace townhall::db
