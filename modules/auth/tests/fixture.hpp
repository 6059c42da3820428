#pragma once

// What the auth service tests share: principals to call as, and a fixture with the
// service on a temp auth.db. Not in an anonymous namespace: tests of one suite in several
// files must share one fixture class.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "commands.hpp"
#include "coro.hpp"
#include "module_harness.hpp"
#include "server_fixture.hpp"
#include "service.hpp"
#include "support.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {

using testing::run_awaitable;
using json = nlohmann::json;

inline std::shared_ptr<const Principal> employee(std::int64_t id, std::vector<std::string> permissions,
                                                 std::string department = "") {
  return testing::employee_principal(id, std::move(permissions), std::move(department));
}

inline std::shared_ptr<const Principal> citizen(std::int64_t id) {
  auto p = std::make_shared<Principal>();
  p->id = id;
  p->kind = Principal::Kind::citizen;
  p->roles = {"citizen"};
  return p;
}

inline CallContext as(std::shared_ptr<const Principal> principal) {
  CallContext context;
  context.principal = std::move(principal);
  context.correlation_id = "test";
  return context;
}

class AuthServiceTest : public ::testing::Test, protected testing::ModuleHarness {
 protected:
  AuthServiceTest() : ModuleHarness("auth", table_manifest()) {}
  void SetUp() override {
    testing::migrate_module(database, "auth");
    settings.password_cost = {1, 8192 * 1024};
    settings.login_throttle.max_per_account_and_ip = 3;
    settings.login_throttle.max_per_ip = 1000;
    settings.login_throttle.base_delay = std::chrono::milliseconds(20);
    settings.login_throttle.max_delay = std::chrono::milliseconds(80);
    make_service();
  }

  void make_service() {
    if (service) service->stop();  // before the next one opens the shared gate
    service = std::make_unique<AuthService>(settings, dependencies([this] { ++commits; }), dir.path() / "auth.key");
    service->start();
  }

  void TearDown() override {
    service->stop();
    writer.stop();
  }

  Citizen register_citizen(const std::string& email, std::optional<std::string> national_id = std::nullopt) {
    Registration r{email,   "a long enough password", "Test Citizen", "+1-555-0100", "1 Main St", "Springfield",
                   "12345", std::move(national_id)};
    auto result = run_awaitable(service->register_citizen(CallContext{}, std::move(r)));
    EXPECT_TRUE(result) << (result ? "" : result.error().message);
    return result ? *result : Citizen{};
  }

  std::vector<json> outbox(const std::string& aggregate_id) {
    auto reader = database.open(db::Role::reader);
    auto query =
        reader->prepare("SELECT event_type, event_version, data FROM outbox WHERE aggregate_id = ? ORDER BY id");
    query.bind(1, aggregate_id);
    std::vector<json> out;
    while (query.executeStep())
      out.push_back({{"type", query.getColumn(0).getString()},
                     {"version", query.getColumn(1).getInt64()},
                     {"data", json::parse(query.getColumn(2).getString())}});
    return out;
  }

  std::int64_t create_staff(const std::string& email, std::vector<std::string> roles,
                            std::optional<std::string> department = std::nullopt) {
    auto admin = as(employee(999, {"*"}));
    if (department && service->list_departments()->empty()) {
      auto created = run_awaitable(service->create_department(admin, *department, "Department " + *department));
      EXPECT_TRUE(created);
    }
    auto result = run_awaitable(
        service->create_employee(admin, NewStaff{email, "staff password 123", "Staff", department, std::move(roles)}));
    EXPECT_TRUE(result) << (result ? "" : result.error().message);
    return result ? result->id : 0;
  }

  Settings settings;
  int commits = 0;
  std::unique_ptr<AuthService> service;
};

}  // namespace townhall::auth
