// The consistency check against the real modules: auth's citizens compared with the
// citizen_refs caches of permits, revenue and parks through auth's Api, over
// POST /admin/consistency, on a schedule, and with `townhall check`.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;

class Consistency : public ::testing::Test {
 protected:
  void SetUp() override {
    config = testing::test_config(dir.path());
    auto created = app::create_staff_user(
        config, auth::StaffUser{"admin@example.org", "staff password 1", "Admin", "admin", std::nullopt});
    ASSERT_TRUE(created) << created.error().message;
  }

  // `count` citizens written into auth.db directly (no events: the caches do not know them).
  void add_citizens(int count) {
    SQLite::Database auth((dir.path() / "auth.db").string(), SQLite::OPEN_READWRITE);
    SQLite::Transaction transaction(auth);
    SQLite::Statement insert(auth,
                             "INSERT INTO citizens (id, email, password_hash, name, event_version, change_seq, "
                             "created_at, updated_at) VALUES (?1, 'c' || ?1 || '@example.org', 'x', 'Citizen ' || ?1, "
                             "?2, ?1, ?3, ?3)");
    const auto now = utc::now();
    for (int i = 1; i <= count; ++i) {
      insert.bind(1, i);
      insert.bind(2, 1 + i % 3);
      insert.bind(3, now);
      insert.exec();
      insert.reset();
    }
    transaction.commit();
  }

  void start() {
    server = std::make_unique<testing::TestServer>(config);
    admin = testing::login(server->port(), "admin@example.org", "staff password 1");
    ASSERT_FALSE(admin.empty());
  }

  void with_server_stopped(const std::function<void()>& change) {
    server.reset();
    change();
    start();
  }

  void corrupt(const std::string& module_file, const std::string& sql) {
    SQLite::Database file((dir.path() / module_file).string(), SQLite::OPEN_READWRITE);
    file.exec(sql);
  }

  json check(const std::string& query = {}) {
    auto response = testing::call(server->port(), "POST", "/admin/consistency" + query, {}, admin);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body, nullptr, false);
  }

  static const json& cache(const json& report, const std::string& name) {
    for (const auto& entry : report["caches"])
      if (entry["cache"] == name) return entry;
    static const json none;
    ADD_FAILURE() << "no cache " << name << " in " << report.dump();
    return none;
  }

  static std::set<std::int64_t> ids(const json& list) { return list.get<std::set<std::int64_t>>(); }

  testing::TempDir dir;
  config::Config config;
  std::unique_ptr<testing::TestServer> server;
  std::string admin;
};

TEST_F(Consistency, FindsExactlyTheCorruptedRowsOfOneCacheAndRepairsThemWithThatManyReads) {
  add_citizens(2000);
  start();
  auto first = check();
  EXPECT_FALSE(first["consistent"]);
  for (const auto* name : {"permits.citizen_refs", "revenue.citizen_refs", "parks.citizen_refs"})
    EXPECT_GT(cache(first, name)["missing"], 0) << name;

  auto filled = check("?repair=true");  // the caches are empty: a full resync each
  EXPECT_TRUE(filled["consistent"]) << filled.dump();
  EXPECT_TRUE(cache(filled, "parks.citizen_refs")["full_resync"]);
  EXPECT_EQ(cache(filled, "parks.citizen_refs")["repaired"], 2000);
  auto clean = check();
  EXPECT_TRUE(clean["consistent"]) << clean.dump();
  EXPECT_EQ(clean["missing"], 0);

  std::set<std::int64_t> deleted, lowered, added;
  for (int i = 0; i < 20; ++i) deleted.insert(7 + i * 97);
  for (int i = 0; i < 20; ++i) lowered.insert(50 + i * 89);
  for (int i = 0; i < 10; ++i) added.insert(100'000 + i * 13);
  with_server_stopped([&] {
    for (auto id : deleted) corrupt("permits.db", "DELETE FROM citizen_refs WHERE citizen_id = " + std::to_string(id));
    for (auto id : lowered)
      corrupt("permits.db", "UPDATE citizen_refs SET event_version = 0 WHERE citizen_id = " + std::to_string(id));
    for (auto id : added)
      corrupt("permits.db", "INSERT INTO citizen_refs (citizen_id, name, event_version, last_synced_at) VALUES (" +
                                std::to_string(id) + ", 'ghost', 1, '2026-01-01T00:00:00Z')");
  });

  auto found = check();
  EXPECT_FALSE(found["consistent"]);
  const auto& permits = cache(found, "permits.citizen_refs");
  EXPECT_EQ(ids(permits["missing_ids"]), deleted);
  EXPECT_EQ(ids(permits["stale_ids"]), lowered);
  EXPECT_EQ(ids(permits["extra_ids"]), added);
  EXPECT_EQ(permits["source_calls"]["records"], 0);
  EXPECT_EQ(cache(found, "revenue.citizen_refs")["missing"], 0);
  EXPECT_EQ(cache(found, "parks.citizen_refs")["stale"], 0);
  auto metrics = server->get("/metrics").body;
  EXPECT_NE(metrics.find("townhall_consistency_missing_records{cache=\"permits.citizen_refs\"} 20"), std::string::npos);
  EXPECT_NE(metrics.find("townhall_consistency_stale_records{cache=\"permits.citizen_refs\"} 20"), std::string::npos);
  EXPECT_NE(metrics.find("townhall_consistency_last_run_timestamp_seconds "), std::string::npos);

  auto repaired = check("?module=permits&repair=true");
  // permits' citizen_refs and department_refs, and its report's application_days
  ASSERT_EQ(repaired["caches"].size(), 3u) << repaired.dump();
  EXPECT_EQ(cache(repaired, "permits.application_days")["source"], "permits.applications");
  const auto& fixed = cache(repaired, "permits.citizen_refs");
  EXPECT_FALSE(fixed["full_resync"]);
  EXPECT_EQ(fixed["repaired"], 50);
  EXPECT_EQ(fixed["source_calls"]["records"], 40);  // the missing and the stale: ~50 reads, not 2000
  auto after = check();
  EXPECT_TRUE(after["consistent"]) << after.dump();
  auto last = testing::call(server->port(), "GET", "/admin/consistency", {}, admin);
  EXPECT_EQ(last.status, 200);
  EXPECT_EQ(json::parse(last.body)["consistent"], true);
}

// permits' department_refs is keyed by code: compared whole with auth's departments (one
// Api call), differences named by code, repaired code by code.
TEST_F(Consistency, TheDepartmentCacheIsCheckedByCodeAndRepaired) {
  for (const char* code : {"BLD", "PRK", "FIN", "OPS"}) {
    auto created = app::create_staff_user(config, auth::StaffUser{std::string("staff-") + code + "@example.org",
                                                                  "staff password 1", "Staff", "clerk", code});
    ASSERT_TRUE(created) << created.error().message;
  }
  start();
  ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  auto clean = check("?module=permits");
  EXPECT_TRUE(clean["consistent"]) << clean.dump();
  EXPECT_EQ(cache(clean, "permits.department_refs")["source_rows"], 4);
  EXPECT_EQ(cache(clean, "permits.department_refs")["cache_rows"], 4);

  with_server_stopped([&] {
    corrupt("permits.db", "DELETE FROM department_refs WHERE code = 'PRK'");
    corrupt("permits.db", "UPDATE department_refs SET event_version = 0, name = 'Wrong' WHERE code = 'FIN'");
    corrupt("permits.db", "UPDATE department_refs SET event_version = 99, name = 'Ahead' WHERE code = 'OPS'");
    corrupt("permits.db",
            "INSERT INTO department_refs (code, name, event_version, last_synced_at) VALUES ('GHOST', 'Ghost', 1, "
            "'2026-01-01T00:00:00Z')");
  });
  auto found = check("?module=permits");
  EXPECT_FALSE(found["consistent"]);
  const auto& departments = cache(found, "permits.department_refs");
  EXPECT_EQ(departments["missing_ids"], json::array({"PRK"}));
  EXPECT_EQ(departments["stale_ids"].get<std::set<std::string>>(), (std::set<std::string>{"FIN", "OPS"}));
  EXPECT_EQ(departments["extra_ids"], json::array({"GHOST"}));
  EXPECT_NE(
      server->get("/metrics").body.find("townhall_consistency_stale_records{cache=\"permits.department_refs\"} 2"),
      std::string::npos);

  auto repaired = check("?module=permits&repair=true");
  EXPECT_EQ(cache(repaired, "permits.department_refs")["repaired"], 4);
  auto after = check("?module=permits");
  EXPECT_TRUE(after["consistent"]) << after.dump();
  SQLite::Database permits((dir.path() / "permits.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(permits.execAndGet("SELECT name FROM department_refs WHERE code = 'OPS'").getString(), "OPS");  // auth's
  EXPECT_EQ(permits.execAndGet("SELECT count(*) FROM department_refs").getInt(), 4);
}

TEST_F(Consistency, TheScheduledRunRepairs) {
  add_citizens(50);
  config.consistency.interval = std::chrono::milliseconds(100);
  start();
  ASSERT_TRUE(testing::wait_until([&] {
    auto last = testing::call(server->port(), "GET", "/admin/consistency", {}, admin);
    return last.status == 200 && json::parse(last.body)["consistent"] == true &&
           cache(json::parse(last.body), "revenue.citizen_refs")["cache_rows"] == 50;
  }));
  with_server_stopped([&] { corrupt("revenue.db", "DELETE FROM citizen_refs WHERE citizen_id = 9"); });
  EXPECT_TRUE(testing::wait_until([&] {
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
    return revenue.execAndGet("SELECT count(*) FROM citizen_refs WHERE citizen_id = 9").getInt() == 1;
  }));
}

TEST_F(Consistency, TheRouteIsForOperatorsAndValidatesItsQuery) {
  start();
  auto registered = testing::call(server->port(), "POST", "/api/v1/auth/register",
                                  R"({"email":"c@example.org","password":"a long enough password","name":"C"})");
  ASSERT_EQ(registered.status, 201);
  auto citizen = testing::login(server->port(), "c@example.org", "a long enough password");
  EXPECT_EQ(testing::call(server->port(), "POST", "/admin/consistency", {}, citizen).status, 403);
  EXPECT_EQ(testing::call(server->port(), "POST", "/admin/consistency").status, 401);
  EXPECT_EQ(testing::call(server->port(), "GET", "/admin/consistency", {}, admin).status, 404);  // none ran yet
  for (const auto* query : {"?repair=yes", "?module=nope"}) {
    auto refused = testing::call(server->port(), "POST", std::string("/admin/consistency") + query, {}, admin);
    EXPECT_EQ(refused.status, 400) << query;
    EXPECT_EQ(refused.header("content-type"), "application/problem+json");
  }
}

TEST_F(Consistency, TheCommandLineChecksAndRepairsWithTheServerStopped) {
  add_citizens(30);
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {TOWNHALL_BINARY, "check", "--data-dir", dir.path().string()});
    testing::ChildProcess child(std::move(args));
    auto code = child.wait_exit(std::chrono::seconds(60));
    return std::pair{code.value_or(-1), child.output()};
  };
  auto [differs, report] = run({"--module", "parks"});
  EXPECT_EQ(differs, 1) << report;
  auto parsed = json::parse(report, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << report;
  EXPECT_EQ(cache(parsed, "parks.citizen_refs")["missing"], 30);
  EXPECT_EQ(parsed["caches"].size(), 2u);  // parks.citizen_refs and its report's booking_days
  EXPECT_EQ(cache(parsed, "parks.booking_days")["extra"], 0);
  EXPECT_EQ(run({"--module", "parks", "--repair"}).first, 0);
  EXPECT_EQ(run({"--module", "parks"}).first, 0);
  EXPECT_EQ(run({"--module", "nope"}).first, 2);
}

// A report's per-day sums that differ from the rows they summarize (written behind the
// triggers' back) are found by `townhall check` and rewritten from the rows by its repair
// (design note 60).
TEST_F(Consistency, TheCommandLineFindsAndRepairsAReportsDaysThatDifferFromItsRows) {
  start();
  server.reset();  // migrated, stopped
  corrupt("revenue.db",
          "INSERT INTO revenue_days VALUES ('2026-01-05', 'permits', 'application', 'EUR', 3, 900, 0, 0);"
          "INSERT INTO open_invoice_totals VALUES ('EUR', 2, 500, 0, 0)");
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {TOWNHALL_BINARY, "check", "--data-dir", dir.path().string()});
    testing::ChildProcess child(std::move(args));
    auto code = child.wait_exit(std::chrono::seconds(60));
    return std::pair{code.value_or(-1), child.output()};
  };
  auto [differs, report] = run({"--module", "revenue"});
  EXPECT_EQ(differs, 1) << report;
  auto parsed = json::parse(report, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << report;
  EXPECT_EQ(cache(parsed, "revenue.revenue_days")["extra_ids"], json::array({"2026-01-05|permits|application|EUR"}));
  EXPECT_EQ(cache(parsed, "revenue.open_invoice_totals")["extra"], 1);
  EXPECT_EQ(run({"--module", "revenue", "--repair"}).first, 0);
  EXPECT_EQ(run({"--module", "revenue"}).first, 0);
  SQLite::Database file((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(file.execAndGet("SELECT count(*) FROM revenue_days").getInt(), 0);
}

}  // namespace
}  // namespace townhall
