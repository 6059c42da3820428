#pragma once

#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "support.hpp"
#include "townhall/app/application.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::testing {

// What config::parse throws for `document` with the built-in modules (its what()), or
// "(no error)" when it accepts it: for tests of the registry's validation.
std::string registry_error(const nlohmann::json& document);

// The built-in registry pointed at a temp data dir, on an ephemeral loopback port, with
// rate limiting and access logs off unless a test turns them on.
config::Config test_config(const std::filesystem::path& data_dir);

// The real Application (every module, gateway and server) running in this process; with
// `demo`, as `serve --demo` (each module seeds its demo data on start).
class TestServer {
 public:
  explicit TestServer(config::Config config, std::function<void(app::Application&)> before_start = {},
                      bool demo = false);
  ~TestServer();

  unsigned short port() const { return port_; }
  app::Application& app() { return *app_; }
  HttpResponse get(const std::string& target) { return http_request(port_, "GET", target); }

 private:
  std::unique_ptr<app::Application> app_;
  unsigned short port_ = 0;
};

// Applies the bus's and `component`'s embedded migrations to `database`, as app/ does
// when a module starts (for service tests and benchmarks without an Application); with
// `below_version`, only the component's older ones (a file an earlier release wrote).
void migrate_module(const db::ModuleDb& database, std::string_view component,
                    int below_version = std::numeric_limits<int>::max());

// A valid citizen.updated event from auth (the citizen `citizen_id` named `name`, at
// version 1, event id auth:<event_number>) kept in permits' dead letters as if it had
// failed for a passing reason ("database is locked"): what a replay then applies.
// The letter's id.
std::int64_t insert_citizen_dead_letter(const std::filesystem::path& data_dir, std::int64_t citizen_id,
                                        const std::string& name, std::int64_t event_number);

// One request with an optional bearer token.
HttpResponse call(unsigned short port, const std::string& method, const std::string& target,
                  const std::string& body = {}, const std::string& token = {});
// POST /api/v1/auth/login; the token, or empty when the login failed.
std::string login(unsigned short port, const std::string& email, const std::string& password);

}  // namespace townhall::testing
