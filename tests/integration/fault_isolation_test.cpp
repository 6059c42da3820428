// One module's file is broken: that module is down (503, /readyz, metrics), the rest serve.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "server_fixture.hpp"

namespace townhall {
namespace {

using testing::TempDir;
using testing::TestServer;

void expect_only_permits_down(TestServer& server) {
  auto permits = server.get("/api/v1/permits/status");
  EXPECT_EQ(permits.status, 503);
  EXPECT_EQ(permits.header("content-type"), "application/problem+json");
  auto problem = nlohmann::json::parse(permits.body);
  EXPECT_EQ(problem["status"], 503);
  EXPECT_NE(problem["detail"].get<std::string>().find("permits"), std::string::npos);
  // Any route under the prefix, known or not, answers 503 while the module is down.
  EXPECT_EQ(server.get("/api/v1/permits/applications/1").status, 503);

  EXPECT_EQ(server.get("/api/v1/auth/status").status, 200);
  EXPECT_EQ(server.get("/api/v1/revenue/status").status, 200);
  EXPECT_EQ(server.get("/api/v1/parks/status").status, 200);

  // Ready: the other modules serve, and a load balancer must not drop them (issue 27.6).
  auto ready = server.get("/readyz");
  EXPECT_EQ(ready.status, 200);
  auto body = nlohmann::json::parse(ready.body);
  EXPECT_EQ(body["status"], "degraded");
  EXPECT_EQ(body["modules"]["permits"]["state"], "down");
  EXPECT_EQ(body["modules"]["auth"]["state"], "up");

  auto metrics = server.get("/metrics").body;
  EXPECT_NE(metrics.find("townhall_module_up{module=\"permits\"} 0"), std::string::npos);
  EXPECT_NE(metrics.find("townhall_module_up{module=\"auth\"} 1"), std::string::npos);
  EXPECT_EQ(server.get("/healthz").status, 200);  // the process itself is alive
}

TEST(FaultIsolation, CorruptModuleFileTakesDownOnlyThatModule) {
  TempDir dir;
  {
    std::ofstream corrupt(dir.path() / "permits.db", std::ios::binary);
    corrupt << std::string(8192, '\x5a');
  }
  TestServer server(testing::test_config(dir.path()));
  expect_only_permits_down(server);
  auto body = nlohmann::json::parse(server.get("/readyz").body);
  EXPECT_NE(body["modules"]["permits"]["detail"].get<std::string>().find("not a database"), std::string::npos)
      << body.dump();
}

TEST(FaultIsolation, UnopenableModuleFileTakesDownOnlyThatModule) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "permits.db");  // a directory where the file should be
  TestServer server(testing::test_config(dir.path()));
  expect_only_permits_down(server);
}

TEST(FaultIsolation, ModuleWithTamperedMigrationHistoryStaysDown) {
  TempDir dir;
  {  // First run creates the files.
    TestServer server(testing::test_config(dir.path()));
    EXPECT_EQ(server.get("/api/v1/permits/status").status, 200);
  }
  {
    SQLite::Database file((dir.path() / "permits.db").string(), SQLite::OPEN_READWRITE);
    file.exec("UPDATE schema_migrations SET checksum = 'tampered' WHERE component = 'bus'");
  }
  TestServer server(testing::test_config(dir.path()));
  expect_only_permits_down(server);
  auto body = nlohmann::json::parse(server.get("/readyz").body);
  EXPECT_NE(body["modules"]["permits"]["detail"].get<std::string>().find("checksum"), std::string::npos);
}

TEST(FaultIsolation, FileLockedByAnotherWriterTakesDownOnlyThatModule) {
  TempDir dir;
  // Another process (here: another connection) holds the write lock on permits.db.
  auto holder = std::make_unique<SQLite::Database>((dir.path() / "permits.db").string(),
                                                   SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  holder->exec("PRAGMA journal_mode=WAL");
  holder->exec("BEGIN EXCLUSIVE");
  holder->exec("CREATE TABLE squatter (x INTEGER)");
  auto config = testing::test_config(dir.path());
  config.database.busy_timeout = std::chrono::milliseconds(100);
  config.server.module_retry = std::chrono::milliseconds(50);
  TestServer server(std::move(config));
  expect_only_permits_down(server);
  auto body = nlohmann::json::parse(server.get("/readyz").body);
  EXPECT_NE(body["modules"]["permits"]["detail"].get<std::string>().find("locked"), std::string::npos) << body.dump();

  holder->exec("ROLLBACK");  // the other writer goes away
  holder.reset();
  EXPECT_TRUE(testing::wait_until([&] { return server.get("/api/v1/permits/status").status == 200; }));
  EXPECT_EQ(nlohmann::json::parse(server.get("/readyz").body)["status"], "ready");
}

TEST(FaultIsolation, ModuleComesBackWithoutARestart) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "permits.db");
  auto config = testing::test_config(dir.path());
  config.server.module_retry = std::chrono::milliseconds(50);
  TestServer server(std::move(config));
  expect_only_permits_down(server);

  std::filesystem::remove(dir.path() / "permits.db");  // the operator fixes the file
  EXPECT_TRUE(testing::wait_until([&] { return server.get("/api/v1/permits/status").status == 200; }));
  EXPECT_EQ(nlohmann::json::parse(server.get("/readyz").body)["status"], "ready");
  EXPECT_NE(server.get("/metrics").body.find("townhall_module_up{module=\"permits\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace townhall
