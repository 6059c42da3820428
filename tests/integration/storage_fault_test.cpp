// Storage faults under real SQLite (tests/support/fault_vfs): a module whose file fails
// to write, sync or lock answers 503 and reports itself down, shows nothing partial, the
// other modules serve, and it comes back when the disk does, without a restart.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>

#include "fault_vfs.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/db.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::FaultVfs;
using testing::HttpResponse;

class StorageFaults : public ::testing::Test {
 protected:
  void SetUp() override { start(db::Synchronous::normal); }

  void start(db::Synchronous synchronous) {
    server.reset();
    auto config = testing::test_config(dir.path());
    config.database.vfs = vfs.name();
    config.database.synchronous = synchronous;
    config.server.module_retry = std::chrono::milliseconds(50);
    for (const auto& [email, role, department] : std::vector<std::array<std::string, 3>>{
             {"admin@example.org", "admin", ""}, {"rita@example.org", "permits_reviewer", "BLD"}}) {
      auto created = app::create_staff_user(
          config, auth::StaffUser{email, "staff password 1", "Staff", role,
                                  department.empty() ? std::nullopt : std::optional<std::string>(department)});
      if (!created && created.error().code != Errc::conflict) FAIL() << created.error().message;
    }
    server = std::make_unique<testing::TestServer>(std::move(config));
    admin = testing::login(server->port(), "admin@example.org", "staff password 1");
    ASSERT_FALSE(admin.empty());
  }

  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& token = {}) {
    return testing::call(server->port(), method, path, body, token);
  }

  // A verified citizen, signed in, whom permits' cache knows.
  std::pair<std::int64_t, std::string> citizen(const std::string& email) {
    auto registered = call("POST", "/api/v1/auth/register",
                           json{{"email", email}, {"password", "a long enough password"}, {"name", "Ada"}}.dump());
    EXPECT_EQ(registered.status, 201) << registered.body;
    auto id = json::parse(registered.body)["id"].get<std::int64_t>();
    EXPECT_EQ(
        call("PATCH", "/api/v1/auth/citizens/" + std::to_string(id), R"({"identity_verified":true})", admin).status,
        200);
    EXPECT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
    return {id, testing::login(server->port(), email, "a long enough password")};
  }

  HttpResponse submit(const std::string& token) {
    return call("POST", "/api/v1/permits/applications",
                json{{"permit_type", "fence"},
                     {"description", "New fence"},
                     {"property_address", "12 Elm Street"},
                     {"department_code", "BLD"}}
                    .dump(),
                token);
  }

  std::size_t applications(const std::string& token) {
    auto listed = call("GET", "/api/v1/permits/applications", {}, token);
    EXPECT_EQ(listed.status, 200) << listed.body;
    return json::parse(listed.body)["items"].size();
  }

  json readiness() { return json::parse(server->get("/readyz").body); }

  std::string state_of(const std::string& module) { return readiness()["modules"][module]["state"]; }

  bool permits_up() {
    return state_of("permits") == "up" &&
           server->get("/metrics").body.find("townhall_module_up{module=\"permits\"} 1") != std::string::npos;
  }

  // The fault is on: permits' writes answer 503 and it reports itself down; auth still
  // reads and writes; then the disk is repaired and permits comes back by itself.
  void expect_down_then_healed(const std::string& token, std::size_t committed_before,
                               const std::string& why = "cannot write its file") {
    auto refused = submit(token);
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_EQ(refused.header("content-type"), "application/problem+json");
    EXPECT_GE(vfs.failures(), 1u);

    EXPECT_TRUE(testing::wait_until([&] { return state_of("permits") == "down"; }));
    auto ready = readiness();
    EXPECT_EQ(server->get("/readyz").status, 200);  // the others serve: the site stays in the balancer
    EXPECT_EQ(ready["status"], "degraded");
    EXPECT_EQ(ready["modules"]["permits"]["state"], "down") << ready.dump();
    EXPECT_NE(ready["modules"]["permits"]["detail"].get<std::string>().find(why), std::string::npos) << ready.dump();
    EXPECT_EQ(ready["modules"]["auth"]["state"], "up");
    EXPECT_NE(server->get("/metrics").body.find("townhall_module_up{module=\"permits\"} 0"), std::string::npos);
    // Other modules serve, reads and writes.
    EXPECT_EQ(server->get("/api/v1/parks/status").status, 200);
    EXPECT_EQ(call("POST", "/api/v1/auth/register",
                   json{{"email", "other@example.org"}, {"password", "a long enough password"}, {"name", "Bo"}}.dump())
                  .status,
              201);
    // Still down while the fault lasts: the retry's probe fails too.
    EXPECT_TRUE(testing::wait_until([&] { return vfs.failures() >= 2; }));
    EXPECT_EQ(state_of("permits"), "down");

    vfs.clear();  // the disk is repaired
    EXPECT_TRUE(testing::wait_until([&] { return permits_up(); })) << readiness().dump();
    auto accepted = submit(token);
    EXPECT_EQ(accepted.status, 201) << accepted.body;
    // The refused application left nothing behind.
    EXPECT_EQ(applications(token), committed_before + 1);
  }

  FaultVfs vfs;  // outlives the server's connections
  testing::TempDir dir;
  std::unique_ptr<testing::TestServer> server;
  std::string admin;
};

TEST_F(StorageFaults, AFailingWriteTakesTheModuleDownAndItHealsWithoutARestart) {
  auto [id, token] = citizen("ada@example.org");
  auto first = submit(token);
  ASSERT_EQ(first.status, 201) << first.body;
  vfs.inject({"permits.db", FaultVfs::Call::write});
  expect_down_then_healed(token, 1);
}

TEST_F(StorageFaults, AFullDiskTakesTheModuleDownAndItHealsWithoutARestart) {
  auto [id, token] = citizen("ada@example.org");
  auto first = submit(token);
  ASSERT_EQ(first.status, 201) << first.body;
  vfs.inject({"permits.db", FaultVfs::Call::write, 0, true, FaultVfs::Kind::disk_full});
  expect_down_then_healed(token, 1);
}

TEST_F(StorageFaults, AFailingSyncTakesTheModuleDownAndItHealsWithoutARestart) {
  start(db::Synchronous::full);  // a WAL commit syncs only with synchronous=FULL
  auto [id, token] = citizen("ada@example.org");
  auto first = submit(token);
  ASSERT_EQ(first.status, 201) << first.body;
  vfs.inject({"permits.db", FaultVfs::Call::sync});
  expect_down_then_healed(token, 1);
}

TEST_F(StorageFaults, AFailingSharedMemoryLockTakesTheModuleDownAndItHealsWithoutARestart) {
  auto [id, token] = citizen("ada@example.org");
  auto first = submit(token);
  ASSERT_EQ(first.status, 201) << first.body;
  vfs.inject({"permits.db", FaultVfs::Call::shm});
  expect_down_then_healed(token, 1, "its file");  // the request's read meets it first
}

TEST_F(StorageFaults, OneFailedWriteIsAnsweredAndTheNextSucceeds) {
  auto [id, token] = citizen("ada@example.org");
  vfs.inject({"permits.db", FaultVfs::Call::write, 0, /*persistent=*/false});
  EXPECT_EQ(submit(token).status, 503);
  EXPECT_EQ(vfs.failures(), 1u);
  auto accepted = submit(token);  // no wait: the write path reopened its connection
  EXPECT_EQ(accepted.status, 201) << accepted.body;
  EXPECT_TRUE(testing::wait_until([&] { return permits_up(); })) << readiness().dump();
  EXPECT_EQ(applications(token), 1u);
}

// An operator's replay (or discard) meeting a failing file is told to try again (503),
// not that the letter failed (422) or the server broke (500); the letter stays pending
// and the replay works once the disk does. (Found by soak_under_storage_faults: a 500.)
TEST_F(StorageFaults, AReplayMeetingAFailingFileIs503AndWorksAfterTheHeal) {
  auto letter = testing::insert_citizen_dead_letter(dir.path(), 999, "Replayed Citizen", 4242);
  const auto path = "/admin/dead-letters/permits/" + std::to_string(letter);
  for (auto call_kind : {FaultVfs::Call::read, FaultVfs::Call::write}) {
    vfs.inject({"permits.db", call_kind});
    for (const char* action : {"/replay", "/discard"}) {
      auto refused = call("POST", path + action, {}, admin);
      EXPECT_EQ(refused.status, 503) << action << ": " << refused.body;
      EXPECT_EQ(refused.header("content-type"), "application/problem+json");
    }
    vfs.clear();
    EXPECT_TRUE(testing::wait_until([&] {
      auto state = call("GET", "/admin/dead-letters?module=permits", {}, admin);
      return state.status == 200 && json::parse(state.body)["items"].size() == 1 && permits_up();
    })) << readiness().dump();
    auto listed = json::parse(call("GET", "/admin/dead-letters?module=permits", {}, admin).body)["items"];
    EXPECT_EQ(listed[0]["state"], "pending");
    EXPECT_EQ(listed[0]["attempts"], 5);  // the refused replays were not the letter's failures
  }
  HttpResponse replayed;
  EXPECT_TRUE(testing::wait_until([&] {
    replayed = call("POST", path + "/replay", {}, admin);
    return replayed.status != 503;  // the consumer reopens after the heal
  }));
  EXPECT_EQ(replayed.status, 200) << replayed.body;
}

// An event arriving while the consumer's file fails is applied once the file works: the
// permits cache converges, no event is dead-lettered or applied twice.
TEST_F(StorageFaults, EventsForAFailingConsumerAreAppliedWhenItHeals) {
  auto [id, token] = citizen("ada@example.org");
  auto first = submit(token);
  ASSERT_EQ(first.status, 201) << first.body;
  auto application = json::parse(call("GET", "/api/v1/permits/applications", {}, token).body)["items"][0];
  const auto path = "/api/v1/permits/applications/" + std::to_string(application["id"].get<std::int64_t>());

  vfs.inject({"permits.db", FaultVfs::Call::write});
  ASSERT_EQ(call("PATCH", "/api/v1/auth/citizens/" + std::to_string(id), R"({"name":"Ada Lovelace"})", admin).status,
            200);
  EXPECT_TRUE(testing::wait_until([&] { return vfs.failures() >= 1; }));
  EXPECT_FALSE(server->app().bus().caught_up());

  vfs.clear();
  EXPECT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }, std::chrono::seconds(10)));
  auto read = call("GET", path, {}, token);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(json::parse(read.body)["applicant"]["name"], "Ada Lovelace") << read.body;
  EXPECT_FALSE(std::regex_search(server->get("/metrics").body, std::regex("townhall_dead_letters\\{[^}]*\\} [1-9]")));
  EXPECT_TRUE(testing::wait_until([&] { return permits_up(); }));
}

}  // namespace
}  // namespace townhall

namespace townhall {
namespace {

// A real full disk: the data directory on a small tmpfs, filled up by another file. Needs
// root (mount); skipped with a message otherwise.
class RealDiskFull : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_point = dir.path() / "data";
    std::filesystem::create_directory(mount_point);
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: the real disk-full test mounts a tmpfs and needs root";
    auto command = "mount -t tmpfs -o size=8m,mode=0700 townhall-test " + mount_point.string() + " 2>/dev/null";
    if (std::system(command.c_str()) != 0) GTEST_SKIP() << "SKIPPED: cannot mount a tmpfs here (no privilege)";
    mounted = true;
  }
  void TearDown() override {
    server.reset();
    if (mounted) std::system(("umount " + mount_point.string()).c_str());
  }

  // Writes `path` until the file system refuses (ENOSPC).
  static void fill(const std::filesystem::path& path) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    std::string block(64 * 1024, 'x');
    while (std::fwrite(block.data(), 1, block.size(), file) == block.size() && std::fflush(file) == 0) {
    }
    std::fclose(file);
  }

  testing::TempDir dir;
  std::filesystem::path mount_point;
  bool mounted = false;
  std::unique_ptr<testing::TestServer> server;
};

TEST_F(RealDiskFull, WritesAnswer503ReadsServeAndEverythingHealsWhenSpaceIsFreed) {
  auto config = testing::test_config(mount_point);
  config.server.module_retry = std::chrono::milliseconds(50);
  server = std::make_unique<testing::TestServer>(std::move(config));
  auto register_citizen = [&](const std::string& email) {
    return testing::call(server->port(), "POST", "/api/v1/auth/register",
                         json{{"email", email}, {"password", "a long enough password"}, {"name", "Ada"}}.dump());
  };
  ASSERT_EQ(register_citizen("before@example.org").status, 201);

  fill(mount_point / "filler");
  auto refused = register_citizen("during@example.org");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.header("content-type"), "application/problem+json");
  auto auth_state = [&] { return json::parse(server->get("/readyz").body)["modules"]["auth"]["state"]; };
  EXPECT_TRUE(testing::wait_until([&] { return auth_state() == "down"; }));
  EXPECT_EQ(server->get("/api/v1/parks/facilities").status, 200);  // reads still serve

  std::filesystem::remove(mount_point / "filler");
  EXPECT_TRUE(testing::wait_until([&] { return auth_state() == "up"; })) << server->get("/readyz").body;
  EXPECT_EQ(register_citizen("after@example.org").status, 201);
  EXPECT_EQ(register_citizen("during@example.org").status, 201);  // the refused one left nothing behind
}

}  // namespace
}  // namespace townhall
