// kill -9 of the real server between the payment provider's answer and the commit of
// the outcome (the one window where a charge exists that revenue.db does not know):
// after a restart there is exactly one completed payment, one charge and one
// payment.completed, and retrying with the same key answers that payment; and so there
// is when that restart's start meets a failing disk and is retried.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fault_vfs.hpp"
#include "server_fixture.hpp"
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

std::string payment(std::int64_t invoice) {
  return json{{"invoice_id", invoice}, {"amount_cents", 5000}, {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
      .dump();
}

// What the crash left: a citizen's token, a permit application and its fee invoice,
// whose payment the provider charged and revenue.db still has pending.
struct PendingPayment {
  std::string token;
  std::int64_t invoice_id = 0;
  std::int64_t application_id = 0;
};

// Runs the test build of the server on `data`, pays an application's fee and lets the
// crash point kill it after the provider's answer, before the outcome commits.
PendingPayment crash_with_a_pending_payment(const std::filesystem::path& registry_file, const std::string& data) {
  PendingPayment out;
  {
    // The department applications go to (created with its reviewer).
    ChildProcess init({TOWNHALL_BINARY, "migrate", "--init", "--config", registry_file.string(), "--data-dir", data});
    EXPECT_EQ(init.wait_exit(), 0) << init.output();
    ChildProcess setup({TOWNHALL_BINARY, "admin", "create-user", "--config", registry_file.string(), "--data-dir", data,
                        "--email", "rita@example.org", "--password", "staff password 1", "--name", "Rita", "--role",
                        "permits_reviewer", "--department", "BLD"});
    EXPECT_EQ(setup.wait_exit(), 0) << setup.output();
  }
  // The test build of the binary, killed by its crash point (no registry key can do it).
  ChildProcess server(
      {TOWNHALL_FAULTY_BINARY, "serve", "--config", registry_file.string(), "--port", "0", "--data-dir", data},
      {{"TOWNHALL_CRASH_AT", "revenue.after_provider_answer"}});
  auto port = testing::wait_for_port(server);
  if (port == 0) {
    ADD_FAILURE() << server.output();
    return out;
  }
  EXPECT_EQ(testing::http_request(port, "POST", "/api/v1/auth/register",
                                  R"({"email":"maria@example.org","password":"a long enough password","name":"Maria"})")
                .status,
            201);
  auto login = testing::http_request(port, "POST", "/api/v1/auth/login",
                                     R"({"email":"maria@example.org","password":"a long enough password"})");
  out.token = json::parse(login.body)["token"];
  auto bearer = "Authorization: Bearer " + out.token;
  testing::HttpResponse submitted;
  EXPECT_TRUE(testing::wait_until([&] {  // once permits' department cache has BLD
    submitted = testing::http_request(
        port, "POST", "/api/v1/permits/applications",
        R"({"permit_type":"renovation","description":"Kitchen","property_address":"1 Main St","department_code":"BLD"})",
        {bearer});
    return submitted.status == 201;
  })) << submitted.body;
  out.application_id = json::parse(submitted.body).value("id", std::int64_t{0});
  EXPECT_TRUE(testing::wait_until([&] {
    auto list = json::parse(testing::http_request(port, "GET", "/api/v1/revenue/invoices", {}, {bearer}).body);
    if (list["items"].size() != 1) return false;
    out.invoice_id = list["items"][0]["id"];
    return true;
  }));
  // The server kills itself after the provider approved, before the outcome commits.
  EXPECT_THROW(testing::http_request(port, "POST", "/api/v1/revenue/payments", payment(out.invoice_id),
                                     {bearer, "Idempotency-Key: crash-key"}),
               std::exception);  // no response: the process is gone
  EXPECT_EQ(server.wait_exit(), 128 + SIGKILL);
  return out;
}

TEST(RevenueCrash, KillBetweenTheProvidersAnswerAndTheCommitNeitherLosesNorDoublesTheCharge) {
  testing::TempDir config_dir, data_dir;
  const auto data = data_dir.path().string();
  const auto pending = crash_with_a_pending_payment(registry(config_dir.path()), data);
  ASSERT_FALSE(::testing::Test::HasFailure());
  const auto& token = pending.token;
  const auto invoice_id = pending.invoice_id, application_id = pending.application_id;
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

// A module whose start meets a failing disk (whichever call fails, once or for a while,
// wherever in the start) is down, and starts by itself once the disk is repaired. The
// hardest start to retry: a file left by kill -9 with its WAL to recover and a payment
// to settle, which the start commits through the module's own writer (a retry run on
// that writer waited for itself for ever). Settled exactly once whatever the fault.
TEST(RevenueCrash, AStartThatMetAFailingDiskIsRetriedAndSettlesThePendingPaymentOnce) {
  testing::TempDir config_dir, crashed;
  crash_with_a_pending_payment(registry(config_dir.path()), crashed.path().string());
  ASSERT_FALSE(::testing::Test::HasFailure());
  ASSERT_EQ(count(crashed.path() / "revenue.db", "SELECT count(*) FROM payments WHERE status = 'pending'"), 1);
  testing::FaultVfs vfs;
  struct Case {
    testing::FaultVfs::Call call;
    const char* name;
  };
  int failed_starts = 0;
  for (bool persistent : {false, true})
    for (auto [call, name] :
         {Case{testing::FaultVfs::Call::read, "read"}, Case{testing::FaultVfs::Call::write, "write"},
          Case{testing::FaultVfs::Call::sync, "sync"}, Case{testing::FaultVfs::Call::shm, "shm"}})
      for (std::size_t after : {0u, 3u, 8u, 20u, 35u}) {
        const std::string trace =
            std::string(persistent ? "persistent " : "once ") + name + " after " + std::to_string(after);
        SCOPED_TRACE(trace);
        testing::TempDir run;
        const auto data = run.path() / "data";
        std::filesystem::copy(crashed.path(), data);
        auto config = testing::test_config(data);
        config.database.vfs = vfs.name();
        config.server.module_retry = std::chrono::milliseconds(50);
        vfs.inject({"revenue.db", call, after, persistent});
        auto server = std::make_unique<testing::TestServer>(config);
        auto revenue_state = [&] {
          return json::parse(server->get("/readyz").body)["modules"]["revenue"].value("state", "");
        };
        if (revenue_state() != "up") ++failed_starts;
        vfs.clear();
        if (!testing::wait_until([&] { return revenue_state() == "up"; }, std::chrono::seconds(10))) {
          ADD_FAILURE() << "revenue did not come up after the disk was repaired (" << trace << ")";
          (void)server.release();  // its start hangs: left behind so the test can end
          return;
        }
        server.reset();
        EXPECT_EQ(count(data / "revenue.db", "SELECT count(*) FROM payments WHERE status = 'completed'"), 1);
        EXPECT_EQ(count(data / "revenue.db", "SELECT count(*) FROM payments WHERE status = 'pending'"), 0);
        EXPECT_EQ(count(data / "revenue.db", "SELECT count(*) FROM outbox WHERE event_type = 'payment.completed'"), 1);
        EXPECT_EQ(count(data / "payment-simulator.db", "SELECT count(*) FROM charges"), 1);
      }
  EXPECT_GT(failed_starts, 0);  // the faults did meet starts
}

}  // namespace
}  // namespace townhall
