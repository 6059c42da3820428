#include "server_fixture.hpp"

#include <nlohmann/json.hpp>

#include "townhall/platform/logging.hpp"

namespace townhall::testing {

config::Config test_config(const std::filesystem::path& data_dir) {
  logging::init(logging::Options{.level = "warn", .access_log = logging::AccessLogFormat::off});
  auto config = config::parse(nlohmann::json::parse(app::default_registry()), app::known_modules());
  config.data_dir = data_dir;
  config.server.http.port = 0;
  config.server.rate_limit.enabled = false;
  config.server.shutdown_grace = std::chrono::milliseconds(5000);
  // Argon2id at its minimum cost: tests create many accounts; the production cost is
  // measured in bench/.
  for (auto& module : config.modules)
    if (module.name == "auth") module.settings["password_hash"] = {{"passes", 1}, {"memory_kib", 8192}};
  return config;
}

TestServer::TestServer(config::Config config, std::function<void(app::Application&)> before_start) {
  app_ = std::make_unique<app::Application>(std::move(config),
                                            app::Application::Options{.demo = false, .handle_signals = true});
  if (before_start) before_start(*app_);
  port_ = app_->start();
}

TestServer::~TestServer() { app_.reset(); }

}  // namespace townhall::testing
