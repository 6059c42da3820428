// The service portal (app/portal/): served at / with the dashboard's strict policy, off
// with the registry's portal.enabled; and in a real browser (Debian's Chromium driven by
// playwright-core, tests/portal/drive.mjs) a citizen's permit, money, parks (a waitlist
// promotion included) and inbox journeys
// with the front desk, the reviewer and the revenue clerk on their staff pages, every page
// checked by axe-core in English and French. The browser's clicks are then checked on
// the server, so a page that only looked right would fail here.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "server_fixture.hpp"
#include "townhall/auth/module.hpp"

namespace townhall {
namespace {

using nlohmann::json;
using testing::TestServer;

const std::filesystem::path kDriver = std::filesystem::path(TOWNHALL_SOURCE_DIR) / "tests/portal";
constexpr const char* kStaffPassword = "staff password 1";

std::string chromium_path() {
  if (const char* path = std::getenv("CHROMIUM")) return path;
  return "/usr/bin/chromium";
}

// What the browser test needs, or why it cannot run (scripts/install-deps.sh installs it).
std::string missing_browser_parts() {
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node";
  for (const char* package : {"playwright-core", "axe-core"})
    if (!std::filesystem::exists(kDriver / "node_modules" / package))
      return std::string(package) + " (npm ci in tests/portal)";
  if (!std::filesystem::exists(chromium_path())) return "chromium (" + chromium_path() + ")";
  return {};
}

TEST(PortalHttp, ServedAtRootWithAStrictPolicyAndItsSettings) {
  testing::TempDir dir;
  TestServer server(testing::test_config(dir.path()));
  auto index = testing::call(server.port(), "GET", "/");
  ASSERT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("/portal/app.js"), std::string::npos);
  EXPECT_NE(index.headers["content-security-policy"].find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(index.headers["content-security-policy"].find("unsafe-inline"), std::string::npos);
  auto script = testing::call(server.port(), "GET", "/portal/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.headers["content-type"], "text/javascript; charset=utf-8");
  auto settings = testing::call(server.port(), "GET", "/portal/settings.json");
  ASSERT_EQ(settings.status, 200);
  EXPECT_EQ(json::parse(settings.body),
            (json{{"time_zone", "America/New_York"}, {"currency", "USD"}, {"demo", false}}));
  EXPECT_EQ(testing::call(server.port(), "GET", "/admin/").status, 200);  // the dashboard stays
  EXPECT_EQ(testing::call(server.port(), "GET", "/portal/nope.js").status, 404);
}

TEST(PortalHttp, TheRegistrySwitchTurnsItOff) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  config.portal.enabled = false;
  TestServer server(std::move(config));
  for (const char* path : {"/", "/portal/app.js", "/portal/index.html", "/portal/settings.json"})
    EXPECT_EQ(testing::call(server.port(), "GET", path).status, 404) << path;
  EXPECT_EQ(testing::call(server.port(), "GET", "/admin/").status, 200);
  auto spec = json::parse(testing::call(server.port(), "GET", "/openapi.json").body);
  EXPECT_FALSE(spec["paths"].contains("/"));
  EXPECT_FALSE(spec["paths"].contains("/portal/app.js"));
}

TEST(PortalHttp, ABadTimeZoneIsAConfigError) {
  auto registry = json::parse(app::default_registry());
  registry["portal"]["time_zone"] = "Europe/Paris; drop";
  EXPECT_THROW(config::parse(registry, app::known_modules()), config::ConfigError);
  registry["portal"] = {{"enabled", true}, {"colour", "blue"}};
  EXPECT_THROW(config::parse(registry, app::known_modules()), config::ConfigError);
}

class PortalBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = missing_browser_parts(); !missing.empty())
      GTEST_SKIP() << "SKIPPED: the portal browser test needs " << missing << "; scripts/install-deps.sh installs it";
    auto config = testing::test_config(dir.path());
    // Their own department: the demo seeds BLD, PRK and REV.
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"desk@example.org", kStaffPassword, "Desk", "clerk", std::nullopt}));
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"review@example.org", kStaffPassword, "Reviewer", "permits_reviewer", "DEV"}));
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"cash@example.org", kStaffPassword, "Cash", "revenue_clerk", std::nullopt}));
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"parks@example.org", kStaffPassword, "Parks", "parks_staff", "GRN"}));
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"root@example.org", kStaffPassword, "Root", "admin", std::nullopt}));
    server = std::make_unique<TestServer>(std::move(config), nullptr, /*demo=*/true);
    admin = testing::login(server->port(), "root@example.org", kStaffPassword);
    ASSERT_FALSE(admin.empty());
  }

  // An id as a path segment (some answers carry ids as strings).
  static std::string id_of(const json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

  json get(const std::string& path) {
    auto response = testing::call(server->port(), "GET", path, {}, admin);
    EXPECT_EQ(response.status, 200) << path << ": " << response.body;
    return json::parse(response.body, nullptr, false);
  }

  testing::TempDir dir;
  std::unique_ptr<TestServer> server;
  std::string admin;
};

TEST_F(PortalBrowser, CitizenJourneysEveryPageInTwoLanguages) {
  // Screenshots stay in the build tree (ctest runs this in build/.../tests) as artifacts.
  auto artifacts = std::filesystem::current_path() / "portal-artifacts";
  std::filesystem::remove_all(artifacts);
  std::string command = "cd '" + kDriver.string() + "' && CHROMIUM='" + chromium_path() +
                        "' node drive.mjs 'http://127.0.0.1:" + std::to_string(server->port()) +
                        "/' desk@example.org review@example.org cash@example.org parks@example.org root@example.org '" +
                        kStaffPassword + "' DEV portal.person@example.org '" + artifacts.string() + "' 2>&1";
  int status = std::system(command.c_str());
  ASSERT_EQ(status, 0) << "the browser run failed (its output is above): " << command;

  std::ifstream journey_file(artifacts / "journey.json");
  auto journey = json::parse(journey_file);
  auto citizen = get("/api/v1/auth/citizens/" + std::to_string(journey["citizen_id"].get<std::int64_t>()));
  EXPECT_EQ(citizen["email"], "portal.person@example.org");
  EXPECT_EQ(citizen["phone"], "+1-555-0142");
  EXPECT_EQ(citizen["name"], "Portal Person-Renamed");
  EXPECT_FALSE(citizen["identity_verified"].get<bool>());  // the rename asks for it again

  auto application = get("/api/v1/permits/applications/" + journey["application_id"].dump());
  EXPECT_EQ(application["status"], "approved");
  EXPECT_EQ(application["permit_type"], "renovation");
  EXPECT_EQ(application["department_code"], "DEV");
  auto permit = get("/api/v1/permits/permits/" + application["permit_id"].dump());
  EXPECT_EQ(permit["status"], "active");

  auto invoice = get("/api/v1/revenue/invoices/" + id_of(application["invoice_id"]));
  EXPECT_EQ(invoice["status"], "paid");
  EXPECT_EQ(invoice["amount_cents"], 5000);
  std::vector<std::string> outcomes;
  for (const auto& payment : invoice["payments"]) outcomes.push_back(payment["status"]);
  std::sort(outcomes.begin(), outcomes.end());
  EXPECT_EQ(outcomes, (std::vector<std::string>{"completed", "failed"}));  // declined once, then paid

  auto unpaid = get("/api/v1/permits/applications/" + journey["unpaid_application_id"].dump());
  EXPECT_EQ(unpaid["status"], "fee_due");
  EXPECT_EQ(unpaid["fee_cents"], 15000);

  auto licence = get("/api/v1/revenue/business-licenses/" + journey["licence_id"].dump());
  EXPECT_EQ(licence["status"], "active");
  EXPECT_FALSE(licence["expires_at"].is_null());
  ASSERT_FALSE(licence["renewal_invoice_id"].is_null());  // renewed: the next term's invoice
  EXPECT_EQ(get("/api/v1/revenue/invoices/" + licence["fee_invoice_id"].dump())["status"], "paid");
  EXPECT_EQ(get("/api/v1/revenue/invoices/" + licence["renewal_invoice_id"].dump())["status"], "open");

  // The revenue clerk's page recorded the tax and billed it in two instalments; the first,
  // paid, the clerk refunded.
  std::size_t tax_invoices = 0;
  auto invoices = get("/api/v1/revenue/invoices?page_size=100&citizen_id=" + journey["citizen_id"].dump());
  for (const auto& invoice : invoices["items"]) tax_invoices += invoice["source"]["type"] == "tax_record";
  EXPECT_EQ(tax_invoices, 2u);
  auto refunded = get("/api/v1/revenue/invoices/" + journey["refunded_invoice_id"].dump());
  EXPECT_EQ(refunded["source"]["type"], "tax_record");
  EXPECT_EQ(refunded["status"], "refunded");
  ASSERT_EQ(refunded["payments"].size(), 1u);
  EXPECT_EQ(refunded["payments"][0]["status"], "refunded");

  // The reviewer's inspection, recorded passed before the approval.
  auto inspections = get("/api/v1/permits/applications/" + journey["application_id"].dump() + "/inspections");
  ASSERT_EQ(inspections["items"].size(), 1u);
  EXPECT_EQ(inspections["items"][0]["status"], "passed");
  EXPECT_EQ(inspections["items"][0]["notes"], "Window fitted as drawn");

  // Parks staff's opening hours: Monday from 09:00, closed on Sundays.
  auto field = get("/api/v1/parks/facilities/" + journey["field_id"].dump());
  EXPECT_EQ(field["opening_hours"]["mon"], (json{{"open", "09:00"}, {"close", "20:00"}}));
  EXPECT_FALSE(field["opening_hours"].contains("sun"));
  EXPECT_TRUE(field["opening_hours"].contains("sat"));

  auto booking = get("/api/v1/parks/bookings/" + journey["booking_id"].dump());
  EXPECT_EQ(booking["status"], "cancelled");
  EXPECT_EQ(booking["refund"], "full");  // paid, cancelled days ahead
  EXPECT_EQ(booking["amount_cents"], 2500);
  auto enrollment = get("/api/v1/parks/enrollments/" + journey["enrollment_id"].dump());
  EXPECT_EQ(enrollment["status"], "cancelled");
  EXPECT_TRUE(enrollment["refund"].is_null());  // never paid

  // The inbox and the email choices are the citizen's own (staff get 403): as the citizen.
  auto citizen_token = testing::login(server->port(), "portal.person@example.org", "a long enough password");
  ASSERT_FALSE(citizen_token.empty());
  auto preferences =
      json::parse(testing::call(server->port(), "GET", "/api/v1/notify/preferences", {}, citizen_token).body);
  EXPECT_FALSE(preferences["email"]["invoice_opened"].get<bool>());
  EXPECT_TRUE(preferences["email"]["payment_completed"].get<bool>());
  auto inbox =
      json::parse(testing::call(server->port(), "GET", "/api/v1/notify/inbox?limit=100", {}, citizen_token).body);
  std::size_t read = 0, promotions = 0;
  for (const auto& item : inbox["items"]) {
    read += !item["read_at"].is_null();
    promotions += item["kind"] == "enrollment_promoted" &&
                  item["title"].get<std::string>().find("Pottery evening") != std::string::npos;
  }
  EXPECT_EQ(read, 1u);
  EXPECT_EQ(promotions, 1u);  // the waitlisted place given, told once

  // Waitlisted in the full program, then given the place another citizen freed.
  auto promoted = get("/api/v1/parks/enrollments/" + journey["promoted_enrollment_id"].dump());
  EXPECT_EQ(promoted["status"], "enrolled");
  EXPECT_EQ(promoted["program_id"], journey["program_id"]);
  auto program = get("/api/v1/parks/programs/" + journey["program_id"].dump());
  EXPECT_EQ(program["enrolled"], 1);
  EXPECT_EQ(program["waitlisted"], 0);

  // The citizen's own sessions, listed without a token.
  auto sessions = json::parse(testing::call(server->port(), "GET", "/api/v1/auth/sessions", {}, citizen_token).body);
  ASSERT_FALSE(sessions["items"].empty());
  for (const auto& session : sessions["items"]) EXPECT_EQ(session.dump().find(citizen_token), std::string::npos);

  std::size_t screenshots = 0;
  for (const auto& entry : std::filesystem::directory_iterator(artifacts))
    screenshots += entry.path().extension() == ".png" && entry.file_size() > 5000;
  // (25 citizen + 16 staff pages) × 2 languages × 2 widths, and the French browser's home.
  EXPECT_EQ(screenshots, 41u * 2 * 2 + 2);
}

}  // namespace
}  // namespace townhall
