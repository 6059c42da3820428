#pragma once

// The authorizer behind every module connection (DESIGN.md §3): which role may do what
// to which kind of table. Private to platform: db.cpp installs Guard::authorize on each
// connection it opens.

#include <memory>
#include <string>

#include "townhall/platform/db.hpp"
#include "townhall/platform/metrics.hpp"

namespace townhall::db {

// Table names compare case-insensitively (as SQLite's do): the manifest keeps them lower.
std::string ascii_lower(std::string_view text);

// Per-connection state the authorizer reads. Heap-allocated so its address is stable.
struct Connection::Guard {
  std::string module;
  Role role;
  std::shared_ptr<const TableManifest> manifest;
  metrics::CounterFamily* violations = nullptr;
  std::string last_denial;
  mutable bool schema_write_pending = false;  // a non-owner asked to write sqlite_master

  // Returns an empty string when allowed, else why not.
  std::string decide(int action, const char* arg1, const char* arg2) const;
  // sqlite3_set_authorizer's callback; `user` is the Guard. Fails closed.
  static int authorize(void* user, int action, const char* arg1, const char* arg2, const char* database,
                       const char* trigger) noexcept;
};

}  // namespace townhall::db
