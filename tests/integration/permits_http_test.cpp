// The permits module against the real server: the zero-fee path end to end, inspections,
// cache convergence from auth's events, the row-level rule, and bad input.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::HttpResponse;

// A time `days` from now, as a client would send it.
std::string days_from_now(int days) {
  return utc::format(std::chrono::system_clock::now() + std::chrono::hours(24 * days));
}

class PermitsHttp : public ::testing::Test {
 protected:
  virtual void configure(config::Config&) {}

  void SetUp() override {
    auto config = testing::test_config(dir.path());
    configure(config);
    for (const auto& [email, role, department] :
         std::vector<std::array<std::string, 3>>{{"admin@example.org", "admin", ""},
                                                 {"rita@example.org", "permits_reviewer", "BLD"},
                                                 {"pete@example.org", "permits_reviewer", "PRK"},
                                                 {"pat@example.org", "parks_staff", "PRK"}}) {
      auto created = app::create_staff_user(
          config, auth::StaffUser{email, "staff password 1", "Staff", role,
                                  department.empty() ? std::nullopt : std::optional<std::string>(department)});
      ASSERT_TRUE(created) << created.error().message;
    }
    server = std::make_unique<testing::TestServer>(std::move(config));
    admin = login("admin@example.org", "staff password 1");
    rita = login("rita@example.org", "staff password 1");
    pete = login("pete@example.org", "staff password 1");
    pat = login("pat@example.org", "staff password 1");
    ASSERT_FALSE(admin.empty() || rita.empty() || pete.empty() || pat.empty());
  }

  std::string login(const std::string& email, const std::string& password) {
    return testing::login(server->port(), email, password);
  }
  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& token = {}) {
    return testing::call(server->port(), method, path, body, token);
  }
  json body_of(const HttpResponse& response) { return json::parse(response.body, nullptr, false); }

  // A citizen with a verified identity (by the admin), signed in.
  std::pair<std::int64_t, std::string> verified_citizen(const std::string& email) {
    auto registered = call("POST", "/api/v1/auth/register",
                           json{{"email", email},
                                {"password", "a long enough password"},
                                {"name", "Citizen " + email},
                                {"phone", "+1-555-0100"}}
                               .dump());
    EXPECT_EQ(registered.status, 201) << registered.body;
    auto id = body_of(registered)["id"].get<std::int64_t>();
    auto verified =
        call("PATCH", "/api/v1/auth/citizens/" + std::to_string(id), R"({"identity_verified":true})", admin);
    EXPECT_EQ(verified.status, 200) << verified.body;
    return {id, login(email, "a long enough password")};
  }

  // Waits until permits has applied everything auth has published (caches are current).
  void wait_for_caches() {
    ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  }

  HttpResponse submit(const std::string& token, const std::string& type, const std::string& department = "BLD") {
    return call("POST", "/api/v1/permits/applications",
                json{{"permit_type", type},
                     {"description", "New fence\nalong the north side"},
                     {"property_address", "12 Elm Street"},
                     {"department_code", department}}
                    .dump(),
                token);
  }

  static void expect_problem(const HttpResponse& response, int status, const std::string& detail = {}) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_EQ(response.header("content-type"), "application/problem+json") << response.body;
    if (!detail.empty()) {
      EXPECT_NE(response.body.find(detail), std::string::npos) << response.body;
    }
  }

  testing::TempDir dir;
  std::unique_ptr<testing::TestServer> server;
  std::string admin, rita, pete, pat;
};

TEST_F(PermitsHttp, ZeroFeeApplicationEndToEnd) {
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  auto submitted = submit(token, "fence");
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  auto application = body_of(submitted);
  EXPECT_EQ(application["status"], "under_review");  // zero fee: straight to review
  EXPECT_EQ(application["fee_cents"], 0);
  EXPECT_EQ(application["citizen_id"], maria);
  EXPECT_EQ(application["applicant"]["name"], "Citizen maria@example.org");
  EXPECT_EQ(application["applicant"]["phone"], "+1-555-0100");
  EXPECT_TRUE(application["applicant"]["synced_at"].is_string());
  auto path = "/api/v1/permits/applications/" + std::to_string(application["id"].get<std::int64_t>());

  expect_problem(call("POST", path + "/decision", R"({"decision":"approve"})", token), 403);  // not staff
  auto approved = call("POST", path + "/decision", R"({"decision":"approve","reason":"complete"})", rita);
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(body_of(approved)["status"], "approved");
  auto permit_id = body_of(approved)["permit_id"];
  ASSERT_TRUE(permit_id.is_number());
  auto permit = call("GET", "/api/v1/permits/permits/" + std::to_string(permit_id.get<std::int64_t>()), {}, token);
  ASSERT_EQ(permit.status, 200) << permit.body;
  EXPECT_EQ(body_of(permit)["status"], "active");
  EXPECT_EQ(body_of(permit)["permit_type"], "fence");

  // A decided application takes no further decision (409 naming its state).
  expect_problem(call("POST", path + "/decision", R"({"decision":"reject","reason":"late"})", rita), 409,
                 "is approved");
  auto permit_path = "/api/v1/permits/permits/" + std::to_string(permit_id.get<std::int64_t>());
  expect_problem(call("POST", permit_path + "/revoke", R"({"reason":"x"})", token), 403);
  auto revoked = call("POST", permit_path + "/revoke", R"({"reason":"built too high"})", rita);
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(body_of(revoked)["status"], "revoked");
  expect_problem(call("POST", permit_path + "/revoke", R"({"reason":"again"})", rita), 409);
}

TEST_F(PermitsHttp, UnverifiedApplicantsAreNotIssuedPermits) {
  auto registered = call("POST", "/api/v1/auth/register",
                         R"({"email":"li@example.org","password":"a long enough password","name":"Li"})");
  ASSERT_EQ(registered.status, 201);
  auto token = login("li@example.org", "a long enough password");
  wait_for_caches();
  auto id = body_of(submit(token, "fence"))["id"].get<std::int64_t>();
  expect_problem(call("POST", "/api/v1/permits/applications/" + std::to_string(id) + "/decision",
                      R"({"decision":"approve"})", rita),
                 422, "not verified");
}

// A verified citizen who changes their name or national id is no longer verified, in
// the same event, so a reviewer cannot issue a permit to the new identity until staff
// verify it again; another citizen's verified national id is accepted as a claim (no
// oracle, issue 28.2) but cannot be verified a second time.
TEST_F(PermitsHttp, AnIdentityChangeNeedsVerifyingAgainBeforeApproval) {
  auto [li, li_token] = verified_citizen("li@example.org");
  auto li_path = "/api/v1/auth/citizens/" + std::to_string(li);
  ASSERT_EQ(call("PATCH", li_path, R"({"national_id":"NID-42"})", li_token).status, 200);
  ASSERT_EQ(call("PATCH", li_path, R"({"identity_verified":true})", admin).status, 200);
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  auto id = body_of(submit(token, "fence"))["id"].get<std::int64_t>();
  auto citizen = "/api/v1/auth/citizens/" + std::to_string(maria);
  auto claimed = call("PATCH", citizen, R"({"national_id":"nid 42"})", token);
  ASSERT_EQ(claimed.status, 200) << claimed.body;
  EXPECT_EQ(body_of(claimed)["identity_verified"], false);
  expect_problem(call("PATCH", citizen, R"({"identity_verified":true})", admin), 409, "verified identity");

  auto changed = call("PATCH", citizen, R"({"name":"Li Wei","national_id":"NID-43"})", token);
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(body_of(changed)["identity_verified"], false);
  wait_for_caches();
  auto decision = "/api/v1/permits/applications/" + std::to_string(id) + "/decision";
  expect_problem(call("POST", decision, R"({"decision":"approve"})", rita), 422, "not verified");

  ASSERT_EQ(call("PATCH", citizen, R"({"identity_verified":true})", admin).status, 200);
  auto approved = call("POST", decision, R"({"decision":"approve"})", rita);
  ASSERT_EQ(approved.status, 200) << approved.body;
}

TEST_F(PermitsHttp, InspectionRequiredBeforeApproval) {
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  auto id = body_of(submit(token, "signage"))["id"].get<std::int64_t>();  // zero fee, inspection required
  auto decision = "/api/v1/permits/applications/" + std::to_string(id) + "/decision";
  expect_problem(call("POST", decision, R"({"decision":"approve"})", rita), 409, "passed inspection");

  // Times are RFC 3339, real calendar dates, in range and not in the past (400 naming the field).
  for (const char* bad : {"tomorrow", "9999-12-31T23:59:59Z", "2030-02-30T10:00:00Z", "2030-01-01T10:00:60Z",
                          "2020-01-01T10:00:00Z", "2030-01-01T10:00:00"})
    expect_problem(
        call("POST", "/api/v1/permits/inspections", json{{"application_id", id}, {"scheduled_for", bad}}.dump(), rita),
        400, "scheduled_for");
  expect_problem(call("POST", "/api/v1/permits/inspections",
                      json{{"application_id", id}, {"scheduled_for", days_from_now(9)}}.dump(), pete),
                 422);  // another department's application does not exist for pete
  auto scheduled = call("POST", "/api/v1/permits/inspections",
                        json{{"application_id", id}, {"scheduled_for", days_from_now(9)}}.dump(), rita);
  ASSERT_EQ(scheduled.status, 201) << scheduled.body;
  auto inspection = "/api/v1/permits/inspections/" + std::to_string(body_of(scheduled)["id"].get<std::int64_t>());
  expect_problem(call("POST", inspection + "/result", R"({"result":"maybe"})", rita), 400);
  auto failed = call("POST", inspection + "/result", R"({"result":"failed","notes":"sign too big"})", rita);
  ASSERT_EQ(failed.status, 200) << failed.body;
  expect_problem(call("POST", inspection + "/result", R"({"result":"passed"})", rita), 409, "already failed");
  expect_problem(call("POST", decision, R"({"decision":"approve"})", rita), 409, "passed inspection");

  auto second = call("POST", "/api/v1/permits/inspections",
                     json{{"application_id", id}, {"scheduled_for", days_from_now(10)}}.dump(), rita);
  ASSERT_EQ(second.status, 201);
  auto passed = call(
      "POST", "/api/v1/permits/inspections/" + std::to_string(body_of(second)["id"].get<std::int64_t>()) + "/result",
      R"({"result":"passed"})", rita);
  ASSERT_EQ(passed.status, 200);
  EXPECT_EQ(call("POST", decision, R"({"decision":"approve"})", rita).status, 200);

  // The application's inspections, oldest first, to its citizen and its department (issue 25).
  auto inspections = "/api/v1/permits/applications/" + std::to_string(id) + "/inspections";
  auto first = body_of(call("GET", inspections + "?page_size=1", {}, token));
  ASSERT_EQ(first["items"].size(), 1u) << first.dump();
  EXPECT_EQ(first["items"][0]["status"], "failed");
  EXPECT_EQ(first["items"][0]["notes"], "sign too big");
  auto rest = body_of(call("GET", inspections + "?cursor=" + first["next_cursor"].get<std::string>(), {}, token));
  ASSERT_EQ(rest["items"].size(), 1u) << rest.dump();
  EXPECT_EQ(rest["items"][0]["status"], "passed");
  EXPECT_EQ(body_of(call("GET", inspections, {}, rita))["items"].size(), 2u);
  expect_problem(call("GET", inspections, {}, pete), 404);  // another department's
}

TEST_F(PermitsHttp, FeeDueApplicationsWaitForPayment) {
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  auto submitted = body_of(submit(token, "renovation"));
  EXPECT_EQ(submitted["status"], "fee_due");
  EXPECT_EQ(submitted["fee_cents"], 5000);
  EXPECT_EQ(submitted["currency"], "USD");
  auto decision = "/api/v1/permits/applications/" + std::to_string(submitted["id"].get<std::int64_t>()) + "/decision";
  expect_problem(call("POST", decision, R"({"decision":"approve"})", rita), 409, "is fee_due");
  auto rejected = call("POST", decision, R"({"decision":"reject","reason":"withdrawn by phone"})", rita);
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  EXPECT_EQ(body_of(rejected)["status"], "rejected");
}

TEST_F(PermitsHttp, CitizenChangesReachTheApplicationThroughTheCache) {
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  auto id = body_of(submit(token, "fence"))["id"].get<std::int64_t>();
  auto path = "/api/v1/permits/applications/" + std::to_string(id);
  auto patched = call("PATCH", "/api/v1/auth/citizens/" + std::to_string(maria), R"({"phone":"+1-555-0199"})", token);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_TRUE(testing::wait_until([&] {
    return body_of(call("GET", path, {}, token))["applicant"]["phone"] == "+1-555-0199";
  })) << call("GET", path, {}, token).body;
  // A deleted citizen's contact data leaves the cache; the name stays for the record.
  ASSERT_EQ(call("DELETE", "/api/v1/auth/citizens/" + std::to_string(maria), {}, token).status, 204);
  EXPECT_TRUE(
      testing::wait_until([&] { return body_of(call("GET", path, {}, rita))["applicant"]["phone"].is_null(); }));
  EXPECT_EQ(body_of(call("GET", path, {}, rita))["applicant"]["name"], "Citizen maria@example.org");
  // And a permit is not issued to a closed account.
  expect_problem(call("POST", path + "/decision", R"({"decision":"approve"})", rita), 422, "closed");
}

TEST_F(PermitsHttp, StaffSeeOnlyTheirDepartmentAndCitizensOnlyTheirOwn) {
  auto [maria, maria_token] = verified_citizen("maria@example.org");
  auto [li, li_token] = verified_citizen("li@example.org");
  wait_for_caches();
  auto created = call("POST", "/api/v1/auth/departments", R"({"code":"PRK","name":"Parks"})", admin);
  ASSERT_TRUE(created.status == 201 || created.status == 409) << created.body;
  wait_for_caches();
  auto bld = body_of(submit(maria_token, "fence", "BLD"))["id"].get<std::int64_t>();
  auto prk = body_of(submit(li_token, "fence", "prk"))["id"].get<std::int64_t>();
  auto bld_path = "/api/v1/permits/applications/" + std::to_string(bld);

  // pete reviews PRK: BLD's application does not exist for him.
  auto petes = body_of(call("GET", "/api/v1/permits/applications", {}, pete));
  ASSERT_EQ(petes["items"].size(), 1u);
  EXPECT_EQ(petes["items"][0]["id"], prk);
  EXPECT_EQ(body_of(call("GET", "/api/v1/permits/applications?department_code=BLD", {}, pete))["items"].size(), 0u);
  expect_problem(call("GET", bld_path, {}, pete), 404);
  expect_problem(call("POST", bld_path + "/decision", R"({"decision":"approve"})", pete), 404);
  // rita reviews BLD; the admin sees everything; parks staff have no permits permission.
  EXPECT_EQ(body_of(call("GET", "/api/v1/permits/applications", {}, rita))["items"].size(), 1u);
  EXPECT_EQ(body_of(call("GET", "/api/v1/permits/applications", {}, admin))["items"].size(), 2u);
  expect_problem(call("GET", "/api/v1/permits/applications", {}, pat), 403);
  // Citizens: their own only.
  expect_problem(call("GET", bld_path, {}, li_token), 404);
  EXPECT_EQ(body_of(call("GET", "/api/v1/permits/applications", {}, li_token))["items"].size(), 1u);
  EXPECT_EQ(call("GET", bld_path, {}, maria_token).status, 200);
  EXPECT_EQ(body_of(call("GET", "/api/v1/permits/applications?status=approved", {}, admin))["items"].size(), 0u);
}

// Issue 24 §1: lists page by cursor. A walk while rows are added still returns every row
// that existed before it exactly once; a cursor is good only for its list and its caller,
// unaltered; the total is counted only when asked for.
TEST_F(PermitsHttp, ListsPageByACursorGoodOnlyForItsListAndCaller) {
  auto [maria, maria_token] = verified_citizen("maria@example.org");
  auto [li, li_token] = verified_citizen("li@example.org");
  wait_for_caches();
  std::set<std::int64_t> before;
  for (int i = 0; i < 23; ++i) {
    auto submitted = submit(maria_token, "fence");
    ASSERT_EQ(submitted.status, 201) << submitted.body;
    before.insert(body_of(submitted)["id"].get<std::int64_t>());
  }
  ASSERT_EQ(submit(li_token, "fence").status, 201);  // another citizen's: never in maria's pages

  std::vector<std::int64_t> walked;
  std::string path = "/api/v1/permits/applications?page_size=5";
  std::string first_cursor;
  for (int page = 0; page < 20; ++page) {
    auto answer = call("GET", path, {}, maria_token);
    ASSERT_EQ(answer.status, 200) << answer.body;
    auto body = body_of(answer);
    EXPECT_FALSE(body.contains("total"));
    EXPECT_LE(body["items"].size(), 5u);
    for (const auto& item : body["items"]) walked.push_back(item["id"].get<std::int64_t>());
    if (page == 0) {
      for (int i = 0; i < 3; ++i) ASSERT_EQ(submit(maria_token, "fence").status, 201);  // added mid-walk
    }
    if (body["next_cursor"].is_null()) break;
    if (first_cursor.empty()) first_cursor = body["next_cursor"].get<std::string>();
    path = "/api/v1/permits/applications?page_size=5&cursor=" + body["next_cursor"].get<std::string>();
  }
  std::set<std::int64_t> seen(walked.begin(), walked.end());
  EXPECT_EQ(seen.size(), walked.size()) << "a row was returned twice";
  for (auto id : before) EXPECT_EQ(seen.count(id), 1u) << "application " << id << " was skipped";
  EXPECT_TRUE(std::is_sorted(walked.rbegin(), walked.rend())) << "newest first";

  auto counted = body_of(call("GET", "/api/v1/permits/applications?include=total&page_size=1", {}, maria_token));
  EXPECT_EQ(counted["total"], 26);
  EXPECT_EQ(counted["items"].size(), 1u);

  // maria's cursor: li, an admin (another view), another list and an altered copy are refused.
  ASSERT_FALSE(first_cursor.empty());
  const std::string with_cursor = "/api/v1/permits/applications?cursor=" + first_cursor;
  EXPECT_EQ(call("GET", with_cursor, {}, maria_token).status, 200);
  expect_problem(call("GET", with_cursor, {}, li_token), 400, "cursor");
  expect_problem(call("GET", with_cursor, {}, admin), 400, "cursor");
  expect_problem(call("GET", "/api/v1/revenue/invoices?cursor=" + first_cursor, {}, maria_token), 400, "cursor");
  auto altered = first_cursor;
  altered[altered.size() / 2] = altered[altered.size() / 2] == 'A' ? 'B' : 'A';
  expect_problem(call("GET", "/api/v1/permits/applications?cursor=" + altered, {}, maria_token), 400, "cursor");
  expect_problem(call("GET", "/api/v1/permits/applications?cursor=%00%01", {}, maria_token), 400, "cursor");
  // Bounds and what page numbers became.
  expect_problem(call("GET", "/api/v1/permits/applications?page=2", {}, maria_token), 400, "next_cursor");
  expect_problem(call("GET", "/api/v1/permits/applications?page_size=0", {}, maria_token), 400, "page_size");
  expect_problem(call("GET", "/api/v1/permits/applications?page_size=101", {}, maria_token), 400, "page_size");
  expect_problem(call("GET", "/api/v1/permits/applications?include=everything", {}, maria_token), 400, "include");
  expect_problem(call("GET", "/api/v1/permits/applications?cursor=" + std::string(600, 'A'), {}, maria_token), 400,
                 "cursor");
}

// Issue 26.5 and 26.3 over HTTP: administrators change permit types (each change a
// version an application keeps), and a department's report as JSON and CSV.
TEST_F(PermitsHttp, PermitTypesAreDataAdministratorsVersionAndReportsCountThem) {
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  auto listed = call("GET", "/api/v1/permits/permit-types");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_GE(body_of(listed)["items"].size(), 4u) << "seeded from the registry";

  auto created = call("POST", "/api/v1/permits/permit-types",
                      R"({"permit_type":"pool","fee_cents":1000,"currency":"USD","inspection_required":true})", admin);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("location"), "/api/v1/permits/permit-types/pool");
  auto first = submit(token, "pool");
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(body_of(first)["fee_cents"], 1000);
  auto changed = call("PATCH", "/api/v1/permits/permit-types/pool", R"({"fee_cents":2500})", admin);
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(body_of(changed)["version"], 2);
  auto second = submit(token, "pool");
  EXPECT_EQ(body_of(second)["fee_cents"], 2500);
  auto again = call("GET", "/api/v1/permits/applications/" + std::to_string(body_of(first)["id"].get<std::int64_t>()),
                    {}, token);
  EXPECT_EQ(body_of(again)["fee_cents"], 1000) << "the first application keeps its fee";
  auto seen = body_of(call("GET", "/api/v1/permits/permit-types/pool"));
  EXPECT_EQ(seen["fee_cents"], 2500);
  EXPECT_FALSE(seen.contains("history"));
  EXPECT_EQ(body_of(call("GET", "/api/v1/permits/permit-types/pool", {}, admin))["history"].size(), 2u);

  expect_problem(call("POST", "/api/v1/permits/permit-types", R"({"permit_type":"pool","fee_cents":1})", admin), 409);
  expect_problem(call("POST", "/api/v1/permits/permit-types", R"({"permit_type":"Pool!","fee_cents":1})", admin), 400,
                 "permit_type");
  expect_problem(call("POST", "/api/v1/permits/permit-types", R"({"permit_type":"spa","fee_cents":-1})", admin), 400,
                 "fee_cents");
  expect_problem(call("POST", "/api/v1/permits/permit-types", R"({"permit_type":"spa","fee_cents":1e30})", admin), 400,
                 "fee_cents");
  expect_problem(call("PATCH", "/api/v1/permits/permit-types/pool", R"({"fee_cents":"ten"})", admin), 400);
  expect_problem(call("PATCH", "/api/v1/permits/permit-types/pool", R"({"currency":"dollars"})", admin), 400);
  expect_problem(call("PATCH", "/api/v1/permits/permit-types/nope", R"({"fee_cents":1})", admin), 404);
  expect_problem(call("PATCH", "/api/v1/permits/permit-types/pool", R"({"active":false})", rita), 403);
  ASSERT_EQ(call("PATCH", "/api/v1/permits/permit-types/pool", R"({"active":false})", admin).status, 200);
  expect_problem(submit(token, "pool"), 422, "unknown permit_type 'pool'");
  expect_problem(call("GET", "/api/v1/permits/permit-types/pool"), 404);

  ASSERT_EQ(submit(token, "fence", "PRK").status, 201);
  auto report = call("GET", "/api/v1/permits/reports/applications", {}, rita);
  ASSERT_EQ(report.status, 200) << report.body;
  auto rows = body_of(report)["rows"];
  ASSERT_EQ(rows.size(), 1u) << "rita sees BLD only: " << report.body;
  EXPECT_EQ(rows[0]["department_code"], "BLD");
  EXPECT_EQ(rows[0]["status"], "fee_due");
  EXPECT_EQ(rows[0]["applications"], 2);
  EXPECT_EQ(body_of(call("GET", "/api/v1/permits/reports/applications", {}, admin))["totals"]["applications"], 3);
  auto csv = testing::http_request(server->port(), "GET", "/api/v1/permits/reports/applications", {},
                                   {"Authorization: Bearer " + admin, "Accept: text/csv"});
  ASSERT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.header("content-type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv.body,
            "department_code,status,applications,median_hours_to_decision\r\n"
            "BLD,fee_due,2,\r\n"
            "PRK,under_review,1,\r\n");
  expect_problem(call("GET", "/api/v1/permits/reports/applications?department_code=PRK", {}, rita), 403);
  expect_problem(call("GET", "/api/v1/permits/reports/applications?from=2026-13-01", {}, admin), 400, "from");
  expect_problem(call("GET", "/api/v1/permits/reports/applications?from=1926-01-01&to=2026-01-01", {}, admin), 400,
                 "at most");
  expect_problem(call("GET", "/api/v1/permits/reports/applications", {}, token), 403);
}

TEST_F(PermitsHttp, BadInputGetsAClearProblem) {
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  const std::string apps = "/api/v1/permits/applications";
  expect_problem(call("POST", apps, "{", token), 400, "malformed JSON");
  expect_problem(
      call("POST", apps,
           R"({"permit_type":"fence","description":"d","property_address":"a","department_code":"BLD","x":1})", token),
      400, "unknown field 'x'");
  expect_problem(call("POST", apps,
                      R"({"permit_type":7,"description":"d","property_address":"a","department_code":"BLD"})", token),
                 400, "permit_type");
  expect_problem(call("POST", apps, R"({"permit_type":"fence","description":"d","department_code":"BLD"})", token), 400,
                 "property_address");
  expect_problem(call("POST", apps,
                      json{{"permit_type", "fence"},
                           {"description", std::string(3000, 'd')},
                           {"property_address", "a"},
                           {"department_code", "BLD"}}
                          .dump(),
                      token),
                 400, "at most 2000 bytes");
  expect_problem(submit(token, "castle"), 422, "unknown permit_type");
  expect_problem(submit(token, "fence", "NOPE"), 422, "unknown department_code");
  expect_problem(submit(rita, "fence"), 403);  // staff do not apply
  expect_problem(call("GET", apps + "?page_size=10000", {}, token), 400, "page_size");
  expect_problem(call("GET", apps + "?status=dancing", {}, token), 400, "status");
  expect_problem(call("GET", apps + "/abc", {}, token), 404);
  expect_problem(call("GET", apps + "/999999", {}, token), 404);
  auto id = body_of(submit(token, "fence"))["id"].get<std::int64_t>();
  auto decision = apps + "/" + std::to_string(id) + "/decision";
  expect_problem(call("POST", decision, R"({"decision":"maybe"})", rita), 400, "approve");
  expect_problem(call("POST", decision, R"({"decision":"reject"})", rita), 400, "reason");
  expect_problem(call("POST", decision, R"({"decision":"approve","reason":17})", rita), 400, "reason");
  expect_problem(call("POST", decision, R"({"decision":"approve"})"), 401);
  // An injection string is data.
  auto odd = call("POST", apps,
                  json{{"permit_type", "fence"},
                       {"description", "'); DELETE FROM applications;--"},
                       {"property_address", "Ñandú 😀"},
                       {"department_code", "bld"}}
                      .dump(),
                  token);
  ASSERT_EQ(odd.status, 201) << odd.body;
  EXPECT_EQ(body_of(odd)["description"], "'); DELETE FROM applications;--");
  EXPECT_EQ(body_of(call("GET", apps, {}, token))["items"].size(), 2u);
}

// auth's file breaks while the server runs: approval falls back to a fresh citizen_refs
// row (the reviewer's token is still in the cache), or answers 503 once that row is too old.
class PermitsWithBrokenAuth : public PermitsHttp {
 protected:
  void configure(config::Config& config) override {
    for (auto& module : config.modules) {
      if (module.name == "auth") module.settings["token_cache_ttl_ms"] = 60000;
      if (module.name == "permits") module.settings["identity_fallback_max_age_seconds"] = max_age;
    }
  }
  void break_auth_file() {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      auto path = dir.path() / (std::string("auth.db") + suffix);
      if (!std::filesystem::exists(path)) continue;
      auto size = std::filesystem::file_size(path);
      std::ofstream out(path, std::ios::binary | std::ios::in | std::ios::out);
      out << std::string(size, '\x5a');
    }
  }
  int max_age = 300;
};

TEST_F(PermitsWithBrokenAuth, ApprovalUsesAFreshCacheRowWhenAuthCannotRead) {
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  auto id = body_of(submit(token, "fence"))["id"].get<std::int64_t>();
  ASSERT_EQ(call("GET", "/api/v1/auth/me", {}, rita).status, 200);   // rita's token is cached now
  ASSERT_EQ(call("GET", "/api/v1/auth/me", {}, admin).status, 200);  // and the admin's
  break_auth_file();
  expect_problem(call("GET", "/api/v1/auth/citizens/" + std::to_string(maria), {}, admin), 503);
  auto ready = call("GET", "/readyz");  // the failed read marks auth down
  EXPECT_EQ(ready.status, 200);         // the others still serve
  EXPECT_EQ(body_of(ready)["status"], "degraded");
  EXPECT_EQ(body_of(ready)["modules"]["auth"]["state"], "down") << ready.body;
  EXPECT_EQ(body_of(ready)["modules"]["permits"]["state"], "up") << ready.body;
  auto approved = call("POST", "/api/v1/permits/applications/" + std::to_string(id) + "/decision",
                       R"({"decision":"approve"})", rita);
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(body_of(approved)["status"], "approved");
}

class PermitsWithBrokenAuthAndStaleCache : public PermitsWithBrokenAuth {
 protected:
  PermitsWithBrokenAuthAndStaleCache() { max_age = 0; }
};

TEST_F(PermitsWithBrokenAuthAndStaleCache, ApprovalAnswers503) {
  auto [maria, token] = verified_citizen("maria@example.org");
  wait_for_caches();
  auto id = body_of(submit(token, "fence"))["id"].get<std::int64_t>();
  ASSERT_EQ(call("GET", "/api/v1/auth/me", {}, rita).status, 200);
  break_auth_file();
  auto path = "/api/v1/permits/applications/" + std::to_string(id);
  auto refused = call("POST", path + "/decision", R"({"decision":"approve"})", rita);
  expect_problem(refused, 503, "auth module is unavailable");
  EXPECT_FALSE(refused.header("retry-after").empty());
  EXPECT_EQ(body_of(call("GET", path, {}, rita))["status"], "under_review");
}

// Issue 10.4 end to end: permits' caches are new (or lost) and auth's outbox was pruned
// long ago: they bootstrap from auth::Api (citizens_since, departments) and converge.
TEST(PermitsBootstrap, CachesBehindAPrunedOutboxConvergeFromAuthsApi) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  {
    testing::TestServer server(config);
    for (const auto& email : {"a@example.org", "b@example.org", "c@example.org"}) {
      auto registered =
          testing::call(server.port(), "POST", "/api/v1/auth/register",
                        json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump());
      ASSERT_EQ(registered.status, 201) << registered.body;
    }
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"admin@example.org", "staff password 1", "Admin", "admin", std::string("BLD")}));
    ASSERT_TRUE(testing::wait_until([&] { return server.app().bus().caught_up(); }));
  }
  {
    // Pruned (all but the newest event), and permits' caches and cursors gone.
    SQLite::Database auth((dir.path() / "auth.db").string(), SQLite::OPEN_READWRITE);
    auth.exec("DELETE FROM outbox WHERE id < (SELECT max(id) FROM outbox)");
    SQLite::Database permits((dir.path() / "permits.db").string(), SQLite::OPEN_READWRITE);
    permits.exec(
        "DELETE FROM citizen_refs; DELETE FROM department_refs; DELETE FROM bus_cursors; "
        "DELETE FROM processed_ranges");
  }
  testing::TestServer server(config);
  ASSERT_TRUE(testing::wait_until([&] { return server.app().bus().caught_up(); }));
  SQLite::Database permits((dir.path() / "permits.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(permits.execAndGet("SELECT count(*) FROM citizen_refs").getInt(), 3);
  EXPECT_EQ(permits.execAndGet("SELECT count(*) FROM department_refs WHERE code = 'BLD'").getInt(), 1);
  auto metrics = server.get("/metrics").body;
  EXPECT_NE(metrics.find("townhall_bus_bootstraps_total{module=\"permits\",subscription=\"citizen_refs\"} 1"),
            std::string::npos);
  // The operator sees it per feed too.
  auto admin = testing::login(server.port(), "admin@example.org", "staff password 1");
  auto feeds = json::parse(testing::call(server.port(), "GET", "/admin/bus", {}, admin).body)["feeds"];
  bool seen = false;
  for (const auto& feed : feeds)
    if (feed["consumer"] == "permits" && feed["subscription"] == "citizen_refs") seen = feed["bootstraps"] == 1;
  EXPECT_TRUE(seen) << feeds.dump();
}

TEST(PermitsRegistry, TopicsTheCodeConsumesMustBeInTheRegistry) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  for (auto& module : config.modules)
    if (module.name == "permits") module.subscriptions = {{"gov.auth.citizen"}, {"gov.revenue.payment"}};
  try {
    app::Application application(std::move(config), {.demo = false, .handle_signals = false});
    application.open();
    FAIL() << "a registry without gov.auth.department for permits was accepted";
  } catch (const config::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("modules.permits.subscriptions"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("gov.auth.department"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace townhall

namespace townhall {
namespace {

// The other way (issue 22 §1): a registry topic no module publishes (a typo) or one the
// module does not consume is refused at start, naming the key.
TEST(PermitsRegistry, ARegistryTopicNoModulePublishesOrTheModuleDoesNotConsumeIsRefused) {
  auto refused = [](std::vector<config::Subscription> subscriptions) -> std::string {
    testing::TempDir dir;
    auto config = testing::test_config(dir.path());
    for (auto& module : config.modules)
      if (module.name == "permits") module.subscriptions = std::move(subscriptions);
    try {
      app::Application application(std::move(config), {.demo = false, .handle_signals = false});
      application.open();
    } catch (const config::ConfigError& error) {
      return error.what();
    }
    return "accepted";
  };
  auto typo = refused({{"gov.auth.citizen"}, {"gov.auth.department"}, {"gov.revenue.paymnet"}});
  EXPECT_NE(typo.find("modules.permits.subscriptions[2].topic"), std::string::npos) << typo;
  EXPECT_NE(typo.find("no module of this registry publishes 'gov.revenue.paymnet'"), std::string::npos) << typo;
  auto unconsumed =
      refused({{"gov.auth.citizen"}, {"gov.auth.department"}, {"gov.revenue.payment"}, {"gov.parks.booking"}});
  EXPECT_NE(unconsumed.find("modules.permits.subscriptions[3].topic: the permits module does not consume "
                            "'gov.parks.booking'"),
            std::string::npos)
      << unconsumed;
  // A pattern covering what it consumes is fine.
  EXPECT_EQ(refused({{"gov.auth.*"}, {"gov.revenue.payment"}}), "accepted");
}

}  // namespace
}  // namespace townhall
