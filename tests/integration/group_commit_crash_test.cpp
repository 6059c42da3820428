// kill -9 of the real server in the middle of a group commit (issue 24 §2): permits'
// writer holds several applications in one transaction, and the test build of the binary
// kills itself just before that commit, or just after it but before anyone is answered.
// After a restart every acknowledged application is there, every application is whole
// (its row and its application.submitted event, never one without the other), the group
// is all there or all gone, and revenue opens exactly one fee invoice per application.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/app/application.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;

std::set<std::int64_t> ids(const std::filesystem::path& file, const std::string& sql) {
  SQLite::Database database(file.string(), SQLite::OPEN_READONLY);
  SQLite::Statement query(database, sql);
  std::set<std::int64_t> out;
  while (query.executeStep()) out.insert(query.getColumn(0).getInt64());
  return out;
}

class GroupCommitCrash : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto document = json::parse(app::default_registry());
    document["server"]["rate_limit"]["enabled"] = false;
    document["modules"]["auth"]["settings"]["password_hash"] = {{"passes", 1}, {"memory_kib", 8192}};
    registry = config_dir.path() / "townhall.json";
    std::ofstream(registry) << document.dump(2);
    ChildProcess init({TOWNHALL_BINARY, "migrate", "--init", "--config", registry.string(), "--data-dir", data()});
    ASSERT_EQ(init.wait_exit(), 0) << init.output();
    // The department applications go to (created with its reviewer).
    ChildProcess setup({TOWNHALL_BINARY, "admin", "create-user", "--config", registry.string(), "--data-dir", data(),
                        "--email", "rita@example.org", "--password", "staff password 1", "--name", "Rita", "--role",
                        "permits_reviewer", "--department", "BLD"});
    ASSERT_EQ(setup.wait_exit(), 0) << setup.output();
  }

  std::string data() const { return data_dir.path().string(); }
  std::filesystem::path permits_db() const { return data_dir.path() / "permits.db"; }

  static testing::HttpResponse apply(unsigned short port, const std::string& bearer, const std::string& what) {
    return testing::http_request(port, "POST", "/api/v1/permits/applications",
                                 json{{"permit_type", "renovation"},
                                      {"description", what},
                                      {"property_address", "1 Main St"},
                                      {"department_code", "BLD"}}
                                     .dump(),
                                 {bearer});
  }

  testing::TempDir config_dir, data_dir;
  std::filesystem::path registry;
};

TEST_P(GroupCommitCrash, EveryAcknowledgedApplicationIsKeptAndTheGroupIsWholeOrGone) {
  const std::string point = GetParam();
  const bool committed = point.ends_with("after_commit");
  std::set<std::int64_t> acknowledged;
  int sent = 0, unanswered = 0;
  std::string bearer;
  {
    ChildProcess server(
        {TOWNHALL_FAULTY_BINARY, "serve", "--config", registry.string(), "--port", "0", "--data-dir", data()},
        {{"TOWNHALL_CRASH_AT", point}}, /*capture_stderr=*/true);
    auto port = testing::wait_for_port(server);
    ASSERT_NE(port, 0) << server.output();
    const std::string email = "maria@example.org", password = "a long enough password";
    ASSERT_EQ(testing::http_request(port, "POST", "/api/v1/auth/register",
                                    json{{"email", email}, {"password", password}, {"name", "Maria"}}.dump())
                  .status,
              201);
    bearer = "Authorization: Bearer " + testing::login(port, email, password);
    testing::HttpResponse first;
    ASSERT_TRUE(testing::wait_until([&] {  // one at a time: a group of one passes no crash point
      first = apply(port, bearer, "first");
      return first.status == 201;
    })) << first.body;
    acknowledged.insert(json::parse(first.body)["id"].get<std::int64_t>());

    // Bursts of concurrent applications until a commit holds two or more and the
    // server kills itself there.
    std::mutex mutex;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!server.wait_exit(std::chrono::milliseconds(0)) && std::chrono::steady_clock::now() < deadline) {
      std::vector<std::thread> clients;
      for (int i = 0; i < 16; ++i, ++sent)
        clients.emplace_back([&, n = sent] {
          try {
            auto answer = apply(port, bearer, "burst " + std::to_string(n));
            std::lock_guard lock(mutex);
            if (answer.status == 201) acknowledged.insert(json::parse(answer.body)["id"].get<std::int64_t>());
          } catch (const std::exception&) {  // no answer: the process is gone
            std::lock_guard lock(mutex);
            ++unanswered;
          }
        });
      for (auto& client : clients) client.join();
    }
    ASSERT_EQ(server.wait_exit(), 128 + SIGKILL) << server.output();
    EXPECT_NE(server.output().find("crash point " + point), std::string::npos) << server.output();
  }

  // The files as the kill left them (SQLite recovers the WAL on open).
  auto rows = ids(permits_db(), "SELECT id FROM applications");
  auto events =
      ids(permits_db(), "SELECT CAST(aggregate_id AS INTEGER) FROM outbox WHERE event_type = 'application.submitted'");
  for (auto id : acknowledged) EXPECT_TRUE(rows.contains(id)) << "acknowledged application " << id << " was lost";
  EXPECT_EQ(rows, events) << "an application without its event, or an event without its application";
  // The group the kill hit held two or more applications none of whose callers was
  // answered: after its commit they are all there, before it none is.
  EXPECT_GE(unanswered, 2);
  if (committed) {
    EXPECT_GE(rows.size(), acknowledged.size() + 2);
  } else {
    EXPECT_LE(rows.size(), static_cast<std::size_t>(1 + sent - 2));
  }

  // Restarted, revenue opens one fee invoice per application kept, and no other.
  ChildProcess server({TOWNHALL_BINARY, "serve", "--config", registry.string(), "--port", "0", "--data-dir", data()});
  ASSERT_NE(testing::wait_for_port(server), 0) << server.output();
  const auto invoices = [&] {
    return ids(data_dir.path() / "revenue.db",
               "SELECT CAST(source_id AS INTEGER) FROM invoices WHERE source_module = 'permits'");
  };
  EXPECT_TRUE(testing::wait_until([&] { return invoices() == rows; }, std::chrono::seconds(30)))
      << invoices().size() << " invoices for " << rows.size() << " applications";
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0) << server.output();
}

INSTANTIATE_TEST_SUITE_P(Points, GroupCommitCrash,
                         ::testing::Values("permits.group.before_commit", "permits.group.after_commit"),
                         [](const auto& info) {
                           return std::string(info.param).ends_with("before_commit") ? std::string("BeforeCommit")
                                                                                     : std::string("AfterCommit");
                         });

}  // namespace
}  // namespace townhall
