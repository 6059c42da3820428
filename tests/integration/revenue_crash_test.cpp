// kill -9 of the real server between the payment provider's answer and the commit of
// the outcome (the one window where a charge exists that revenue.db does not know):
// after a restart there is exactly one completed payment, one charge and one
// payment.completed, and retrying with the same key answers that payment.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.hpp"
#include "townhall/app/application.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;

std::filesystem::path registry(const std::filesystem::path& dir) {
  auto document = json::parse(app::default_registry());
  document["server"]["rate_limit"]["enabled"] = false;
  document["modules"]["auth"]["settings"]["password_hash"] = {{"passes", 1}, {"memory_kib", 8192}};
  auto file = dir / "townhall.json";
  std::ofstream(file) << document.dump(2);
  return file;
}

int count(const std::filesystem::path& file, const std::string& sql) {
  SQLite::Database database(file.string(), SQLite::OPEN_READONLY);
  return database.execAndGet(sql).getInt();
}

TEST(RevenueCrash, KillBetweenTheProvidersAnswerAndTheCommitNeitherLosesNorDoublesTheCharge) {
  testing::TempDir config_dir, data_dir;
  const auto data = data_dir.path().string();
  std::string token;
  std::int64_t invoice_id = 0, application_id = 0;
  auto payment = [&](std::int64_t invoice) {
    return json{{"invoice_id", invoice}, {"amount_cents", 5000}, {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
        .dump();
  };
  {
    // The department applications go to (created with its reviewer).
    ChildProcess init(
        {TOWNHALL_BINARY, "migrate", "--init", "--config", registry(config_dir.path()).string(), "--data-dir", data});
    ASSERT_EQ(init.wait_exit(), 0) << init.output();
    ChildProcess setup({TOWNHALL_BINARY, "admin", "create-user", "--config", registry(config_dir.path()).string(),
                        "--data-dir", data, "--email", "rita@example.org", "--password", "staff password 1", "--name",
                        "Rita", "--role", "permits_reviewer", "--department", "BLD"});
    ASSERT_EQ(setup.wait_exit(), 0) << setup.output();
  }
  {
    // The test build of the binary, killed by its crash point (no registry key can do it).
    ChildProcess server({TOWNHALL_FAULTY_BINARY, "serve", "--config", registry(config_dir.path()).string(), "--port",
                         "0", "--data-dir", data},
                        {{"TOWNHALL_CRASH_AT", "revenue.after_provider_answer"}});
    auto port = testing::wait_for_port(server);
    ASSERT_NE(port, 0) << server.output();
    ASSERT_EQ(
        testing::http_request(port, "POST", "/api/v1/auth/register",
                              R"({"email":"maria@example.org","password":"a long enough password","name":"Maria"})")
            .status,
        201);
    auto login = testing::http_request(port, "POST", "/api/v1/auth/login",
                                       R"({"email":"maria@example.org","password":"a long enough password"})");
    token = json::parse(login.body)["token"];
    auto bearer = "Authorization: Bearer " + token;
    testing::HttpResponse submitted;
    ASSERT_TRUE(testing::wait_until([&] {  // once permits' department cache has BLD
      submitted = testing::http_request(
          port, "POST", "/api/v1/permits/applications",
          R"({"permit_type":"renovation","description":"Kitchen","property_address":"1 Main St","department_code":"BLD"})",
          {bearer});
      return submitted.status == 201;
    })) << submitted.body;
    application_id = json::parse(submitted.body)["id"];
    ASSERT_TRUE(testing::wait_until([&] {
      auto list = json::parse(testing::http_request(port, "GET", "/api/v1/revenue/invoices", {}, {bearer}).body);
      if (list["items"].size() != 1) return false;
      invoice_id = list["items"][0]["id"];
      return true;
    }));
    // The server kills itself after the provider approved, before the outcome commits.
    EXPECT_THROW(testing::http_request(port, "POST", "/api/v1/revenue/payments", payment(invoice_id),
                                       {bearer, "Idempotency-Key: crash-key"}),
                 std::exception);  // no response: the process is gone
    EXPECT_EQ(server.wait_exit(), 128 + SIGKILL);
  }
  // The window was hit: the provider charged, revenue.db still says pending.
  EXPECT_EQ(count(data_dir.path() / "payment-simulator.db", "SELECT count(*) FROM charges WHERE outcome = 'approved'"),
            1);
  EXPECT_EQ(count(data_dir.path() / "revenue.db", "SELECT count(*) FROM payments WHERE status = 'pending'"), 1);

  ChildProcess server(
      {TOWNHALL_BINARY, "serve", "--config", registry(config_dir.path()).string(), "--port", "0", "--data-dir", data});
  auto port = testing::wait_for_port(server);
  ASSERT_NE(port, 0) << server.output();
  auto bearer = "Authorization: Bearer " + token;
  // Settled with the provider at start: completed once, the invoice paid, the permit fee
  // flow goes on.
  auto invoice = json::parse(
      testing::http_request(port, "GET", "/api/v1/revenue/invoices/" + std::to_string(invoice_id), {}, {bearer}).body);
  EXPECT_EQ(invoice["status"], "paid") << invoice.dump();
  ASSERT_EQ(invoice["payments"].size(), 1u) << invoice.dump();
  EXPECT_EQ(invoice["payments"][0]["status"], "completed");
  auto retried = testing::http_request(port, "POST", "/api/v1/revenue/payments", payment(invoice_id),
                                       {bearer, "Idempotency-Key: crash-key"});
  EXPECT_EQ(retried.status, 201) << retried.body;
  EXPECT_EQ(json::parse(retried.body)["id"], invoice["payments"][0]["id"]);
  EXPECT_EQ(retried.header("idempotent-replayed"), "true");
  EXPECT_TRUE(testing::wait_until([&] {
    auto application = testing::http_request(
        port, "GET", "/api/v1/permits/applications/" + std::to_string(application_id), {}, {bearer});
    return json::parse(application.body)["status"] == "under_review";
  }));
  EXPECT_EQ(count(data_dir.path() / "payment-simulator.db", "SELECT count(*) FROM charges"), 1);
  EXPECT_EQ(count(data_dir.path() / "revenue.db", "SELECT count(*) FROM outbox WHERE event_type = 'payment.completed'"),
            1);
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0) << server.output();
}

}  // namespace
}  // namespace townhall
