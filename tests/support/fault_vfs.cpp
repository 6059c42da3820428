#include "fault_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "townhall/platform/vfs_forward.hpp"

namespace townhall::testing {

struct FaultVfs::Impl {
  sqlite3_vfs vfs{};
  sqlite3_vfs* real = nullptr;
  std::string name;
  mutable std::mutex mutex;
  std::optional<Fault> fault;
  std::size_t seen = 0;  // matching calls since inject()
  std::atomic<std::size_t> failed{0};

  // How this call on `file` is to fail, or nothing when it goes through.
  std::optional<Kind> should_fail(std::string_view file, Call call) {
    std::lock_guard lock(mutex);
    if (!fault || fault->call != call || fault->file != file) return std::nullopt;
    if (seen++ < fault->after) return std::nullopt;
    ++failed;
    auto kind = fault->kind;
    if (!fault->persistent) fault.reset();
    return kind;
  }
};

namespace {

// What SQLite allocates per open file (szOsFile): this header, then the real file.
struct ShimFile {
  sqlite3_file base;  // pMethods = kMethods once the real file is open
  FaultVfs::Impl* owner;
  char module_file[128];  // the module file's name, without directory and -wal/-journal
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(this) + real_offset()); }
  static constexpr std::size_t real_offset() { return (sizeof(ShimFile) + 15) & ~std::size_t{15}; }
};

ShimFile* shim(sqlite3_file* file) { return reinterpret_cast<ShimFile*>(file); }

int x_close(sqlite3_file* f) { return shim(f)->real()->pMethods->xClose(shim(f)->real()); }
int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  auto* file = shim(f);
  if (file->owner->should_fail(file->module_file, FaultVfs::Call::read)) return SQLITE_IOERR_READ;
  return file->real()->pMethods->xRead(file->real(), out, amount, offset);
}
int x_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  auto* file = shim(f);
  if (auto kind = file->owner->should_fail(file->module_file, FaultVfs::Call::write))
    return *kind == FaultVfs::Kind::disk_full ? SQLITE_FULL : SQLITE_IOERR_WRITE;
  return file->real()->pMethods->xWrite(file->real(), data, amount, offset);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return shim(f)->real()->pMethods->xTruncate(shim(f)->real(), size);
}
int x_sync(sqlite3_file* f, int flags) {
  auto* file = shim(f);
  if (file->owner->should_fail(file->module_file, FaultVfs::Call::sync)) return SQLITE_IOERR_FSYNC;
  return file->real()->pMethods->xSync(file->real(), flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return shim(f)->real()->pMethods->xFileSize(shim(f)->real(), size);
}
int x_lock(sqlite3_file* f, int level) { return shim(f)->real()->pMethods->xLock(shim(f)->real(), level); }
int x_unlock(sqlite3_file* f, int level) { return shim(f)->real()->pMethods->xUnlock(shim(f)->real(), level); }
int x_check_reserved(sqlite3_file* f, int* out) {
  return shim(f)->real()->pMethods->xCheckReservedLock(shim(f)->real(), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  return shim(f)->real()->pMethods->xFileControl(shim(f)->real(), op, arg);
}
int x_sector_size(sqlite3_file* f) { return shim(f)->real()->pMethods->xSectorSize(shim(f)->real()); }
int x_device_characteristics(sqlite3_file* f) {
  return shim(f)->real()->pMethods->xDeviceCharacteristics(shim(f)->real());
}
int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  auto* file = shim(f);
  if (file->owner->should_fail(file->module_file, FaultVfs::Call::shm)) return SQLITE_IOERR_SHMMAP;
  return file->real()->pMethods->xShmMap(file->real(), region, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  auto* file = shim(f);
  // Only taking a lock fails: SQLite assumes releasing one always works.
  if ((flags & SQLITE_SHM_LOCK) && file->owner->should_fail(file->module_file, FaultVfs::Call::shm))
    return SQLITE_IOERR_SHMLOCK;
  return file->real()->pMethods->xShmLock(file->real(), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { shim(f)->real()->pMethods->xShmBarrier(shim(f)->real()); }
int x_shm_unmap(sqlite3_file* f, int remove) { return shim(f)->real()->pMethods->xShmUnmap(shim(f)->real(), remove); }
int x_fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return shim(f)->real()->pMethods->xFetch(shim(f)->real(), offset, amount, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* page) {
  return shim(f)->real()->pMethods->xUnfetch(shim(f)->real(), offset, page);
}

const sqlite3_io_methods kMethods = {3,
                                     x_close,
                                     x_read,
                                     x_write,
                                     x_truncate,
                                     x_sync,
                                     x_file_size,
                                     x_lock,
                                     x_unlock,
                                     x_check_reserved,
                                     x_file_control,
                                     x_sector_size,
                                     x_device_characteristics,
                                     x_shm_map,
                                     x_shm_lock,
                                     x_shm_barrier,
                                     x_shm_unmap,
                                     x_fetch,
                                     x_unfetch};

std::string_view module_file_of(const char* path) {
  if (!path) return {};
  std::string_view name(path);
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  for (std::string_view suffix : {"-wal", "-journal"})
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
      name.remove_suffix(suffix.size());
  return name;
}

int x_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* owner = static_cast<FaultVfs::Impl*>(vfs->pAppData);
  auto* file = new (f) ShimFile{};
  file->owner = owner;
  auto module_file = module_file_of(name);
  // A temporary file (a statement journal, a sort spilling) has no name: nothing to copy,
  // and memcpy from a null pointer is undefined even for zero bytes.
  if (!module_file.empty())
    std::memcpy(file->module_file, module_file.data(), std::min(module_file.size(), sizeof(file->module_file) - 1));
  int rc = owner->real->xOpen(owner->real, name, file->real(), flags, out_flags);
  if (rc != SQLITE_OK || !file->real()->pMethods) {
    file->base.pMethods = nullptr;  // SQLite calls no method of a file that did not open
    return rc;
  }
  file->base.pMethods = &kMethods;
  return SQLITE_OK;
}

sqlite3_vfs* real_of(sqlite3_vfs* vfs) { return static_cast<FaultVfs::Impl*>(vfs->pAppData)->real; }
std::atomic<int> next_id{0};

}  // namespace

FaultVfs::FaultVfs(bool as_default) : impl_(std::make_unique<Impl>()) {
  sqlite3_initialize();
  impl_->real = sqlite3_vfs_find(nullptr);
  if (!impl_->real || impl_->real->iVersion < 2) throw std::runtime_error("no default SQLite VFS to wrap");
  impl_->name = "townhall-faults-" + std::to_string(next_id++);
  auto& vfs = impl_->vfs;
  vfs.iVersion = 2;
  vfs.szOsFile = static_cast<int>(ShimFile::real_offset()) + impl_->real->szOsFile;
  vfs.mxPathname = impl_->real->mxPathname;
  vfs.zName = impl_->name.c_str();
  vfs.pAppData = impl_.get();
  vfs.xOpen = x_open;
  db::forward_vfs_calls<real_of>(vfs);
  if (sqlite3_vfs_register(&vfs, as_default ? 1 : 0) != SQLITE_OK)
    throw std::runtime_error("cannot register the fault VFS");
}

FaultVfs::~FaultVfs() { sqlite3_vfs_unregister(&impl_->vfs); }

const std::string& FaultVfs::name() const { return impl_->name; }

void FaultVfs::inject(Fault fault) {
  std::lock_guard lock(impl_->mutex);
  impl_->fault = std::move(fault);
  impl_->seen = 0;
  impl_->failed = 0;
}

void FaultVfs::clear() {
  std::lock_guard lock(impl_->mutex);
  impl_->fault.reset();
}

std::size_t FaultVfs::failures() const { return impl_->failed.load(); }

}  // namespace townhall::testing
