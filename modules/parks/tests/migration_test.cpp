// Parks migrations on a file the older code wrote.
#include <gtest/gtest.h>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/parks/module.hpp"
#include "townhall/platform/db.hpp"

namespace townhall::parks {
namespace {

// Issue 28 §4: citizen_refs rows written before 0004 do not know whether an email or
// identity is verified, and every priced hold would be refused until each citizen changed.
// 0004 empties the cache and drops its subscription's bus position, so the consumer reads
// auth's citizen events again from the start (or bootstraps from auth when they were
// pruned); the other subscriptions keep theirs.
TEST(ParksMigration, CitizenRefsAreReadAgainFromAuthToLearnWhoIsVerified) {
  testing::TempDir dir;
  db::ModuleDb database{"parks", dir.path() / "parks.db", table_manifest()};
  testing::migrate_module(database, "parks", 4);
  auto owner = database.open(db::Role::owner);
  owner->sql().exec(
      "INSERT INTO citizen_refs (citizen_id, name, email, is_active, event_version, last_synced_at) VALUES "
      "(1, 'Maria', 'maria@example.org', 1, 3, 'x');"
      "INSERT INTO bus_cursors (subscription, source, position, updated_at) VALUES "
      "('citizen_refs', 'auth', 40, 'x'), ('booking_payments', 'revenue', 7, 'x');"
      "INSERT INTO processed_ranges (subscription, source, first_id, last_id, processed_at) VALUES "
      "('citizen_refs', 'auth', 1, 40, 'x'), ('booking_payments', 'revenue', 1, 7, 'x');"
      "INSERT INTO processed_events (subscription, event_id, processed_at) VALUES "
      "('citizen_refs', 'auth:12', 'x'), ('booking_payments', 'revenue:3', 'x')");
  testing::migrate_module(database, "parks");

  auto count = [&](const std::string& sql) { return owner->sql().execAndGet(sql).getInt(); };
  EXPECT_EQ(count("SELECT count(*) FROM citizen_refs"), 0);
  for (const char* table : {"bus_cursors", "processed_ranges", "processed_events"}) {
    EXPECT_EQ(count(std::string("SELECT count(*) FROM ") + table + " WHERE subscription = 'citizen_refs'"), 0) << table;
    EXPECT_EQ(count(std::string("SELECT count(*) FROM ") + table + " WHERE subscription = 'booking_payments'"), 1)
        << table;
  }
  owner->sql().exec(
      "INSERT INTO citizen_refs (citizen_id, name, email, is_active, event_version, last_synced_at, email_verified, "
      "identity_verified) VALUES (1, 'Maria', 'maria@example.org', 1, 4, 'x', 1, 0)");
  EXPECT_EQ(count("SELECT email_verified FROM citizen_refs WHERE citizen_id = 1"), 1);
}

}  // namespace
}  // namespace townhall::parks
