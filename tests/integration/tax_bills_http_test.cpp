// Issue 26 §1 and §3 (revenue's part) against the real server: a tax record billed in
// instalments and paid through the ordinary payment path, the yearly run that never
// bills a record twice, the overdue job at start and notify's notice of it, receipts as
// JSON and as a printable page (only the payer's and staff's), the revenue report on a
// seeded scenario with known totals in JSON and CSV, and bad input.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::HttpResponse;

// "YYYY-MM-DD", `days` from today (UTC).
std::string day_from_today(int days) {
  return utc::format(std::chrono::system_clock::now() + std::chrono::hours(24) * days).substr(0, 10);
}

class TaxBillsHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = testing::test_config(dir.path());
    saved_config = config;
    for (const auto& [email, role, department] : std::vector<std::array<std::string, 3>>{
             {"rosa@example.org", "revenue_clerk", "FIN"}, {"rita@example.org", "permits_reviewer", "BLD"}}) {
      auto created =
          app::create_staff_user(config, auth::StaffUser{email, "staff password 1", "Staff", role, department});
      ASSERT_TRUE(created) << created.error().message;
    }
    server = std::make_unique<testing::TestServer>(std::move(config));
    rosa = testing::login(server->port(), "rosa@example.org", "staff password 1");
    rita = testing::login(server->port(), "rita@example.org", "staff password 1");
    ASSERT_FALSE(rosa.empty() || rita.empty());
  }

  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& token = {}) {
    return testing::call(server->port(), method, path, body, token);
  }
  HttpResponse get_as(const std::string& path, const std::string& token, const std::string& accept) {
    return testing::http_request(server->port(), "GET", path, {},
                                 {"Authorization: Bearer " + token, "Accept: " + accept});
  }
  static json body_of(const HttpResponse& response) { return json::parse(response.body, nullptr, false); }

  std::pair<std::int64_t, std::string> citizen(const std::string& email, const std::string& name = "Maria") {
    auto registered = call("POST", "/api/v1/auth/register",
                           json{{"email", email}, {"password", "a long enough password"}, {"name", name}}.dump());
    EXPECT_EQ(registered.status, 201) << registered.body;
    auto id = body_of(registered)["id"].get<std::int64_t>();
    return {id, testing::login(server->port(), email, "a long enough password")};
  }
  void wait_for_bus() {
    ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  }

  HttpResponse record_tax(json body) { return call("POST", "/api/v1/revenue/tax-records", body.dump(), rosa); }
  HttpResponse pay(const std::string& token, const json& invoice, const std::string& card = "tok_ok") {
    json body{{"invoice_id", invoice["id"]},
              {"amount_cents", invoice["amount_cents"]},
              {"method", {{"type", "card"}, {"token", card}}}};
    return testing::http_request(
        server->port(), "POST", "/api/v1/revenue/payments", body.dump(),
        {"Authorization: Bearer " + token, "Idempotency-Key: pay-" + invoice["id"].dump() + "-" + card});
  }

  static void expect_problem(const HttpResponse& response, int status, const std::string& detail = {}) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_EQ(response.header("content-type"), "application/problem+json") << response.body;
    if (!detail.empty()) {
      EXPECT_NE(response.body.find(detail), std::string::npos) << response.body;
    }
  }

  testing::TempDir dir;
  config::Config saved_config;
  std::unique_ptr<testing::TestServer> server;
  std::string rosa, rita;
};

TEST_F(TaxBillsHttp, ATaxRecordIsBilledInInstalmentsAndEachIsPaidWithAReceipt) {
  auto [maria, token] = citizen("maria@example.org", "Maria <b>Garcia</b> & \"Sons\"");
  auto [other, other_token] = citizen("other@example.org");
  wait_for_bus();
  const auto due = day_from_today(10);
  auto created = record_tax({{"citizen_id", maria},
                             {"tax_year", 2026},
                             {"assessed_value_cents", 25000000},
                             {"tax_due_cents", 100000},
                             {"due_date", due},
                             {"instalments", 3}});
  ASSERT_EQ(created.status, 201) << created.body;
  auto record = body_of(created);
  const auto& invoices = record["invoices"];
  ASSERT_EQ(invoices.size(), 3u);
  std::int64_t sum = 0;
  for (const auto& invoice : invoices) {
    sum += invoice["amount_cents"].get<std::int64_t>();
    EXPECT_EQ(invoice["status"], "open");
    EXPECT_EQ(invoice["citizen_id"], maria);
    EXPECT_EQ(invoice["source"]["type"], "tax_record");
  }
  EXPECT_EQ(sum, 100000);  // exactly the tax due
  EXPECT_EQ(invoices[0]["amount_cents"], 33334);
  EXPECT_EQ(invoices[0]["due_date"], due);
  EXPECT_LT(invoices[1]["due_date"].get<std::string>(), invoices[2]["due_date"].get<std::string>());
  EXPECT_NE(invoices[1]["description"].get<std::string>().find("instalment 2 of 3"), std::string::npos);
  auto record_path = "/api/v1/revenue/tax-records/" + record["id"].dump();
  EXPECT_EQ(body_of(call("GET", record_path, {}, token))["invoices"].size(), 3u);

  // The first instalment paid through the ordinary payment path.
  auto paid = pay(token, invoices[0]);
  ASSERT_EQ(paid.status, 201) << paid.body;
  auto payment = body_of(paid)["id"].get<std::int64_t>();
  EXPECT_EQ(body_of(call("GET", record_path, {}, token))["invoices"][0]["status"], "paid");

  auto receipt_path = "/api/v1/revenue/payments/" + std::to_string(payment) + "/receipt";
  auto receipt = call("GET", receipt_path, {}, token);
  ASSERT_EQ(receipt.status, 200) << receipt.body;
  auto shown = body_of(receipt);
  EXPECT_EQ(shown["receipt_number"], "R-" + std::to_string(payment));
  EXPECT_EQ(shown["amount_cents"], 33334);
  EXPECT_EQ(shown["status"], "completed");
  EXPECT_EQ(shown["payer_name"], "Maria <b>Garcia</b> & \"Sons\"");
  EXPECT_NE(shown["description"].get<std::string>().find("instalment 1 of 3"), std::string::npos);
  EXPECT_EQ(call("GET", receipt_path, {}, rosa).status, 200);  // revenue staff
  // Another citizen's payment does not exist for them; other staff may not read receipts.
  expect_problem(call("GET", receipt_path, {}, other_token), 404, "no such payment");
  expect_problem(call("GET", "/api/v1/revenue/payments/999999/receipt", {}, other_token), 404, "no such payment");
  expect_problem(call("GET", receipt_path, {}, rita), 403);

  // The printable page: every value escaped, nothing that runs.
  auto page = get_as(receipt_path, token, "text/html");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.header("content-security-policy").find("default-src 'none'"), std::string::npos);
  EXPECT_NE(page.body.find("<!DOCTYPE html>"), std::string::npos);
  EXPECT_NE(page.body.find("Maria &lt;b&gt;Garcia&lt;/b&gt; &amp; &quot;Sons&quot;"), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("<b>"), std::string::npos);
  EXPECT_EQ(page.body.find("<script"), std::string::npos);
  EXPECT_EQ(page.body.find("style"), std::string::npos);
  EXPECT_NE(page.body.find("333.34 USD"), std::string::npos);
  EXPECT_EQ(get_as(receipt_path, other_token, "text/html").status, 404);

  // A declined payment has no receipt.
  auto declined = pay(token, invoices[1], "tok_declined");
  ASSERT_EQ(declined.status, 402) << declined.body;
  auto failed = body_of(declined)["payment"]["id"].dump();
  expect_problem(call("GET", "/api/v1/revenue/payments/" + failed + "/receipt", {}, token), 409, "failed");
}

TEST_F(TaxBillsHttp, BadBillTermsAreA4xxAndRecordNothing) {
  auto [maria, token] = citizen("maria@example.org");
  wait_for_bus();
  json body{{"citizen_id", maria}, {"tax_year", 2026}, {"assessed_value_cents", 1000}, {"tax_due_cents", 2}};
  auto with = [&](json terms) {
    auto sent = body;
    sent.update(terms);
    return record_tax(sent);
  };
  expect_problem(with({{"due_date", day_from_today(5)}, {"instalments", 0}}), 400, "instalments");
  expect_problem(with({{"due_date", day_from_today(5)}, {"instalments", -3}}), 400, "instalments");
  expect_problem(with({{"due_date", day_from_today(5)}, {"instalments", 13}}), 400, "instalments");
  expect_problem(with({{"due_date", "2020-01-01"}}), 400, "in the past");
  expect_problem(with({{"due_date", day_from_today(-1)}}), 400, "in the past");
  expect_problem(with({{"due_date", "2027-02-30"}}), 400, "due_date");
  expect_problem(with({{"due_date", "27-01-01"}}), 400, "due_date");
  expect_problem(with({{"due_date", "next week"}}), 400, "due_date");
  expect_problem(with({{"instalments", 2}}), 400, "due_date");
  // Two cents cannot be three instalments: refused whole, the record not kept either.
  expect_problem(with({{"due_date", day_from_today(5)}, {"instalments", 3}}), 422, "cannot be split");
  auto today = with({{"due_date", day_from_today(0)}, {"instalments", 2}});
  ASSERT_EQ(today.status, 201) << today.body;  // due today is not past
  EXPECT_EQ(body_of(today)["invoices"].size(), 2u);
}

TEST_F(TaxBillsHttp, TheYearlyRunBillsEachRecordOnce) {
  auto [ana, ana_token] = citizen("ana@example.org");
  auto [ben, ben_token] = citizen("ben@example.org");
  auto [cy, cy_token] = citizen("cy@example.org");
  wait_for_bus();
  std::map<std::int64_t, std::int64_t> record_of;
  for (auto [who, due] : std::vector<std::pair<std::int64_t, int>>{{ana, 120000}, {ben, 90001}, {cy, 0}}) {
    auto created =
        record_tax({{"citizen_id", who}, {"tax_year", 2026}, {"assessed_value_cents", 1}, {"tax_due_cents", due}});
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_TRUE(body_of(created)["invoices"].empty());  // no due date: not billed yet
    record_of[who] = body_of(created)["id"];
  }
  json run{{"tax_year", 2026},
           {"citizen_ids", {ana, ben, cy, 987654, ana}},
           {"due_date", day_from_today(30)},
           {"instalments", 2}};
  auto first = call("POST", "/api/v1/revenue/tax-bills", run.dump(), rosa);
  ASSERT_EQ(first.status, 200) << first.body;
  auto outcome = body_of(first);
  ASSERT_EQ(outcome["billed"].size(), 2u);
  EXPECT_EQ(outcome["billed"][0]["id"], record_of[ana]);
  EXPECT_EQ(outcome["billed"][1]["invoices"][0]["amount_cents"], 45001);
  EXPECT_EQ(outcome["billed"][1]["invoices"][1]["amount_cents"], 45000);
  EXPECT_EQ(outcome["nothing_due"], json::array({record_of[cy]}));
  EXPECT_EQ(outcome["not_found"], json::array({987654}));
  EXPECT_TRUE(outcome["already_billed"].empty());

  // Run again (by citizen or by record): nothing is billed twice.
  auto again = body_of(call("POST", "/api/v1/revenue/tax-bills", run.dump(), rosa));
  EXPECT_TRUE(again["billed"].empty()) << again;
  EXPECT_EQ(again["already_billed"], json::array({record_of[ana], record_of[ben]}));
  json by_record{
      {"tax_year", 2026}, {"tax_record_ids", json::array({record_of[ben]})}, {"due_date", day_from_today(30)}};
  EXPECT_EQ(body_of(call("POST", "/api/v1/revenue/tax-bills", by_record.dump(), rosa))["already_billed"],
            json::array({record_of[ben]}));
  by_record["tax_year"] = 2025;  // the record is 2026's
  EXPECT_EQ(body_of(call("POST", "/api/v1/revenue/tax-bills", by_record.dump(), rosa))["not_found"],
            json::array({record_of[ben]}));
  auto ana_invoices = body_of(call("GET", "/api/v1/revenue/invoices", {}, ana_token));
  EXPECT_EQ(ana_invoices["items"].size(), 2u);

  // Bad runs.
  auto bad = [&](json changes, int status, const std::string& detail) {
    auto sent = run;
    sent.update(changes);
    for (auto it = sent.begin(); it != sent.end();) it = it->is_null() ? sent.erase(it) : std::next(it);
    expect_problem(call("POST", "/api/v1/revenue/tax-bills", sent.dump(), rosa), status, detail);
  };
  bad({{"tax_record_ids", json::array({1})}}, 400, "either");
  bad({{"citizen_ids", nullptr}}, 400, "either");
  bad({{"citizen_ids", json::array({0})}}, 400, "citizen_ids");
  bad({{"citizen_ids", std::vector<std::int64_t>(501, 1)}}, 400, "citizen_ids");
  bad({{"instalments", 13}}, 400, "instalments");
  bad({{"due_date", "2020-01-01"}}, 400, "in the past");
  bad({{"due_date", nullptr}}, 400, "due_date");
  expect_problem(call("POST", "/api/v1/revenue/tax-bills", run.dump(), ana_token), 403);
  expect_problem(call("POST", "/api/v1/revenue/tax-bills", run.dump(), rita), 403);
}

// The overdue job runs at start (and daily): an instalment past its due date is shown
// overdue, its citizen gets one notice, and it is still paid the ordinary way.
TEST_F(TaxBillsHttp, AnInstalmentPastItsDueDateIsOverdueNotifiedAndStillPayable) {
  auto [maria, token] = citizen("maria@example.org");
  wait_for_bus();
  auto created = record_tax({{"citizen_id", maria},
                             {"tax_year", 2026},
                             {"assessed_value_cents", 1},
                             {"tax_due_cents", 5000},
                             {"due_date", day_from_today(0)},
                             {"instalments", 2}});
  ASSERT_EQ(created.status, 201) << created.body;
  auto first = body_of(created)["invoices"][0];
  auto path = "/api/v1/revenue/invoices/" + first["id"].dump();
  // Time passes: the server is stopped, and the first instalment's day is yesterday.
  server.reset();
  {
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READWRITE);
    SQLite::Statement moved(revenue, "UPDATE invoices SET due_date = ? WHERE id = ?");
    moved.bind(1, day_from_today(-1));
    moved.bind(2, first["id"].get<std::int64_t>());
    ASSERT_EQ(moved.exec(), 1);
  }
  server = std::make_unique<testing::TestServer>(saved_config);
  ASSERT_TRUE(testing::wait_until([&] { return body_of(call("GET", path, {}, token))["status"] == "overdue"; }));
  auto overdue = body_of(call("GET", "/api/v1/revenue/invoices?status=overdue", {}, token));
  ASSERT_EQ(overdue["items"].size(), 1u);
  EXPECT_EQ(overdue["items"][0]["balance_cents"], 2500);
  EXPECT_EQ(body_of(call("GET", "/api/v1/revenue/invoices?status=open", {}, token))["items"].size(), 1u);
  json notice;
  ASSERT_TRUE(testing::wait_until([&] {
    auto inbox = body_of(call("GET", "/api/v1/notify/inbox", {}, token));
    for (const auto& item : inbox["items"])
      if (item["kind"] == "invoice_overdue") notice = item;
    return !notice.is_null();
  }));
  EXPECT_NE(notice["body"].get<std::string>().find("was due by " + day_from_today(-1)), std::string::npos) << notice;

  auto paid = pay(token, first);
  ASSERT_EQ(paid.status, 201) << paid.body;
  EXPECT_EQ(body_of(call("GET", path, {}, token))["status"], "paid");
  EXPECT_TRUE(body_of(call("GET", "/api/v1/revenue/invoices?status=overdue", {}, token))["items"].empty());
  // Marked once: a restart announces nothing again.
  server.reset();
  server = std::make_unique<testing::TestServer>(saved_config);
  SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(revenue.execAndGet("SELECT count(*) FROM outbox WHERE event_type = 'invoice.overdue'").getInt(), 1);
}

// Issue 26 §3: three payments over two months, one of them refunded, and one invoice left
// open. The payments are made through the API and then dated into October and November
// 2026 in the file, so the report's numbers are known exactly.
TEST_F(TaxBillsHttp, TheRevenueReportAddsUpASeededScenario) {
  auto [maria, token] = citizen("maria@example.org");
  wait_for_bus();
  auto billed = record_tax({{"citizen_id", maria},
                            {"tax_year", 2026},
                            {"assessed_value_cents", 1},
                            {"tax_due_cents", 30000},
                            {"due_date", day_from_today(20)},
                            {"instalments", 3}});
  ASSERT_EQ(billed.status, 201) << billed.body;
  auto unpaid = record_tax({{"citizen_id", maria},
                            {"tax_year", 2025},
                            {"assessed_value_cents", 1},
                            {"tax_due_cents", 5000},
                            {"due_date", day_from_today(20)}});
  ASSERT_EQ(unpaid.status, 201) << unpaid.body;
  std::vector<std::int64_t> payments;
  auto billed_invoices = body_of(billed)["invoices"];
  for (const auto& invoice : billed_invoices) {
    auto paid = pay(token, invoice);
    ASSERT_EQ(paid.status, 201) << paid.body;
    payments.push_back(body_of(paid)["id"]);
  }
  {
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READWRITE, 5000);
    auto date = [&](std::int64_t payment, const std::string& at) {
      SQLite::Statement dated(revenue, "UPDATE payments SET completed_at = ? WHERE id = ?");
      dated.bind(1, at);
      dated.bind(2, payment);
      ASSERT_EQ(dated.exec(), 1);
    };
    date(payments[0], "2026-10-15T10:00:00.000Z");
    date(payments[1], "2026-11-02T09:00:00.000Z");
    date(payments[2], "2026-11-30T23:59:59.999Z");
    SQLite::Statement refunded(revenue,
                               "UPDATE payments SET status = 'refunded', refund_key = 'refund-key-of-the-test', "
                               "refunded_at = '2026-11-20T12:00:00.000Z' WHERE id = ?");
    refunded.bind(1, payments[1]);
    ASSERT_EQ(refunded.exec(), 1);
  }
  const std::string report = "/api/v1/revenue/reports/revenue?from=2026-10-01&to=2026-11-30";
  auto answered = call("GET", report, {}, rosa);
  ASSERT_EQ(answered.status, 200) << answered.body;
  auto shown = body_of(answered);
  EXPECT_EQ(shown["report"], "revenue-by-month");
  EXPECT_EQ(shown["from"], "2026-10-01");
  EXPECT_EQ(shown["to"], "2026-11-30");
  EXPECT_EQ(shown["rows"], json::parse(R"([
    {"month": "2026-10", "source": "property_tax", "currency": "USD", "payments": 1, "paid_cents": 10000,
     "refunds": 0, "refunded_cents": 0, "net_cents": 10000},
    {"month": "2026-11", "source": "property_tax", "currency": "USD", "payments": 2, "paid_cents": 20000,
     "refunds": 1, "refunded_cents": 10000, "net_cents": 10000}])"));
  EXPECT_EQ(shown["totals"], json::parse(R"({"currencies": [
    {"currency": "USD", "paid_cents": 30000, "refunded_cents": 10000, "net_cents": 20000,
     "outstanding_cents": 5000, "outstanding_invoices": 1, "overdue_cents": 0, "overdue_invoices": 0}]})"));

  auto csv = get_as(report, rosa, "text/csv");
  ASSERT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.header("content-type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv.body,
            "month,source,currency,payments,paid_cents,refunds,refunded_cents,net_cents\r\n"
            "2026-10,property_tax,USD,1,10000,0,0,10000\r\n"
            "2026-11,property_tax,USD,2,20000,1,10000,10000\r\n");

  // The range is the report's: November alone holds the refund and two payments.
  auto november = body_of(call("GET", "/api/v1/revenue/reports/revenue?from=2026-11-01&to=2026-11-30", {}, rosa));
  ASSERT_EQ(november["rows"].size(), 1u);
  EXPECT_EQ(november["totals"]["currencies"][0]["net_cents"], 10000);

  expect_problem(call("GET", "/api/v1/revenue/reports/revenue?from=1990-01-01&to=2090-01-01", {}, rosa), 400,
                 "at most");
  expect_problem(call("GET", "/api/v1/revenue/reports/revenue?from=2026-13-01", {}, rosa), 400, "from");
  expect_problem(call("GET", "/api/v1/revenue/reports/revenue?from=2026-11-02&to=2026-11-01", {}, rosa), 400);
  expect_problem(call("GET", report, {}, token), 403);
  expect_problem(call("GET", report, {}, rita), 403);
}

}  // namespace
}  // namespace townhall
