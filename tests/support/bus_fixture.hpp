#pragma once

#include <SQLiteCpp/Transaction.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "townhall/bus/bus.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::testing {

// A module file for bus tests: a source ("src") owns items(id, version, value); a
// consumer owns nothing and caches item_refs(id, value, event_version, applied).
struct TestModule {
  TestModule(const std::filesystem::path& dir, const std::string& name, bool create = true);
  void create_schema();  // migrate: bus tables + the test tables (owner role)

  std::string name;
  std::filesystem::path file;
  std::unique_ptr<db::ModuleDb> database;
  std::unique_ptr<db::Writer> writer;
};

// Publishes a new version of item `id` in `source` (state change + outbox, one
// transaction) and returns the new version.
std::int64_t publish_item(db::Connection& source_service, const std::string& id, const std::string& value);

// The cache handler every consumer uses: upsert with the version check.
bus::Outcome apply_item(const bus::Event& event, db::Connection& connection);

struct ItemRef {
  std::string value;
  std::int64_t version = 0;
  std::int64_t applied = 0;  // deliveries that changed the row
  std::int64_t seen = 0;     // all deliveries, stale ones included
  bool operator==(const ItemRef&) const = default;
};
std::map<std::string, ItemRef> read_refs(const db::ModuleDb& database);
std::map<std::string, std::int64_t> read_item_versions(const db::ModuleDb& database);

// The crash tests' verdict (gtest expectations): `consumer` in `dir` holds every item of
// `versions` at its version, each version applied once and in order (an older one after
// a newer one would be seen but stale), none delivered twice. `versioned`: a versioned
// subscription's (design note 70), which a kill may deliver again (seen, stale).
void expect_each_version_applied_once(const std::filesystem::path& dir, const std::string& consumer,
                                      const std::map<std::string, std::int64_t>& versions, bool versioned = false);

// A crash test child's fault hook: SIGKILLs the process (after printing "crash at POINT")
// the `after`-th time the bus reaches `point`.
std::function<void(std::string_view)> crash_at(std::string point, long after);

// A drain child's wait: runs until `done()`, printing every feed's cursor each second the
// cursors advance, and gives up (false, after printing them) only when none has moved
// for `stall`. A slow drain on an overloaded machine keeps its parent waiting
// (ChildProcess::wait_exit_while_progressing); a stuck consumer fails within `stall`.
bool drain_while_progressing(bus::Bus& bus, const std::function<bool()>& done, std::chrono::seconds stall);

}  // namespace townhall::testing
