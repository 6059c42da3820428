// One process of a split deployment (issue 23 §4; README "Run split across machines"), the
// townhall binary as a child on loopback ports with temp data dirs: `serve --modules`
// builds and mounts only its own modules, and a process without auth authenticates through
// auth's process over HTTP, and, with a broker the test starts, auth's events reach the
// other process's caches through its stream.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "citizen_journey.hpp"
#include "rabbitmq_broker.hpp"
#include "split_deployment.hpp"
#include "support.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;
using testing::free_loopback_port;
using testing::RabbitMqBroker;
using testing::TempDir;

// The built-in registry split in two (auth alone, the other four modules signing their
// calls to auth with their own keys), cheap password hashing for the tests.
json test_split_registry(unsigned short internal_port) {
  auto registry = json::parse(std::ifstream(std::string(TOWNHALL_SOURCE_DIR) + "/config/townhall.json"));
  registry["server"]["rate_limit"]["enabled"] = false;
  registry["logging"] = {{"level", "info"}, {"access_log", "off"}};
  registry["modules"]["auth"]["settings"]["password_hash"] = {{"passes", 1}, {"memory_kib", 8192}};
  // Long enough that a token checked before auth's process stops is still kept after.
  registry["modules"]["auth"]["settings"]["token_cache_ttl_ms"] = 60000;
  return testing::split_registry(std::move(registry), internal_port);
}

const std::vector<std::string> kCallers{"notify", "parks", "permits", "revenue"};

std::filesystem::path data_dir(const std::filesystem::path& root, const std::string& process,
                               const std::string& broker_url = "amqp://townhall:secret@127.0.0.1:5672/townhall") {
  return testing::split_data_dir(root, process, broker_url, kCallers);
}

class Split : public ::testing::Test {
 protected:
  void SetUp() override {
    internal_port = free_loopback_port();
    registry = dir.path() / "townhall.json";
    std::ofstream(registry) << test_split_registry(internal_port).dump(2);
  }

  std::unique_ptr<ChildProcess> serve(
      const std::string& process, const std::string& modules,
      const std::string& broker_url = "amqp://townhall:secret@127.0.0.1:5672/townhall") {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{TOWNHALL_BINARY, "serve", "--modules", modules, "--port", "0", "--config",
                                 registry.string(), "--data-dir", data_dir(dir.path(), process, broker_url).string()},
        std::map<std::string, std::string>{}, true);
  }

  // Auth's process, then the other modules' process, each waited for until it listens.
  void start_split(const std::string& broker_url) {
    auth = serve("auth", "auth", broker_url);
    auth_port = testing::wait_for_port(*auth);
    ASSERT_NE(auth_port, 0) << auth->output();
    services = serve("services", "permits,revenue,parks,notify", broker_url);
    port = testing::wait_for_port(*services);
    ASSERT_NE(port, 0) << services->output();
  }

  TempDir dir;
  unsigned short internal_port = 0;
  std::filesystem::path registry;
  std::unique_ptr<ChildProcess> auth, services;
  unsigned short auth_port = 0, port = 0;  // the two processes' listeners
};

// A new session's token for `email` (signed in at auth's process).
std::string login(unsigned short port, const std::string& email,
                  const std::string& password = "a long enough password") {
  auto login =
      testing::http_request(port, "POST", "/api/v1/auth/login", json{{"email", email}, {"password", password}}.dump());
  EXPECT_EQ(login.status, 200) << login.body;
  return login.status == 200 ? json::parse(login.body)["token"].get<std::string>() : "";
}

std::string register_and_login(unsigned short port, const std::string& email = "maria@example.org") {
  auto registered = testing::http_request(
      port, "POST", "/api/v1/auth/register",
      json{{"email", email}, {"password", "a long enough password"}, {"name", "Citizen " + email}}.dump());
  EXPECT_EQ(registered.status, 201) << registered.body;
  return login(port, email);
}

testing::HttpResponse get(unsigned short port, const std::string& target, const std::string& token = {}) {
  std::vector<std::string> headers;
  if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  return testing::http_request(port, "GET", target, {}, headers);
}

TEST_F(Split, AnAuthProcessServesAuthAloneAndMountsNoOtherModulesRoutes) {
  auto auth = serve("auth", "auth");
  auto port = testing::wait_for_port(*auth);
  ASSERT_NE(port, 0) << auth->output();
  auto token = register_and_login(port);
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(get(port, "/api/v1/auth/me", token).status, 200);
  // The other modules run elsewhere: their routes are not here at all (nginx routes them).
  for (const auto* target : {"/api/v1/permits/status", "/api/v1/permits/applications", "/api/v1/revenue/status",
                             "/api/v1/parks/status", "/api/v1/notify/status"}) {
    auto response = get(port, target, token);
    EXPECT_EQ(response.status, 404) << target << ": " << response.body;
  }
  auto ready = get(port, "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  auto modules = json::parse(ready.body)["modules"];
  EXPECT_EQ(modules.size(), 1u) << ready.body;
  EXPECT_EQ(modules["auth"]["state"], "up") << ready.body;
  auto metrics = get(port, "/metrics");
  EXPECT_NE(metrics.body.find("townhall_module_up{module=\"auth\"} 1"), std::string::npos);
  EXPECT_EQ(metrics.body.find("townhall_module_up{module=\"permits\""), std::string::npos);
  // Only its own module's file in its data directory.
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "auth" / "auth.db"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "auth" / "permits.db"));
  auth->signal(SIGTERM);
  EXPECT_EQ(auth->wait_exit(), 0) << auth->output();
}

TEST_F(Split, AProcessWithoutAuthAuthenticatesThroughAuthsProcess) {
  auto auth = serve("auth", "auth");
  auto auth_port = testing::wait_for_port(*auth);
  ASSERT_NE(auth_port, 0) << auth->output();
  auto services = serve("services", "notify,parks,permits,revenue");  // any order
  auto port = testing::wait_for_port(*services);
  ASSERT_NE(port, 0) << services->output();
  auto token = register_and_login(auth_port);
  ASSERT_FALSE(token.empty());

  // A token auth's process issued opens permits' routes in the other process: its gateway
  // asks auth over HTTP.
  auto mine = get(port, "/api/v1/permits/applications", token);
  EXPECT_EQ(mine.status, 200) << mine.body;
  EXPECT_EQ(get(port, "/api/v1/permits/applications").status, 401);
  EXPECT_EQ(get(port, "/api/v1/permits/applications", "not-a-token").status, 401);
  EXPECT_EQ(get(port, "/api/v1/auth/me", token).status, 404);  // auth's routes are not mounted here
  auto ready = get(port, "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  auto readiness = json::parse(ready.body);
  EXPECT_EQ(readiness["remote"]["auth"]["state"], "up") << ready.body;
  EXPECT_EQ(readiness["modules"].size(), 4u) << ready.body;
  EXPECT_FALSE(readiness["modules"].contains("auth")) << ready.body;

  // auth's process gone: a token this process has not checked in the token cache's TTL
  // cannot be (503, not 401); the one it just checked still opens the routes (design note
  // 59); /readyz says what is missing.
  auto unchecked = login(auth_port, "maria@example.org");
  auth->signal(SIGTERM);
  ASSERT_EQ(auth->wait_exit(), 0) << auth->output();
  EXPECT_EQ(get(port, "/api/v1/permits/applications", unchecked).status, 503);
  EXPECT_EQ(get(port, "/api/v1/permits/applications", token).status, 200);
  ready = get(port, "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;  // its own modules still serve
  readiness = json::parse(ready.body);
  EXPECT_EQ(readiness["status"], "degraded") << ready.body;
  EXPECT_EQ(readiness["remote"]["auth"]["state"], "down") << ready.body;
  services->signal(SIGTERM);
  EXPECT_EQ(services->wait_exit(), 0) << services->output();
}

// The value of a counter or gauge series in a /metrics exposition (0 when absent).
double metric(const std::string& exposition, const std::string& series) {
  auto at = exposition.find("\n" + series + " ");
  return at == std::string::npos ? 0 : std::stod(exposition.substr(at + series.size() + 2));
}

// The split with its broker: a citizen auth's process registers reaches the caches of the
// modules in the other process through auth's stream, and both say they reach the broker.
TEST_F(Split, AuthsEventsReachTheOtherProcessThroughTheBroker) {
  if (!RabbitMqBroker::installed()) GTEST_SKIP() << RabbitMqBroker::skip_reason();
  RabbitMqBroker broker;
  ASSERT_NO_FATAL_FAILURE(start_split(broker.url()));
  ASSERT_FALSE(register_and_login(auth_port).empty());

  const std::vector<std::string> caches{"permits", "revenue", "parks", "notify"};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string exposition;
  for (;;) {
    exposition = get(port, "/metrics").body;
    bool all = true;
    for (const auto& module : caches)
      all = all && metric(exposition, "townhall_bus_events_applied_total{module=\"" + module +
                                          "\",subscription=\"citizen_refs\"}") >= 1;
    if (all) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << exposition << "\n" << services->output();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(metric(exposition, "townhall_bus_stream_connected{connection=\"consume\"}"), 1) << exposition;
  EXPECT_EQ(metric(exposition, "townhall_bus_stream_connected{connection=\"publish\"}"), 1) << exposition;
  auto auth_metrics = get(auth_port, "/metrics").body;
  EXPECT_GE(metric(auth_metrics, "townhall_bus_stream_published_total{module=\"auth\"}"), 1) << auth_metrics;
  for (auto target_port : {auth_port, port}) {
    auto ready = get(target_port, "/readyz");
    EXPECT_EQ(json::parse(ready.body)["remote"]["broker"]["state"], "up") << ready.body;
  }
  // The broker gone: both keep serving, and say what is missing.
  broker.kill();
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    auto ready = get(port, "/readyz");
    ASSERT_EQ(ready.status, 200) << ready.body;
    auto readiness = json::parse(ready.body);
    if (readiness["remote"]["broker"]["state"] == "down") {
      EXPECT_EQ(readiness["status"], "degraded") << ready.body;
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << ready.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  services->signal(SIGTERM);
  EXPECT_EQ(services->wait_exit(), 0) << services->output();
  auth->signal(SIGTERM);
  EXPECT_EQ(auth->wait_exit(), 0) << auth->output();
}

// `make run-split` as a user runs it (scripts/run-split.sh: a broker, `--modules auth`,
// `--modules permits,revenue,parks,notify` with demo data, nginx from `registry --deploy`):
// the citizen journey the single-process tests walk (tests/integration/journey_test.cpp),
// through the front door; SIGTERM then stops every process the script started.
TEST(SplitFrontDoor, TheCitizenJourneyOfOneProcessWorksThroughNginxAcrossTwoProcesses) {
  if (!RabbitMqBroker::installed()) GTEST_SKIP() << RabbitMqBroker::skip_reason();
  if (!std::filesystem::exists("/usr/sbin/nginx")) GTEST_SKIP() << "nginx is not installed (make deps)";
  TempDir dir;
  ChildProcess split(
      {"/bin/bash", std::string(TOWNHALL_SOURCE_DIR) + "/scripts/run-split.sh"},
      {{"TOWNHALL_BINARY", TOWNHALL_BINARY}, {"SPLIT_DIR", (dir.path() / "split").string()}, {"PORT", "0"}}, true);
  auto front = split.wait_for_line("front door: http://127.0.0.1:", std::chrono::seconds(240));
  ASSERT_TRUE(front) << split.output();
  auto port = static_cast<unsigned short>(std::stoi(front->substr(front->rfind(':') + 1)));
  auto passwords = testing::demo_passwords(split.output());
  ASSERT_EQ(passwords.size(), 8u) << split.output();

  testing::walk_the_citizen_journey(port, passwords, "jo.journey@example.org");

  split.signal(SIGTERM);
  EXPECT_EQ(split.wait_exit(std::chrono::seconds(60)), 130) << split.output();
  // Nothing it started is left listening at the front door.
  EXPECT_THROW(testing::http_request(port, "GET", "/healthz"), std::runtime_error);
}

// Auth down in the split (issue 23): permits decides from its cache within the fallback
// rules and answers 503 beyond them, as in one process (PermitsWithBrokenAuth). Maria's
// verification reached permits through the broker before auth's process died; Li's did not
// (the broker was down), so permits has no row to fall back on. Both reviewers' and
// citizens' tokens were checked by this process before, so its token cache still knows
// them; a token it never checked cannot be (503). With auth back, Li is approved.
TEST_F(Split, WithAuthDownPermitsDecidesFromAFreshCacheRowAndAnswers503Beyond) {
  if (!RabbitMqBroker::installed()) GTEST_SKIP() << RabbitMqBroker::skip_reason();
  RabbitMqBroker broker;
  // Staff are created on auth's host as README "Run split across machines" says.
  auto auth_dir = data_dir(dir.path(), "auth", broker.url());
  ChildProcess init(
      {TOWNHALL_BINARY, "migrate", "--init", "--config", registry.string(), "--data-dir", auth_dir.string()}, {}, true);
  ASSERT_EQ(init.wait_exit(std::chrono::seconds(60)), 0) << init.output();
  for (const auto& [email, role] :
       {std::pair{"admin@example.org", "admin"}, {"rita@example.org", "permits_reviewer"}}) {
    ChildProcess create(
        {TOWNHALL_BINARY, "admin", "create-user", "--email", email, "--password", "staff password 1", "--name", "Staff",
         "--role", role, "--department", "BLD", "--config", registry.string(), "--data-dir", auth_dir.string()},
        {}, true);
    ASSERT_EQ(create.wait_exit(std::chrono::seconds(60)), 0) << create.output();
  }
  ASSERT_NO_FATAL_FAILURE(start_split(broker.url()));
  auto admin = login(auth_port, "admin@example.org", "staff password 1");
  auto rita = login(auth_port, "rita@example.org", "staff password 1");

  auto applied = [&](const std::string& subscription) {
    return metric(get(port, "/metrics").body,
                  "townhall_bus_events_applied_total{module=\"permits\",subscription=\"" + subscription + "\"}");
  };
  auto verified_citizen = [&](const std::string& email) {
    auto token = register_and_login(auth_port, email);
    auto me = json::parse(get(auth_port, "/api/v1/auth/me", token).body);
    auto verified = testing::http_request(auth_port, "PATCH", "/api/v1/auth/citizens/" + me["id"].dump(),
                                          R"({"identity_verified":true})", {"Authorization: Bearer " + admin});
    EXPECT_EQ(verified.status, 200) << verified.body;
    return token;
  };
  auto submit = [&](const std::string& token) {
    auto submitted = testing::http_request(
        port, "POST", "/api/v1/permits/applications",
        R"({"permit_type":"fence","description":"A fence","property_address":"1 Elm St","department_code":"BLD"})",
        {"Authorization: Bearer " + token});
    EXPECT_EQ(submitted.status, 201) << submitted.body;
    return "/api/v1/permits/applications/" + json::parse(submitted.body)["id"].dump() + "/decision";
  };
  // Maria registered and verified, and the department: all in permits' caches.
  auto maria_token = verified_citizen("maria@example.org");
  ASSERT_TRUE(testing::wait_until([&] { return applied("citizen_refs") >= 2 && applied("department_refs") >= 1; },
                                  std::chrono::seconds(60)))
      << services->output();
  auto maria = submit(maria_token);
  // The broker down, then Li: her events stay in auth's outbox.
  broker.kill();
  auto li = submit(verified_citizen("li@example.org"));
  ASSERT_EQ(get(port, "/api/v1/permits/applications", rita).status, 200);  // rita's token checked here
  auto unchecked = login(auth_port, "rita@example.org", "staff password 1");

  auth->signal(SIGKILL);
  ASSERT_TRUE(auth->wait_exit());
  auto approve = [&](const std::string& path, const std::string& token) {
    return testing::http_request(port, "POST", path, R"({"decision":"approve"})", {"Authorization: Bearer " + token});
  };
  auto approved = approve(maria, rita);
  ASSERT_EQ(approved.status, 200) << approved.body << services->output();
  EXPECT_EQ(json::parse(approved.body)["status"], "approved");
  auto refused = approve(li, rita);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("auth module is unavailable"), std::string::npos) << refused.body;
  EXPECT_FALSE(refused.header("retry-after").empty());
  EXPECT_EQ(approve(li, unchecked).status, 503);  // not 401: nobody can say
  auto ready = json::parse(get(port, "/readyz").body);
  EXPECT_EQ(ready["status"], "degraded") << ready.dump();
  EXPECT_EQ(ready["remote"]["auth"]["state"], "down") << ready.dump();

  // Auth back (the broker still down): permits reads Li fresh from auth's Api.
  auth = serve("auth", "auth", broker.url());
  ASSERT_NE(testing::wait_for_port(*auth), 0) << auth->output();
  approved = approve(li, rita);
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(json::parse(approved.body)["status"], "approved");
  services->signal(SIGTERM);
  EXPECT_EQ(services->wait_exit(), 0) << services->output();
  auth->signal(SIGTERM);
  EXPECT_EQ(auth->wait_exit(), 0) << auth->output();
}

// The broker's URL holds its password: a url_file others may read stops the start, naming it.
TEST_F(Split, ABrokerUrlFileOthersCanReadStopsTheStart) {
  auto data = data_dir(dir.path(), "auth");
  std::filesystem::permissions(data / "amqp.url", std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  ChildProcess auth({TOWNHALL_BINARY, "serve", "--modules", "auth", "--port", "0", "--config", registry.string(),
                     "--data-dir", data.string()},
                    {}, true);
  EXPECT_EQ(auth.wait_exit(), 1);
  EXPECT_NE(auth.output().find("bus.transport.url_file: " + (data / "amqp.url").string() +
                               " is readable by group or others; chmod 600 it"),
            std::string::npos)
      << auth.output();
}

// `serve --modules` on a registry that cannot be split: exit 2 and what to do.
TEST_F(Split, ModulesOnARegistryWithoutADeploymentIsRefused) {
  ChildProcess child(
      {TOWNHALL_BINARY, "serve", "--modules", "auth", "--port", "0", "--data-dir", (dir.path() / "data").string()}, {},
      true);
  EXPECT_EQ(child.wait_exit(), 2);
  EXPECT_NE(child.output().find("--modules runs one process of a split deployment, and the registry has no "
                                "deployment section"),
            std::string::npos)
      << child.output();
  ChildProcess unknown({TOWNHALL_BINARY, "serve", "--modules", "auth,billing", "--port", "0", "--config",
                        registry.string(), "--data-dir", (dir.path() / "data").string()},
                       {}, true);
  EXPECT_EQ(unknown.wait_exit(), 2);
  EXPECT_NE(unknown.output().find("--modules: no module 'billing' in the registry"), std::string::npos)
      << unknown.output();
}

}  // namespace
}  // namespace townhall
