#pragma once

#include <sqlite3.h>

namespace townhall::db {

// For an SQLite VFS over another (platform/src/wal_write_vfs, the tests' fault VFS):
// fills the calls that concern no open file (delete, access, path names, dynamic
// loading, randomness, sleep, time) with ones that forward to the VFS `Base(vfs)`
// returns. The wrapping VFS sets its own xOpen and the rest of its fields.
template <sqlite3_vfs* (*Base)(sqlite3_vfs*)>
void forward_vfs_calls(sqlite3_vfs& vfs) {
  vfs.xDelete = [](sqlite3_vfs* v, const char* name, int sync) { return Base(v)->xDelete(Base(v), name, sync); };
  vfs.xAccess = [](sqlite3_vfs* v, const char* name, int flags, int* out) {
    return Base(v)->xAccess(Base(v), name, flags, out);
  };
  vfs.xFullPathname = [](sqlite3_vfs* v, const char* name, int size, char* out) {
    return Base(v)->xFullPathname(Base(v), name, size, out);
  };
  vfs.xDlOpen = [](sqlite3_vfs* v, const char* name) { return Base(v)->xDlOpen(Base(v), name); };
  vfs.xDlError = [](sqlite3_vfs* v, int size, char* out) { Base(v)->xDlError(Base(v), size, out); };
  vfs.xDlSym = [](sqlite3_vfs* v, void* handle, const char* symbol) {
    return Base(v)->xDlSym(Base(v), handle, symbol);
  };
  vfs.xDlClose = [](sqlite3_vfs* v, void* handle) { Base(v)->xDlClose(Base(v), handle); };
  vfs.xRandomness = [](sqlite3_vfs* v, int size, char* out) { return Base(v)->xRandomness(Base(v), size, out); };
  vfs.xSleep = [](sqlite3_vfs* v, int micros) { return Base(v)->xSleep(Base(v), micros); };
  vfs.xCurrentTime = [](sqlite3_vfs* v, double* out) { return Base(v)->xCurrentTime(Base(v), out); };
  vfs.xGetLastError = [](sqlite3_vfs* v, int size, char* out) { return Base(v)->xGetLastError(Base(v), size, out); };
  vfs.xCurrentTimeInt64 = [](sqlite3_vfs* v, sqlite3_int64* out) { return Base(v)->xCurrentTimeInt64(Base(v), out); };
}

}  // namespace townhall::db
