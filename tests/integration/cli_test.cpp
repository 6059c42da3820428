// The townhall binary itself, as a child process.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using testing::ChildProcess;
using testing::TempDir;

std::pair<int, std::string> run(std::vector<std::string> args) {
  args.insert(args.begin(), TOWNHALL_BINARY);
  ChildProcess child(std::move(args));
  auto code = child.wait_exit();
  return {code.value_or(-1), child.output()};
}

// stdout and stderr together: refusals are printed on stderr.
std::pair<int, std::string> run_capturing(std::vector<std::string> args) {
  args.insert(args.begin(), TOWNHALL_BINARY);
  ChildProcess child(std::move(args), {}, true);
  auto code = child.wait_exit();
  return {code.value_or(-1), child.output()};
}

// Waits for a child `townhall serve` to listen and registers maria@example.org on it.
::testing::AssertionResult serve_with_a_citizen(ChildProcess& server) {
  auto port = testing::wait_for_port(server);
  if (port == 0) return ::testing::AssertionFailure() << "the server did not start: " << server.output();
  auto registered =
      testing::http_request(port, "POST", "/api/v1/auth/register",
                            R"({"email":"maria@example.org","password":"a long enough password","name":"Maria"})");
  if (registered.status != 201) return ::testing::AssertionFailure() << "register: " << registered.body;
  return ::testing::AssertionSuccess();
}

TEST(Cli, Version) {
  auto [code, out] = run({"version"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("townhall 0.1.0"), std::string::npos) << out;
  EXPECT_NE(out.find("SQLite 3."), std::string::npos) << out;
}

TEST(Cli, WrongUsageExits2) {
  EXPECT_EQ(run({}).first, 2);
  EXPECT_EQ(run({"frobnicate"}).first, 2);
  EXPECT_EQ(run({"serve", "--bogus"}).first, 2);
  EXPECT_EQ(run({"serve", "--port"}).first, 2);
  EXPECT_EQ(run({"serve", "--port", "99999"}).first, 2);
  EXPECT_EQ(run({"migrate", "--demo"}).first, 2);
}

TEST(Cli, HelpEverywhere) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--help"}, {"serve", "--help"}, {"migrate", "--help"}, {"version", "--help"}}) {
    auto [code, out] = run(args);
    EXPECT_EQ(code, 0) << args[0];
    EXPECT_NE(out.find("usage: townhall"), std::string::npos) << out;
  }
}

TEST(Cli, InvalidConfigurationExits2) {
  TempDir dir;
  auto file = dir.path() / "bad.json";
  std::ofstream(file) << R"({"modules": {"billing": {}}})";
  auto [code, out] = run({"migrate", "--config", file.string(), "--data-dir", dir.path().string()});
  EXPECT_EQ(code, 2);
}

TEST(Cli, MigrateAppliesOnceThenReportsUpToDate) {
  TempDir dir;
  auto [code, out] = run({"migrate", "--init", "--data-dir", dir.path().string()});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("permits: applied bus/0001_bookkeeping.sql"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "auth.db"));
  auto [again, out2] = run({"migrate", "--data-dir", dir.path().string()});
  EXPECT_EQ(again, 0);
  EXPECT_NE(out2.find("permits: up to date"), std::string::npos) << out2;
}

// Issue 27.8: run from the wrong folder, a command that expects an installation says
// where it looked and creates nothing (check used to create ./data and call it consistent).
TEST(Cli, CommandsRefuseADirectoryWithoutAnInstallation) {
  TempDir dir;
  auto empty = dir.path() / "nothing-here";
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"check"},
                                             {"migrate"},
                                             {"dlq", "list"},
                                             {"revenue", "expire-licenses"},
                                             {"revenue", "mark-overdue"},
                                             {"backup", "--out", (dir.path() / "copy").string()},
                                             {"admin", "create-user", "--email", "x@example.org", "--password",
                                              "a long enough password", "--name", "X", "--role", "admin"}}) {
    auto with_dir = args;
    with_dir.insert(with_dir.end(), {"--data-dir", empty.string()});
    auto [code, out] = run_capturing(with_dir);
    EXPECT_EQ(code, 1) << args[0] << ": " << out;
    EXPECT_NE(out.find("no Townhall installation in " + empty.string()), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(empty)) << args[0] << " created the directory";
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "copy"));
  // migrate --init creates one; then the others work on it.
  auto [init, init_out] = run({"migrate", "--init", "--data-dir", empty.string()});
  EXPECT_EQ(init, 0) << init_out;
  EXPECT_EQ(run({"check", "--data-dir", empty.string()}).first, 0);
}

TEST(Cli, MigrateFailsOnACorruptFile) {
  TempDir dir;
  std::ofstream(dir.path() / "parks.db") << std::string(4096, 'q');
  auto [code, out] = run({"migrate", "--data-dir", dir.path().string()});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("parks: FAILED"), std::string::npos) << out;
  EXPECT_NE(out.find("auth: applied"), std::string::npos) << out;
}

TEST(Cli, BackupCopiesEveryModuleOnlineAndNeverOverwrites) {
  TempDir dir;
  auto data = dir.path() / "data";
  // A running server with a registered citizen: the backup is taken while it runs.
  ChildProcess server({TOWNHALL_BINARY, "serve", "--port", "0", "--data-dir", data.string()});
  ASSERT_TRUE(serve_with_a_citizen(server));

  auto out = dir.path() / "backup-1";
  auto [code, report] = run({"backup", "--out", out.string(), "--data-dir", data.string()});
  EXPECT_EQ(code, 0) << report;
  for (const char* module : {"auth", "permits", "revenue", "parks"}) {
    EXPECT_NE(report.find(std::string(module) + ": "), std::string::npos) << report;
    EXPECT_TRUE(std::filesystem::exists(out / (std::string(module) + ".db"))) << module;
  }
  EXPECT_EQ(report.find("FAILED"), std::string::npos) << report;
  EXPECT_NE(report.find("integrity ok"), std::string::npos) << report;
  {
    SQLite::Database copy((out / "auth.db").string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(copy.execAndGet("SELECT count(*) FROM citizens WHERE email = 'maria@example.org'").getInt(), 1);
    EXPECT_EQ(copy.execAndGet("PRAGMA journal_mode").getString(), "delete");  // a single file
  }
  EXPECT_FALSE(std::filesystem::exists(out / "auth.db-wal"));

  // With the key that opens auth.db's national ids, and a manifest read back.
  EXPECT_TRUE(std::filesystem::exists(out / "auth.key"));
  EXPECT_TRUE(std::filesystem::exists(out / "manifest.json"));
  EXPECT_NE(report.find("verified"), std::string::npos) << report;

  // Never overwrites: the second run into the same directory is refused.
  auto [again, report2] = run({"backup", "--out", out.string(), "--data-dir", data.string()});
  EXPECT_EQ(again, 1);
  EXPECT_NE(report2.find("already holds a backup; not overwritten"), std::string::npos) << report2;

  // A restore beside the running server is refused, naming why; nothing is touched.
  auto [busy, busy_report] = run_capturing({"restore", "--from", out.string(), "--data-dir", data.string()});
  EXPECT_EQ(busy, 1) << busy_report;
  EXPECT_NE(busy_report.find("stop the server first"), std::string::npos) << busy_report;

  kill(server.pid(), SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0);
  // With the server stopped it works too, and a missing module file is reported.
  std::filesystem::remove(data / "parks.db");
  auto [stopped, report3] = run({"backup", "--out", (dir.path() / "backup-2").string(), "--data-dir", data.string()});
  EXPECT_EQ(stopped, 1) << report3;
  EXPECT_NE(report3.find("auth: "), std::string::npos) << report3;
  EXPECT_NE(report3.find("parks: FAILED: no file"), std::string::npos) << report3;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "backup-2" / "auth.db"));

  EXPECT_EQ(run({"backup", "--data-dir", data.string()}).first, 2);  // --out is required

  // The first backup restores into a new, empty data directory and serves from it.
  auto new_machine = dir.path() / "new-machine";
  auto [restored, restore_report] = run({"restore", "--from", out.string(), "--data-dir", new_machine.string()});
  EXPECT_EQ(restored, 0) << restore_report;
  EXPECT_NE(restore_report.find("restore complete: 6 file(s)"), std::string::npos) << restore_report;
  EXPECT_EQ(run({"restore", "--data-dir", new_machine.string()}).first, 2);  // --from is required
  ChildProcess again_server({TOWNHALL_BINARY, "serve", "--port", "0", "--data-dir", new_machine.string()});
  auto port = testing::wait_for_port(again_server);
  ASSERT_NE(port, 0) << again_server.output();
  EXPECT_EQ(testing::http_request(port, "POST", "/api/v1/auth/login",
                                  R"({"email":"maria@example.org","password":"a long enough password"})")
                .status,
            200);
}

TEST(Cli, ServeAnswersAndStopsCleanlyOnSigterm) {
  TempDir dir;
  ChildProcess child({TOWNHALL_BINARY, "serve", "--port", "0", "--data-dir", dir.path().string()});
  auto port = testing::wait_for_port(child);
  ASSERT_NE(port, 0) << child.output();
  EXPECT_EQ(testing::http_request(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(testing::http_request(port, "GET", "/readyz").status, 200);
  EXPECT_EQ(testing::http_request(port, "GET", "/api/v1/auth/status").status, 200);  // a pooled reader
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait_exit(), 0);
  // A clean shutdown checkpoints every file: no WAL is left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    EXPECT_FALSE(entry.path().string().ends_with("-wal")) << entry.path();
}

// logging.format json: every log line is one JSON object (journald, log shippers), also
// for a message with quotes, newlines and a non-ASCII name.
TEST(Cli, JsonLogsAreOneObjectPerLine) {
  TempDir dir;
  auto registry = nlohmann::json::parse(std::ifstream(std::string(TOWNHALL_SOURCE_DIR) + "/config/townhall.json"));
  registry["logging"] = {{"format", "json"}};  // the access log's default follows (issue 27.10)
  std::ofstream(dir.path() / "registry.json") << registry.dump();
  std::filesystem::create_directory(dir.path() / "data");
  std::filesystem::permissions(dir.path() / "data", std::filesystem::perms::owner_all);
  ChildProcess child({TOWNHALL_BINARY, "serve", "--demo", "--port", "0", "--config",
                      (dir.path() / "registry.json").string(), "--data-dir", (dir.path() / "data").string()},
                     {}, true);
  auto port = testing::wait_for_port(child);
  ASSERT_NE(port, 0) << child.output();
  EXPECT_EQ(testing::http_request(port, "GET", "/api/v1/nowhere/\"\xc3\xa9").status, 404);
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait_exit(), 0);
  // Every line, the "listening" line and the demo accounts on stdout too, is JSON.
  int parsed = 0, listening = 0, demo = 0, access = 0;
  std::istringstream lines(child.output());
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    auto object = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(object.is_object()) << line;
    if (object.contains("message")) {
      EXPECT_TRUE(object["time"].is_string() && object["level"].is_string()) << line;
      auto message = object["message"].get<std::string>();
      listening += message.starts_with("townhall listening on http://") ? 1 : 0;
      demo += message.find("password: demo-") != std::string::npos ? 1 : 0;
    } else {
      access += object.contains("status") ? 1 : 0;
    }
    ++parsed;
  }
  EXPECT_GT(parsed, 5);
  EXPECT_EQ(listening, 1);
  EXPECT_GE(demo, 4);
  EXPECT_GE(access, 1) << child.output();
}

TEST(Cli, EnvironmentSelectsPortAndDataDir) {
  TempDir dir;
  ChildProcess child({TOWNHALL_BINARY, "serve"}, {{"TOWNHALL_PORT", "0"}, {"TOWNHALL_DATA_DIR", dir.path().string()}});
  auto port = testing::wait_for_port(child);
  ASSERT_NE(port, 0) << child.output();
  EXPECT_EQ(testing::http_request(port, "GET", "/api/v1/auth/status").status, 200);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "auth.db"));
  child.signal(SIGINT);
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Cli, DeadLetterListAndReplay) {
  TempDir dir;
  ASSERT_EQ(run({"migrate", "--init", "--data-dir", dir.path().string()}).first, 0);
  {
    SQLite::Database file((dir.path() / "permits.db").string(), SQLite::OPEN_READWRITE);
    file.exec(
        "INSERT INTO dead_letters (subscription, event_id, event, error, attempts, first_failed_at, last_failed_at) "
        "VALUES ('citizen_refs', 'auth:7', '{}', 'boom', 5, '2026-11-21T10:00:00.000Z', '2026-11-21T10:00:05.000Z')");
  }
  auto [code, out] = run({"dlq", "list", "--data-dir", dir.path().string()});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("1\tpermits\tcitizen_refs\tauth:7\t5\t2026-11-21T10:00:05.000Z\tpending\tboom"), std::string::npos)
      << out;
  EXPECT_NE(out.find("1 dead letter(s)"), std::string::npos);
  auto [auth_code, auth_out] = run({"dlq", "list", "--module", "auth", "--data-dir", dir.path().string()});
  EXPECT_NE(auth_out.find("0 dead letter(s)"), std::string::npos) << auth_out;

  // Permits has no handler for that subscription in this build: the replay fails and says why.
  auto [replay_code, replay_out] =
      run({"dlq", "replay", "1", "--module", "permits", "--data-dir", dir.path().string()});
  EXPECT_EQ(replay_code, 1) << replay_out;
  EXPECT_NE(replay_out.find("FAILED permits #1"), std::string::npos) << replay_out;
  // An operator gives up on it: discarded, kept, and never replayed by --all.
  EXPECT_EQ(run({"dlq", "discard", "1", "--data-dir", dir.path().string()}).first, 2);  // needs --module
  auto [discard_code, discard_out] =
      run({"dlq", "discard", "1", "--module", "permits", "--data-dir", dir.path().string()});
  EXPECT_EQ(discard_code, 0) << discard_out;
  EXPECT_NE(discard_out.find("discarded permits #1 (auth:7)"), std::string::npos) << discard_out;
  auto [listed_code, listed] = run({"dlq", "list", "--data-dir", dir.path().string()});
  EXPECT_NE(listed.find("\tdiscarded\tboom"), std::string::npos) << listed;
  auto [all_code, all_out] = run({"dlq", "replay", "--all", "--data-dir", dir.path().string()});
  EXPECT_EQ(all_code, 0) << all_out;
  EXPECT_NE(all_out.find("0 replayed, 0 failed"), std::string::npos) << all_out;
  EXPECT_EQ(run({"dlq", "discard", "1", "--module", "permits", "--data-dir", dir.path().string()}).first, 1);
  EXPECT_EQ(run({"dlq", "replay", "--data-dir", dir.path().string()}).first, 2);
  EXPECT_EQ(run({"dlq", "replay", "1", "--data-dir", dir.path().string()}).first, 2);  // ID needs --module
  EXPECT_EQ(run({"dlq"}).first, 2);
  EXPECT_EQ(run({"dlq", "list", "--module", "billing", "--data-dir", dir.path().string()}).first, 2);
}

// Issue 10.2: one process writes a data directory. A second server, migrate,
// The license expiry job, run now from the CLI with the server stopped: lapsed active
// licenses expire with license.expired; the others stay.
TEST(Cli, RevenueExpireLicensesRunsTheDailyJobNow) {
  TempDir dir;
  auto data = dir.path().string();
  ASSERT_EQ(run({"migrate", "--init", "--data-dir", data}).first, 0);
  {
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READWRITE);
    revenue.exec(
        "INSERT INTO business_licenses (citizen_id, business_name, activity, address, status, term, expires_at, "
        "created_at, updated_at) VALUES "
        "(1, 'Lapsed', 'bakery', '1 Main St', 'active', 1, '2020-01-01T00:00:00.000Z', '2019-01-01T00:00:00.000Z', "
        "'2019-01-01T00:00:00.000Z'), "
        "(1, 'Current', 'bakery', '2 Main St', 'active', 1, '2999-01-01T00:00:00.000Z', '2019-01-01T00:00:00.000Z', "
        "'2019-01-01T00:00:00.000Z')");
  }
  auto [code, out] = run({"revenue", "expire-licenses", "--data-dir", data});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("1 business license(s) expired"), std::string::npos) << out;
  SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(revenue.execAndGet("SELECT status FROM business_licenses WHERE business_name = 'Lapsed'").getString(),
            "expired");
  EXPECT_EQ(revenue.execAndGet("SELECT status FROM business_licenses WHERE business_name = 'Current'").getString(),
            "active");
  EXPECT_EQ(revenue.execAndGet("SELECT count(*) FROM outbox WHERE event_type = 'license.expired'").getInt(), 1);
  EXPECT_EQ(run({"revenue", "expire-licenses", "--data-dir", data}).second.find("0 business license(s) expired") !=
                std::string::npos,
            true);
  EXPECT_EQ(run({"revenue"}).first, 2);
}

// Issue 26 §1: the overdue invoice job from the CLI with the server stopped. An open
// invoice due before today is marked (status stays open in the file, invoice.overdue
// announced once); one due today, a paid one and one without a due date are not.
TEST(Cli, RevenueMarkOverdueMarksOpenInvoicesPastTheirDueDate) {
  TempDir dir;
  auto data = dir.path().string();
  ASSERT_EQ(run({"migrate", "--init", "--data-dir", data}).first, 0);
  auto today = utc::now().substr(0, 10);
  {
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READWRITE);
    SQLite::Statement insert(revenue,
                             "INSERT INTO invoices (citizen_id, source_module, source_type, source_id, description, "
                             "amount_cents, currency, status, created_at, updated_at, due_date) VALUES "
                             "(1, 'revenue', 'tax_record', ?, 'tax', 100, 'USD', ?, '2020-01-01T00:00:00.000Z', "
                             "'2020-01-01T00:00:00.000Z', ?)");
    for (const auto& [id, status, due] : std::vector<std::array<std::string, 3>>{
             {"1.1", "open", "2020-02-01"}, {"1.2", "open", today}, {"1.3", "paid", "2020-02-01"}}) {
      insert.bind(1, id);
      insert.bind(2, status);
      insert.bind(3, due);
      insert.exec();
      insert.reset();
    }
    revenue.exec(
        "INSERT INTO invoices (citizen_id, source_module, source_type, source_id, description, amount_cents, "
        "currency, status, created_at, updated_at) VALUES (1, 'permits', 'application', '9', 'fee', 100, 'USD', "
        "'open', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')");
  }
  auto [code, out] = run({"revenue", "mark-overdue", "--data-dir", data});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("1 invoice(s) marked overdue"), std::string::npos) << out;
  SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(revenue.execAndGet("SELECT source_id FROM invoices WHERE overdue_at IS NOT NULL").getString(), "1.1");
  EXPECT_EQ(revenue.execAndGet("SELECT count(*) FROM invoices WHERE overdue_at IS NOT NULL").getInt(), 1);
  EXPECT_EQ(revenue.execAndGet("SELECT status FROM invoices WHERE source_id = '1.1'").getString(), "open");
  EXPECT_EQ(revenue.execAndGet("SELECT count(*) FROM outbox WHERE event_type = 'invoice.overdue'").getInt(), 1);
  auto again = run({"revenue", "mark-overdue", "--data-dir", data});
  EXPECT_NE(again.second.find("0 invoice(s) marked overdue"), std::string::npos) << again.second;
}

// create-user and dlq replay beside a running server exit 1 naming its pid (replay
// points at the admin API); dlq list and backup still work beside it.
TEST(Cli, OneWriterPerDataDirectory) {
  TempDir dir;
  auto data = dir.path().string();
  ChildProcess server({TOWNHALL_BINARY, "serve", "--port", "0", "--data-dir", data});
  auto port = testing::wait_for_port(server);
  ASSERT_NE(port, 0) << server.output();
  auto holder = "pid " + std::to_string(server.pid());

  auto [second, second_out] = run_capturing({"serve", "--port", "0", "--data-dir", data});
  EXPECT_EQ(second, 1) << second_out;
  EXPECT_NE(second_out.find("in use by another townhall process (" + holder + ")"), std::string::npos) << second_out;
  auto [migrate, migrate_out] = run_capturing({"migrate", "--data-dir", data});
  EXPECT_EQ(migrate, 1) << migrate_out;
  EXPECT_NE(migrate_out.find(holder), std::string::npos) << migrate_out;
  auto [create, create_out] =
      run_capturing({"admin", "create-user", "--email", "x@example.org", "--password", "a long enough password",
                     "--name", "X", "--role", "admin", "--data-dir", data});
  EXPECT_EQ(create, 1) << create_out;
  EXPECT_NE(create_out.find(holder), std::string::npos) << create_out;
  auto [replay, replay_out] = run_capturing({"dlq", "replay", "--all", "--data-dir", data});
  EXPECT_EQ(replay, 1) << replay_out;
  EXPECT_NE(replay_out.find(holder), std::string::npos) << replay_out;
  EXPECT_NE(replay_out.find("/admin/dead-letters/<module>/<id>/replay"), std::string::npos) << replay_out;

  EXPECT_EQ(run({"dlq", "list", "--data-dir", data}).first, 0);
  EXPECT_EQ(run({"backup", "--out", (dir.path() / "copy").string(), "--data-dir", data}).first, 0);
  EXPECT_EQ(testing::http_request(port, "GET", "/readyz").status, 200);  // the server did not notice

  server.signal(SIGTERM);
  ASSERT_EQ(server.wait_exit(), 0);
  // The lock went with the server (also when it is killed: the kernel drops it).
  EXPECT_EQ(run({"migrate", "--data-dir", data}).first, 0);
  ChildProcess killed({TOWNHALL_BINARY, "serve", "--port", "0", "--data-dir", data});
  ASSERT_NE(testing::wait_for_port(killed), 0) << killed.output();
  killed.signal(SIGKILL);
  killed.wait_exit();
  EXPECT_EQ(run({"migrate", "--data-dir", data}).first, 0);
}

// Issue 10.2: `dlq replay` applies the dead letters it is asked to and nothing else: it
// never runs the subscriptions (a running one would apply the outbox a second time
// beside a server).
TEST(Cli, DeadLetterReplayNeverConsumes) {
  TempDir dir;
  ASSERT_EQ(run({"migrate", "--init", "--data-dir", dir.path().string()}).first, 0);
  {
    SQLite::Database auth((dir.path() / "auth.db").string(), SQLite::OPEN_READWRITE);
    auth.exec(
        "INSERT INTO outbox (topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, "
        "correlation_id, causation_id, schema, data) VALUES ('gov.auth.citizen', 'citizen.created', 'citizen', '5', "
        "1, '2026-11-21T10:00:00.000Z', 'c', '', 1, '{\"snapshot\":{\"id\":5,\"name\":\"Maria\",\"email\":"
        "\"maria@example.org\",\"phone\":null,\"address\":null,\"city\":null,\"postal_code\":null,"
        "\"has_national_id\":false,\"email_verified\":false,\"identity_verified\":false,\"is_active\":true,"
        "\"event_version\":1,\"created_at\":\"2026-11-21T10:00:00.000Z\",\"updated_at\":"
        "\"2026-11-21T10:00:00.000Z\"}}')");
    SQLite::Database permits((dir.path() / "permits.db").string(), SQLite::OPEN_READWRITE);
    permits.exec(
        "INSERT INTO dead_letters (subscription, event_id, event, error, attempts, first_failed_at, last_failed_at) "
        "VALUES ('citizen_refs', 'auth:99', '{}', 'boom', 5, '2026-11-21T10:00:00.000Z', '2026-11-21T10:00:05.000Z')");
  }
  auto [code, out] = run({"dlq", "replay", "--all", "--data-dir", dir.path().string()});
  EXPECT_EQ(code, 1) << out;  // that letter cannot be applied; what matters is below
  SQLite::Database permits((dir.path() / "permits.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(permits.execAndGet("SELECT count(*) FROM citizen_refs").getInt(), 0);
  EXPECT_EQ(permits.execAndGet("SELECT count(*) FROM bus_cursors WHERE position > 0").getInt(), 0);
}

// Issue 14.1: personal data at rest is owner-only. A fresh data directory is 0700 and
// every file in it (and in a backup) 0600; a directory or module file that group or
// others can reach makes serve refuse to start, naming the chmod to run.
TEST(Cli, DataAtRestIsOwnerOnly) {
  TempDir dir;
  auto data = dir.path() / "data";
  {
    ChildProcess server({TOWNHALL_BINARY, "serve", "--port", "0", "--data-dir", data.string()});
    ASSERT_TRUE(serve_with_a_citizen(server));
    auto mode = [](const std::filesystem::path& path) {
      return static_cast<int>(std::filesystem::status(path).permissions() & std::filesystem::perms::all);
    };
    EXPECT_EQ(mode(data), 0700);
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(data)) {
      EXPECT_EQ(mode(entry.path()), 0600) << entry.path();  // module files, -wal, -shm, auth.key, the lock
      ++files;
    }
    EXPECT_GE(files, 9);
    auto copy = dir.path() / "backup";
    ASSERT_EQ(run({"backup", "--out", copy.string(), "--data-dir", data.string()}).first, 0);
    EXPECT_EQ(mode(copy), 0700);
    for (const auto& entry : std::filesystem::directory_iterator(copy)) EXPECT_EQ(mode(entry.path()), 0600);
    server.signal(SIGTERM);
    ASSERT_EQ(server.wait_exit(), 0);
  }
  namespace fs = std::filesystem;
  fs::permissions(data / "permits.db", fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  auto [code, out] = run_capturing({"serve", "--port", "0", "--data-dir", data.string()});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("chmod 600 '" + (data / "permits.db").string() + "'"), std::string::npos) << out;
  fs::permissions(data / "permits.db", fs::perms::group_read | fs::perms::others_read, fs::perm_options::remove);
  fs::permissions(data, fs::perms::group_read | fs::perms::group_exec, fs::perm_options::add);
  auto [dir_code, dir_out] = run_capturing({"serve", "--port", "0", "--data-dir", data.string()});
  EXPECT_EQ(dir_code, 1) << dir_out;
  EXPECT_NE(dir_out.find("chmod 700 '" + data.string() + "'"), std::string::npos) << dir_out;
  fs::permissions(data, fs::perms::group_read | fs::perms::group_exec, fs::perm_options::remove);
  EXPECT_EQ(run({"migrate", "--data-dir", data.string()}).first, 0);  // private again: fine
}

}  // namespace
}  // namespace townhall
