// Restore awareness: auth.db alone restored from an older `townhall backup`. Its outbox
// then ends below the caches' cursors and its next events reuse ids they have passed;
// the consumers rewind, nothing new is skipped, and the consistency check brings the
// caches back to what auth holds (the citizens created after the backup are gone, the
// others are back at their backed-up versions).
#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "server_fixture.hpp"
#include "support.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;

std::int64_t cache_version(const std::filesystem::path& file, std::int64_t citizen) {
  SQLite::Database database(file.string(), SQLite::OPEN_READONLY);
  SQLite::Statement query(database, "SELECT event_version FROM citizen_refs WHERE citizen_id = ?");
  query.bind(1, citizen);
  return query.executeStep() ? query.getColumn(0).getInt64() : 0;
}

std::string cache_email(const std::filesystem::path& file, std::int64_t citizen) {
  SQLite::Database database(file.string(), SQLite::OPEN_READONLY);
  SQLite::Statement query(database, "SELECT coalesce(email, '') FROM citizen_refs WHERE citizen_id = ?");
  query.bind(1, citizen);
  return query.executeStep() ? query.getColumn(0).getString() : "";
}

TEST(Restore, ARestoredSourceRewindsItsConsumersAndTheCheckRepairsTheCaches) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  ASSERT_TRUE(app::create_staff_user(
      config, auth::StaffUser{"admin@example.org", "staff password 1", "Admin", "admin", std::nullopt}));
  auto server = std::make_unique<testing::TestServer>(config);
  auto port = [&] { return server->port(); };
  auto admin = testing::login(port(), "admin@example.org", "staff password 1");
  auto register_citizen = [&](const std::string& email) {
    auto response =
        testing::call(port(), "POST", "/api/v1/auth/register",
                      json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump());
    EXPECT_EQ(response.status, 201) << response.body;
    return json::parse(response.body)["id"].get<std::int64_t>();
  };
  auto rename = [&](std::int64_t id, const std::string& name) {
    EXPECT_EQ(testing::call(port(), "PATCH", "/api/v1/auth/citizens/" + std::to_string(id), json{{"name", name}}.dump(),
                            admin)
                  .status,
              200);
  };
  auto caught_up = [&] { return testing::wait_until([&] { return server->app().bus().caught_up(); }); };

  auto ada = register_citizen("ada@example.org");
  ASSERT_TRUE(caught_up());
  std::vector<std::string> lines;
  ASSERT_TRUE(app::backup_all(config, dir.path() / "backup", lines)) << lines.front();
  const auto ada_backed_up = cache_version(dir.path() / "revenue.db", ada);

  // After the backup: a new citizen, and Ada changed twice.
  auto bob = register_citizen("bob@example.org");
  rename(ada, "Ada L.");
  rename(ada, "Ada Lovelace");
  ASSERT_TRUE(caught_up());
  ASSERT_EQ(cache_version(dir.path() / "revenue.db", ada), ada_backed_up + 2);

  // The operator restores auth.db alone, with the server stopped.
  server.reset();
  for (const auto* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(dir.path() / (std::string("auth.db") + suffix));
  std::filesystem::copy_file(dir.path() / "backup" / "auth.db", dir.path() / "auth.db");
  server = std::make_unique<testing::TestServer>(config);
  admin = testing::login(port(), "admin@example.org", "staff password 1");

  auto metrics = server->get("/metrics").body;
  for (const auto* module : {"permits", "revenue", "parks"})
    EXPECT_TRUE(
        std::regex_search(metrics, std::regex(std::string("townhall_bus_source_rewinds_total\\{module=\"") + module +
                                              "\",subscription=\"citizen_refs\",source=\"auth\"\\} 1")))
        << module;
  // The rewound consumers' caches were repaired before the server answered anything.
  for (const auto* file : {"permits.db", "revenue.db", "parks.db"}) {
    EXPECT_EQ(cache_version(dir.path() / file, bob), 0) << file;
    EXPECT_EQ(cache_version(dir.path() / file, ada), ada_backed_up) << file;
  }

  // auth's next events reuse outbox ids the cursors had passed: none is skipped.
  auto carol = register_citizen("carol@example.org");
  rename(ada, "Ada Byron");
  ASSERT_TRUE(caught_up());
  for (const auto* file : {"permits.db", "revenue.db", "parks.db"}) {
    // Carol has the id Bob had before the restore: the cache must not show Bob for her.
    EXPECT_EQ(cache_email(dir.path() / file, carol), "carol@example.org") << file;
    EXPECT_EQ(cache_version(dir.path() / file, carol), 1) << file;
    EXPECT_EQ(cache_version(dir.path() / file, ada), ada_backed_up + 1) << file;
  }
  auto check = testing::call(port(), "POST", "/admin/consistency", {}, admin);
  ASSERT_EQ(check.status, 200);
  EXPECT_TRUE(json::parse(check.body)["consistent"]) << check.body;
}

// Restored in place while the server runs (`sqlite3 auth.db ".restore backup"` on the live
// file: every open connection sees the old content): the consistency check finds the
// consumers ahead of auth's outbox, rewinds them and repairs their caches, and auth's
// next events reach them although they reuse ids the cursors had passed.
TEST(Restore, ASourceRestoredInPlaceWhileRunningIsFoundByTheCheck) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  config.consistency.interval = std::chrono::minutes(0);  // only the check this test runs
  ASSERT_TRUE(app::create_staff_user(
      config, auth::StaffUser{"admin@example.org", "staff password 1", "Admin", "admin", std::nullopt}));
  testing::TestServer server(config);
  auto admin = testing::login(server.port(), "admin@example.org", "staff password 1");
  auto register_citizen = [&](const std::string& email) {
    auto response =
        testing::call(server.port(), "POST", "/api/v1/auth/register",
                      json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump());
    EXPECT_EQ(response.status, 201) << response.body;
    return json::parse(response.body)["id"].get<std::int64_t>();
  };
  auto caught_up = [&] { return testing::wait_until([&] { return server.app().bus().caught_up(); }); };

  register_citizen("ada@example.org");
  ASSERT_TRUE(caught_up());
  std::vector<std::string> lines;
  ASSERT_TRUE(app::backup_all(config, dir.path() / "backup", lines)) << lines.front();
  auto bob = register_citizen("bob@example.org");
  register_citizen("cy@example.org");
  ASSERT_TRUE(caught_up());
  ASSERT_EQ(cache_email(dir.path() / "permits.db", bob), "bob@example.org");

  {  // the online restore of the backup into the live file
    SQLite::Database live((dir.path() / "auth.db").string(), SQLite::OPEN_READWRITE);
    SQLite::Database backup((dir.path() / "backup" / "auth.db").string(), SQLite::OPEN_READONLY);
    SQLite::Backup restore(live, backup);
    restore.executeStep(-1);
  }

  auto check = testing::call(server.port(), "POST", "/admin/consistency?repair=true", {}, admin);
  ASSERT_EQ(check.status, 200) << check.body;
  auto report = json::parse(check.body);
  auto rewound = report["rewound"].get<std::set<std::string>>();
  EXPECT_EQ(rewound, (std::set<std::string>{"permits.citizen_refs<-auth", "permits.department_refs<-auth",
                                            "revenue.citizen_refs<-auth", "parks.citizen_refs<-auth",
                                            "notify.citizen_refs<-auth", "notify.password_resets<-auth"}))
      << check.body;
  EXPECT_EQ(cache_email(dir.path() / "permits.db", bob), "");  // repaired: auth no longer has Bob

  // Dee takes the id Bob had: her registration must reach every cache, not be skipped.
  auto dee = register_citizen("dee@example.org");
  EXPECT_EQ(dee, bob);
  ASSERT_TRUE(caught_up());
  for (const auto* file : {"permits.db", "revenue.db", "parks.db"})
    EXPECT_TRUE(testing::wait_until([&] { return cache_email(dir.path() / file, dee) == "dee@example.org"; })) << file;
  auto after = testing::call(server.port(), "POST", "/admin/consistency", {}, admin);
  EXPECT_TRUE(json::parse(after.body)["consistent"]) << after.body;
  EXPECT_TRUE(json::parse(after.body)["rewound"].empty());
}

}  // namespace
}  // namespace townhall
