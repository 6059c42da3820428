// Issue 26 §2 and §4 over HTTP against the real server: staff listed, searched, off-boarded
// (the old token refused at once, cached or not) and taken back; roles replaced; a
// department deactivated (no new permit applications, the old ones still reviewable);
// the audit log read by an auditor, a national id read found by citizen and by actor.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server_fixture.hpp"
#include "support.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::HttpResponse;

class StaffAuditHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = testing::test_config(dir.path());
    for (const auto& [email, role, department] :
         std::vector<std::array<std::string, 3>>{{"admin@example.org", "admin", ""},
                                                 {"second@example.org", "admin", ""},
                                                 {"rita@example.org", "permits_reviewer", "BLD"},
                                                 {"rosa@example.org", "revenue_clerk", "FIN"},
                                                 {"audrey@example.org", "auditor", "OPS"}}) {
      auto created = app::create_staff_user(
          config, auth::StaffUser{email, "staff password 1", "Staff " + email, role,
                                  department.empty() ? std::nullopt : std::optional<std::string>(department)});
      ASSERT_TRUE(created) << created.error().message;
      ids[email] = created->id;
    }
    server = std::make_unique<testing::TestServer>(std::move(config));
    admin = login("admin@example.org");
    ASSERT_FALSE(admin.empty());
  }

  std::string login(const std::string& email, const std::string& password = "staff password 1") {
    return testing::login(server->port(), email, password);
  }
  HttpResponse call(const std::string& method, const std::string& path, const std::string& token,
                    const std::string& body = {}) {
    return testing::call(server->port(), method, path, body, token);
  }
  static json body_of(const HttpResponse& response) { return json::parse(response.body); }
  static void expect_problem(const HttpResponse& response, int status, const std::string& naming = {}) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_EQ(response.header("content-type"), "application/problem+json") << response.body;
    if (!naming.empty()) {
      EXPECT_NE(response.body.find(naming), std::string::npos) << response.body;
    }
  }
  static std::vector<std::string> emails_in(const HttpResponse& response) {
    std::vector<std::string> out;
    auto body = json::parse(response.body);
    for (const auto& item : body["items"]) out.push_back(item["email"]);
    return out;
  }
  void wait_for_bus() {
    ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  }

  std::int64_t verified_citizen(const std::string& email, const std::string& national_id = {}) {
    json body{{"email", email}, {"password", "a long enough password"}, {"name", "Maria"}};
    if (!national_id.empty()) body["national_id"] = national_id;
    auto registered = call("POST", "/api/v1/auth/register", {}, body.dump());
    EXPECT_EQ(registered.status, 201) << registered.body;
    auto id = body_of(registered)["id"].get<std::int64_t>();
    EXPECT_EQ(
        call("PATCH", "/api/v1/auth/citizens/" + std::to_string(id), admin, R"({"identity_verified":true})").status,
        200);
    wait_for_bus();
    return id;
  }

  testing::TempDir dir;
  std::unique_ptr<testing::TestServer> server;
  std::map<std::string, std::int64_t> ids;
  std::string admin;
};

TEST_F(StaffAuditHttp, EmployeesAreSearchedAndFilteredPageByPage) {
  const std::string employees = "/api/v1/auth/employees";
  EXPECT_EQ(emails_in(call("GET", employees + "?q=RI", admin)), std::vector<std::string>{"rita@example.org"});
  // A name prefix, any case: every name here starts with "Staff ".
  EXPECT_EQ(emails_in(call("GET", employees + "?q=staff%20ro", admin)), std::vector<std::string>{"rosa@example.org"});
  EXPECT_EQ(emails_in(call("GET", employees + "?department=bld", admin)), std::vector<std::string>{"rita@example.org"});
  EXPECT_EQ(emails_in(call("GET", employees + "?role=admin", admin)),
            (std::vector<std::string>{"admin@example.org", "second@example.org"}));
  EXPECT_EQ(emails_in(call("GET", employees + "?active=false", admin)), std::vector<std::string>{});
  auto first = call("GET", employees + "?page_size=3&include=total", admin);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(body_of(first)["total"], 5);
  auto next = call("GET", employees + "?page_size=3&cursor=" + body_of(first)["next_cursor"].get<std::string>(), admin);
  EXPECT_EQ(emails_in(next), (std::vector<std::string>{"rosa@example.org", "audrey@example.org"}));

  expect_problem(call("GET", employees + "?active=maybe", admin), 400, "active");
  expect_problem(call("GET", employees + "?q=", admin), 400, "'q'");
  expect_problem(call("GET", employees + "?department=B%20L", admin), 400, "department");
  expect_problem(call("GET", employees, login("rita@example.org")), 403);
}

TEST_F(StaffAuditHttp, DeactivationRefusesTheOldTokenAtOnceEvenWhenCached) {
  auto rita = login("rita@example.org");
  auto me = call("GET", "/api/v1/auth/me", rita);  // authenticated once: the token is cached
  ASSERT_EQ(me.status, 200) << me.body;
  ASSERT_EQ(call("GET", "/api/v1/auth/me", rita).status, 200);
  const auto path = "/api/v1/auth/employees/" + std::to_string(ids["rita@example.org"]);

  expect_problem(call("POST", path + "/deactivate", rita), 403);
  expect_problem(call("POST", path + "/deactivate", admin, R"({"reason":"x"})"), 400);
  auto deactivated = call("POST", path + "/deactivate", admin);
  ASSERT_EQ(deactivated.status, 200) << deactivated.body;
  EXPECT_EQ(body_of(deactivated)["is_active"], false);
  expect_problem(call("GET", "/api/v1/auth/me", rita), 401);
  EXPECT_TRUE(login("rita@example.org").empty());
  EXPECT_EQ(emails_in(call("GET", "/api/v1/auth/employees?active=false", admin)),
            std::vector<std::string>{"rita@example.org"});

  // An administrator cannot off-board themself, whichever admin it is.
  auto second = login("second@example.org");
  expect_problem(
      call("POST", "/api/v1/auth/employees/" + std::to_string(ids["second@example.org"]) + "/deactivate", second), 409,
      "your own account");
  expect_problem(call("POST", "/api/v1/auth/employees/4242/deactivate", admin), 404);

  auto reactivated = call("POST", path + "/reactivate", second);
  ASSERT_EQ(reactivated.status, 200) << reactivated.body;
  EXPECT_EQ(body_of(reactivated)["is_active"], true);
  expect_problem(call("GET", "/api/v1/auth/me", rita), 401);  // the old session stays ended
  rita = login("rita@example.org");
  EXPECT_EQ(call("GET", "/api/v1/auth/me", rita).status, 200);
}

TEST_F(StaffAuditHttp, RoleChangesNameAnUnknownRoleAndEndTheSessions) {
  auto rosa = login("rosa@example.org");
  ASSERT_EQ(call("GET", "/api/v1/auth/me", rosa).status, 200);
  const auto roles = "/api/v1/auth/employees/" + std::to_string(ids["rosa@example.org"]) + "/roles";
  expect_problem(call("PUT", roles, admin, R"({"roles":["revenue_clerk","emperor"]})"), 422, "emperor");
  expect_problem(call("PUT", roles, admin, R"({"roles":"auditor"})"), 400);
  expect_problem(call("PUT", roles, rosa, R"({"roles":["admin"]})"), 403);
  auto changed = call("PUT", roles, admin, R"({"roles":["auditor","revenue_clerk"]})");
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(body_of(changed)["roles"], json({"auditor", "revenue_clerk"}));
  expect_problem(call("GET", "/api/v1/auth/me", rosa), 401);
  auto audited = call("GET", "/api/v1/auth/audit?action=employee.roles.set", admin);
  ASSERT_EQ(audited.status, 200) << audited.body;
  ASSERT_EQ(body_of(audited)["items"].size(), 1u);
  EXPECT_EQ(body_of(audited)["items"][0]["actor_email"], "admin@example.org");
}

TEST_F(StaffAuditHttp, AnInactiveDepartmentTakesNoNewApplicationsButKeepsItsOld) {
  auto maria_id = verified_citizen("maria@example.org");
  auto maria = login("maria@example.org", "a long enough password");
  const std::string application =
      R"({"permit_type":"fence","description":"A fence","property_address":"1 Main St","department_code":"BLD"})";
  auto submitted = call("POST", "/api/v1/permits/applications", maria, application);
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  auto existing = "/api/v1/permits/applications/" + std::to_string(body_of(submitted)["id"].get<std::int64_t>());

  expect_problem(call("POST", "/api/v1/auth/departments/BLD/deactivate", login("rita@example.org")), 403);
  expect_problem(call("POST", "/api/v1/auth/departments/NOPE/deactivate", admin), 404);
  auto off = call("POST", "/api/v1/auth/departments/bld/deactivate", admin);
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(body_of(off)["is_active"], false);
  wait_for_bus();
  expect_problem(call("POST", "/api/v1/permits/applications", maria, application), 422, "BLD");

  // Still visible to its applicant and its reviewer, and decided.
  EXPECT_EQ(call("GET", existing, maria).status, 200);
  auto rita = login("rita@example.org");
  EXPECT_EQ(call("GET", existing, rita).status, 200);
  auto decided = call("POST", existing + "/decision", rita, R"({"decision":"approve"})");
  EXPECT_EQ(decided.status, 200) << decided.body;

  ASSERT_EQ(call("POST", "/api/v1/auth/departments/BLD/reactivate", admin).status, 200);
  wait_for_bus();
  EXPECT_EQ(call("POST", "/api/v1/permits/applications", maria, application).status, 201);
  (void)maria_id;
}

TEST_F(StaffAuditHttp, ANationalIdReadIsFoundByCitizenAndByActor) {
  auto maria = verified_citizen("maria@example.org", "NID-5521-ZZ");
  auto rosa = login("rosa@example.org");
  json record{{"citizen_id", maria}, {"tax_year", 2025}, {"assessed_value_cents", 100}, {"tax_due_cents", 1}};
  auto created = call("POST", "/api/v1/revenue/tax-records", rosa, record.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  auto read = call("GET",
                   "/api/v1/revenue/tax-records/" + std::to_string(body_of(created)["id"].get<std::int64_t>()) +
                       "?include=national_id",
                   rosa);
  ASSERT_EQ(read.status, 200) << read.body;

  auto audrey = login("audrey@example.org");
  const std::string audit = "/api/v1/auth/audit";
  auto by_citizen = call("GET", audit + "?citizen_id=" + std::to_string(maria), audrey);
  ASSERT_EQ(by_citizen.status, 200) << by_citizen.body;
  auto rows = body_of(by_citizen)["items"];
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0]["action"], "citizen.national_id.read");  // newest first
  EXPECT_EQ(rows[0]["actor_id"], ids["rosa@example.org"]);
  EXPECT_EQ(rows[0]["actor_email"], "rosa@example.org");
  EXPECT_EQ(rows[0]["purpose"], "tax-record");

  auto by_actor = call(
      "GET", audit + "?action=citizen.national_id.read&actor_id=" + std::to_string(ids["rosa@example.org"]), audrey);
  ASSERT_EQ(by_actor.status, 200) << by_actor.body;
  ASSERT_EQ(body_of(by_actor)["items"].size(), 1u);
  EXPECT_EQ(body_of(by_actor)["items"][0]["subject"], "citizen:" + std::to_string(maria));
  auto window =
      call("GET",
           audit + "?citizen_id=" + std::to_string(maria) + "&from=2020-01-01T00:00:00Z&to=2199-01-01T00:00:00%2B01:00",
           admin);
  ASSERT_EQ(window.status, 200) << window.body;
  EXPECT_EQ(body_of(window)["items"].size(), rows.size());

  // Bad input: malformed times, a from after its to, ids that are not ids; other staff.
  expect_problem(call("GET", audit + "?from=yesterday", audrey), 400, "from");
  expect_problem(call("GET", audit + "?to=2026-02-30T00:00:00Z", audrey), 400, "to");
  expect_problem(call("GET", audit + "?from=2026-06-01T00:00:00Z&to=2026-01-01T00:00:00Z", audrey), 400, "after");
  expect_problem(call("GET", audit + "?actor_id=abc", audrey), 400, "actor_id");
  expect_problem(call("GET", audit + "?actor_kind=robot", audrey), 400, "actor_kind");
  expect_problem(call("GET", audit, rosa), 403);
  expect_problem(call("GET", audit, login("maria@example.org", "a long enough password")), 403);
  // An auditor reads the log and nothing else of staff administration.
  expect_problem(call("GET", "/api/v1/auth/employees", audrey), 403);
}

}  // namespace
}  // namespace townhall
