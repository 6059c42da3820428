// The auth module over HTTP against the real server: registration, login, sessions,
// object-level authorization, staff administration, bad input; and, with the binary,
// that national ids stay out of every other file and every log line.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "server_fixture.hpp"
#include "support.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::HttpResponse;
using testing::TempDir;
using testing::TestServer;

constexpr const char* kAuth = "/api/v1/auth";

config::Config auth_config(const std::filesystem::path& dir, json settings = json::object()) {
  auto config = testing::test_config(dir);
  for (auto& module : config.modules)
    if (module.name == "auth") module.settings.update(settings);
  return config;
}

class AuthHttp : public ::testing::Test {
 protected:
  void start(json settings = json::object()) {
    auto config = auth_config(dir.path(), std::move(settings));
    auto admin = app::create_staff_user(
        config, auth::StaffUser{"admin@example.org", "admin password 1", "Admin", "admin", std::nullopt});
    ASSERT_TRUE(admin) << admin.error().message;
    server = std::make_unique<TestServer>(std::move(config));
    admin_token = login("admin@example.org", "admin password 1");
    ASSERT_FALSE(admin_token.empty());
  }

  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& token = {}) {
    std::vector<std::string> headers;
    if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
    return testing::http_request(server->port(), method, std::string(kAuth) + path, body, headers);
  }

  std::string login(const std::string& email, const std::string& password) {
    auto response = call("POST", "/login", json{{"email", email}, {"password", password}}.dump());
    if (response.status != 200) return {};
    return json::parse(response.body)["token"].get<std::string>();
  }

  std::int64_t register_citizen(const std::string& email, json extra = json::object()) {
    json body = {{"email", email}, {"password", "a long enough password"}, {"name", "Citizen " + email}};
    body.update(extra);
    auto response = call("POST", "/register", body.dump());
    EXPECT_EQ(response.status, 201) << response.body;
    return response.status == 201 ? json::parse(response.body)["id"].get<std::int64_t>() : 0;
  }

  std::int64_t create_employee(const std::string& email, const std::string& department, json roles) {
    call("POST", "/departments", json{{"code", department}, {"name", "Dept " + department}}.dump(), admin_token);
    auto response = call("POST", "/employees",
                         json{{"email", email},
                              {"password", "staff password 1"},
                              {"name", "Staff"},
                              {"department_code", department},
                              {"roles", roles}}
                             .dump(),
                         admin_token);
    EXPECT_EQ(response.status, 201) << response.body;
    return response.status == 201 ? json::parse(response.body)["id"].get<std::int64_t>() : 0;
  }

  static void expect_problem(const HttpResponse& response, int status) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_EQ(response.header("content-type"), "application/problem+json") << response.body;
    auto body = json::parse(response.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << response.body;
    EXPECT_EQ(body["status"], status);
    EXPECT_TRUE(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
  }

  TempDir dir;
  std::unique_ptr<TestServer> server;
  std::string admin_token;
};

TEST_F(AuthHttp, RegisterLoginMeLogout) {
  start();
  auto id = register_citizen("Maria@Example.org", {{"phone", "+1-555-0100"}, {"national_id", "X-1"}});
  auto token = login("maria@example.org", "a long enough password");
  ASSERT_FALSE(token.empty());
  auto me = call("GET", "/me", {}, token);
  ASSERT_EQ(me.status, 200) << me.body;
  auto principal = json::parse(me.body);
  EXPECT_EQ(principal["id"], id);
  EXPECT_EQ(principal["kind"], "citizen");
  EXPECT_EQ(principal["roles"], json({"citizen"}));
  auto self = call("GET", "/citizens/" + std::to_string(id), {}, token);
  ASSERT_EQ(self.status, 200);
  EXPECT_EQ(json::parse(self.body)["email"], "maria@example.org");
  EXPECT_EQ(json::parse(self.body)["has_national_id"], true);
  EXPECT_EQ(self.body.find("X-1"), std::string::npos);

  EXPECT_EQ(call("POST", "/logout", {}, token).status, 204);
  auto after = call("GET", "/me", {}, token);
  expect_problem(after, 401);
  EXPECT_NE(after.header("www-authenticate").find("Bearer"), std::string::npos);
  expect_problem(call("GET", "/me"), 401);
  expect_problem(call("GET", "/me", {}, "forged-token-forged-token-forged-token-abcd"), 401);
  auto wrong_scheme =
      testing::http_request(server->port(), "GET", std::string(kAuth) + "/me", {}, {"Authorization: Basic abc"});
  expect_problem(wrong_scheme, 401);
}

TEST_F(AuthHttp, LoginFailuresAreIndistinguishableAndThrottled) {
  start({{"login_throttle", {{"max_failures_per_account_and_ip", 3}, {"max_failures_per_ip", 100}}}});
  register_citizen("maria@example.org");
  auto unknown = call("POST", "/login", R"({"email":"nobody@example.org","password":"a long enough password"})");
  auto wrong = call("POST", "/login", R"({"email":"maria@example.org","password":"the wrong password"})");
  expect_problem(unknown, 401);
  EXPECT_EQ(unknown.status, wrong.status);
  EXPECT_EQ(unknown.body, wrong.body);
  call("POST", "/login", R"({"email":"maria@example.org","password":"the wrong password"})");
  call("POST", "/login", R"({"email":"maria@example.org","password":"the wrong password"})");
  auto throttled = call("POST", "/login", R"({"email":"maria@example.org","password":"a long enough password"})");
  expect_problem(throttled, 429);
  EXPECT_FALSE(throttled.header("retry-after").empty());
}

TEST_F(AuthHttp, ExpiredTokensAreRefused) {
  start({{"session_ttl_seconds", 1}, {"token_cache_ttl_ms", 200}});
  register_citizen("maria@example.org");
  auto token = login("maria@example.org", "a long enough password");
  ASSERT_EQ(call("GET", "/me", {}, token).status, 200);
  EXPECT_TRUE(testing::wait_until([&] { return call("GET", "/me", {}, token).status == 401; }));
}

TEST_F(AuthHttp, BadRegistrationsGetAClearProblem) {
  start();
  register_citizen("taken@example.org");
  struct Case {
    std::string body;
    int status;
    std::string detail;
  };
  const std::string long_name(201, 'n');
  std::vector<Case> cases = {
      {"{not json", 400, "malformed JSON"},
      {"[]", 400, "JSON object"},
      {R"({"email":"a@example.org","password":"a long enough password"})", 400, "field 'name': is required"},
      {R"({"email":"a@example.org","password":"a long enough password","name":"A","admin":true})", 400,
       "unknown field 'admin'"},
      {R"({"email":42,"password":"a long enough password","name":"A"})", 400, "field 'email': must be a string"},
      {R"({"email":"a@example.org","password":"a long enough password","name":["A"]})", 400,
       "field 'name': must be a string"},
      {R"({"email":"a@example.org","password":"a long enough password","name":")" + long_name + R"("})", 400,
       "at most 200 bytes"},
      {R"({"email":"a@example.org","password":"a long enough password","name":"A","phone":1e999})", 400, "JSON"},
      {R"({"email":"not an email","password":"a long enough password","name":"A"})", 400, "valid email"},
      {R"({"email":"a@example.org","password":"short","name":"A"})", 400, "at least 10"},
      {R"({"email":"a@example.org","password":"a@example.org","name":"A"})", 400, "email"},
      {R"({"email":"a@example.org","password":"a long enough password","name":"A\u0000B"})", 400, "control characters"},
      {R"({"email":"TAKEN@example.org","password":"a long enough password","name":"A"})", 409, "already exists"},
      // Lookalikes of a taken address are the same address.
      {R"({"email":"\uff54aken@example.org","password":"a long enough password","name":"A"})", 409, "already exists"},
      {R"({"email":"b@example.org","password":"a long enough password","name":"Eve \u202egnp.exe"})", 400, "U+202E"},
      {R"({"email":"b@example.org","password":"a long enough password","name":"A","name":"B"})", 400,
       "duplicate field 'name'"},
      {R"({"email":"b@example.org","password":"a long enough password","name":"A",})", 400, "line 1, column"},
  };
  for (const auto& c : cases) {
    auto response = call("POST", "/register", c.body);
    expect_problem(response, c.status);
    EXPECT_EQ(response.body.find("json.exception"), std::string::npos) << response.body;
    EXPECT_NE(json::parse(response.body)["detail"].get<std::string>().find(c.detail), std::string::npos)
        << c.body << " -> " << response.body;
  }
  // Injection strings and unicode are data, stored and returned as sent.
  auto id = register_citizen("bobby@example.org", {{"name", "Robert'); DROP TABLE citizens;-- 😀 Ñandú"}});
  auto token = login("bobby@example.org", "a long enough password");
  auto self = json::parse(call("GET", "/citizens/" + std::to_string(id), {}, token).body);
  EXPECT_EQ(self["name"], "Robert'); DROP TABLE citizens;-- 😀 Ñandú");
  expect_problem(call("GET", "/citizens/abc", {}, token), 404);
  expect_problem(call("GET", "/citizens/99999999999999999999", {}, token), 404);
}

TEST_F(AuthHttp, ObjectLevelAuthorization) {
  start();
  auto maria = register_citizen("maria@example.org");
  auto li = register_citizen("li@example.org");
  auto li_token = login("li@example.org", "a long enough password");
  auto maria_path = "/citizens/" + std::to_string(maria);

  // Another citizen's record does not exist for li.
  expect_problem(call("GET", maria_path, {}, li_token), 404);
  expect_problem(call("PATCH", maria_path, R"({"phone":"+1"})", li_token), 404);
  expect_problem(call("DELETE", maria_path, {}, li_token), 404);
  expect_problem(call("GET", "/citizens", {}, li_token), 403);
  // Nor may li verify herself.
  expect_problem(call("PATCH", "/citizens/" + std::to_string(li), R"({"identity_verified":true})", li_token), 403);

  create_employee("rita@example.org", "BLD", {"permits_reviewer"});
  create_employee("pat@example.org", "PRK", {"parks_staff"});
  create_employee("ray@example.org", "REV", {"revenue_clerk"});
  create_employee("cleo@example.org", "BLD", {"clerk"});
  auto rita = login("rita@example.org", "staff password 1");
  auto pat = login("pat@example.org", "staff password 1");
  auto ray = login("ray@example.org", "staff password 1");
  auto cleo = login("cleo@example.org", "staff password 1");
  EXPECT_EQ(call("GET", maria_path, {}, cleo).status, 200);  // the front desk: citizens:read
  // Least privilege: reviewers see applicants through permits, revenue staff through
  // revenue; neither reads every citizen's record in auth.
  for (const auto& token : {rita, ray, pat}) {
    expect_problem(call("GET", maria_path, {}, token), 403);
    expect_problem(call("GET", "/citizens", {}, token), 403);
  }
  expect_problem(call("PATCH", maria_path, R"({"phone":"+1"})", rita), 403);
  expect_problem(call("POST", "/departments", R"({"code":"X","name":"X"})", rita), 403);

  auto patched = call("PATCH", maria_path, R"({"phone":"+1-555-0199","identity_verified":true})", admin_token);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(json::parse(patched.body)["phone"], "+1-555-0199");
  EXPECT_EQ(json::parse(patched.body)["identity_verified"], true);
  auto listed = json::parse(call("GET", "/citizens?email=MARIA@example.org", {}, cleo).body);
  ASSERT_EQ(listed["items"].size(), 1u);
  EXPECT_EQ(listed["items"][0]["phone"], "+1-555-0199");
  expect_problem(call("GET", "/citizens?page_size=10000", {}, cleo), 400);

  // Deleting ends maria's sessions and her account.
  auto maria_token = login("maria@example.org", "a long enough password");
  EXPECT_EQ(call("DELETE", maria_path, {}, maria_token).status, 204);
  expect_problem(call("GET", "/me", {}, maria_token), 401);
  EXPECT_TRUE(login("maria@example.org", "a long enough password").empty());
  EXPECT_EQ(json::parse(call("GET", maria_path, {}, admin_token).body)["is_active"], false);
}

TEST_F(AuthHttp, StaffAdministrationAndRoleChangesRevokeSessions) {
  start();
  auto created = call("POST", "/departments", R"({"code":"bld","name":"Building"})", admin_token);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(json::parse(created.body)["code"], "BLD");
  expect_problem(call("POST", "/departments", R"({"code":"BLD","name":"Again"})", admin_token), 409);
  expect_problem(call("POST", "/departments", R"({"code":"B L D","name":"Spaces"})", admin_token), 400);
  auto departments = json::parse(call("GET", "/departments").body);  // public
  EXPECT_EQ(departments["items"].size(), 1u);

  expect_problem(call("POST", "/employees",
                      R"({"email":"x@example.org","password":"staff password 1","name":"X","department_code":"NOPE"})",
                      admin_token),
                 422);
  auto renamed = call("PATCH", "/departments/bld", R"({"name":"Building and Planning"})", admin_token);
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(json::parse(renamed.body)["name"], "Building and Planning");
  expect_problem(call("PATCH", "/departments/NOPE", R"({"name":"x"})", admin_token), 404);

  auto id = create_employee("rita@example.org", "BLD", {"permits_reviewer"});
  auto other = create_employee("pat@example.org", "BLD", {"parks_staff"});
  auto rita = login("rita@example.org", "staff password 1");
  EXPECT_EQ(call("GET", "/employees/" + std::to_string(id), {}, rita).status, 200);  // self
  expect_problem(call("GET", "/employees/" + std::to_string(other), {}, rita), 403);
  auto seen = call("GET", "/employees/" + std::to_string(other), {}, admin_token);
  ASSERT_EQ(seen.status, 200);
  EXPECT_EQ(json::parse(seen.body)["roles"], json({"parks_staff"}));
  register_citizen("maria@example.org");
  expect_problem(
      call("GET", "/employees/" + std::to_string(id), {}, login("maria@example.org", "a long enough password")), 404);
  auto me = json::parse(call("GET", "/me", {}, rita).body);
  EXPECT_EQ(me["department"], "BLD");
  EXPECT_EQ(me["kind"], "employee");

  auto roles_path = "/employees/" + std::to_string(id) + "/roles";
  expect_problem(call("POST", roles_path, R"({"roles":["emperor"]})", admin_token), 422);
  expect_problem(call("POST", roles_path, R"({"roles":"admin"})", admin_token), 400);
  expect_problem(call("POST", roles_path, R"({"roles":["admin"]})", rita), 403);
  auto changed = call("POST", roles_path, R"({"roles":["revenue_clerk"]})", admin_token);
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(json::parse(changed.body)["roles"], json({"revenue_clerk"}));
  expect_problem(call("GET", "/me", {}, rita), 401);  // revoked with the role change
  rita = login("rita@example.org", "staff password 1");
  EXPECT_EQ(json::parse(call("GET", "/me", {}, rita).body)["roles"], json({"revenue_clerk"}));
}

// --- passwords (issue 27 §7) ------------------------------------------------------------

std::string password_body(const std::string& current, const std::string& next) {
  return json{{"current_password", current}, {"new_password", next}}.dump();
}

std::string confirm_body(const std::string& token, const std::string& password) {
  return json{{"token", token}, {"new_password", password}}.dump();
}

// Every byte of the files in `dir` (auth.db with its -wal and -shm, the other modules').
std::string bytes_of_files(const std::filesystem::path& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    all += bytes.str();
  }
  return all;
}

TEST_F(AuthHttp, ChangingThePasswordKeepsThisSessionAndEndsTheOthers) {
  start();
  register_citizen("maria@example.org");
  auto current = login("maria@example.org", "a long enough password");
  auto other = login("maria@example.org", "a long enough password");
  ASSERT_EQ(call("GET", "/me", {}, other).status, 200);

  expect_problem(call("POST", "/password", password_body("a long enough password", "a brand new password")), 401);
  auto wrong = call("POST", "/password", password_body("not her password", "a brand new password"), current);
  expect_problem(wrong, 400);
  EXPECT_NE(wrong.body.find("current_password"), std::string::npos) << wrong.body;
  expect_problem(call("POST", "/password", password_body("a long enough password", "short"), current), 400);
  expect_problem(call("POST", "/password", R"({"current_password":"a long enough password"})", current), 400);
  EXPECT_EQ(call("GET", "/me", {}, other).status, 200);  // nothing changed yet

  auto changed = call("POST", "/password", password_body("a long enough password", "a brand new password"), current);
  ASSERT_EQ(changed.status, 204) << changed.body;
  EXPECT_EQ(call("GET", "/me", {}, current).status, 200);
  expect_problem(call("GET", "/me", {}, other), 401);
  EXPECT_TRUE(login("maria@example.org", "a long enough password").empty());
  EXPECT_FALSE(login("maria@example.org", "a brand new password").empty());

  // Staff change theirs the same way.
  create_employee("rita@example.org", "BLD", {"permits_reviewer"});
  auto rita = login("rita@example.org", "staff password 1");
  EXPECT_EQ(call("POST", "/password", password_body("staff password 1", "another staff password"), rita).status, 204);
  EXPECT_FALSE(login("rita@example.org", "another staff password").empty());
}

TEST_F(AuthHttp, AWrongCurrentPasswordIsThrottledLikeALogin) {
  start({{"login_throttle", {{"max_failures_per_account_and_ip", 3}, {"max_failures_per_ip", 100}}}});
  register_citizen("maria@example.org");
  auto token = login("maria@example.org", "a long enough password");
  for (int i = 0; i < 3; ++i)
    expect_problem(
        call("POST", "/password", password_body("guess " + std::to_string(i) + " guess", "a brand new one"), token),
        400);
  auto refused = call("POST", "/password", password_body("a long enough password", "a brand new one"), token);
  expect_problem(refused, 429);
  EXPECT_FALSE(refused.header("retry-after").empty());
  // The same count as login's: the right password does not sign in from here either.
  expect_problem(call("POST", "/login", R"({"email":"maria@example.org","password":"a long enough password"})"), 429);
}

TEST_F(AuthHttp, StaffIssueAResetTokenThatWorksOnceAndEndsEverySession) {
  start();
  auto maria = register_citizen("maria@example.org");
  auto first = login("maria@example.org", "a long enough password");
  auto second = login("maria@example.org", "a long enough password");
  create_employee("cleo@example.org", "OPS", {"clerk"});
  create_employee("rita@example.org", "BLD", {"permits_reviewer"});
  auto cleo = login("cleo@example.org", "staff password 1");
  auto rita = login("rita@example.org", "staff password 1");
  const std::string for_maria = R"({"email":"maria@example.org"})";

  expect_problem(call("POST", "/password-resets", for_maria), 401);
  expect_problem(call("POST", "/password-resets", for_maria, first), 403);  // not for oneself either
  expect_problem(call("POST", "/password-resets", for_maria, rita), 403);
  auto nobody = call("POST", "/password-resets", R"({"email":"nobody@example.org"})", cleo);
  expect_problem(nobody, 404);
  // An employee's account needs auth:admin; to a clerk it looks like no account at all.
  auto employee = call("POST", "/password-resets", R"({"email":"rita@example.org"})", cleo);
  expect_problem(employee, 404);
  EXPECT_EQ(json::parse(employee.body)["detail"], json::parse(nobody.body)["detail"]) << employee.body;
  auto issued = call("POST", "/password-resets", for_maria, cleo);
  ASSERT_EQ(issued.status, 201) << issued.body;
  auto token = json::parse(issued.body)["token"].get<std::string>();
  EXPECT_EQ(token.size(), 43u);
  EXPECT_EQ(call("GET", "/me", {}, first).status, 200);  // issuing ends nothing

  EXPECT_EQ(call("POST", "/password-resets/confirm", confirm_body(token, "a reset password 1")).status, 204);
  expect_problem(call("GET", "/me", {}, first), 401);
  expect_problem(call("GET", "/me", {}, second), 401);
  EXPECT_TRUE(login("maria@example.org", "a long enough password").empty());
  EXPECT_FALSE(login("maria@example.org", "a reset password 1").empty());
  expect_problem(call("POST", "/password-resets/confirm", confirm_body(token, "a reset password 2")), 400);
  EXPECT_TRUE(login("maria@example.org", "a reset password 2").empty());

  // An employee's, by an admin.
  auto for_rita = call("POST", "/password-resets", R"({"email":"rita@example.org"})", admin_token);
  ASSERT_EQ(for_rita.status, 201) << for_rita.body;
  auto rita_token = json::parse(for_rita.body)["token"].get<std::string>();
  EXPECT_EQ(call("POST", "/password-resets/confirm", confirm_body(rita_token, "rita's new password")).status, 204);
  expect_problem(call("GET", "/me", {}, rita), 401);
  EXPECT_FALSE(login("rita@example.org", "rita's new password").empty());

  // Only hashes at rest, and the audit trail has who issued and who used, without secrets.
  auto files = bytes_of_files(dir.path());
  EXPECT_EQ(files.find(token), std::string::npos) << "a reset token in plain text in the data directory";
  EXPECT_EQ(files.find(rita_token), std::string::npos);
  SQLite::Database auth((dir.path() / "auth.db").string(), SQLite::OPEN_READONLY);
  auto count = [&](const std::string& sql) { return auth.execAndGet(sql).getInt64(); };
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.issued' AND subject = 'citizen:" +
                  std::to_string(maria) + "'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.used' AND subject = 'citizen:" +
                  std::to_string(maria) + "' AND detail LIKE '%\"sessions_ended\":2%'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action LIKE 'password.%'"), 4);
  EXPECT_EQ(count("SELECT count(*) FROM password_resets WHERE used_at IS NOT NULL"), 2);
}

TEST_F(AuthHttp, ConcurrentConfirmationsWithOneTokenSucceedOnce) {
  start();
  register_citizen("maria@example.org");
  auto issued = call("POST", "/password-resets", R"({"email":"maria@example.org"})", admin_token);
  ASSERT_EQ(issued.status, 201) << issued.body;
  auto token = json::parse(issued.body)["token"].get<std::string>();
  std::vector<int> statuses(4);
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < statuses.size(); ++i)
    clients.emplace_back([&, i] {
      statuses[i] =
          call("POST", "/password-resets/confirm", confirm_body(token, "new password " + std::to_string(i))).status;
    });
  for (auto& client : clients) client.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 204), 1);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 400), 3);
  int working = 0;
  for (std::size_t i = 0; i < statuses.size(); ++i)
    working += login("maria@example.org", "new password " + std::to_string(i)).empty() ? 0 : 1;
  EXPECT_EQ(working, 1);
}

TEST_F(AuthHttp, PublicResetFailuresAreOneBodyAndThrottledPerAddress) {
  start({{"login_throttle", {{"max_failures_per_account_and_ip", 4}, {"max_failures_per_ip", 100}}}});
  register_citizen("maria@example.org");
  auto issue = [&] {
    auto issued = call("POST", "/password-resets", R"({"email":"maria@example.org"})", admin_token);
    EXPECT_EQ(issued.status, 201) << issued.body;
    return issued.status == 201 ? json::parse(issued.body)["token"].get<std::string>() : std::string();
  };
  auto used = issue();
  ASSERT_EQ(call("POST", "/password-resets/confirm", confirm_body(used, "a reset password 1")).status, 204);
  auto expired = issue();
  {
    SQLite::Database auth((dir.path() / "auth.db").string(), SQLite::OPEN_READWRITE);
    auth.setBusyTimeout(5000);
    auth.exec("UPDATE password_resets SET expires_at = '2020-01-01T00:00:00.000Z' WHERE used_at IS NULL");
  }
  std::vector<HttpResponse> failures = {
      call("POST", "/password-resets/confirm", confirm_body("x", "another new password")),
      call("POST", "/password-resets/confirm",
           confirm_body("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "another new password")),
      call("POST", "/password-resets/confirm", confirm_body(used, "another new password")),
      call("POST", "/password-resets/confirm", confirm_body(expired, "another new password")),
  };
  for (const auto& failure : failures) {
    expect_problem(failure, 400);
    EXPECT_EQ(failure.body, failures[0].body);
  }
  EXPECT_NE(failures[0].body.find("invalid, expired or already used"), std::string::npos) << failures[0].body;
  // Four failures from this address: it is refused now, whatever the token.
  auto refused = call("POST", "/password-resets/confirm", confirm_body(issue(), "another new password"));
  expect_problem(refused, 429);
  EXPECT_FALSE(refused.header("retry-after").empty());
  EXPECT_FALSE(login("maria@example.org", "a reset password 1").empty());  // unchanged by all of it
}

TEST_F(AuthHttp, AResetRequestAnswersAlikeForKnownAndUnknownEmails) {
  start({{"login_throttle", {{"max_failures_per_account_and_ip", 2}, {"max_failures_per_ip", 100}}}});
  register_citizen("maria@example.org");
  auto request = [&](const std::string& email) {
    return call("POST", "/password-resets/request", json{{"email", email}}.dump());
  };
  auto known = request("maria@example.org");
  auto unknown = request("nobody@example.org");
  ASSERT_EQ(known.status, 202) << known.body;
  EXPECT_EQ(unknown.status, 202) << unknown.body;
  EXPECT_EQ(known.body, unknown.body);
  EXPECT_EQ(known.header("content-type"), unknown.header("content-type"));
  expect_problem(request("not an email"), 400);
  expect_problem(call("POST", "/password-resets/request", "{}"), 400);
  // Every request counts, known or not: the third for an email from this address is 429.
  for (const auto* email : {"maria@example.org", "nobody@example.org"}) {
    EXPECT_EQ(request(email).status, 202);
    auto refused = request(email);
    expect_problem(refused, 429);
    EXPECT_FALSE(refused.header("retry-after").empty());
  }
  // The owner's password and sessions are untouched; both requests are in the audit.
  EXPECT_FALSE(login("maria@example.org", "a long enough password").empty());
  SQLite::Database auth((dir.path() / "auth.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(auth.execAndGet("SELECT count(*) FROM audit_log WHERE action = 'password.reset.requested'").getInt64(), 4);
  // One live token for the known account (the newest request's, for the mailer), none for
  // the unknown email.
  EXPECT_EQ(auth.execAndGet("SELECT count(*) FROM password_resets WHERE used_at IS NULL").getInt64(), 1);
}

// With the real binary: national ids appear in no other module's file, not in plain
// text in auth.db, and in no log line (access log on, debug level).
TEST(AuthSensitiveData, NationalIdsStayEncryptedAndOutOfLogs) {
  TempDir dir;
  auto config_file = dir.path() / "townhall.json";
  {
    auto registry = json::parse(app::default_registry());
    registry["logging"] = {{"level", "debug"}, {"access_log", "json"}};
    registry["server"]["rate_limit"]["enabled"] = false;
    std::ofstream(config_file) << registry.dump(2);
  }
  auto data = dir.path() / "data";
  testing::ChildProcess child(
      {TOWNHALL_BINARY, "serve", "--port", "0", "--config", config_file.string(), "--data-dir", data.string()}, {},
      /*capture_stderr=*/true);
  auto port = testing::wait_for_port(child);
  ASSERT_NE(port, 0) << child.output();
  const std::vector<std::string> ids = {"NID-7391-AAQ", "NID-1177-BBR", "NID-9021-CCS"};
  std::string token;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    json body = {{"email", "c" + std::to_string(i) + "@example.org"},
                 {"password", "a long enough password"},
                 {"name", "C" + std::to_string(i)},
                 {"national_id", ids[i]}};
    auto response = testing::http_request(port, "POST", "/api/v1/auth/register", body.dump());
    ASSERT_EQ(response.status, 201) << response.body;
    EXPECT_EQ(response.body.find(ids[i]), std::string::npos);
  }
  auto login = testing::http_request(port, "POST", "/api/v1/auth/login",
                                     R"({"email":"c0@example.org","password":"a long enough password"})");
  ASSERT_EQ(login.status, 200);
  token = json::parse(login.body)["token"];
  auto patch = testing::http_request(port, "PATCH", "/api/v1/auth/citizens/1", R"({"national_id":"NID-0000-NEW"})",
                                     {"Authorization: Bearer " + token});
  ASSERT_EQ(patch.status, 200) << patch.body;
  child.signal(SIGTERM);
  ASSERT_EQ(child.wait_exit(), 0);

  auto all_ids = ids;
  all_ids.push_back("NID-0000-NEW");
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    for (const auto& id : all_ids) EXPECT_EQ(bytes.str().find(id), std::string::npos) << id << " in " << entry.path();
  }
  EXPECT_GE(files, 4);
  EXPECT_NE(child.output().find("citizen 1 registered"), std::string::npos);  // the log was captured
  for (const auto& id : all_ids) EXPECT_EQ(child.output().find(id), std::string::npos) << id << " in the log";
}

// `townhall admin reset-password` prints a token that sets the password once; beside a
// running server it names the route instead.
TEST(AuthCli, ResetPasswordPrintsAWorkingToken) {
  TempDir dir;
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), TOWNHALL_BINARY);
    testing::ChildProcess child(std::move(args), {}, true);
    auto code = child.wait_exit();
    return std::pair{code.value_or(-1), child.output()};
  };
  auto data = dir.path().string();
  ASSERT_EQ(run({"migrate", "--init", "--data-dir", data}).first, 0);
  ASSERT_EQ(run({"admin", "create-user", "--email", "boss@example.org", "--password", "boss password 1", "--name",
                 "Boss", "--role", "admin", "--data-dir", data})
                .first,
            0);
  EXPECT_EQ(run({"admin", "reset-password", "--data-dir", data}).first, 2);
  EXPECT_EQ(run({"admin", "reset-password", "--email", "nobody@example.org", "--data-dir", data}).first, 2);
  auto [code, output] = run({"admin", "reset-password", "--email", "Boss@example.org", "--data-dir", data});
  ASSERT_EQ(code, 0) << output;
  std::string token;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);)
    if (line.size() == 43 && line.find(' ') == std::string::npos) token = line;
  ASSERT_EQ(token.size(), 43u) << output;
  EXPECT_NE(output.find("employee:1"), std::string::npos) << output;

  testing::ChildProcess server({TOWNHALL_BINARY, "serve", "--port", "0", "--data-dir", data});
  auto port = testing::wait_for_port(server);
  ASSERT_NE(port, 0) << server.output();
  auto beside = run({"admin", "reset-password", "--email", "boss@example.org", "--data-dir", data});
  EXPECT_EQ(beside.first, 1) << beside.second;
  EXPECT_NE(beside.second.find("POST"), std::string::npos) << beside.second;
  EXPECT_NE(beside.second.find("/api/v1/auth/password-resets"), std::string::npos) << beside.second;
  auto confirmed = testing::http_request(port, "POST", "/api/v1/auth/password-resets/confirm",
                                         json{{"token", token}, {"new_password", "the boss's new password"}}.dump());
  EXPECT_EQ(confirmed.status, 204) << confirmed.body;
  EXPECT_EQ(testing::http_request(port, "POST", "/api/v1/auth/login",
                                  R"({"email":"boss@example.org","password":"the boss's new password"})")
                .status,
            200);
  EXPECT_EQ(testing::http_request(port, "POST", "/api/v1/auth/password-resets/confirm",
                                  json{{"token", token}, {"new_password", "yet another password"}}.dump())
                .status,
            400);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0);
}

// `townhall admin create-user`, then `serve --demo` printing its credentials once.
TEST(AuthCli, CreateUserAndDemoSeed) {
  TempDir dir;
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), TOWNHALL_BINARY);
    testing::ChildProcess child(std::move(args), {}, true);
    auto code = child.wait_exit();
    return std::pair{code.value_or(-1), child.output()};
  };
  auto data = dir.path().string();
  ASSERT_EQ(run({"migrate", "--init", "--data-dir", data}).first, 0);
  auto [code, output] = run({"admin", "create-user", "--email", "boss@example.org", "--password", "boss password 1",
                             "--name", "Boss", "--role", "admin", "--department", "ops", "--data-dir", data});
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("created department OPS"), std::string::npos) << output;
  auto again = run({"admin", "create-user", "--email", "boss@example.org", "--password", "boss password 1", "--name",
                    "Boss", "--role", "admin", "--data-dir", data});
  EXPECT_EQ(again.first, 2) << again.second;
  EXPECT_EQ(run({"admin", "create-user", "--email", "x@example.org", "--data-dir", data}).first, 2);

  testing::ChildProcess server({TOWNHALL_BINARY, "serve", "--demo", "--port", "0", "--data-dir", data});
  auto line = server.wait_for_line("admin@demo.townhall");
  ASSERT_TRUE(line) << server.output();
  auto password = line->substr(line->rfind(' ') + 1);
  auto desk_line = server.wait_for_line("desk@demo.townhall");  // the front desk (the portal's README table)
  ASSERT_TRUE(desk_line) << server.output();
  auto port = testing::wait_for_port(server);
  ASSERT_NE(port, 0);
  auto demo_login = testing::http_request(port, "POST", "/api/v1/auth/login",
                                          json{{"email", "admin@demo.townhall"}, {"password", password}}.dump());
  EXPECT_EQ(demo_login.status, 200) << demo_login.body;
  auto desk_login = testing::http_request(
      port, "POST", "/api/v1/auth/login",
      json{{"email", "desk@demo.townhall"}, {"password", desk_line->substr(desk_line->rfind(' ') + 1)}}.dump());
  ASSERT_EQ(desk_login.status, 200) << desk_login.body;
  EXPECT_EQ(json::parse(desk_login.body)["principal"]["roles"], json({"clerk"}));
  auto boss_login = testing::http_request(port, "POST", "/api/v1/auth/login",
                                          R"({"email":"boss@example.org","password":"boss password 1"})");
  EXPECT_EQ(boss_login.status, 200) << boss_login.body;
  auto citizens =
      testing::http_request(port, "GET", "/api/v1/auth/citizens", {},
                            {"Authorization: Bearer " + json::parse(boss_login.body)["token"].get<std::string>()});
  EXPECT_EQ(json::parse(citizens.body)["items"].size(), 3u);
  // Revenue shows its part: an open invoice and a tax record (issue 11).
  auto boss = "Authorization: Bearer " + json::parse(boss_login.body)["token"].get<std::string>();
  auto invoices =
      json::parse(testing::http_request(port, "GET", "/api/v1/revenue/invoices?status=open", {}, {boss}).body);
  EXPECT_EQ(invoices["items"].size(), 1u) << invoices.dump();
  EXPECT_EQ(testing::http_request(port, "GET", "/api/v1/revenue/tax-records/1", {}, {boss}).status, 200);
  // Parks shows two facilities, one free and one priced, and a program (issue 12).
  auto facilities = json::parse(testing::http_request(port, "GET", "/api/v1/parks/facilities").body);
  ASSERT_EQ(facilities["items"].size(), 2u) << facilities.dump();
  EXPECT_EQ(facilities["items"][0]["hourly_price_cents"], 0);
  EXPECT_GT(facilities["items"][1]["hourly_price_cents"].get<std::int64_t>(), 0);
  EXPECT_EQ(json::parse(testing::http_request(port, "GET", "/api/v1/parks/programs").body)["items"].size(), 1u);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0);

  // A second demo start does not seed again, nor print passwords.
  testing::ChildProcess second({TOWNHALL_BINARY, "serve", "--demo", "--port", "0", "--data-dir", data});
  ASSERT_TRUE(second.wait_for_line("demo data already present")) << second.output();
  auto second_port = testing::wait_for_port(second);
  ASSERT_NE(second_port, 0);  // signal handlers are in place from here
  EXPECT_EQ(second.output().find("password:"), std::string::npos);
  auto again_login = testing::http_request(second_port, "POST", "/api/v1/auth/login",
                                           R"({"email":"boss@example.org","password":"boss password 1"})");
  auto again_boss = "Authorization: Bearer " + json::parse(again_login.body)["token"].get<std::string>();
  EXPECT_EQ(
      json::parse(testing::http_request(second_port, "GET", "/api/v1/revenue/invoices", {}, {again_boss}).body)["items"]
          .size(),
      1u);  // not seeded twice
  second.signal(SIGTERM);
  EXPECT_EQ(second.wait_exit(), 0);
}

}  // namespace
}  // namespace townhall
