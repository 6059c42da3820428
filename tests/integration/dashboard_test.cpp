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

  std::int64_t dead_letter(std::int64_t citizen_id, const std::string& name) {
    return testing::insert_citizen_dead_letter(dir.path(), citizen_id, name, 4000 + citizen_id);
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
