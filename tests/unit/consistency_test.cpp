// The consistency check's algorithm on a real cache file against a source held in memory:
// it finds exactly the rows that differ, repairs them with that many reads, and falls back
// to a full resync when most of the cache differs.
#include "townhall/platform/consistency.hpp"

#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <set>

#include "support.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::consistency {
namespace {

// Every record's one content field: its name, the same at every version.
std::string name_of(std::int64_t id) { return "citizen " + std::to_string(id); }
std::uint64_t content_of(std::int64_t id) { return ContentHash().text(name_of(id)).value(); }

void upsert(db::Connection& sync, std::int64_t id, std::int64_t version, bool force) {
  if (force) {
    auto erase = sync.prepare("DELETE FROM refs WHERE citizen_id = ?");
    erase.bind(1, id);
    erase.exec();
  }
  auto insert = sync.prepare(
      "INSERT INTO refs (citizen_id, event_version, name) VALUES (?1, ?2, ?3) ON CONFLICT (citizen_id) DO UPDATE SET "
      "event_version = excluded.event_version, name = excluded.name WHERE excluded.event_version > refs.event_version");
  insert.bind(1, id);
  insert.bind(2, version);
  insert.bind(3, name_of(id));
  insert.exec();
}

// The source: a map of id -> version (each record named name_of(id)), counting what the
// check asks of it.
class MapSource final : public Source {
 public:
  std::map<std::int64_t, std::int64_t> rows;
  bool failing = false;
  int digests = 0, entry_pages = 0, fetches = 0;

  boost::asio::awaitable<Result<Digest>> digest(std::int64_t from, std::int64_t to) override {
    ++digests;
    if (failing) co_return make_error(Errc::unavailable, "the source is down");
    Digest out;
    for (auto it = rows.lower_bound(from); it != rows.end() && it->first < to; ++it)
      add(out, it->first, it->second, content_of(it->first));
    co_return out;
  }
  boost::asio::awaitable<Result<std::vector<Entry>>> entries(std::int64_t from, std::int64_t to) override {
    ++entry_pages;
    std::vector<Entry> out;
    for (auto it = rows.lower_bound(from); it != rows.end() && it->first < to; ++it)
      out.push_back({it->first, it->second, content_of(it->first)});
    co_return out;
  }
  boost::asio::awaitable<Result<Store>> fetch(std::int64_t id) override {
    ++fetches;
    auto it = rows.find(id);
    if (it == rows.end()) co_return make_error(Errc::not_found, "no such record");
    Store store = [id, version = it->second](db::Connection& sync, bool force) { upsert(sync, id, version, force); };
    co_return store;
  }
  void store_all(db::Connection& sync) override {
    for (const auto& [id, version] : rows) upsert(sync, id, version, false);
  }
};

class ConsistencyCheck : public ::testing::Test {
 protected:
  ConsistencyCheck()
      : database("mod", dir.path() / "mod.db", db::TableManifest{.owned = {}, .cache = {"refs"}}), writer("mod") {
    database.open(db::Role::owner)
        ->exec(
            "CREATE TABLE refs (citizen_id INTEGER PRIMARY KEY, event_version INTEGER NOT NULL, name TEXT NOT NULL "
            "DEFAULT '')");
    source = std::make_shared<MapSource>();
    cache = Cache{"mod", "refs", "citizen_id", "src", source, {"name"}};
  }
  ~ConsistencyCheck() override { writer.stop(); }

  // Source and cache hold the same 10,000 citizens (even ids, versions 1..3).
  void fill(int count = 10'000) {
    auto sync = database.open(db::Role::sync);
    SQLite::Transaction transaction(sync->sql());
    for (std::int64_t i = 1; i <= count; ++i) {
      source->rows[2 * i] = 1 + i % 3;
      upsert(*sync, 2 * i, 1 + i % 3, false);
    }
    transaction.commit();
  }

  void sql(const std::string& statement) { database.open(db::Role::owner)->exec(statement); }

  CacheReport run(bool repair) { return run_blocking(check(cache, database, writer, repair)); }

  static std::set<std::int64_t> set_of(const std::vector<std::int64_t>& ids) { return {ids.begin(), ids.end()}; }

  testing::TempDir dir;
  db::ModuleDb database;
  db::Writer writer;
  std::shared_ptr<MapSource> source;
  Cache cache;
};

TEST_F(ConsistencyCheck, EqualSidesCostOneDigest) {
  fill();
  auto report = run(false);
  EXPECT_TRUE(report.error.empty()) << report.error;
  EXPECT_EQ(report.source_rows, 10'000);
  EXPECT_EQ(report.cache_rows, 10'000);
  EXPECT_TRUE(report.missing.empty() && report.stale.empty() && report.extra.empty());
  EXPECT_EQ(source->digests, 1);
  EXPECT_EQ(source->entry_pages, 0);
}

TEST_F(ConsistencyCheck, FindsExactlyTheFiftyCorruptedRowsAndRepairsThemWithThatManyReads) {
  fill();
  std::set<std::int64_t> deleted, lowered, added;
  for (std::int64_t i = 0; i < 20; ++i) deleted.insert(2 * (17 + i * 487));
  for (std::int64_t i = 0; i < 20; ++i) lowered.insert(2 * (250 + i * 491));
  for (std::int64_t i = 0; i < 10; ++i) added.insert(2 * (31 + i * 997) + 1);  // odd: not in the source
  for (auto id : deleted) sql("DELETE FROM refs WHERE citizen_id = " + std::to_string(id));
  for (auto id : lowered) sql("UPDATE refs SET event_version = 0 WHERE citizen_id = " + std::to_string(id));
  for (auto id : added) sql("INSERT INTO refs (citizen_id, event_version) VALUES (" + std::to_string(id) + ", 1)");

  auto found = run(false);
  ASSERT_TRUE(found.error.empty()) << found.error;
  EXPECT_EQ(set_of(found.missing), deleted);
  EXPECT_EQ(set_of(found.stale), lowered);
  EXPECT_EQ(set_of(found.extra), added);
  EXPECT_EQ(found.repaired, 0);
  EXPECT_EQ(source->fetches, 0);  // a check without --repair reads no record
  // Bisecting costs a few digests per difference, not one per row.
  EXPECT_LT(found.digest_calls + found.entry_calls, 600);
  std::cout << "50 differences in 10,000 rows: " << found.digest_calls << " digest calls, " << found.entry_calls
            << " entry pages\n";

  source->digests = source->entry_pages = 0;
  auto repaired = run(true);
  ASSERT_TRUE(repaired.error.empty()) << repaired.error;
  EXPECT_FALSE(repaired.full_resync);
  EXPECT_EQ(repaired.repaired, 50);
  EXPECT_EQ(source->fetches, 40);  // the missing and the stale; extras are removed unread
  EXPECT_EQ(repaired.record_reads, 40);

  auto after = run(false);
  EXPECT_TRUE(after.missing.empty() && after.stale.empty() && after.extra.empty());
  EXPECT_EQ(after.cache_rows, 10'000);
}

// Issue 21: rows whose content differs at the same version (a handler's bug, a hand edit,
// a bit flip) are found exactly, and repaired with one read each. Fails when the digests
// cover (id, version) only.
TEST_F(ConsistencyCheck, FindsExactlyTheFiftyRowsChangedInContentOnlyAndRepairsThem) {
  fill();
  std::set<std::int64_t> changed;
  for (std::int64_t i = 0; i < 50; ++i) changed.insert(2 * (13 + i * 199));
  for (auto id : changed)
    sql("UPDATE refs SET name = 'someone else' WHERE citizen_id = " + std::to_string(id));  // version untouched

  auto found = run(false);
  ASSERT_TRUE(found.error.empty()) << found.error;
  EXPECT_EQ(set_of(found.stale), changed);
  EXPECT_TRUE(found.missing.empty() && found.extra.empty());
  EXPECT_EQ(source->fetches, 0);

  auto repaired = run(true);
  ASSERT_TRUE(repaired.error.empty()) << repaired.error;
  EXPECT_FALSE(repaired.full_resync);
  EXPECT_EQ(repaired.repaired, 50);
  EXPECT_EQ(source->fetches, 50);  // one read per changed row, stored over it at the same version
  auto after = run(false);
  EXPECT_TRUE(after.missing.empty() && after.stale.empty() && after.extra.empty()) << after.stale.size();
  auto reader = database.open(db::Role::reader);
  auto left = reader->prepare("SELECT count(*) FROM refs WHERE name = 'someone else'");
  left.executeStep();
  EXPECT_EQ(left.getColumn(0).getInt(), 0);
}

// Content is hashed with its type and length: values that would concatenate alike differ.
TEST(ContentHash, TypesAndBoundariesCount) {
  EXPECT_NE(ContentHash().null().value(), ContentHash().text("").value());
  EXPECT_NE(ContentHash().integer(1).value(), ContentHash().text("1").value());
  EXPECT_NE(ContentHash().text("ab").text("c").value(), ContentHash().text("a").text("bc").value());
  EXPECT_EQ(ContentHash().text("é").integer(0).value(), ContentHash().text("é").integer(0).value());
  EXPECT_NE(ContentHash().integer(0).value(), ContentHash().integer(1).value());
}

// A cache row newer than its source's (the source restored from an older backup) is
// reported stale and, on repair, overwritten with the source's record.
TEST_F(ConsistencyCheck, ACacheAheadOfItsSourceIsOverwrittenOnRepair) {
  fill(1000);
  sql("UPDATE refs SET event_version = 99 WHERE citizen_id IN (10, 500, 1998)");
  auto report = run(true);
  EXPECT_EQ(set_of(report.stale), (std::set<std::int64_t>{10, 500, 1998}));
  EXPECT_EQ(report.repaired, 3);
  auto after = run(false);
  EXPECT_TRUE(after.stale.empty()) << after.stale.size();
}

TEST_F(ConsistencyCheck, ManyDifferencesMakeAFullResync) {
  fill(5000);
  sql("DELETE FROM refs WHERE citizen_id > 2000");  // 4000 of 5000 missing
  sql("INSERT INTO refs (citizen_id, event_version) VALUES (7, 1)");
  auto report = run(true);
  ASSERT_TRUE(report.error.empty()) << report.error;
  EXPECT_TRUE(report.full_resync);
  EXPECT_EQ(report.repaired, 5000);
  EXPECT_EQ(source->fetches, 0);  // one pass over the source, not a read per row
  auto after = run(false);
  EXPECT_TRUE(after.missing.empty() && after.stale.empty() && after.extra.empty());
}

TEST_F(ConsistencyCheck, ASourceThatCannotAnswerIsReportedAndNothingChanges) {
  fill(100);
  sql("DELETE FROM refs WHERE citizen_id = 20");
  source->failing = true;
  auto report = run(true);
  EXPECT_NE(report.error.find("the source is down"), std::string::npos) << report.error;
  EXPECT_EQ(report.repaired, 0);
  Report whole;
  whole.caches.push_back(report);
  EXPECT_FALSE(whole.consistent());
  source->failing = false;
  EXPECT_EQ(run(false).missing, std::vector<std::int64_t>{20});
}

}  // namespace
}  // namespace townhall::consistency
