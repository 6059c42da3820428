#include "townhall/platform/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/app/application.hpp"

namespace townhall::config {
namespace {

using nlohmann::json;

json minimal() {
  return json::parse(R"({
    "modules": {
      "auth":    {"db": "auth.db", "route_prefix": "/api/v1/auth"},
      "permits": {"db": "permits.db", "route_prefix": "/api/v1/permits", "depends_on": ["auth"]}
    }
  })");
}

TEST(Config, BuiltInRegistryIsValidAndOrdered) {
  auto config = parse(json::parse(app::default_registry()), app::known_modules());
  ASSERT_EQ(config.modules.size(), 5u);
  EXPECT_EQ(config.modules.front().name, "auth");  // everything depends on auth
  EXPECT_EQ(config.server.http.port, 8080);
  EXPECT_EQ(config.server.http.body_limit, 1024u * 1024u);
  EXPECT_EQ(config.server.http.header_limit, 16u * 1024u);
  ASSERT_NE(config.module("permits"), nullptr);
  EXPECT_EQ(config.module("permits")->route_prefix, "/api/v1/permits");
  EXPECT_EQ(config.module("permits")->subscriptions.front().topic, "gov.auth.citizen");
}

// Each module's internal endpoint (README "Internal API"): off unless given; a key per
// calling module, never shared; no two listeners on one endpoint, none on the public port.
TEST(Config, InternalEndpoints) {
  auto config = parse(minimal(), app::known_modules());
  EXPECT_FALSE(config.module("auth")->internal);

  auto document = minimal();
  document["modules"]["auth"]["internal"] = {{"port", 9101}, {"key_file", "keys/auth.key"}};
  document["modules"]["permits"]["internal"] = {{"key_file", "keys/permits.key"}, {"replay_window_seconds", 10}};
  config = parse(document, app::known_modules());
  const auto& auth = *config.module("auth")->internal;
  EXPECT_EQ(auth.address, "127.0.0.1");
  EXPECT_EQ(auth.port, std::optional<std::uint16_t>(9101));
  EXPECT_EQ(auth.key_file, "keys/auth.key");
  EXPECT_EQ(auth.replay_window, std::chrono::seconds(30));
  const auto& permits = *config.module("permits")->internal;
  EXPECT_FALSE(permits.port);
  EXPECT_EQ(permits.replay_window, std::chrono::seconds(10));

  auto shared = document;
  shared["modules"]["permits"]["internal"]["key_file"] = "keys/./auth.key";
  EXPECT_EQ(testing::registry_error(shared),
            "modules.permits.internal.key_file: 'keys/./auth.key' is already the key of module 'auth'; each module "
            "signs with its own key");
  auto twice = document;
  twice["modules"]["permits"]["internal"]["port"] = 9101;
  EXPECT_EQ(testing::registry_error(twice),
            "modules.permits.internal.port: 9101 is already the internal endpoint of module 'auth'");
  auto public_port = document;
  public_port["modules"]["auth"]["internal"]["port"] = 8080;
  EXPECT_EQ(testing::registry_error(public_port),
            "modules.auth.internal.port: 8080 is the public server's port (server.port); an internal listener needs "
            "its own");
  auto typo = document;
  typo["modules"]["auth"]["internal"]["prot"] = 1;
  EXPECT_EQ(testing::registry_error(typo), "modules.auth.internal.prot: unknown key");
  auto bad_port = document;
  bad_port["modules"]["auth"]["internal"]["port"] = 70000;
  EXPECT_EQ(testing::registry_error(bad_port), "modules.auth.internal.port: must be between 0 and 65535");
  auto bad_window = document;
  bad_window["modules"]["auth"]["internal"]["replay_window_seconds"] = 0;
  EXPECT_EQ(testing::registry_error(bad_window),
            "modules.auth.internal.replay_window_seconds: must be between 1 and 600");
}

TEST(Config, DependenciesComeFirst) {
  auto document = minimal();
  document["modules"]["revenue"] = {{"depends_on", {"permits"}}};
  auto config = parse(document, app::known_modules());
  std::vector<std::string> order;
  for (const auto& m : config.modules) order.push_back(m.name);
  EXPECT_EQ(order, (std::vector<std::string>{"auth", "permits", "revenue"}));
}

TEST(Config, UnknownModule) {
  auto document = minimal();
  document["modules"]["billing"] = json::object();
  EXPECT_EQ(testing::registry_error(document),
            "modules: unknown module 'billing' (this build has: auth, permits, revenue, parks, notify)");
}

TEST(Config, UnknownDependency) {
  auto document = minimal();
  document["modules"]["permits"]["depends_on"] = {"parks"};
  EXPECT_EQ(testing::registry_error(document), "modules.permits.depends_on: unknown module 'parks'");
}

TEST(Config, DuplicateRoutePrefix) {
  auto document = minimal();
  document["modules"]["permits"]["route_prefix"] = "/api/v1/auth";
  EXPECT_NE(testing::registry_error(document).find("duplicate route prefix '/api/v1/auth'"), std::string::npos)
      << testing::registry_error(document);
}

TEST(Config, NestedRoutePrefix) {
  auto document = minimal();
  document["modules"]["permits"]["route_prefix"] = "/api/v1/auth/permits";
  EXPECT_NE(testing::registry_error(document).find("lies under '/api/v1/auth'"), std::string::npos)
      << testing::registry_error(document);
}

TEST(Config, DuplicateDatabaseFile) {
  auto document = minimal();
  document["modules"]["permits"]["db"] = "auth.db";
  EXPECT_NE(testing::registry_error(document).find("'auth.db' is already the file of module 'auth'"), std::string::npos)
      << testing::registry_error(document);
}

TEST(Config, DatabaseFileMustStayInsideDataDir) {
  auto document = minimal();
  document["modules"]["permits"]["db"] = "../elsewhere.db";
  EXPECT_EQ(testing::registry_error(document), "modules.permits.db: must be a plain file name inside data_dir");
}

TEST(Config, DependencyCycle) {
  auto document = minimal();
  document["modules"]["auth"]["depends_on"] = {"revenue"};
  document["modules"]["revenue"] = {{"depends_on", {"permits"}}};
  auto error = testing::registry_error(document);
  EXPECT_NE(error.find("dependency cycle"), std::string::npos) << error;
  EXPECT_NE(error.find("auth -> revenue -> permits -> auth"), std::string::npos) << error;
}

TEST(Config, SelfDependency) {
  auto document = minimal();
  document["modules"]["auth"]["depends_on"] = {"auth"};
  EXPECT_EQ(testing::registry_error(document), "modules.auth.depends_on: a module cannot depend on itself");
}

TEST(Config, BadPort) {
  auto document = minimal();
  document["server"] = {{"port", 70000}};
  EXPECT_EQ(testing::registry_error(document), "server.port: must be between 0 and 65535");
  document["server"] = {{"port", "8080"}};
  EXPECT_EQ(testing::registry_error(document), "server.port: expected an integer");
  document["server"] = {{"port", -1}};
  EXPECT_EQ(testing::registry_error(document), "server.port: must be between 0 and 65535");
  EXPECT_THROW(parse_port("80x"), ConfigError);
  EXPECT_THROW(parse_port(""), ConfigError);
  EXPECT_EQ(parse_port("0"), 0);
}

TEST(Config, ServerLimits) {
  auto builtin = parse(json::parse(app::default_registry()), app::known_modules());
  EXPECT_EQ(builtin.server.http.chunk_line_limit, 4096u);
  EXPECT_EQ(builtin.server.http.trailer_limit, 4096u);
  EXPECT_EQ(builtin.server.http.max_connections_per_address, 256u);
  EXPECT_TRUE(builtin.server.metrics_token_file.empty());
  auto document = minimal();
  document["server"] = {{"limits", {{"chunk_line_bytes", 256}, {"trailer_bytes", 8192}}}};
  auto config = parse(document, app::known_modules());
  EXPECT_EQ(config.server.http.chunk_line_limit, 256u);
  EXPECT_EQ(config.server.http.trailer_limit, 8192u);
  document["server"] = {{"limits", {{"chunk_line_bytes", 8}}}};
  EXPECT_EQ(testing::registry_error(document), "server.limits.chunk_line_bytes: must be between 64 and 1048576");
  document["server"] = {{"limits", {{"max_connections_per_address", 3}}}, {"metrics_token_file", "metrics.token"}};
  config = parse(document, app::known_modules());
  EXPECT_EQ(config.server.http.max_connections_per_address, 3u);
  EXPECT_EQ(config.server.metrics_token_file, "metrics.token");
  document["server"] = {{"limits", {{"max_connections_per_address", 0}}}};
  EXPECT_NE(testing::registry_error(document).find("server.limits.max_connections_per_address"), std::string::npos);
  document["server"] = {{"metrics_token_file", ""}};
  EXPECT_NE(testing::registry_error(document).find("server.metrics_token_file"), std::string::npos);
}

TEST(Config, BusSection) {
  auto document = minimal();
  document["bus"] = {{"window", 64}, {"batch", 32}, {"backoff_initial_ms", 10}, {"backoff_max_ms", 100}};
  auto config = parse(document, app::known_modules());
  EXPECT_EQ(config.bus.window, 64);
  EXPECT_EQ(config.bus.batch, 32);
  document["bus"] = {{"window", 0}};
  EXPECT_EQ(testing::registry_error(document), "bus.window: must be between 1 and 1000000");
  document["bus"] = {{"backoff_initial_ms", 100}, {"backoff_max_ms", 10}};
  EXPECT_EQ(testing::registry_error(document), "bus.backoff_max_ms: must not be below backoff_initial_ms");
}

TEST(Config, UnknownKeysAreErrorsNotSilence) {
  auto document = minimal();
  document["server"] = {{"prot", 80}};
  EXPECT_EQ(testing::registry_error(document), "server.prot: unknown key");
  document = minimal();
  document["modules"]["auth"]["route-prefix"] = "/x";
  EXPECT_EQ(testing::registry_error(document), "modules.auth.route-prefix: unknown key");
}

TEST(Config, BadSubscriptionTopic) {
  auto document = minimal();
  document["modules"]["permits"]["subscriptions"] = json::array({{{"topic", "auth.citizen"}}});
  EXPECT_NE(testing::registry_error(document).find("modules.permits.subscriptions[0].topic"), std::string::npos)
      << testing::registry_error(document);
}

TEST(Config, BadSynchronousAndLogging) {
  auto document = minimal();
  document["database"] = {{"synchronous", "sometimes"}};
  EXPECT_EQ(testing::registry_error(document), "database.synchronous: must be \"normal\" or \"full\"");
  document = minimal();
  document["logging"] = {{"access_log", "xml"}};
  EXPECT_EQ(testing::registry_error(document), "logging.access_log: must be one of off, text, json");
}

TEST(Config, LogFormatAndConsistencySchedule) {
  auto document = minimal();
  document["logging"] = {{"format", "json"}};
  document["consistency"] = {{"interval_minutes", 0}, {"repair", false}};
  auto config = parse(document, app::known_modules());
  EXPECT_EQ(config.logging.format, logging::LogFormat::json);
  EXPECT_EQ(config.consistency.interval.count(), 0);
  EXPECT_FALSE(config.consistency.repair);
  EXPECT_EQ(parse(minimal(), app::known_modules()).consistency.interval, std::chrono::hours(1));
  document = minimal();
  document["logging"] = {{"format", "xml"}};
  EXPECT_EQ(testing::registry_error(document), "logging.format: must be \"text\" or \"json\"");
  document = minimal();
  document["consistency"] = {{"interval_minutes", -1}};
  EXPECT_NE(testing::registry_error(document).find("consistency.interval_minutes"), std::string::npos)
      << testing::registry_error(document);
  document = minimal();
  document["consistency"] = {{"every", 5}};
  EXPECT_NE(testing::registry_error(document).find("consistency.every"), std::string::npos)
      << testing::registry_error(document);
}

TEST(Config, MissingModules) {
  EXPECT_EQ(testing::registry_error(json::object()), "modules: missing: the registry must list the modules to run");
}

class ConfigLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("TOWNHALL_PORT");
    ::unsetenv("TOWNHALL_DATA_DIR");
  }
  void TearDown() override { SetUp(); }
  testing::TempDir dir_;
};

TEST_F(ConfigLoad, EnvThenFlagsOverrideTheFile) {
  auto file = dir_.path() / "townhall.json";
  auto document = minimal();
  document["server"] = {{"port", 9000}};
  std::ofstream(file) << document.dump();

  auto config = load(file, "", {}, app::known_modules());
  EXPECT_EQ(config.server.http.port, 9000);

  ::setenv("TOWNHALL_PORT", "9100", 1);
  ::setenv("TOWNHALL_DATA_DIR", (dir_.path() / "from-env").c_str(), 1);
  config = load(file, "", {}, app::known_modules());
  EXPECT_EQ(config.server.http.port, 9100);
  EXPECT_EQ(config.data_dir, dir_.path() / "from-env");
  // Not created by loading: only serve, restore and migrate --init make an installation.
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "from-env"));

  Overrides flags{.data_dir = dir_.path() / "from-flag", .port = 9200};
  config = load(file, "", flags, app::known_modules());
  EXPECT_EQ(config.server.http.port, 9200);
  EXPECT_EQ(config.data_dir, dir_.path() / "from-flag");
}

TEST_F(ConfigLoad, BadEnvPort) {
  ::setenv("TOWNHALL_PORT", "eighty", 1);
  Overrides flags{.data_dir = dir_.path(), .port = std::nullopt};
  try {
    load(std::nullopt, app::default_registry(), flags, app::known_modules());
    FAIL();
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("TOWNHALL_PORT"), std::string::npos) << error.what();
  }
}

TEST_F(ConfigLoad, UnusableDataDir) {
  auto file_in_the_way = dir_.path() / "plain-file";
  std::ofstream(file_in_the_way) << "x";
  Overrides flags{.data_dir = file_in_the_way, .port = std::nullopt};
  EXPECT_THROW(load(std::nullopt, app::default_registry(), flags, app::known_modules()), ConfigError);
  flags.data_dir = file_in_the_way / "below-a-file";
  try {
    load(std::nullopt, app::default_registry(), flags, app::known_modules());
    FAIL();
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot create"), std::string::npos) << error.what();
  }
}

TEST_F(ConfigLoad, UnreadableOrInvalidFile) {
  EXPECT_THROW(load(dir_.path() / "absent.json", "", {}, app::known_modules()), ConfigError);
  auto file = dir_.path() / "broken.json";
  std::ofstream(file) << "{ not json";
  try {
    load(file, "", {}, app::known_modules());
    FAIL();
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("not valid JSON"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace townhall::config
