// Who may call what (issue 14, item 3; issue 11's authorization per route): every route
// the server registers has a row saying, for each kind of caller — anonymous, the owning
// citizen, another citizen, a permits reviewer of the resource's department, a revenue
// clerk, parks staff, the front-desk clerk, the admin — whether it gets in (any answer
// but 401/403/404) or which refusal it gets. A route added without a row fails the test,
// so nobody adds an endpoint without deciding who may use it.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "json_schema.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;

enum Actor { anonymous, owner, other_citizen, reviewer, revenue_clerk, parks_staff, front_desk, admin, kActors };
constexpr const char* kActorNames[] = {"anonymous",     "owner",       "other citizen", "permits reviewer",
                                       "revenue clerk", "parks staff", "front desk",    "admin"};
constexpr int in = 0;  // gets in: any answer but 401, 403, 404

struct Row {
  std::string method;
  std::string pattern;  // as registered
  std::array<int, kActors> expected;
  // The concrete request for an actor (path, body); by default the shared resources.
  std::function<std::pair<std::string, std::string>(Actor)> request;
};

class AuthorizationMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = testing::test_config(dir.path());
    for (const auto& [email, role, department] :
         std::vector<std::array<std::string, 3>>{{"admin@example.org", "admin", ""},
                                                 {"rita@example.org", "permits_reviewer", "BLD"},
                                                 {"rosa@example.org", "revenue_clerk", "FIN"},
                                                 {"pat@example.org", "parks_staff", "PRK"},
                                                 {"clara@example.org", "clerk", "OPS"},
                                                 {"temp@example.org", "parks_staff", "PRK"}}) {
      auto created = app::create_staff_user(
          config, auth::StaffUser{email, "staff password 1", "Staff", role,
                                  department.empty() ? std::nullopt : std::optional<std::string>(department)});
      ASSERT_TRUE(created) << created.error().message;
      if (email == "temp@example.org") temp_employee = created->id;
    }
    server = std::make_unique<testing::TestServer>(std::move(config));
    passwords[admin] = passwords[reviewer] = passwords[revenue_clerk] = passwords[parks_staff] = passwords[front_desk] =
        "staff password 1";
    emails[admin] = "admin@example.org";
    emails[reviewer] = "rita@example.org";
    emails[revenue_clerk] = "rosa@example.org";
    emails[parks_staff] = "pat@example.org";
    emails[front_desk] = "clara@example.org";
    maria = register_citizen("maria@example.org");
    other = register_citizen("other@example.org");
    emails[owner] = "maria@example.org";
    emails[other_citizen] = "other@example.org";
    passwords[owner] = passwords[other_citizen] = "a long enough password";
    for (int a = owner; a < kActors; ++a) tokens[a] = login(static_cast<Actor>(a));
    ASSERT_EQ(
        call("PATCH", "/api/v1/auth/citizens/" + std::to_string(maria), R"({"identity_verified":true})", tokens[admin])
            .status,
        200);
    ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));

    // Maria's resources: an application of each kind, a permit, an inspection, an
    // invoice, a tax record, a business license.
    application = submit("fence");
    fee_application = submit("renovation");
    auto approved = submit("fence");
    ASSERT_EQ(call("POST", "/api/v1/permits/applications/" + std::to_string(approved) + "/decision",
                   R"({"decision":"approve"})", tokens[admin])
                  .status,
              200);
    permit = json::parse(
        call("GET", "/api/v1/permits/applications/" + std::to_string(approved), {}, tokens[owner]).body)["permit_id"];
    auto scheduled =
        call("POST", "/api/v1/permits/inspections",
             json{{"application_id", application}, {"scheduled_for", "2027-06-01T09:00:00Z"}}.dump(), tokens[reviewer]);
    ASSERT_EQ(scheduled.status, 201) << scheduled.body;
    inspection = json::parse(scheduled.body)["id"];
    ASSERT_TRUE(testing::wait_until([&] {
      auto list = json::parse(call("GET", "/api/v1/revenue/invoices", {}, tokens[owner]).body);
      if (list["items"].size() != 1) return false;
      invoice = list["items"][0]["id"];
      return true;
    }));
    auto tax =
        call("POST", "/api/v1/revenue/tax-records",
             json{{"citizen_id", maria}, {"tax_year", 2025}, {"assessed_value_cents", 1}, {"tax_due_cents", 1}}.dump(),
             tokens[revenue_clerk]);
    ASSERT_EQ(tax.status, 201) << tax.body;
    tax_record = json::parse(tax.body)["id"];
    auto applied = call("POST", "/api/v1/revenue/business-licenses",
                        R"({"business_name":"Bakery","activity":"bread","address":"1 Main St"})", tokens[owner]);
    ASSERT_EQ(applied.status, 201) << applied.body;
    license = json::parse(applied.body)["id"];
    // A second one approved and its fee paid: only an active license can be renewed.
    auto second = call("POST", "/api/v1/revenue/business-licenses",
                       R"({"business_name":"Cafe","activity":"coffee","address":"3 Main St"})", tokens[owner]);
    ASSERT_EQ(second.status, 201) << second.body;
    active_license = json::parse(second.body)["id"];
    auto approved_license =
        call("POST", "/api/v1/revenue/business-licenses/" + std::to_string(active_license) + "/decision",
             R"({"decision":"approve"})", tokens[revenue_clerk]);
    ASSERT_EQ(approved_license.status, 200) << approved_license.body;
    auto fee = json{{"invoice_id", json::parse(approved_license.body)["fee_invoice_id"]},
                    {"amount_cents", 10000},
                    {"method", {{"type", "card"}, {"token", "tok_ok"}}}};
    auto fee_paid =
        call("POST", "/api/v1/revenue/payments", fee.dump(), tokens[owner], {"Idempotency-Key: license-fee"});
    ASSERT_EQ(fee_paid.status, 201) << fee_paid.body;
    payment = json::parse(fee_paid.body)["id"];  // completed: it has a receipt
    // A tax instalment paid: what the revenue clerk's refund row refunds.
    auto billed = call(
        "POST", "/api/v1/revenue/tax-records",
        json{{"citizen_id", maria},
             {"tax_year", 2023},
             {"assessed_value_cents", 100},
             {"tax_due_cents", 500},
             {"due_date", utc::format(std::chrono::system_clock::now() + std::chrono::hours(24 * 30)).substr(0, 10)}}
            .dump(),
        tokens[revenue_clerk]);
    ASSERT_EQ(billed.status, 201) << billed.body;
    auto instalment = json{{"invoice_id", json::parse(billed.body)["invoices"][0]["id"]},
                           {"amount_cents", 500},
                           {"method", {{"type", "card"}, {"token", "tok_ok"}}}};
    auto instalment_paid =
        call("POST", "/api/v1/revenue/payments", instalment.dump(), tokens[owner], {"Idempotency-Key: instalment"});
    ASSERT_EQ(instalment_paid.status, 201) << instalment_paid.body;
    refundable_payment = json::parse(instalment_paid.body)["id"];

    // Parks: a free facility open around the clock, Maria's booking, a program and her
    // enrollment.
    json all_day = json::object();
    for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
      all_day[day] = {{"open", "00:00"}, {"close", "24:00"}};
    auto created = call("POST", "/api/v1/parks/facilities",
                        json{{"name", "Field"},
                             {"kind", "field"},
                             {"capacity", 10},
                             {"hourly_price_cents", 0},
                             {"time_zone", "UTC"},
                             {"opening_hours", all_day}}
                            .dump(),
                        tokens[admin]);
    ASSERT_EQ(created.status, 201) << created.body;
    facility = json::parse(created.body)["id"];
    auto booked = call("POST", "/api/v1/parks/bookings", booking_body(10), tokens[owner]);
    ASSERT_EQ(booked.status, 201) << booked.body;
    booking = json::parse(booked.body)["id"];
    // One that has started, which parks staff may mark a no-show.
    auto started = call("POST", "/api/v1/parks/bookings", booking_body(11), tokens[owner]);
    ASSERT_EQ(started.status, 201) << started.body;
    started_booking = json::parse(started.body)["id"];
    {
      SQLite::Database parks_file((dir.path() / "parks.db").string(), SQLite::OPEN_READWRITE);
      parks_file.setBusyTimeout(5000);
      SQLite::Statement move(parks_file, "UPDATE bookings SET starts_at = ?, ends_at = ? WHERE id = ?");
      move.bind(1, utc::format(std::chrono::system_clock::now() - std::chrono::hours(2)));
      move.bind(2, utc::format(std::chrono::system_clock::now() - std::chrono::hours(1)));
      move.bind(3, started_booking);
      ASSERT_EQ(move.exec(), 1);
    }
    auto program_created =
        call("POST", "/api/v1/parks/programs", R"({"name":"Yoga","schedule":"Saturdays","capacity":5,"price_cents":0})",
             tokens[admin]);
    ASSERT_EQ(program_created.status, 201) << program_created.body;
    program = json::parse(program_created.body)["id"];
    auto enrolled =
        call("POST", "/api/v1/parks/programs/" + std::to_string(program) + "/enrollments", {}, tokens[owner]);
    ASSERT_EQ(enrolled.status, 201) << enrolled.body;
    enrollment = json::parse(enrolled.body)["id"];
    // notify: the licence fee's invoice and payment reach Maria's inbox.
    ASSERT_TRUE(testing::wait_until([&] {
      auto inbox = json::parse(call("GET", "/api/v1/notify/inbox", {}, tokens[owner]).body);
      if (!inbox.contains("items") || inbox["items"].empty()) return false;
      notice = inbox["items"][0]["id"];
      return true;
    }));
  }

  // A one-hour booking of the facility three days ahead, starting at `hour` UTC.
  std::string booking_body(int hour) {
    auto day = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()) + std::chrono::days(3);
    auto start = utc::format(day + std::chrono::hours(hour));
    auto end = utc::format(day + std::chrono::hours(hour + 1));
    return json{{"facility_id", facility}, {"starts_at", start}, {"ends_at", end}}.dump();
  }

  std::int64_t register_citizen(const std::string& email) {
    auto registered = call("POST", "/api/v1/auth/register",
                           json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump());
    EXPECT_EQ(registered.status, 201) << registered.body;
    return json::parse(registered.body)["id"];
  }
  std::string login(Actor actor) { return testing::login(server->port(), emails[actor], passwords[actor]); }
  std::int64_t submit(const std::string& type) {
    auto submitted = call("POST", "/api/v1/permits/applications",
                          json{{"permit_type", type},
                               {"description", "matrix"},
                               {"property_address", "1 Main St"},
                               {"department_code", "BLD"}}
                              .dump(),
                          tokens[owner]);
    EXPECT_EQ(submitted.status, 201) << submitted.body;
    return json::parse(submitted.body)["id"];
  }
  testing::HttpResponse call(const std::string& method, const std::string& path, const std::string& body = {},
                             const std::string& token = {}, std::vector<std::string> headers = {}) {
    if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
    return testing::http_request(server->port(), method, path, body, headers);
  }

  // The rows' request makers outlive this call: they capture its locals by value.
  std::vector<Row> rows() {
    auto fixed = [](std::string path, std::string body = {}) {
      return [path, body](Actor) { return std::pair{path, body}; };
    };
    auto id = [](std::int64_t value) { return std::to_string(value); };
    const std::string auth = "/api/v1/auth", permits = "/api/v1/permits", revenue = "/api/v1/revenue",
                      parks = "/api/v1/parks", notify = "/api/v1/notify";
    const int _401 = 401, _403 = 403, _404 = 404;
    // Columns: anonymous, owner, other citizen, reviewer, revenue clerk, parks staff,
    // front desk, admin.
    return {
        {"GET", "/healthz", {in, in, in, in, in, in, in, in}, fixed("/healthz")},
        {"GET", "/readyz", {in, in, in, in, in, in, in, in}, fixed("/readyz")},
        {"GET", "/metrics", {in, in, in, in, in, in, in, in}, fixed("/metrics")},
        {"GET", "/openapi.json", {in, in, in, in, in, in, in, in}, fixed("/openapi.json")},
        {"GET", "/admin/bus", {_401, _403, _403, _403, _403, _403, _403, in}, fixed("/admin/bus")},
        {"GET", "/admin/dead-letters", {_401, _403, _403, _403, _403, _403, _403, in}, fixed("/admin/dead-letters")},
        // The run first: the latest report exists for the GET after it.
        {"POST", "/admin/consistency", {_401, _403, _403, _403, _403, _403, _403, in}, fixed("/admin/consistency")},
        {"GET", "/admin/consistency", {_401, _403, _403, _403, _403, _403, _403, in}, fixed("/admin/consistency")},
        // No such letter: the admin reaches the handler (its 404 names the letter).
        {"POST",
         "/admin/dead-letters/{module}/{id}/replay",
         {_401, _403, _403, _403, _403, _403, _403, _404},
         fixed("/admin/dead-letters/permits/999/replay")},
        {"POST",
         "/admin/dead-letters/{module}/{id}/discard",
         {_401, _403, _403, _403, _403, _403, _403, _404},
         fixed("/admin/dead-letters/permits/999/discard")},
        {"GET", "/admin/bus/history", {_401, _403, _403, _403, _403, _403, _403, in}, fixed("/admin/bus/history")},
        {"GET", "/admin/registry", {_401, _403, _403, _403, _403, _403, _403, in}, fixed("/admin/registry")},
        // The dashboard's files hold no data: anyone may load them (the data needs an admin).
        {"GET", "/admin/", {in, in, in, in, in, in, in, in}, fixed("/admin")},
        {"GET", "/admin/dashboard.js", {in, in, in, in, in, in, in, in}, fixed("/admin/dashboard.js")},
        {"GET", "/admin/dashboard.css", {in, in, in, in, in, in, in, in}, fixed("/admin/dashboard.css")},
        {"GET", "/admin/favicon.svg", {in, in, in, in, in, in, in, in}, fixed("/admin/favicon.svg")},
        // The service portal's page and settings (its other files are added in the test).
        {"GET", "/", {in, in, in, in, in, in, in, in}, fixed("/")},
        {"GET", "/portal/settings.json", {in, in, in, in, in, in, in, in}, fixed("/portal/settings.json")},
        {"GET", auth + "/status", {in, in, in, in, in, in, in, in}, fixed(auth + "/status")},
        {"GET", permits + "/status", {in, in, in, in, in, in, in, in}, fixed(permits + "/status")},
        {"GET", revenue + "/status", {in, in, in, in, in, in, in, in}, fixed(revenue + "/status")},
        {"GET", "/api/v1/parks/status", {in, in, in, in, in, in, in, in}, fixed("/api/v1/parks/status")},
        {"GET", "/api/v1/notify/status", {in, in, in, in, in, in, in, in}, fixed("/api/v1/notify/status")},
        {"POST",
         auth + "/register",
         {in, in, in, in, in, in, in, in},
         [=, this](Actor a) {
           return std::pair{auth + "/register", json{{"email", "new" + std::to_string(a) + "@example.org"},
                                                     {"password", "a long enough password"},
                                                     {"name", "New"}}
                                                    .dump()};
         }},
        {"POST",
         auth + "/login",
         {in, in, in, in, in, in, in, in},
         fixed(auth + "/login", R"({"email":"maria@example.org","password":"a long enough password"})")},
        {"POST", auth + "/logout", {_401, in, in, in, in, in, in, in}, fixed(auth + "/logout")},
        {"GET", auth + "/me", {_401, in, in, in, in, in, in, in}, fixed(auth + "/me")},
        // Every account lists its own sessions (there is no one else's to ask for).
        {"GET", auth + "/sessions", {_401, in, in, in, in, in, in, in}, fixed(auth + "/sessions")},
        // Each caller sets the password it has again: its own session (the one the other
        // rows use) stays.
        {"POST",
         auth + "/password",
         {_401, in, in, in, in, in, in, in},
         [=, this](Actor a) {
           return std::pair{auth + "/password",
                            json{{"current_password", passwords[a]}, {"new_password", passwords[a]}}.dump()};
         }},
        // Staff who may change the account: citizens:write for a citizen (auth:admin for
        // an employee); a citizen may not, not even for themselves.
        {"POST",
         auth + "/password-resets",
         {_401, _403, _403, _403, _403, _403, in, in},
         fixed(auth + "/password-resets", R"({"email":"maria@example.org"})")},
        // Public: one 202 for every email (then 429 per email and address).
        {"POST",
         auth + "/password-resets/request",
         {in, in, in, in, in, in, in, in},
         fixed(auth + "/password-resets/request", R"({"email":"maria@example.org"})")},
        // Public: a token that is not live is one 400 for everyone (then 429 per address).
        {"POST",
         auth + "/password-resets/confirm",
         {in, in, in, in, in, in, in, in},
         fixed(auth + "/password-resets/confirm", R"({"token":"not-a-live-token","new_password":"a new password 1"})")},
        {"GET", auth + "/citizens", {_401, _403, _403, _403, _403, _403, in, in}, fixed(auth + "/citizens")},
        {"GET",
         auth + "/citizens/{id}",
         {_401, in, _404, _403, _403, _403, in, in},
         fixed(auth + "/citizens/" + id(maria))},
        {"PATCH",
         auth + "/citizens/{id}",
         {_401, in, _404, _403, _403, _403, in, in},
         fixed(auth + "/citizens/" + id(maria), R"({"phone":"+1-555-0142"})")},
        // Staff settling competing national id claims; to citizens it does not exist.
        {"GET",
         auth + "/citizens/{id}/national-id-claims",
         {_401, _404, _404, _403, _403, _403, in, in},
         fixed(auth + "/citizens/" + id(maria) + "/national-id-claims")},
        {"GET", auth + "/departments", {in, in, in, in, in, in, in, in}, fixed(auth + "/departments")},
        {"POST",
         auth + "/departments",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(auth + "/departments", R"({"code":"NEW","name":"New Department"})")},
        {"PATCH",
         auth + "/departments/{code}",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(auth + "/departments/PRK", R"({"name":"Parks"})")},
        // Issue 26 §2: a department deactivated and taken back (the one the row above made).
        {"POST",
         auth + "/departments/{code}/deactivate",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(auth + "/departments/NEW/deactivate")},
        {"POST",
         auth + "/departments/{code}/reactivate",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(auth + "/departments/NEW/reactivate")},
        {"GET", auth + "/employees", {_401, _403, _403, _403, _403, _403, _403, in}, fixed(auth + "/employees")},
        // Issue 26 §4: administrators (and auditors, audit:read) read the audit log.
        {"GET", auth + "/audit", {_401, _403, _403, _403, _403, _403, _403, in}, fixed(auth + "/audit")},
        {"POST",
         auth + "/employees",
         {_401, _403, _403, _403, _403, _403, _403, in},
         [=, this](Actor a) {
           return std::pair{auth + "/employees", json{{"email", "hire" + std::to_string(a) + "@example.org"},
                                                      {"password", "staff password 1"},
                                                      {"name", "Hire"}}
                                                     .dump()};
         }},
        // A citizen is told of no employee (404); staff without auth:admin are refused.
        {"GET",
         auth + "/employees/{id}",
         {_401, _404, _404, _403, _403, _403, _403, in},
         fixed(auth + "/employees/" + id(temp_employee))},
        {"POST",
         auth + "/employees/{id}/roles",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(auth + "/employees/" + id(temp_employee) + "/roles", R"({"roles":["parks_staff"]})")},
        {"PUT",
         auth + "/employees/{id}/roles",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(auth + "/employees/" + id(temp_employee) + "/roles", R"({"roles":["parks_staff"]})")},
        // Off-boarding the temporary employee, then taking them back.
        {"POST",
         auth + "/employees/{id}/deactivate",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(auth + "/employees/" + id(temp_employee) + "/deactivate")},
        {"POST",
         auth + "/employees/{id}/reactivate",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(auth + "/employees/" + id(temp_employee) + "/reactivate")},
        {"POST",
         permits + "/applications",
         {_401, in, in, _403, _403, _403, _403, _403},
         fixed(permits + "/applications",
               R"({"permit_type":"fence","description":"d","property_address":"a","department_code":"BLD"})")},
        {"GET", permits + "/applications", {_401, in, in, in, _403, _403, _403, in}, fixed(permits + "/applications")},
        {"GET",
         permits + "/applications/{id}",
         {_401, in, _404, in, _403, _403, _403, in},
         fixed(permits + "/applications/" + id(application))},
        {"POST",
         permits + "/applications/{id}/decision",
         {_401, _403, _404, in, _403, _403, _403, in},
         fixed(permits + "/applications/" + id(fee_application) + "/decision",
               R"({"decision":"reject","reason":"matrix"})")},
        // Whoever may read the application reads its inspections.
        {"GET",
         permits + "/applications/{id}/inspections",
         {_401, in, _404, in, _403, _403, _403, in},
         fixed(permits + "/applications/" + id(application) + "/inspections")},
        // Scheduling names the application in the body: one a caller cannot see is 422.
        {"POST",
         permits + "/inspections",
         {_401, _403, 422, in, 422, 422, 422, in},
         fixed(permits + "/inspections",
               json{{"application_id", application}, {"scheduled_for", "2027-06-02T09:00:00Z"}}.dump())},
        {"POST",
         permits + "/inspections/{id}/result",
         {_401, _403, _404, in, _403, _403, _403, in},
         fixed(permits + "/inspections/" + id(inspection) + "/result", R"({"result":"passed"})")},
        {"GET",
         permits + "/permits/{id}",
         {_401, in, _404, in, _403, _403, _403, in},
         fixed(permits + "/permits/" + id(permit))},
        {"POST",
         permits + "/permits/{id}/revoke",
         {_401, _403, _404, in, _403, _403, _403, in},
         fixed(permits + "/permits/" + id(permit) + "/revoke", R"({"reason":"matrix"})")},
        // Permit types are public to read; only administrators (permits:types) change them.
        {"GET", permits + "/permit-types", {in, in, in, in, in, in, in, in}, fixed(permits + "/permit-types")},
        {"GET",
         permits + "/permit-types/{code}",
         {in, in, in, in, in, in, in, in},
         fixed(permits + "/permit-types/fence")},
        {"POST",
         permits + "/permit-types",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(permits + "/permit-types", R"({"permit_type":"matrix","fee_cents":100})")},
        {"PATCH",
         permits + "/permit-types/{code}",
         {_401, _403, _403, _403, _403, _403, _403, in},
         fixed(permits + "/permit-types/fence", R"({"fee_cents":0})")},
        // A department's staff see their department's report; citizens none.
        {"GET",
         permits + "/reports/applications",
         {_401, _403, _403, in, _403, _403, _403, in},
         fixed(permits + "/reports/applications")},
        {"GET", revenue + "/invoices", {_401, in, in, _403, in, _403, _403, in}, fixed(revenue + "/invoices")},
        {"GET",
         revenue + "/invoices/{id}",
         {_401, in, _404, _403, in, _403, _403, in},
         fixed(revenue + "/invoices/" + id(invoice))},
        {"POST",
         revenue + "/payments",
         {_401, in, _404, _403, _403, _403, _403, _403},
         fixed(
             revenue + "/payments",
             json{{"invoice_id", invoice}, {"amount_cents", 5000}, {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
                 .dump())},
        {"POST",
         revenue + "/tax-records",
         {_401, _403, _403, _403, in, _403, _403, in},
         fixed(revenue + "/tax-records",
               json{{"citizen_id", maria}, {"tax_year", 2024}, {"assessed_value_cents", 1}, {"tax_due_cents", 1}}
                   .dump())},
        {"GET",
         revenue + "/tax-records/{id}",
         {_401, in, _404, _403, in, _403, _403, in},
         fixed(revenue + "/tax-records/" + id(tax_record))},
        {"POST",
         revenue + "/tax-bills",
         {_401, _403, _403, _403, in, _403, _403, in},
         fixed(revenue + "/tax-bills",
               json{{"tax_year", 2025},
                    {"citizen_ids", json::array({maria})},
                    {"due_date",
                     utc::format(std::chrono::system_clock::now() + std::chrono::hours(24 * 30)).substr(0, 10)}}
                   .dump())},
        // A revenue clerk's decision; the first refunds it, the others get 409 (they got in).
        {"POST",
         revenue + "/payments/{id}/refund",
         {_401, _403, _403, _403, in, _403, _403, in},
         fixed(revenue + "/payments/" + id(refundable_payment) + "/refund", R"({"reason":"matrix"})")},
        {"GET",
         revenue + "/payments/{id}/receipt",
         {_401, in, _404, _403, in, _403, _403, in},
         fixed(revenue + "/payments/" + id(payment) + "/receipt")},
        {"GET",
         revenue + "/reports/revenue",
         {_401, _403, _403, _403, in, _403, _403, in},
         fixed(revenue + "/reports/revenue?from=2026-01-01&to=2026-12-31")},
        {"POST",
         revenue + "/business-licenses",
         {_401, in, in, _403, _403, _403, _403, _403},
         fixed(revenue + "/business-licenses", R"({"business_name":"Shop","activity":"shop","address":"2 Main St"})")},
        {"GET",
         revenue + "/business-licenses",
         {_401, in, in, _403, in, _403, _403, in},
         fixed(revenue + "/business-licenses")},
        {"GET",
         revenue + "/business-licenses/{id}",
         {_401, in, _404, _403, in, _403, _403, in},
         fixed(revenue + "/business-licenses/" + id(license))},
        {"POST",
         revenue + "/business-licenses/{id}/decision",
         {_401, _403, _404, _403, in, _403, _403, in},
         fixed(revenue + "/business-licenses/" + id(license) + "/decision", R"({"decision":"approve"})")},
        {"POST",
         revenue + "/business-licenses/{id}/renew",
         {_401, in, _404, _403, in, _403, _403, in},
         fixed(revenue + "/business-licenses/" + id(active_license) + "/renew")},
        {"POST",
         revenue + "/business-licenses/expire",
         {_401, _403, _403, _403, in, _403, _403, in},
         fixed(revenue + "/business-licenses/expire")},
        {"GET", parks + "/facilities", {in, in, in, in, in, in, in, in}, fixed(parks + "/facilities")},
        {"GET",
         parks + "/facilities/{id}",
         {in, in, in, in, in, in, in, in},
         fixed(parks + "/facilities/" + id(facility))},
        {"GET",
         parks + "/facilities/{id}/availability",
         {in, in, in, in, in, in, in, in},
         fixed(parks + "/facilities/" + id(facility) + "/availability")},
        {"POST",
         parks + "/facilities",
         {_401, _403, _403, _403, _403, in, _403, in},
         fixed(parks + "/facilities", json{{"name", "Court"},
                                           {"kind", "court"},
                                           {"capacity", 4},
                                           {"hourly_price_cents", 0},
                                           {"time_zone", "UTC"},
                                           {"opening_hours", {{"mon", {{"open", "08:00"}, {"close", "20:00"}}}}}}
                                          .dump())},
        {"PATCH",
         parks + "/facilities/{id}",
         {_401, _403, _403, _403, _403, in, _403, in},
         fixed(parks + "/facilities/" + id(facility), R"({"capacity":12})")},
        {"POST",
         parks + "/bookings",
         {_401, in, in, _403, _403, _403, _403, _403},
         [=, this](Actor a) {
           return std::pair{parks + "/bookings", booking_body(12 + a)};
         }},
        {"GET", parks + "/bookings", {_401, in, in, _403, _403, in, _403, in}, fixed(parks + "/bookings")},
        {"GET",
         parks + "/bookings/{id}",
         {_401, in, _404, _403, _403, in, _403, in},
         fixed(parks + "/bookings/" + id(booking))},
        {"DELETE",
         parks + "/bookings/{id}",
         {_401, in, _404, _403, _403, in, _403, in},
         fixed(parks + "/bookings/" + id(booking))},
        // Staff only; the first one in marks it, the second gets 409 (it got in).
        {"POST",
         parks + "/bookings/{id}/no-show",
         {_401, _403, _403, _403, _403, in, _403, in},
         fixed(parks + "/bookings/" + id(started_booking) + "/no-show")},
        {"GET",
         parks + "/reports/utilisation",
         {_401, _403, _403, _403, _403, in, _403, in},
         fixed(parks + "/reports/utilisation")},
        {"GET", parks + "/programs", {in, in, in, in, in, in, in, in}, fixed(parks + "/programs")},
        {"GET", parks + "/programs/{id}", {in, in, in, in, in, in, in, in}, fixed(parks + "/programs/" + id(program))},
        {"POST",
         parks + "/programs",
         {_401, _403, _403, _403, _403, in, _403, in},
         fixed(parks + "/programs", R"({"name":"Tai chi","schedule":"Sundays","capacity":5,"price_cents":0})")},
        {"POST",
         parks + "/programs/{id}/enrollments",
         {_401, in, in, _403, _403, _403, _403, _403},
         fixed(parks + "/programs/" + id(program) + "/enrollments")},
        // A citizen's own (another citizen's list is empty); all for parks staff.
        {"GET",
         parks + "/enrollments",
         {_401, in, in, _403, _403, in, _403, in},
         fixed(parks + "/enrollments?program_id=" + id(program))},
        {"GET",
         parks + "/enrollments/{id}",
         {_401, in, _404, _403, _403, in, _403, in},
         fixed(parks + "/enrollments/" + id(enrollment))},
        {"DELETE",
         parks + "/enrollments/{id}",
         {_401, in, _404, _403, _403, in, _403, in},
         fixed(parks + "/enrollments/" + id(enrollment))},
        // notify: a citizen's own inbox and preferences; staff have none.
        {"GET", notify + "/inbox", {_401, in, in, _403, _403, _403, _403, _403}, fixed(notify + "/inbox")},
        {"POST",
         notify + "/inbox/{id}/read",
         {_401, in, _404, _403, _403, _403, _403, _403},
         fixed(notify + "/inbox/" + id(notice) + "/read")},
        {"GET", notify + "/preferences", {_401, in, in, _403, _403, _403, _403, _403}, fixed(notify + "/preferences")},
        {"PATCH",
         notify + "/preferences",
         {_401, in, in, _403, _403, _403, _403, _403},
         fixed(notify + "/preferences", R"({"email":{"payment_failed":false}})")},
        // Last: the owner closes the account (the other allowed callers delete a citizen
        // of their own making).
        {"DELETE",
         auth + "/citizens/{id}",
         {_401, in, _404, _403, _403, _403, _403, in},
         [=, this](Actor a) {
           if (a == front_desk || a == admin)
             return std::pair{auth + "/citizens/" + id(register_citizen("gone" + std::to_string(a) + "@example.org")),
                              std::string()};
           return std::pair{auth + "/citizens/" + id(maria), std::string()};
         }},
    };
  }

  testing::TempDir dir;
  std::unique_ptr<testing::TestServer> server;
  std::array<std::string, kActors> tokens, emails, passwords;
  std::int64_t maria = 0, other = 0, temp_employee = 0;
  std::int64_t application = 0, fee_application = 0, permit = 0, inspection = 0, invoice = 0, tax_record = 0,
               license = 0, active_license = 0, payment = 0, refundable_payment = 0, facility = 0, booking = 0,
               started_booking = 0, program = 0, enrollment = 0, notice = 0;
};

TEST_F(AuthorizationMatrix, EveryRouteHasARowAndEveryCallerGetsWhatItSays) {
  auto table = rows();
  // The portal's static files (app/portal/, one route each) hold no data either: public.
  for (const auto& entry : server->app().router().entries())
    if (entry.pattern.starts_with("/portal/") && entry.pattern != "/portal/settings.json")
      table.push_back({"GET", entry.pattern, {in, in, in, in, in, in, in, in}, [pattern = entry.pattern](Actor) {
                         return std::pair{pattern, std::string()};
                       }});
  std::set<std::string> covered;
  for (const auto& row : table) covered.insert(row.method + " " + row.pattern);
  for (const auto& entry : server->app().router().entries()) {
    auto key = std::string(http::to_string(entry.method)) + " " + entry.pattern;
    EXPECT_TRUE(covered.contains(key)) << key << " has no row in the authorization matrix: decide who may call it";
    covered.erase(key);
  }
  EXPECT_TRUE(covered.empty()) << "rows for routes that do not exist: " << *covered.begin();

  // Issue 13.5: what /openapi.json says a route answers is what it answers. Every JSON
  // route documents its success response; each success below is checked against it.
  std::map<std::string, http::RouteDoc> docs;
  for (const auto& entry : server->app().router().entries())
    docs[std::string(http::to_string(entry.method)) + " " + entry.pattern] = entry.doc;
  std::set<std::string> checked;

  for (const auto& row : table) {
    const auto& doc = docs[row.method + " " + row.pattern];
    // Refusals first, so a caller that gets in does not change what the others see.
    std::vector<Actor> order;
    for (int a = 0; a < kActors; ++a)
      if (row.expected[a] != in) order.push_back(static_cast<Actor>(a));
    for (int a = 0; a < kActors; ++a)
      if (row.expected[a] == in) order.push_back(static_cast<Actor>(a));
    for (auto actor : order) {
      auto [path, body] = row.request(actor);
      std::string token = actor == anonymous ? std::string() : tokens[actor];
      // Logging out must not end the session the other rows use.
      if (row.pattern == "/api/v1/auth/logout" && actor != anonymous) token = login(actor);
      std::vector<std::string> headers;
      if (row.pattern == "/api/v1/revenue/payments")
        headers.push_back("Idempotency-Key: matrix-" + std::to_string(actor));
      auto answer = call(row.method, path, body, token, headers);
      auto expected = row.expected[actor];
      if (expected == in) {
        EXPECT_TRUE(answer.status != 401 && answer.status != 403 && answer.status != 404 && answer.status < 500)
            << row.method << " " << path << " as " << kActorNames[actor] << ": " << answer.status << " " << answer.body;
        if (answer.status == doc.status && doc.content_type == "application/json") {
          auto where = row.method + " " + path + " as " + kActorNames[actor];
          if (!doc.response_schema.empty()) {
            auto violation = testing::schema_violation(json::parse(doc.response_schema), json::parse(answer.body));
            EXPECT_FALSE(violation) << where << ": the answer is not what /openapi.json documents: " << *violation
                                    << "\n"
                                    << answer.body;
            checked.insert(row.method + " " + row.pattern);
          }
          if (!doc.request_schema.empty() && !body.empty()) {
            auto violation = testing::schema_violation(json::parse(doc.request_schema), json::parse(body));
            EXPECT_FALSE(violation) << where
                                    << ": an accepted request body breaks the documented schema: " << *violation;
          }
        }
      } else {
        EXPECT_EQ(answer.status, expected)
            << row.method << " " << path << " as " << kActorNames[actor] << ": " << answer.body;
      }
    }
  }
  // Needs a dead letter the matrix does not make: AdminBusHttp checks these answers
  // against their schemas (ReplayAppliesALetterOnceThenConflicts, ADiscardedLetterIs...).
  const std::set<std::string> checked_elsewhere = {"POST /admin/dead-letters/{module}/{id}/replay",
                                                   "POST /admin/dead-letters/{module}/{id}/discard"};
  for (const auto& [route, doc] : docs) {
    if (doc.content_type != "application/json" || doc.status == 204 || checked_elsewhere.contains(route)) continue;
    EXPECT_FALSE(doc.response_schema.empty()) << route << " documents no response schema (Router::document)";
    EXPECT_TRUE(doc.response_schema.empty() || checked.contains(route))
        << route << ": no call in the matrix got its documented success (" << doc.status
        << "), so its schema was never checked against an answer";
  }
}

}  // namespace
}  // namespace townhall
