// The revenue module against the real server: the permit fee end to end through
// revenue, idempotent payments (sequential and concurrent), declines and timeouts,
// refunds of cancelled bookings, tax records with the audited national id, business
// licenses, object- and function-level authorization, and bad input.
#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::HttpResponse;

class RevenueHttp : public ::testing::Test {
 protected:
  virtual void configure(config::Config&) {}

  void SetUp() override {
    auto config = testing::test_config(dir.path());
    for (auto& module : config.modules)
      if (module.name == "revenue") module.settings["provider_timeout_ms"] = 300;
    configure(config);
    saved_config = config;  // to start the server again
    for (const auto& [email, role, department] :
         std::vector<std::array<std::string, 3>>{{"admin@example.org", "admin", ""},
                                                 {"rosa@example.org", "revenue_clerk", "FIN"},
                                                 {"rita@example.org", "permits_reviewer", "BLD"},
                                                 {"pat@example.org", "parks_staff", "PRK"}}) {
      auto created = app::create_staff_user(
          config, auth::StaffUser{email, "staff password 1", "Staff", role,
                                  department.empty() ? std::nullopt : std::optional<std::string>(department)});
      ASSERT_TRUE(created) << created.error().message;
    }
    server = std::make_unique<testing::TestServer>(std::move(config));
    admin = login("admin@example.org", "staff password 1");
    rosa = login("rosa@example.org", "staff password 1");
    rita = login("rita@example.org", "staff password 1");
    pat = login("pat@example.org", "staff password 1");
    ASSERT_FALSE(admin.empty() || rosa.empty() || rita.empty() || pat.empty());
  }

  std::string login(const std::string& email, const std::string& password) {
    return testing::login(server->port(), email, password);
  }
  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& token = {}) {
    return testing::call(server->port(), method, path, body, token);
  }
  static json body_of(const HttpResponse& response) { return json::parse(response.body, nullptr, false); }

  std::pair<std::int64_t, std::string> citizen(const std::string& email, const std::string& national_id = {}) {
    json body{{"email", email}, {"password", "a long enough password"}, {"name", "Citizen " + email}};
    if (!national_id.empty()) body["national_id"] = national_id;
    auto registered = call("POST", "/api/v1/auth/register", body.dump());
    EXPECT_EQ(registered.status, 201) << registered.body;
    auto id = body_of(registered)["id"].get<std::int64_t>();
    return {id, login(email, "a long enough password")};
  }

  void wait_for_bus() {
    ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  }

  // A renovation application (fee 5000 USD) and the invoice revenue opened for it.
  std::pair<std::int64_t, json> fee_invoice(const std::string& token) {
    auto submitted = call("POST", "/api/v1/permits/applications",
                          json{{"permit_type", "renovation"},
                               {"description", "Kitchen"},
                               {"property_address", "1 Main St"},
                               {"department_code", "BLD"}}
                              .dump(),
                          token);
    EXPECT_EQ(submitted.status, 201) << submitted.body;
    auto application = body_of(submitted)["id"].get<std::int64_t>();
    json invoice;
    EXPECT_TRUE(testing::wait_until([&] {
      auto list = body_of(call("GET", "/api/v1/revenue/invoices", {}, token));
      for (const auto& item : list["items"])
        if (item["source"]["id"] == std::to_string(application)) invoice = item;
      return !invoice.is_null();
    }));
    return {application, invoice};
  }

  HttpResponse pay(const std::string& token, const std::string& key, const json& body) {
    std::vector<std::string> headers{"Authorization: Bearer " + token, "Content-Type: application/json"};
    if (!key.empty()) headers.push_back("Idempotency-Key: " + key);
    return testing::http_request(server->port(), "POST", "/api/v1/revenue/payments", body.dump(), headers);
  }
  static json card(std::int64_t invoice, std::int64_t amount, const std::string& token) {
    return {{"invoice_id", invoice}, {"amount_cents", amount}, {"method", {{"type", "card"}, {"token", token}}}};
  }

  static void expect_problem(const HttpResponse& response, int status, const std::string& detail = {}) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_EQ(response.header("content-type"), "application/problem+json") << response.body;
    if (!detail.empty()) {
      EXPECT_NE(response.body.find(detail), std::string::npos) << response.body;
    }
  }

  // What the simulated processor charged (its ledger), by outcome.
  int charges(const std::string& outcome) {
    if (!std::filesystem::exists(dir.path() / "payment-simulator.db")) return 0;  // never called
    SQLite::Database ledger((dir.path() / "payment-simulator.db").string(), SQLite::OPEN_READONLY);
    SQLite::Statement query(ledger, "SELECT count(*) FROM charges WHERE outcome = ?");
    query.bind(1, outcome);
    query.executeStep();
    return query.getColumn(0).getInt();
  }
  int outbox_events(const std::string& type) {
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
    SQLite::Statement query(revenue, "SELECT count(*) FROM outbox WHERE event_type = ?");
    query.bind(1, type);
    query.executeStep();
    return query.getColumn(0).getInt();
  }

  testing::TempDir dir;
  config::Config saved_config;
  std::unique_ptr<testing::TestServer> server;
  std::string admin, rosa, rita, pat;
};

TEST_F(RevenueHttp, PermitFeeIsInvoicedPaidAndMovesTheApplicationToReview) {
  auto [maria, token] = citizen("maria@example.org");
  auto [application, invoice] = fee_invoice(token);
  ASSERT_FALSE(invoice.is_null());
  EXPECT_EQ(invoice["status"], "open");
  EXPECT_EQ(invoice["amount_cents"], 5000);
  EXPECT_EQ(invoice["balance_cents"], 5000);
  EXPECT_EQ(invoice["currency"], "USD");
  EXPECT_EQ(invoice["citizen_id"], maria);
  EXPECT_EQ(invoice["source"]["module"], "permits");
  auto invoice_id = invoice["id"].get<std::int64_t>();

  auto paid = pay(token, "key-1", card(invoice_id, 5000, "tok_ok"));
  ASSERT_EQ(paid.status, 201) << paid.body;
  EXPECT_EQ(body_of(paid)["status"], "completed");
  EXPECT_EQ(body_of(paid)["source_id"], std::to_string(application));
  // Permits learns it from payment.completed: fee_due -> under_review, with the invoice.
  auto path = "/api/v1/permits/applications/" + std::to_string(application);
  EXPECT_TRUE(testing::wait_until([&] { return body_of(call("GET", path, {}, token))["status"] == "under_review"; }))
      << call("GET", path, {}, token).body;
  EXPECT_EQ(body_of(call("GET", path, {}, token))["invoice_id"], std::to_string(invoice_id));
  auto shown = body_of(call("GET", "/api/v1/revenue/invoices/" + std::to_string(invoice_id), {}, token));
  EXPECT_EQ(shown["status"], "paid");
  EXPECT_EQ(shown["balance_cents"], 0);
  ASSERT_EQ(shown["payments"].size(), 1u);
  // Paid once: a second payment of a paid invoice is a conflict, not a second charge.
  expect_problem(pay(token, "key-2", card(invoice_id, 5000, "tok_ok")), 409, "is paid");
  EXPECT_EQ(charges("approved"), 1);
  wait_for_bus();
  EXPECT_EQ(outbox_events("invoice.created"), 1);
  EXPECT_EQ(outbox_events("payment.completed"), 1);
}

// Issue 25: a revenue clerk refunds a completed payment, saying why; once, and only a
// completed one; the citizen is told (payment.refunded) and the invoice shows it.
TEST_F(RevenueHttp, ARevenueClerkRefundsACompletedPaymentOnce) {
  auto [maria, token] = citizen("maria@example.org");
  auto [application, invoice] = fee_invoice(token);
  ASSERT_FALSE(invoice.is_null());
  auto invoice_id = invoice["id"].get<std::int64_t>();
  auto declined = body_of(pay(token, "refund-0", card(invoice_id, 5000, "tok_declined")))["payment"];
  auto paid = pay(token, "refund-1", card(invoice_id, 5000, "tok_ok"));
  ASSERT_EQ(paid.status, 201) << paid.body;
  auto payment = "/api/v1/revenue/payments/" + body_of(paid)["id"].dump() + "/refund";

  expect_problem(call("POST", payment, R"({"reason":"duplicate fee"})", token), 403);  // the payer is not a clerk
  expect_problem(call("POST", payment, R"({"reason":"duplicate fee"})", pat), 403);
  expect_problem(call("POST", payment, "{}", rosa), 400, "reason");
  expect_problem(call("POST", payment, json{{"reason", std::string(2000, 'x')}}.dump(), rosa), 400, "reason");
  expect_problem(call("POST", "/api/v1/revenue/payments/999999/refund", R"({"reason":"x"})", rosa), 404);
  expect_problem(
      call("POST", "/api/v1/revenue/payments/" + declined["id"].dump() + "/refund", R"({"reason":"x"})", rosa), 409,
      "only a completed payment");

  auto refunded = call("POST", payment, R"({"reason":"duplicate fee"})", rosa);
  ASSERT_EQ(refunded.status, 200) << refunded.body;
  EXPECT_EQ(body_of(refunded)["status"], "refunded");
  EXPECT_FALSE(body_of(refunded)["refunded_at"].is_null());
  expect_problem(call("POST", payment, R"({"reason":"duplicate fee"})", rosa), 409, "is refunded");
  auto shown = body_of(call("GET", "/api/v1/revenue/invoices/" + std::to_string(invoice_id), {}, token));
  EXPECT_EQ(shown["status"], "refunded");
  EXPECT_EQ(charges("approved"), 1);
  wait_for_bus();
  EXPECT_EQ(outbox_events("payment.refunded"), 1);
  // Who asked and why are kept on the payment.
  SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
  SQLite::Statement kept(revenue,
                         "SELECT refund_reason, refunded_by IS NOT NULL FROM payments WHERE status = 'refunded'");
  ASSERT_TRUE(kept.executeStep());
  EXPECT_EQ(kept.getColumn(0).getString(), "duplicate fee");
  EXPECT_EQ(kept.getColumn(1).getInt(), 1);
}

TEST_F(RevenueHttp, TheSameKeyAnswersTheSamePaymentAndNeverChargesTwice) {
  auto [maria, token] = citizen("maria@example.org");
  auto [application, invoice] = fee_invoice(token);
  auto invoice_id = invoice["id"].get<std::int64_t>();
  auto first = pay(token, "retry-key", card(invoice_id, 5000, "tok_ok"));
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_TRUE(first.header("idempotent-replayed").empty());
  for (int i = 0; i < 3; ++i) {
    auto again = pay(token, "retry-key", card(invoice_id, 5000, "tok_ok"));
    EXPECT_EQ(again.status, 201) << again.body;
    EXPECT_EQ(body_of(again)["id"], body_of(first)["id"]);
    // The same answer whole: the first showed the invoice's source as the payment began,
    // a replay reads it again.
    EXPECT_EQ(body_of(again), body_of(first));
    EXPECT_EQ(body_of(again)["source_id"], std::to_string(application));
    EXPECT_EQ(again.header("idempotent-replayed"), "true");
  }
  // The same key for a different request is refused; no key at all too.
  expect_problem(pay(token, "retry-key", card(invoice_id, 5000, "tok_declined")), 422, "different payment request");
  expect_problem(pay(token, "", card(invoice_id, 5000, "tok_ok")), 400, "Idempotency-Key");
  EXPECT_EQ(charges("approved"), 1);
  EXPECT_EQ(
      body_of(call("GET", "/api/v1/revenue/invoices/" + std::to_string(invoice_id), {}, token))["payments"].size(), 1u);
}

TEST_F(RevenueHttp, TenConcurrentRetriesChargeOnce) {
  auto [maria, token] = citizen("maria@example.org");
  auto [application, invoice] = fee_invoice(token);
  auto invoice_id = invoice["id"].get<std::int64_t>();
  std::vector<HttpResponse> answers(10);
  std::vector<std::thread> clients;
  for (int i = 0; i < 10; ++i)
    clients.emplace_back([&, i] { answers[i] = pay(token, "concurrent-key", card(invoice_id, 5000, "tok_ok")); });
  for (auto& client : clients) client.join();
  for (const auto& answer : answers) {
    EXPECT_EQ(answer.status, 201) << answer.body;
    EXPECT_EQ(body_of(answer)["id"], body_of(answers[0])["id"]);
    EXPECT_EQ(body_of(answer)["status"], "completed");
  }
  EXPECT_EQ(charges("approved"), 1);

  // Ten different keys for one open invoice: one payment holds it, the others are refused.
  auto [second_application, second] = fee_invoice(token);
  auto second_id = second["id"].get<std::int64_t>();
  clients.clear();
  for (int i = 0; i < 10; ++i)
    clients.emplace_back(
        [&, i] { answers[i] = pay(token, "key-" + std::to_string(i), card(second_id, 5000, "tok_ok")); });
  for (auto& client : clients) client.join();
  int created = 0, refused = 0;
  for (const auto& answer : answers) {
    if (answer.status == 201) ++created;
    if (answer.status == 409) ++refused;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(refused, 9);
  EXPECT_EQ(charges("approved"), 2);
}

TEST_F(RevenueHttp, DeclinedAndTimedOutPaymentsFailAndANewKeyPays) {
  auto [maria, token] = citizen("maria@example.org");
  auto [application, invoice] = fee_invoice(token);
  auto invoice_id = invoice["id"].get<std::int64_t>();
  auto declined = pay(token, "k-declined", card(invoice_id, 5000, "tok_declined"));
  expect_problem(declined, 402, "card declined");
  EXPECT_EQ(body_of(declined)["payment"]["status"], "failed");
  // Replaying the declined request answers the decline again.
  EXPECT_EQ(pay(token, "k-declined", card(invoice_id, 5000, "tok_declined")).status, 402);

  auto timed_out = pay(token, "k-timeout", card(invoice_id, 5000, "tok_timeout"));
  expect_problem(timed_out, 402, "did not answer in time");
  auto path = "/api/v1/revenue/invoices/" + std::to_string(invoice_id);
  EXPECT_EQ(body_of(call("GET", path, {}, token))["status"], "open");

  ASSERT_EQ(pay(token, "k-ok", card(invoice_id, 5000, "tok_ok")).status, 201);
  EXPECT_EQ(body_of(call("GET", path, {}, token))["status"], "paid");
  wait_for_bus();
  EXPECT_EQ(outbox_events("payment.failed"), 2);
  EXPECT_EQ(outbox_events("payment.completed"), 1);
  EXPECT_EQ(charges("approved"), 1);
}

TEST_F(RevenueHttp, EveryRouteChecksWhoAsks) {
  auto [maria, token] = citizen("maria@example.org");
  auto [other, other_token] = citizen("other@example.org");
  auto [application, invoice] = fee_invoice(token);
  auto invoice_id = invoice["id"].get<std::int64_t>();
  auto path = "/api/v1/revenue/invoices/" + std::to_string(invoice_id);
  // Object level: another citizen neither sees nor pays it.
  expect_problem(call("GET", path, {}, other_token), 404);
  expect_problem(pay(other_token, "steal", card(invoice_id, 5000, "tok_ok")), 404, "no such invoice");
  EXPECT_EQ(body_of(call("GET", "/api/v1/revenue/invoices", {}, other_token))["items"].size(), 0u);
  // Function level: revenue staff and the admin read everything; other staff nothing.
  EXPECT_EQ(call("GET", path, {}, rosa).status, 200);
  EXPECT_EQ(call("GET", path, {}, admin).status, 200);
  EXPECT_EQ(
      body_of(call("GET", "/api/v1/revenue/invoices?citizen_id=" + std::to_string(maria), {}, rosa))["items"].size(),
      1u);
  expect_problem(call("GET", path, {}, rita), 403);
  expect_problem(call("GET", "/api/v1/revenue/invoices", {}, pat), 403);
  expect_problem(call("GET", path), 401);
  // Staff do not pay citizens' invoices.
  expect_problem(pay(rosa, "staff", card(invoice_id, 5000, "tok_ok")), 403);
  // Tax records are revenue staff's to write.
  expect_problem(
      call("POST", "/api/v1/revenue/tax-records",
           json{{"citizen_id", maria}, {"tax_year", 2025}, {"assessed_value_cents", 1}, {"tax_due_cents", 1}}.dump(),
           token),
      403);
  expect_problem(call("POST", "/api/v1/revenue/business-licenses/expire", {}, token), 403);
  EXPECT_EQ(charges("approved"), 0);
}

TEST_F(RevenueHttp, BadPaymentInputIsA4xxAndChargesNothing) {
  auto [maria, token] = citizen("maria@example.org");
  auto [application, invoice] = fee_invoice(token);
  auto id = invoice["id"].get<std::int64_t>();
  auto with = [&](const std::string& field, json value) {
    auto body = card(id, 5000, "tok_ok");
    body[field] = std::move(value);
    return body;
  };
  int n = 0;
  auto key = [&] { return "bad-" + std::to_string(++n); };
  expect_problem(pay(token, key(), with("amount_cents", -5000)), 400, "amount_cents");
  expect_problem(pay(token, key(), with("amount_cents", 0)), 400, "amount_cents");
  expect_problem(pay(token, key(), with("amount_cents", 50.5)), 400, "amount_cents");
  expect_problem(pay(token, key(), with("amount_cents", 9007199254740993LL)), 400, "amount_cents");
  expect_problem(pay(token, key(), with("amount_cents", "5000")), 400, "amount_cents");
  expect_problem(pay(token, key(), with("amount_cents", 4999)), 422, "open balance");
  expect_problem(pay(token, key(), with("currency", "XYZ")), 400, "ISO 4217");
  expect_problem(pay(token, key(), with("currency", "EUR")), 422, "invoice's (USD)");
  expect_problem(pay(token, key(), with("unexpected", 1)), 400, "unknown field");
  expect_problem(pay(token, key(), with("method", {{"type", "cash"}, {"token", "tok_ok"}})), 400, "method.type");
  expect_problem(pay(token, key(), with("method", {{"type", "card"}})), 400, "method.token");
  expect_problem(pay(token, key(), with("method", {{"type", "card"}, {"token", "tok_ok"}, {"pan", "4111"}})), 400,
                 "unknown field 'pan'");
  expect_problem(pay(token, key(), with("invoice_id", 999999)), 404);
  std::vector<std::string> headers{"Authorization: Bearer " + token, "Idempotency-Key: raw-1"};
  expect_problem(testing::http_request(server->port(), "POST", "/api/v1/revenue/payments", "{\"invoice_id\":", headers),
                 400, "malformed JSON");
  expect_problem(pay(token, std::string(300, 'k'), card(id, 5000, "tok_ok")), 400, "at most 255");
  expect_problem(call("GET", "/api/v1/revenue/invoices?page_size=10000", {}, token), 400, "page_size");
  expect_problem(call("GET", "/api/v1/revenue/invoices?status=owed", {}, token), 400, "status");
  expect_problem(call("GET", "/api/v1/revenue/invoices/abc", {}, token), 404);
  EXPECT_EQ(body_of(call("GET", "/api/v1/revenue/invoices/" + std::to_string(id), {}, token))["status"], "open");
  EXPECT_EQ(charges("approved"), 0);
}

TEST_F(RevenueHttp, TaxRecordsReadTheNationalIdThroughAuthsAuditedApiOnly) {
  const std::string national_id = "NID-7731-QX";
  auto [maria, token] = citizen("maria@example.org", national_id);
  auto [other, other_token] = citizen("other@example.org");
  wait_for_bus();
  json body{{"citizen_id", maria}, {"tax_year", 2025}, {"assessed_value_cents", 25000000}, {"tax_due_cents", 312500}};
  auto created = call("POST", "/api/v1/revenue/tax-records", body.dump(), rosa);
  ASSERT_EQ(created.status, 201) << created.body;
  auto path = "/api/v1/revenue/tax-records/" + std::to_string(body_of(created)["id"].get<std::int64_t>());
  expect_problem(call("POST", "/api/v1/revenue/tax-records", body.dump(), rosa), 409, "already");
  body["citizen_id"] = 987654;
  expect_problem(call("POST", "/api/v1/revenue/tax-records", body.dump(), rosa), 422, "unknown");
  body["citizen_id"] = maria;
  body["tax_year"] = 1800;
  expect_problem(call("POST", "/api/v1/revenue/tax-records", body.dump(), rosa), 400, "tax_year");

  EXPECT_EQ(call("GET", path, {}, token).status, 200);
  EXPECT_TRUE(body_of(call("GET", path, {}, token)).contains("national_id") == false);
  expect_problem(call("GET", path, {}, other_token), 404);
  expect_problem(call("GET", path + "?include=national_id", {}, token), 403);
  expect_problem(call("GET", path + "?include=password", {}, rosa), 400);
  for (int i = 0; i < 2; ++i) {
    auto with_id = call("GET", path + "?include=national_id", {}, rosa);
    ASSERT_EQ(with_id.status, 200) << with_id.body;
    EXPECT_EQ(body_of(with_id)["national_id"], national_id);
  }
  // Every read is audited in auth; revenue's file (and its WAL) never holds the id.
  {
    SQLite::Database auth((dir.path() / "auth.db").string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(auth.execAndGet("SELECT count(*) FROM audit_log WHERE purpose = 'tax-record'").getInt(), 2);
  }
  for (const auto* file : {"revenue.db", "revenue.db-wal"}) {
    std::ifstream in(dir.path() / file, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_EQ(bytes.str().find(national_id), std::string::npos) << file;
  }
}

// Issue 27 §1: revenue.db restored alone from an older backup hands out payment ids again,
// while the processor (its ledger, payment-simulator.db, is its own record and is not
// restored) has seen them. Asked by id, it answered the old charges' outcomes: a declined
// card "paid" with nothing charged, a good card refused. Each payment's random processor
// key gets the processor's true answer.
TEST_F(RevenueHttp, AfterARestoreNewPaymentsGetTheProcessorsTrueAnswers) {
  auto [maria, token] = citizen("maria@example.org");
  std::vector<std::int64_t> invoices;
  for (int i = 0; i < 4; ++i) invoices.push_back(fee_invoice(token).second["id"].get<std::int64_t>());
  wait_for_bus();
  const auto backup = dir.path() / "revenue-backup.db";
  {  // an online backup, as `townhall backup` takes it
    SQLite::Database live((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
    SQLite::Database copy(backup.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    SQLite::Backup(copy, live).executeStep();
  }
  // After the backup: a charge approved, one declined.
  ASSERT_EQ(pay(token, "after-backup-1", card(invoices[0], 5000, "tok_ok")).status, 201);
  expect_problem(pay(token, "after-backup-2", card(invoices[1], 5000, "tok_declined")), 402, "card declined");

  // The operator restores revenue.db alone, with the server stopped.
  server.reset();
  for (const auto* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(dir.path() / (std::string("revenue.db") + suffix));
  std::filesystem::copy_file(backup, dir.path() / "revenue.db");
  server = std::make_unique<testing::TestServer>(saved_config);

  auto declined = pay(token, "after-restore-1", card(invoices[2], 5000, "tok_declined"));
  expect_problem(declined, 402, "card declined");
  auto paid = pay(token, "after-restore-2", card(invoices[3], 5000, "tok_ok"));
  ASSERT_EQ(paid.status, 201) << paid.body;
  EXPECT_EQ(body_of(paid)["status"], "completed");
  auto status_of = [&](std::int64_t id) {
    return body_of(call("GET", "/api/v1/revenue/invoices/" + std::to_string(id), {}, token))["status"];
  };
  EXPECT_EQ(status_of(invoices[2]), "open");
  EXPECT_EQ(status_of(invoices[3]), "paid");
  // What revenue.db says of each payment is what the processor did with its key.
  EXPECT_EQ(charges("approved"), 2);  // the first lost with the restore, and the last
  SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
  SQLite::Database ledger((dir.path() / "payment-simulator.db").string(), SQLite::OPEN_READONLY);
  SQLite::Statement payments(revenue, "SELECT processor_key, status FROM payments");
  int seen = 0;
  while (payments.executeStep()) {
    SQLite::Statement charge(ledger, "SELECT outcome FROM charges WHERE charge_key = ?");
    charge.bind(1, payments.getColumn(0).getString());
    ASSERT_TRUE(charge.executeStep()) << payments.getColumn(0).getString();
    EXPECT_EQ(charge.getColumn(0).getString(),
              payments.getColumn(1).getString() == "completed" ? "approved" : "declined");
    ++seen;
  }
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) FROM charges").getInt(), 4);  // no key was offered twice
}

// Issue 21 §3.6: approval invoices the fee and the license waits for it (approved_unpaid,
// no expiry, no renewal); paying the fee activates it, its term starting then; a renewal
// needs the current term paid, and paying it moves the expiry on; a lapsed term expires.
TEST_F(RevenueHttp, BusinessLicensesAreActiveOnlyOnceTheirFeeIsPaid) {
  auto [maria, token] = citizen("maria@example.org");
  auto applied =
      call("POST", "/api/v1/revenue/business-licenses",
           json{{"business_name", "Maria's Bakery"}, {"activity", "bakery"}, {"address", "2 Main St"}}.dump(), token);
  ASSERT_EQ(applied.status, 201) << applied.body;
  EXPECT_EQ(body_of(applied)["status"], "applied");
  auto path = "/api/v1/revenue/business-licenses/" + std::to_string(body_of(applied)["id"].get<std::int64_t>());
  expect_problem(call("POST", path + "/decision", R"({"decision":"approve"})", token), 403);
  auto approved = call("POST", path + "/decision", R"({"decision":"approve"})", rosa);
  ASSERT_EQ(approved.status, 200) << approved.body;
  auto license = body_of(approved);
  EXPECT_EQ(license["status"], "approved_unpaid");
  EXPECT_EQ(license["term"], 0);
  EXPECT_TRUE(license["expires_at"].is_null()) << license.dump();
  ASSERT_TRUE(license["fee_due_at"].is_string()) << license.dump();
  auto due = utc::parse(license["fee_due_at"].get<std::string>());
  ASSERT_TRUE(due);
  using Days = std::chrono::duration<double, std::ratio<86400>>;
  EXPECT_NEAR(Days(*due - std::chrono::system_clock::now()).count(), 30, 0.01);
  auto fee_invoice = license["fee_invoice_id"].get<std::int64_t>();
  expect_problem(call("POST", path + "/decision", R"({"decision":"reject","reason":"late"})", rosa), 409);
  auto invoices = body_of(call("GET", "/api/v1/revenue/invoices", {}, token));
  ASSERT_EQ(invoices["items"].size(), 1u);
  EXPECT_EQ(invoices["items"][0]["id"], fee_invoice);
  EXPECT_EQ(invoices["items"][0]["source"]["type"], "business_license");
  EXPECT_EQ(invoices["items"][0]["amount_cents"], 10000);
  EXPECT_EQ(invoices["items"][0]["status"], "open");
  // No second term while the first is unpaid.
  expect_problem(call("POST", path + "/renew", {}, token), 409, "approved_unpaid");
  expect_problem(call("POST", path + "/renew", {}, rosa), 409, "approved_unpaid");

  // A declined payment changes nothing; a paid fee activates it, its term from now.
  expect_problem(pay(token, "fee-declined", card(fee_invoice, 10000, "tok_declined")), 402);
  EXPECT_EQ(body_of(call("GET", path, {}, token))["status"], "approved_unpaid");
  auto before_payment = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
  ASSERT_EQ(pay(token, "fee-1", card(fee_invoice, 10000, "tok_ok")).status, 201);
  auto active = body_of(call("GET", path, {}, token));
  EXPECT_EQ(active["status"], "active");
  EXPECT_EQ(active["term"], 1);
  auto first_expiry = active["expires_at"].get<std::string>();
  auto expiry = utc::parse(first_expiry);
  ASSERT_TRUE(expiry);
  EXPECT_GE(*expiry, before_payment + std::chrono::days(365));
  EXPECT_LE(*expiry, std::chrono::system_clock::now() + std::chrono::days(365));

  auto renewed = call("POST", path + "/renew", {}, token);
  ASSERT_EQ(renewed.status, 200) << renewed.body;
  auto renewal_invoice = body_of(renewed)["renewal_invoice_id"].get<std::int64_t>();
  expect_problem(call("POST", path + "/renew", {}, token), 409, "is open");
  ASSERT_EQ(pay(token, "renew-1", card(renewal_invoice, 10000, "tok_ok")).status, 201);
  auto after = body_of(call("GET", path, {}, token));
  EXPECT_EQ(after["term"], 2);
  EXPECT_GT(after["expires_at"].get<std::string>(), first_expiry);
  EXPECT_TRUE(after["renewal_invoice_id"].is_null());

  // Lapsed: the expiry job (here run now by staff) expires it with license.expired.
  {
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READWRITE,
                             5000);  // the server runs beside
    revenue.exec("UPDATE business_licenses SET expires_at = '2020-01-01T00:00:00.000Z'");
  }
  auto expired = call("POST", "/api/v1/revenue/business-licenses/expire", {}, rosa);
  ASSERT_EQ(expired.status, 200) << expired.body;
  EXPECT_EQ(body_of(expired)["expired"], 1);
  EXPECT_EQ(body_of(expired)["lapsed"], 0);
  EXPECT_EQ(body_of(call("GET", path, {}, token))["status"], "expired");
  wait_for_bus();
  EXPECT_EQ(outbox_events("license.approved"), 1);
  EXPECT_EQ(outbox_events("license.activated"), 1);
  EXPECT_EQ(outbox_events("license.renewed"), 1);
  EXPECT_EQ(outbox_events("license.expired"), 1);
}

// An approved license whose fee is not paid by fee_due_at lapses: the job voids its fee
// invoice, which can no longer be paid (not even in the window before the job runs), and
// it can never be renewed into activity.
TEST_F(RevenueHttp, AnApprovedLicenseUnpaidByItsDueDateLapses) {
  auto [maria, token] = citizen("maria@example.org");
  std::vector<std::string> paths;
  for (const auto* name : {"Unpaid", "Paid"}) {
    auto applied = call("POST", "/api/v1/revenue/business-licenses",
                        json{{"business_name", name}, {"activity", "bakery"}, {"address", "2 Main St"}}.dump(), token);
    ASSERT_EQ(applied.status, 201) << applied.body;
    paths.push_back("/api/v1/revenue/business-licenses/" + std::to_string(body_of(applied)["id"].get<std::int64_t>()));
    ASSERT_EQ(call("POST", paths.back() + "/decision", R"({"decision":"approve"})", rosa).status, 200);
  }
  auto unpaid_invoice = body_of(call("GET", paths[0], {}, token))["fee_invoice_id"].get<std::int64_t>();
  auto paid_invoice = body_of(call("GET", paths[1], {}, token))["fee_invoice_id"].get<std::int64_t>();
  ASSERT_EQ(pay(token, "paid-fee", card(paid_invoice, 10000, "tok_ok")).status, 201);
  {
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READWRITE, 5000);
    revenue.exec("UPDATE business_licenses SET fee_due_at = '2020-01-01T00:00:00.000Z'");
  }
  // Past its due date the fee is refused before the processor is asked.
  expect_problem(pay(token, "late-fee", card(unpaid_invoice, 10000, "tok_ok")), 409, "has lapsed");
  auto swept = call("POST", "/api/v1/revenue/business-licenses/expire", {}, rosa);
  ASSERT_EQ(swept.status, 200) << swept.body;
  EXPECT_EQ(body_of(swept)["lapsed"], 1);
  EXPECT_EQ(body_of(swept)["expired"], 0);
  auto lapsed = body_of(call("GET", paths[0], {}, token));
  EXPECT_EQ(lapsed["status"], "lapsed");
  EXPECT_TRUE(lapsed["expires_at"].is_null());
  EXPECT_EQ(body_of(call("GET", paths[1], {}, token))["status"], "active");
  EXPECT_EQ(body_of(call("GET", "/api/v1/revenue/invoices/" + std::to_string(unpaid_invoice), {}, token))["status"],
            "voided");
  expect_problem(pay(token, "late-fee-2", card(unpaid_invoice, 10000, "tok_ok")), 409, "voided");
  expect_problem(call("POST", paths[0] + "/renew", {}, token), 409, "lapsed");
  EXPECT_EQ(body_of(call("POST", "/api/v1/revenue/business-licenses/expire", {}, rosa))["lapsed"], 0);
  EXPECT_EQ(charges("approved"), 1);
  wait_for_bus();
  EXPECT_EQ(outbox_events("license.lapsed"), 1);
  EXPECT_EQ(outbox_events("invoice.voided"), 1);
}

// A priced booking cancelled after payment is refunded; one cancelled before payment has
// its invoice voided — through parks' real bookings (no crafted events).
TEST_F(RevenueHttp, CancelledBookingsVoidOpenInvoicesAndRefundPaidOnes) {
  auto [maria, token] = citizen("maria@example.org");
  // A priced booking needs a verified email (parks learns it from auth's event).
  ASSERT_EQ(call("PATCH", "/api/v1/auth/citizens/" + std::to_string(maria), R"({"email_verified":true})", admin).status,
            200);
  wait_for_bus();
  json all_day = json::object();
  for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
    all_day[day] = {{"open", "00:00"}, {"close", "24:00"}};
  auto facility = call("POST", "/api/v1/parks/facilities",
                       json{{"name", "Court"},
                            {"kind", "court"},
                            {"capacity", 4},
                            {"hourly_price_cents", 2500},
                            {"time_zone", "UTC"},
                            {"opening_hours", all_day}}
                           .dump(),
                       pat);
  ASSERT_EQ(facility.status, 201) << facility.body;
  auto day = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()) + std::chrono::days(2);
  std::vector<std::int64_t> bookings;
  for (int hour : {10, 12}) {
    auto booked = call("POST", "/api/v1/parks/bookings",
                       json{{"facility_id", body_of(facility)["id"]},
                            {"starts_at", utc::format(day + std::chrono::hours(hour))},
                            {"ends_at", utc::format(day + std::chrono::hours(hour + 1))}}
                           .dump(),
                       token);
    ASSERT_EQ(booked.status, 201) << booked.body;
    bookings.push_back(body_of(booked)["id"]);
  }
  json invoices;
  ASSERT_TRUE(testing::wait_until([&] {
    invoices = body_of(call("GET", "/api/v1/revenue/invoices", {}, token));
    return invoices["items"].size() == 2;
  }));
  std::map<std::string, std::int64_t> by_booking;
  for (const auto& invoice : invoices["items"]) by_booking[invoice["source"]["id"]] = invoice["id"];
  auto unpaid = by_booking[std::to_string(bookings[0])], paid = by_booking[std::to_string(bookings[1])];
  auto booking_payment = pay(token, "booking-2", card(paid, 2500, "tok_ok"));
  ASSERT_EQ(booking_payment.status, 201);
  // A place's payment is refunded by cancelling the place in parks, not by the clerk.
  expect_problem(call("POST", "/api/v1/revenue/payments/" + body_of(booking_payment)["id"].dump() + "/refund",
                      R"({"reason":"x"})", rosa),
                 409, "cancel it in parks");
  for (auto id : bookings)
    ASSERT_EQ(call("DELETE", "/api/v1/parks/bookings/" + std::to_string(id), {}, token).status, 200);
  auto status_of = [&](std::int64_t id) {
    return body_of(call("GET", "/api/v1/revenue/invoices/" + std::to_string(id), {}, token))["status"];
  };
  EXPECT_TRUE(testing::wait_until([&] { return status_of(unpaid) == "voided"; }));
  EXPECT_TRUE(testing::wait_until([&] { return status_of(paid) == "refunded"; }));
  wait_for_bus();
  EXPECT_EQ(outbox_events("invoice.voided"), 1);
  EXPECT_EQ(outbox_events("payment.refunded"), 1);
  SQLite::Database ledger((dir.path() / "payment-simulator.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) FROM charges WHERE refunded = 1").getInt(), 1);
  // A voided invoice cannot be paid.
  expect_problem(pay(token, "booking-1", card(unpaid, 2500, "tok_ok")), 409, "voided");
}

// An installation whose auth outbox was pruned before revenue and parks existed: their
// caches bootstrap from auth's Api (issues 11 and 12).
TEST(RevenueBootstrap, CitizenRefsBootstrapFromAuthsApi) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  {
    testing::TestServer server(config);
    for (const auto& email : {"a@example.org", "b@example.org"})
      ASSERT_EQ(testing::call(server.port(), "POST", "/api/v1/auth/register",
                              json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump())
                    .status,
                201);
    ASSERT_TRUE(testing::wait_until([&] { return server.app().bus().caught_up(); }));
  }
  {
    SQLite::Database auth((dir.path() / "auth.db").string(), SQLite::OPEN_READWRITE);
    auth.exec("DELETE FROM outbox WHERE id < (SELECT max(id) FROM outbox)");
    for (const auto* file : {"revenue.db", "parks.db"}) {
      SQLite::Database cache((dir.path() / file).string(), SQLite::OPEN_READWRITE);
      cache.exec("DELETE FROM citizen_refs; DELETE FROM bus_cursors; DELETE FROM processed_ranges");
    }
  }
  testing::TestServer server(config);
  ASSERT_TRUE(testing::wait_until([&] { return server.app().bus().caught_up(); }));
  auto metrics = server.get("/metrics").body;
  for (const auto* module : {"revenue", "parks"}) {
    SQLite::Database cache((dir.path() / (std::string(module) + ".db")).string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(cache.execAndGet("SELECT count(*) FROM citizen_refs").getInt(), 2) << module;
    EXPECT_NE(metrics.find("townhall_bus_bootstraps_total{module=\"" + std::string(module) +
                           "\",subscription=\"citizen_refs\"} 1"),
              std::string::npos)
        << module;
  }
}

}  // namespace
}  // namespace townhall

namespace townhall {
namespace {

// The national id read for a tax record appears in no log line of the real binary (its
// access log included) and in no file of revenue's.
TEST(RevenueLogs, TheNationalIdIsNeverLogged) {
  testing::TempDir dir;
  const auto data = dir.path().string();
  const std::string national_id = "NID-5150-ZZ";
  {
    testing::ChildProcess init({TOWNHALL_BINARY, "migrate", "--init", "--data-dir", data});
    ASSERT_EQ(init.wait_exit(), 0) << init.output();
    testing::ChildProcess setup({TOWNHALL_BINARY, "admin", "create-user", "--data-dir", data, "--email",
                                 "rosa@example.org", "--password", "staff password 1", "--name", "Rosa", "--role",
                                 "revenue_clerk", "--department", "FIN"});
    ASSERT_EQ(setup.wait_exit(), 0) << setup.output();
  }
  // Debug logging: the most the server ever says.
  auto registry = json::parse(app::default_registry());
  registry["logging"]["level"] = "debug";
  auto config_file = dir.path() / "registry.json";
  std::ofstream(config_file) << registry.dump();
  testing::ChildProcess server(
      {TOWNHALL_BINARY, "serve", "--config", config_file.string(), "--port", "0", "--data-dir", data}, {}, true);
  auto port = testing::wait_for_port(server);
  ASSERT_NE(port, 0) << server.output();
  auto registered = testing::http_request(port, "POST", "/api/v1/auth/register",
                                          json{{"email", "maria@example.org"},
                                               {"password", "a long enough password"},
                                               {"name", "Maria"},
                                               {"national_id", national_id}}
                                              .dump());
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto maria = json::parse(registered.body)["id"].get<std::int64_t>();
  auto rosa = testing::login(port, "rosa@example.org", "staff password 1");
  testing::HttpResponse created;
  ASSERT_TRUE(testing::wait_until([&] {  // once revenue's cache knows her
    created = testing::call(
        port, "POST", "/api/v1/revenue/tax-records",
        json{{"citizen_id", maria}, {"tax_year", 2025}, {"assessed_value_cents", 1}, {"tax_due_cents", 1}}.dump(),
        rosa);
    return created.status == 201;
  })) << created.body;
  auto path = "/api/v1/revenue/tax-records/" + std::to_string(json::parse(created.body)["id"].get<std::int64_t>());
  auto read = testing::call(port, "GET", path + "?include=national_id", {}, rosa);
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(json::parse(read.body)["national_id"], national_id);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0);
  EXPECT_NE(server.output().find("tax-records"), std::string::npos) << "the access log was not captured";
  EXPECT_EQ(server.output().find(national_id), std::string::npos) << server.output();
  for (const auto* file : {"revenue.db", "revenue.db-wal"}) {
    std::ifstream in(dir.path() / file, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_EQ(bytes.str().find(national_id), std::string::npos) << file;
  }
}

}  // namespace
}  // namespace townhall
