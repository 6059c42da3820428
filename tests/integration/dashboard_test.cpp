// The operator dashboard in a real browser: Debian's Chromium driven by playwright-core
// (tests/dashboard/drive.mjs) against the real server. The browser signs in, replays one
// dead letter, discards another and runs a consistency check; this test then checks the
// server's state, so a page that only looked right would fail here.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "server_fixture.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/bus/event.hpp"
#include "townhall/platform/db.hpp"

namespace townhall {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::TestServer;

const std::filesystem::path kDriver = std::filesystem::path(TOWNHALL_SOURCE_DIR) / "tests/dashboard";

std::string chromium_path() {
  if (const char* path = std::getenv("CHROMIUM")) return path;
  return "/usr/bin/chromium";
}

// What the browser test needs, or why it cannot run (scripts/install-deps.sh installs it).
std::string missing_browser_parts() {
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node";
  if (!std::filesystem::exists(kDriver / "node_modules/playwright-core"))
    return "playwright-core (npm ci in tests/dashboard)";
  if (!std::filesystem::exists(chromium_path())) return "chromium (" + chromium_path() + ")";
  return {};
}

class DashboardBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = missing_browser_parts(); !missing.empty())
      GTEST_SKIP() << "SKIPPED: the dashboard browser test needs " << missing
                   << "; scripts/install-deps.sh installs it";
    auto config = testing::test_config(dir.path());
    config.bus.sweep_interval = 50ms;
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"admin@example.org", "admin password 1", "Admin", "admin", std::nullopt}));
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"clerk@example.org", "clerk password 1", "Clerk", "clerk", std::nullopt}));
    server = std::make_unique<TestServer>(std::move(config));
    admin = testing::login(server->port(), "admin@example.org", "admin password 1");
    ASSERT_FALSE(admin.empty());
  }

  // A valid citizen event that failed for a passing reason, kept in permits' dead letters.
  std::int64_t dead_letter(std::int64_t citizen_id, const std::string& name) {
    bus::Event event;
    event.event_id = "auth:" + std::to_string(4000 + citizen_id);
    event.event_type = "citizen.updated";
    event.topic = "gov.auth.citizen";
    event.source = "auth";
    event.aggregate_type = "citizen";
    event.aggregate_id = std::to_string(citizen_id);
    event.event_version = 1;
    event.occurred_at = "2026-11-22T00:00:00.000Z";
    event.data = {{"snapshot", {{"id", citizen_id}, {"name", name}}}};
    db::ModuleDb permits("permits", dir.path() / "permits.db", {});
    auto owner = permits.open(db::Role::owner);
    auto insert = owner->prepare(
        "INSERT INTO dead_letters (subscription, event_id, event, error, attempts, first_failed_at, last_failed_at) "
        "VALUES ('citizen_refs', ?, ?, 'database is locked', 5, '2026-11-22T00:00:00.000Z', "
        "'2026-11-22T00:00:01.000Z')");
    insert.bind(1, event.event_id);
    insert.bind(2, bus::to_json(event).dump());
    insert.exec();
    return owner->sql().getLastInsertRowid();
  }

  std::string citizen_name(std::int64_t id) {
    db::ModuleDb permits("permits", dir.path() / "permits.db", {});
    auto owner = permits.open(db::Role::owner);
    auto query = owner->prepare("SELECT name FROM citizen_refs WHERE citizen_id = ?");
    query.bind(1, id);
    return query.executeStep() ? query.getColumn(0).getString() : std::string();
  }

  std::int64_t processed(const std::string& event_id) {
    db::ModuleDb permits("permits", dir.path() / "permits.db", {});
    auto owner = permits.open(db::Role::owner);
    auto query =
        owner->prepare("SELECT count(*) FROM processed_events WHERE subscription = 'citizen_refs' AND event_id = ?");
    query.bind(1, event_id);
    query.executeStep();
    return query.getColumn(0).getInt64();
  }

  json letters() {
    auto response = testing::call(server->port(), "GET", "/admin/dead-letters?module=permits", {}, admin);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body)["items"];
  }

  testing::TempDir dir;
  std::unique_ptr<TestServer> server;
  std::string admin;
};

TEST_F(DashboardBrowser, SignInReplayDiscardAndCheckRun) {
  auto replay = dead_letter(901, "Replayed In The Browser");
  auto discard = dead_letter(902, "Discarded In The Browser");
  auto screenshot = dir.path() / "dashboard.png";
  std::string command = "cd '" + kDriver.string() + "' && CHROMIUM='" + chromium_path() +
                        "' node drive.mjs 'http://127.0.0.1:" + std::to_string(server->port()) +
                        "/admin/' admin@example.org 'admin password 1' clerk@example.org 'clerk password 1' permits/" +
                        std::to_string(replay) + " permits/" + std::to_string(discard) + " '" + screenshot.string() +
                        "' 2>&1";
  int status = std::system(command.c_str());
  ASSERT_EQ(status, 0) << "the browser run failed (its output is above): " << command;

  // What the clicks did, seen from the server: the replayed event was applied once (the
  // browser's first check found its row as the one extra; the repairing run removed it),
  // the discarded one never was.
  std::map<std::int64_t, std::string> states;
  for (const auto& letter : letters()) states[letter["id"].get<std::int64_t>()] = letter["state"];
  EXPECT_EQ(states[replay], "replayed");
  EXPECT_EQ(states[discard], "discarded");
  EXPECT_EQ(processed("auth:4901"), 1);
  EXPECT_EQ(processed("auth:4902"), 0);
  EXPECT_EQ(citizen_name(902), "");
  auto report = testing::call(server->port(), "GET", "/admin/consistency", {}, admin);
  ASSERT_EQ(report.status, 200) << "the browser's check runs left no report";
  auto body = json::parse(report.body);
  EXPECT_TRUE(body["repair"].get<bool>());
  EXPECT_TRUE(body["consistent"].get<bool>());
  EXPECT_EQ(body["repaired"], 1);
  EXPECT_EQ(citizen_name(901), "");
  EXPECT_TRUE(std::filesystem::file_size(screenshot) > 10000);
}

}  // namespace
}  // namespace townhall
