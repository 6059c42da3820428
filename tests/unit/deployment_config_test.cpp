// The registry's split deployment (issue 23 §4; README "Run split across machines"):
// bus.transport, the deployment section, and `serve --modules` choosing one process.
#include <gtest/gtest.h>

#include "server_fixture.hpp"
#include "townhall/app/application.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::config {
namespace {

using nlohmann::json;

// auth in a process of its own, the rest in another, over the broker: valid.
json split() {
  return json::parse(R"({
    "bus": {"transport": {"kind": "rabbitmq", "url_file": "amqp.url"}},
    "modules": {
      "auth":    {"internal": {"address": "10.0.0.2", "port": 9101}},
      "permits": {"depends_on": ["auth"], "internal": {"key_file": "keys/permits.key"}},
      "parks":   {"depends_on": ["auth"], "internal": {"key_file": "keys/parks.key"}}
    },
    "deployment": {
      "auth":     {"modules": ["auth"], "address": "10.0.0.2", "port": 8080},
      "services": {"modules": ["parks", "permits"], "address": "10.0.0.3", "port": 8080}
    }
  })");
}

std::string selection_error(const json& document, std::vector<std::string> modules) {
  auto config = parse(document, app::known_modules());
  try {
    select_process(config, modules);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(Deployment, ParsedInRegistryOrderAndUnusedWithoutModules) {
  auto config = parse(split(), app::known_modules());
  EXPECT_EQ(config.bus.transport.kind, Transport::Kind::rabbitmq);
  EXPECT_EQ(config.bus.transport.url_file, "amqp.url");
  EXPECT_EQ(config.bus.transport.stream_prefix, "townhall.");
  ASSERT_EQ(config.deployment.size(), 2u);
  const auto* services = config.deployed("services");
  ASSERT_NE(services, nullptr);
  EXPECT_EQ(services->modules, (std::vector<std::string>{"parks", "permits"}));  // the registry's order
  EXPECT_EQ(services->address, "10.0.0.3");
  // No process selected: every module runs here, the listener is the server's.
  EXPECT_FALSE(config.process);
  EXPECT_TRUE(config.serves("auth") && config.serves("permits") && config.serves("parks"));
  EXPECT_FALSE(config.serves("revenue"));  // not in this registry
  EXPECT_EQ(config.server.http.port, 8080);
  EXPECT_EQ(config.server.http.address, "127.0.0.1");
}

TEST(Deployment, AModuleServedByNoProcessIsRefusedNamingIt) {
  auto document = split();
  document["deployment"]["services"]["modules"] = {"permits"};
  EXPECT_EQ(testing::registry_error(document),
            "deployment: module 'parks' is served by no process; list it under one process's modules");
}

TEST(Deployment, AModuleServedByTwoProcessesIsRefusedNamingIt) {
  auto document = split();
  document["deployment"]["services"]["modules"] = {"auth", "parks", "permits"};
  EXPECT_EQ(testing::registry_error(document),
            "deployment.services.modules: module 'auth' is already served by process 'auth'; each module runs in "
            "exactly one process");
}

TEST(Deployment, ProcessesAreChecked) {
  auto document = split();
  document["deployment"]["services"]["modules"] = {"parks", "permits", "billing"};
  EXPECT_EQ(testing::registry_error(document), "deployment.services.modules: no module 'billing' in the registry");
  document = split();
  document["deployment"]["services"]["address"] = "10.0.0.2";
  EXPECT_EQ(testing::registry_error(document), "deployment.services.port: 10.0.0.2:8080 is already process 'auth'");
  document = split();
  document["deployment"]["services"]["port"] = 9101;
  document["deployment"]["services"]["address"] = "10.0.0.2";
  EXPECT_EQ(testing::registry_error(document),
            "deployment.services.port: 10.0.0.2:9101 is already the internal endpoint of auth");
  document = split();
  document["deployment"]["Services!"] = document["deployment"]["services"];
  document["deployment"].erase("services");
  EXPECT_EQ(testing::registry_error(document),
            "deployment.Services!: a process name is 1 to 32 of a-z, 0-9 and '-', starting with a letter");
  document = split();
  document["deployment"]["auth"]["replicas"] = 2;
  EXPECT_EQ(testing::registry_error(document), "deployment.auth.replicas: unknown key");
}

// A module calling auth in another process needs auth's fixed internal port and a key.
TEST(Deployment, CallsToAuthInAnotherProcessNeedItsEndpointAndAKey) {
  auto document = split();
  document["modules"]["parks"].erase("internal");
  EXPECT_EQ(testing::registry_error(document),
            "modules.parks.internal.key_file: parks calls auth in process 'auth' and signs its calls with a key of "
            "its own: name its file");
  document = split();
  document["modules"]["auth"]["internal"]["port"] = 0;
  EXPECT_EQ(testing::registry_error(document),
            "modules.auth.internal.port: module 'parks' (process 'services') calls auth in process 'auth' over "
            "HTTP: give auth's internal listener a fixed port");
  // In one process together, no endpoint or key is needed.
  document = split();
  document["modules"]["parks"].erase("internal");
  document["modules"]["auth"].erase("internal");
  document["deployment"] = {{"all", {{"modules", {"auth", "permits", "parks"}}}}};
  EXPECT_EQ(testing::registry_error(document), "(no error)");
}

TEST(Deployment, Transport) {
  auto document = split();
  document["bus"]["transport"] = {{"kind", "rabbitmq"}};
  EXPECT_EQ(testing::registry_error(document),
            "bus.transport: the rabbitmq transport needs either url or url_file (a file holding the URL, to keep its "
            "password out of the registry)");
  document["bus"]["transport"] = {{"kind", "rabbitmq"}, {"url", "http://broker"}};
  EXPECT_EQ(testing::registry_error(document), "bus.transport.url: expected amqp://user:password@host:5672/vhost");
  document["bus"]["transport"] = {{"kind", "local"}, {"url", "amqp://broker"}};
  EXPECT_EQ(testing::registry_error(document), "bus.transport.url: only for the rabbitmq transport");
  document["bus"]["transport"] = {{"kind", "kafka"}};
  EXPECT_EQ(testing::registry_error(document), "bus.transport.kind: must be \"local\" or \"rabbitmq\"");
  document["bus"]["transport"] = {{"kind", "rabbitmq"}, {"url", "amqp://u:p@broker:5672/th"}, {"stream_prefix", "a b"}};
  EXPECT_EQ(testing::registry_error(document), "bus.transport.stream_prefix: 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'");
  document["bus"]["transport"]["stream_prefix"] = "th-";
  auto config = parse(document, app::known_modules());
  EXPECT_EQ(config.bus.transport.url, "amqp://u:p@broker:5672/th");
  EXPECT_EQ(config.bus.transport.stream_prefix, "th-");
  EXPECT_EQ(parse(json::parse(app::default_registry()), app::known_modules()).bus.transport.kind,
            Transport::Kind::local);
}

TEST(Deployment, ModulesSelectsTheProcessServingExactlyThem) {
  auto config = parse(split(), app::known_modules());
  std::vector<std::string> modules{"permits", "parks"};  // in any order
  select_process(config, modules);
  EXPECT_EQ(config.process, std::optional<std::string>("services"));
  EXPECT_EQ(config.server.http.address, "10.0.0.3");
  EXPECT_TRUE(config.serves("permits") && config.serves("parks"));
  EXPECT_FALSE(config.serves("auth"));
}

TEST(Deployment, ModulesNamingNoProcessesSetIsRefused) {
  EXPECT_EQ(selection_error(split(), {"permits"}),
            "--modules permits: no process of the deployment serves exactly these modules (auth: auth; services: "
            "parks,permits)");
  EXPECT_EQ(selection_error(split(), {"auth", "permits", "parks"}),
            "--modules auth,parks,permits: no process of the deployment serves exactly these modules (auth: auth; "
            "services: parks,permits)");
}

TEST(Deployment, ModulesNamingAnUnknownModuleIsRefused) {
  EXPECT_EQ(selection_error(split(), {"auth", "billing"}),
            "--modules: no module 'billing' in the registry (it has: auth, parks, permits)");
}

TEST(Deployment, ModulesWithTheLocalTransportIsRefused) {
  auto document = split();
  document["bus"].erase("transport");
  auto message = selection_error(document, {"auth"});
  EXPECT_TRUE(
      message.starts_with("--modules: the modules of the other processes reach this one's events only "
                          "through the broker, and bus.transport is local"))
      << message;
}

TEST(Deployment, ModulesWithoutADeploymentIsRefused) {
  auto message = selection_error(json::parse(app::default_registry()), {"auth"});
  EXPECT_TRUE(
      message.starts_with("--modules runs one process of a split deployment, and the registry has no "
                          "deployment section"))
      << message;
}

}  // namespace
}  // namespace townhall::config
