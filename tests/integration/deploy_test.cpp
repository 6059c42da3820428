// `townhall registry --deploy` (issue 23 §5; README "Run split across machines"): the
// generated front door passes `nginx -t` and routes each module's prefix to the process
// that serves it, the units pass `systemd-analyze verify` with every hardening line of
// deploy/townhall.service, and the broker's script and retention follow the registry.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;
using testing::TempDir;

std::string read(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

json split_registry() {
  auto registry = json::parse(std::ifstream(std::string(TOWNHALL_SOURCE_DIR) + "/config/townhall.json"));
  registry["modules"]["auth"]["internal"] = {{"address", "10.0.0.2"}, {"port", 9101}};
  for (const char* caller : {"permits", "revenue", "parks", "notify"})
    registry["modules"][caller]["internal"] = {{"key_file", std::string("keys/") + caller + ".key"}};
  registry["bus"]["transport"] = {{"kind", "rabbitmq"}, {"url_file", "amqp.url"}};
  registry["bus"]["max_hold_hours"] = 96;
  registry["deployment"] = {
      {"auth", {{"modules", {"auth"}}, {"address", "0.0.0.0"}, {"port", 8081}}},
      {"services", {{"modules", {"permits", "revenue", "parks", "notify"}}, {"address", "10.0.0.3"}, {"port", 8082}}}};
  return registry;
}

std::pair<int, std::string> townhall(std::vector<std::string> args) {
  args.insert(args.begin(), TOWNHALL_BINARY);
  ChildProcess child(std::move(args), {}, true);
  auto code = child.wait_exit();
  return {code.value_or(-1), child.output()};
}

std::pair<int, std::string> run(std::vector<std::string> argv) {
  ChildProcess child(std::move(argv), {}, true);
  auto code = child.wait_exit(std::chrono::seconds(60));
  return {code.value_or(-1), child.output()};
}

bool executable(const std::string& file) { return ::access(file.c_str(), X_OK) == 0; }

class Deploy : public ::testing::Test {
 protected:
  void SetUp() override {
    registry = dir.path() / "townhall.json";
    std::ofstream(registry) << split_registry().dump(2);
    out = dir.path() / "deploy";
    auto [code, output] = townhall({"registry", "--deploy", out.string(), "--hosts", "auth=10.0.0.2", "--config",
                                    registry.string(), "--data-dir", (dir.path() / "data").string()});
    ASSERT_EQ(code, 0) << output;
  }

  TempDir dir;
  std::filesystem::path registry, out;
};

TEST_F(Deploy, TheSiteRoutesEachModulesPrefixToItsProcess) {
  auto site = read(out / "nginx" / "townhall.conf");
  // --hosts for auth (it listens on every address), the deployment's address for services.
  EXPECT_NE(site.find("upstream townhall_auth {\n    server 10.0.0.2:8081;"), std::string::npos) << site;
  EXPECT_NE(site.find("upstream townhall_services {\n    server 10.0.0.3:8082;"), std::string::npos) << site;
  auto routed_to = [&site](const std::string& prefix, const std::string& process) {
    return site.find("location ^~ " + prefix + "/ {\n        proxy_pass http://townhall_" + process + ";") !=
           std::string::npos;
  };
  EXPECT_TRUE(routed_to("/api/v1/auth", "auth")) << site;
  for (const char* module : {"permits", "revenue", "parks", "notify"})
    EXPECT_TRUE(routed_to(std::string("/api/v1/") + module, "services")) << module << "\n" << site;
  // The site's own pages go to the process with the most modules.
  EXPECT_NE(site.find("location / {\n        proxy_pass http://townhall_services;"), std::string::npos) << site;
  EXPECT_NE(site.find("location /admin {\n        allow 127.0.0.1;"), std::string::npos) << site;
  EXPECT_EQ(site.find("/internal"), std::string::npos);  // auth's internal Api is never routed
}

TEST_F(Deploy, NginxAcceptsTheSite) {
  if (!executable("/usr/sbin/nginx")) GTEST_SKIP() << "nginx is not installed (scripts/install-deps.sh installs it)";
  if (!executable("/usr/bin/openssl")) GTEST_SKIP() << "openssl is not installed: no certificate for the site";
  auto t = dir.path() / "nginx";
  std::filesystem::create_directories(t);
  auto [made, made_output] =
      run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
           "/CN=townhall.example.org", "-keyout", (t / "key.pem").string(), "-out", (t / "cert.pem").string()});
  ASSERT_EQ(made, 0) << made_output;
  // The generated site as the operator installs it, its certificate paths pointed at the test's.
  auto site = read(out / "nginx" / "townhall.conf");
  for (auto [from, to] : {std::pair<std::string, std::string>{
                              "/etc/letsencrypt/live/townhall.example.org/fullchain.pem", (t / "cert.pem").string()},
                          {"/etc/letsencrypt/live/townhall.example.org/privkey.pem", (t / "key.pem").string()}}) {
    auto at = site.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    site.replace(at, from.size(), to);
  }
  std::ofstream(t / "site.conf") << site;
  std::ofstream(t / "nginx.conf") << "pid " << (t / "nginx.pid").string() << ";\nerror_log "
                                  << (t / "error.log").string() << ";\nevents {}\nhttp {\n    access_log off;\n"
                                  << "    client_body_temp_path " << (t / "body").string() << ";\n"
                                  << "    proxy_temp_path " << (t / "proxy").string() << ";\n"
                                  << "    fastcgi_temp_path " << (t / "fastcgi").string() << ";\n"
                                  << "    uwsgi_temp_path " << (t / "uwsgi").string() << ";\n"
                                  << "    scgi_temp_path " << (t / "scgi").string() << ";\n"
                                  << "    include " << (t / "site.conf").string() << ";\n}\n";
  auto [code, output] = run(
      {"/usr/sbin/nginx", "-t", "-p", t.string(), "-e", (t / "error.log").string(), "-c", (t / "nginx.conf").string()});
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("test is successful"), std::string::npos) << output;
}

TEST_F(Deploy, OneHardenedUnitPerProcessThatSystemdAccepts) {
  // Every line of the single process's [Service] section, but the four made per process.
  std::vector<std::string> hardening;
  std::istringstream source(read(std::string(TOWNHALL_SOURCE_DIR) + "/deploy/townhall.service"));
  for (std::string line; std::getline(source, line);)
    if (line.find('=') != std::string::npos && !line.starts_with("#") && !line.starts_with("Description=") &&
        !line.starts_with("ExecStart=") && !line.starts_with("User=") && !line.starts_with("StateDirectory="))
      hardening.push_back(line);
  ASSERT_GT(hardening.size(), 20u);
  std::map<std::string, std::string> modules{{"auth", "auth"}, {"services", "notify,parks,permits,revenue"}};
  std::vector<std::string> units;
  for (const auto& [process, list] : modules) {
    auto unit = read(out / "systemd" / ("townhall-" + process + ".service"));
    EXPECT_NE(unit.find("\nExecStart=/usr/local/bin/townhall serve --config /usr/local/etc/townhall/townhall.json "
                        "--data-dir /var/lib/townhall-" +
                        process + " --modules " + list + "\n"),
              std::string::npos)
        << unit;
    EXPECT_NE(unit.find("\nStateDirectory=townhall-" + process + "\n"), std::string::npos) << unit;
    for (const auto& line : hardening) EXPECT_NE(unit.find("\n" + line + "\n"), std::string::npos) << line;
    // For systemd-analyze: the binary under test where the unit expects the installed one.
    auto at = unit.find("/usr/local/bin/townhall");
    unit.replace(at, std::string_view("/usr/local/bin/townhall").size(), TOWNHALL_BINARY);
    auto file = dir.path() / "units" / ("townhall-" + process + ".service");
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << unit;
    units.push_back(file.string());
  }
  if (!executable("/usr/bin/systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed";
  std::vector<std::string> argv{"/usr/bin/systemd-analyze", "verify"};
  argv.insert(argv.end(), units.begin(), units.end());
  auto [code, output] = run(argv);
  // As tests/install_check.sh: the host's state (no such user yet, a read-only /etc) is not
  // the units' fault; syntax errors, unknown keys and missing executables are.
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::string lower;
    for (char c : line) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool problem = false;
    for (const char* word : {"unknown", "invalid", "not executable", "failed to", "bad", "missing"})
      problem = problem || lower.find(word) != std::string::npos;
    EXPECT_FALSE(problem && line.find("Failed to load configuration") == std::string::npos) << line;
  }
}

TEST_F(Deploy, TheBrokersRetentionCoversTheHoldBound) {
  auto setup = read(out / "rabbitmq" / "setup.sh");
  // bus.max_hold_hours 96, written as the bus declares its streams' x-max-age.
  EXPECT_NE(setup.find(R"('^townhall\..*' '^(amq\.default|townhall\..*)$' '^townhall\..*')"), std::string::npos)
      << setup;
  EXPECT_NE(setup.find(R"(townhall-streams '^townhall\.' '{"max-age": "96h"}')"), std::string::npos) << setup;
  auto [code, output] = run({"/bin/sh", "-n", (out / "rabbitmq" / "setup.sh").string()});
  EXPECT_EQ(code, 0) << output;
  EXPECT_TRUE(std::filesystem::exists(out / "rabbitmq" / "rabbitmq.conf"));
  auto readme = read(out / "README.md");
  EXPECT_NE(readme.find("| services | notify, parks, permits, revenue |"), std::string::npos) << readme;
}

TEST_F(Deploy, RefusesWhatItCannotRoute) {
  auto [code, output] = townhall({"registry", "--deploy", (dir.path() / "x").string(), "--config", registry.string(),
                                  "--data-dir", (dir.path() / "data").string()});
  EXPECT_EQ(code, 2);
  EXPECT_NE(output.find("deployment.auth listens on 0.0.0.0: say where nginx reaches it with --hosts auth=HOST"),
            std::string::npos)
      << output;
  std::tie(code, output) =
      townhall({"registry", "--deploy", (dir.path() / "x").string(), "--hosts", "auth=10.0.0.2,billing=10.0.0.9",
                "--config", registry.string(), "--data-dir", (dir.path() / "data").string()});
  EXPECT_EQ(code, 2);
  EXPECT_NE(output.find("--hosts: no process 'billing' in the deployment (it has: auth, services)"), std::string::npos)
      << output;
  std::tie(code, output) =
      townhall({"registry", "--deploy", (dir.path() / "x").string(), "--hosts", "auth=10.0.0.2;evil", "--config",
                registry.string(), "--data-dir", (dir.path() / "data").string()});
  EXPECT_EQ(code, 2);
  EXPECT_NE(output.find("is not a host name or address"), std::string::npos) << output;
  std::tie(code, output) =
      townhall({"registry", "--deploy", (dir.path() / "x").string(), "--data-dir", (dir.path() / "data").string()});
  EXPECT_EQ(code, 2);
  EXPECT_NE(output.find("the registry has no deployment section"), std::string::npos) << output;
}

}  // namespace
}  // namespace townhall
