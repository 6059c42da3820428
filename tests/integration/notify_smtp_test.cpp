// notify against a real SMTP server (Debian's python3-aiosmtpd, started by the test on a
// loopback port, storing what it accepts in a maildir): a notice becomes exactly one email
// with a stable Message-ID; an SMTP server that is down for a while gets the email once
// it is back; a kill -9 between the server's acceptance and notify's commit sends it at
// most once more, with the same Message-ID; a citizen who turned the kind off gets none.
#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/app/application.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;

unsigned short free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool accepts(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// Debian's aiosmtpd (python3-aiosmtpd), its Mailbox handler writing each accepted
// message into `maildir`.
class SmtpServer {
 public:
  SmtpServer(unsigned short port, const std::filesystem::path& maildir)
      : process_({"/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:" + std::to_string(port), "-c",
                  "aiosmtpd.handlers.Mailbox", maildir.string()}) {
    ready_ = testing::wait_until([&] { return accepts(port); }, std::chrono::seconds(20));
  }
  ~SmtpServer() {
    process_.signal(SIGTERM);
    process_.wait_exit();
  }
  bool ready() const { return ready_; }
  std::string output() const { return process_.output(); }

 private:
  ChildProcess process_;
  bool ready_ = false;
};

class NotifySmtp : public ::testing::Test {
 protected:
  void SetUp() override {
    smtp_port = free_port();
    auto document = json::parse(app::default_registry());
    document["server"]["rate_limit"]["enabled"] = false;
    document["modules"]["auth"]["settings"]["password_hash"] = {{"passes", 1}, {"memory_kib", 8192}};
    document["modules"]["notify"]["settings"] = {{"smtp",
                                                  {{"enabled", true},
                                                   {"host", "127.0.0.1"},
                                                   {"port", smtp_port},
                                                   {"security", "none"},
                                                   {"from", "Town Hall <no-reply@town.example>"},
                                                   {"timeout_ms", 5000}}},
                                                 {"max_attempts", 50},
                                                 {"retry_initial_ms", 100},
                                                 {"retry_max_ms", 500}};
    registry = config_dir.path() / "registry.json";
    std::ofstream(registry) << document.dump(2);
    ChildProcess init({TOWNHALL_BINARY, "migrate", "--init", "--config", registry.string(), "--data-dir", data()});
    ASSERT_EQ(init.wait_exit(), 0) << init.output();
    ChildProcess admin({TOWNHALL_BINARY, "admin", "create-user", "--config", registry.string(), "--data-dir", data(),
                        "--email", "admin@example.org", "--password", "staff password 1", "--name", "Admin", "--role",
                        "admin"});
    ASSERT_EQ(admin.wait_exit(), 0) << admin.output();
  }

  std::string data() const { return data_dir.path().string(); }
  std::filesystem::path maildir() const { return mail_dir.path() / "mail"; }

  std::unique_ptr<ChildProcess> serve(const char* binary = TOWNHALL_BINARY,
                                      std::map<std::string, std::string> env = {}) {
    auto child = std::make_unique<ChildProcess>(
        std::vector<std::string>{binary, "serve", "--config", registry.string(), "--port", "0", "--data-dir", data()},
        std::move(env));
    port = testing::wait_for_port(*child);
    return child;
  }

  // A citizen with a verified email, signed in; its id.
  std::int64_t verified_citizen(const std::string& email) {
    auto registered =
        testing::call(port, "POST", "/api/v1/auth/register",
                      json{{"email", email}, {"password", "a long enough password"}, {"name", "Maria"}}.dump());
    EXPECT_EQ(registered.status, 201) << registered.body;
    auto id = json::parse(registered.body)["id"].get<std::int64_t>();
    EXPECT_EQ(testing::call(port, "PATCH", "/api/v1/auth/citizens/" + std::to_string(id), R"({"email_verified":true})",
                            admin_token())
                  .status,
              200);
    token = testing::login(port, email, "a long enough password");
    return id;
  }
  // notify learns of the verification from auth's event before it may mail the address.
  bool notify_knows_verified(std::int64_t citizen) {
    return testing::wait_until([&] {
      return scalar("SELECT count(*) FROM citizen_refs WHERE email_verified = 1 AND citizen_id = " +
                    std::to_string(citizen)) == 1;
    });
  }
  std::string admin_token() { return testing::login(port, "admin@example.org", "staff password 1"); }

  // A business licence the citizen applies for and the administrator approves: revenue
  // opens its fee invoice (invoice.created), which notify turns into "New invoice".
  void license_invoiced(const std::string& name) {
    auto applied =
        testing::call(port, "POST", "/api/v1/revenue/business-licenses",
                      json{{"business_name", name}, {"activity", "food"}, {"address", "2 Main St"}}.dump(), token);
    ASSERT_EQ(applied.status, 201) << applied.body;
    auto id = json::parse(applied.body)["id"].get<std::int64_t>();
    auto decided = testing::call(port, "POST", "/api/v1/revenue/business-licenses/" + std::to_string(id) + "/decision",
                                 R"({"decision":"approve"})", admin_token());
    ASSERT_EQ(decided.status, 200) << decided.body;
  }

  // The messages the SMTP server accepted: Message-ID -> how many times.
  std::map<std::string, int> delivered() const {
    std::map<std::string, int> out;
    std::error_code ignored;
    for (const auto* sub : {"new", "cur"}) {
      for (const auto& entry : std::filesystem::directory_iterator(maildir() / sub, ignored)) {
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
          if (line.rfind("Message-ID: ", 0) == 0) {
            auto id = line.substr(12);
            if (!id.empty() && id.back() == '\r') id.pop_back();
            ++out[id];
            break;
          }
        }
      }
    }
    return out;
  }
  std::string first_message() const {
    for (const auto& entry : std::filesystem::directory_iterator(maildir() / "new")) {
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      return text.str();
    }
    return {};
  }
  std::int64_t scalar(const std::string& sql) const {
    SQLite::Database db((data_dir.path() / "notify.db").string(), SQLite::OPEN_READONLY);
    db.setBusyTimeout(5000);
    return db.execAndGet(sql).getInt64();
  }
  json inbox() { return json::parse(testing::call(port, "GET", "/api/v1/notify/inbox", {}, token).body); }

  testing::TempDir config_dir, data_dir, mail_dir;
  std::filesystem::path registry;
  unsigned short port = 0, smtp_port = 0;
  std::string token;
};

TEST_F(NotifySmtp, ANoticeIsMailedOnceWithAStableMessageId) {
  SmtpServer smtp(smtp_port, maildir());
  ASSERT_TRUE(smtp.ready()) << smtp.output();
  auto server = serve();
  ASSERT_NE(port, 0) << server->output();
  ASSERT_TRUE(notify_knows_verified(verified_citizen("maria@example.org")));
  license_invoiced("Corner Cafe");
  ASSERT_TRUE(testing::wait_until([&] { return delivered().size() == 1; }, std::chrono::seconds(20)))
      << server->output();
  auto message = first_message();
  EXPECT_NE(message.find("Subject: New invoice: 100.00 USD"), std::string::npos) << message;
  EXPECT_NE(message.find("To: <maria@example.org>"), std::string::npos) << message;
  EXPECT_NE(message.find("From: Town Hall <no-reply@town.example>"), std::string::npos) << message;
  auto sent = delivered();
  EXPECT_EQ(sent.begin()->second, 1);
  EXPECT_NE(sent.begin()->first.find("@town.example>"), std::string::npos);
  EXPECT_TRUE(
      testing::wait_until([&] { return scalar("SELECT count(*) FROM deliveries WHERE status = 'sent'") == 1; }));
  // The inbox has it too, unread, and only the citizen reads it.
  auto listed = inbox();
  ASSERT_EQ(listed["items"].size(), 1u) << listed.dump();
  EXPECT_EQ(listed["items"][0]["kind"], "invoice_opened");
  EXPECT_EQ(listed["unread"], 1);
  auto id = listed["items"][0]["id"].get<std::int64_t>();
  EXPECT_EQ(
      testing::call(port, "POST", "/api/v1/notify/inbox/" + std::to_string(id) + "/read", "", admin_token()).status,
      403);
  EXPECT_EQ(testing::call(port, "POST", "/api/v1/notify/inbox/" + std::to_string(id) + "/read", "", token).status, 200);
  EXPECT_EQ(inbox()["unread"], 0);
  // Turned off, the next invoice is in the inbox and not in the mail.
  auto changed =
      testing::call(port, "PATCH", "/api/v1/notify/preferences", R"({"email":{"invoice_opened":false}})", token);
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(json::parse(changed.body)["email"]["invoice_opened"], false);
  EXPECT_EQ(testing::call(port, "PATCH", "/api/v1/notify/preferences", R"({"email":{"gossip":true}})", token).status,
            400);
  license_invoiced("Second Cafe");
  ASSERT_TRUE(testing::wait_until([&] { return inbox()["items"].size() == 2; }));
  EXPECT_EQ(scalar("SELECT count(*) FROM deliveries"), 1);
  EXPECT_EQ(delivered().size(), 1u);
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait_exit(), 0);
}

TEST_F(NotifySmtp, AnEmailWaitsForAnSmtpServerThatIsDownAndIsSentOnceItIsBack) {
  auto server = serve();
  ASSERT_NE(port, 0) << server->output();
  ASSERT_TRUE(notify_knows_verified(verified_citizen("maria@example.org")));
  license_invoiced("Corner Cafe");
  // Nobody listens on the SMTP port: attempts fail and are retried with a backoff.
  ASSERT_TRUE(testing::wait_until([&] { return scalar("SELECT max(attempts) FROM deliveries") >= 2; },
                                  std::chrono::seconds(20)))
      << server->output();
  EXPECT_EQ(scalar("SELECT count(*) FROM deliveries WHERE status = 'pending'"), 1);
  SmtpServer smtp(smtp_port, maildir());
  ASSERT_TRUE(smtp.ready()) << smtp.output();
  ASSERT_TRUE(testing::wait_until([&] { return delivered().size() == 1; }, std::chrono::seconds(20)))
      << server->output();
  EXPECT_TRUE(
      testing::wait_until([&] { return scalar("SELECT count(*) FROM deliveries WHERE status = 'sent'") == 1; }));
  EXPECT_EQ(delivered().begin()->second, 1);
  auto metrics = testing::call(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("townhall_notify_emails_total{outcome=\"retried\"}"), std::string::npos);
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait_exit(), 0);
}

// "Forgot password": the reset code arrives by email (to the account's address, verified
// or not, staff included), works once, and is in no file in the clear; an unknown
// address gets no email and the same answer.
TEST_F(NotifySmtp, AForgottenPasswordIsResetWithTheCodeFromTheEmail) {
  SmtpServer smtp(smtp_port, maildir());
  ASSERT_TRUE(smtp.ready()) << smtp.output();
  auto server = serve();
  ASSERT_NE(port, 0) << server->output();
  auto registered = testing::call(
      port, "POST", "/api/v1/auth/register",
      json{{"email", "maria@example.org"}, {"password", "a long enough password"}, {"name", "Maria"}}.dump());
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto unknown =
      testing::call(port, "POST", "/api/v1/auth/password-resets/request", R"({"email":"nobody@example.org"})");
  auto known = testing::call(port, "POST", "/api/v1/auth/password-resets/request", R"({"email":"Maria@example.org"})");
  EXPECT_EQ(unknown.status, 202);
  EXPECT_EQ(known.status, 202);
  EXPECT_EQ(unknown.body, known.body);
  ASSERT_TRUE(testing::wait_until([&] { return delivered().size() == 1; }, std::chrono::seconds(20)))
      << server->output();
  auto message = first_message();
  EXPECT_NE(message.find("To: <maria@example.org>"), std::string::npos) << message;
  EXPECT_NE(message.find("Subject: Reset your Townhall password"), std::string::npos) << message;
  const std::string mark = "Your reset code: ";
  auto at = message.find(mark);
  ASSERT_NE(at, std::string::npos) << message;
  auto code = message.substr(at + mark.size(), 43);
  EXPECT_EQ(message.find("{token}"), std::string::npos);
  EXPECT_TRUE(
      testing::wait_until([&] { return scalar("SELECT count(*) FROM deliveries WHERE status = 'sent'") == 1; }));
  EXPECT_EQ(scalar("SELECT count(*) FROM deliveries"), 1);  // none for the unknown address
  for (const auto& entry : std::filesystem::directory_iterator(data_dir.path())) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_EQ(bytes.str().find(code), std::string::npos) << entry.path() << " holds the code in the clear";
  }
  auto confirm = [&](const std::string& password) {
    return testing::call(port, "POST", "/api/v1/auth/password-resets/confirm",
                         json{{"token", code}, {"new_password", password}}.dump());
  };
  EXPECT_EQ(confirm("a brand new password").status, 204);
  EXPECT_FALSE(testing::login(port, "maria@example.org", "a brand new password").empty());
  EXPECT_EQ(confirm("another new password").status, 400);  // once

  // Staff forget passwords too: an employee's reset goes the same way.
  ASSERT_EQ(
      testing::call(port, "POST", "/api/v1/auth/password-resets/request", R"({"email":"admin@example.org"})").status,
      202);
  ASSERT_TRUE(testing::wait_until([&] { return delivered().size() == 2; }, std::chrono::seconds(20)))
      << server->output();
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait_exit(), 0);
}

// kill -9 after the SMTP server accepted the message and before notify recorded it: the
// restarted server sends it again, with the same Message-ID (a receiver can tell), and
// records it; never a third time, never lost.
TEST_F(NotifySmtp, AKillBetweenTheServersAcceptanceAndTheCommitSendsAtMostOneDuplicate) {
  SmtpServer smtp(smtp_port, maildir());
  ASSERT_TRUE(smtp.ready()) << smtp.output();
  {
    auto server = serve(TOWNHALL_FAULTY_BINARY, {{"TOWNHALL_CRASH_AT", "notify.after_smtp_accept"}});
    ASSERT_NE(port, 0) << server->output();
    ASSERT_TRUE(notify_knows_verified(verified_citizen("maria@example.org")));
    license_invoiced("Corner Cafe");
    ASSERT_EQ(server->wait_exit(std::chrono::seconds(30)), 128 + SIGKILL) << server->output();
  }
  EXPECT_EQ(delivered().size(), 1u);
  EXPECT_EQ(scalar("SELECT count(*) FROM deliveries WHERE status = 'pending'"), 1);  // the commit never happened
  auto server = serve();
  ASSERT_NE(port, 0) << server->output();
  ASSERT_TRUE(testing::wait_until([&] { return scalar("SELECT count(*) FROM deliveries WHERE status = 'sent'") == 1; },
                                  std::chrono::seconds(20)))
      << server->output();
  auto sent = delivered();
  ASSERT_EQ(sent.size(), 1u);          // one Message-ID
  EXPECT_EQ(sent.begin()->second, 2);  // the duplicate the crash allows, and no more
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait_exit(), 0);
  EXPECT_EQ(delivered().begin()->second, 2);
}

}  // namespace
}  // namespace townhall
