#include "server_fixture.hpp"

#include <nlohmann/json.hpp>

#include "townhall/bus/event.hpp"
#include "townhall/migrations.hpp"
#include "townhall/platform/logging.hpp"
#include "townhall/platform/migrator.hpp"

namespace townhall::testing {

std::string registry_error(const nlohmann::json& document) {
  try {
    config::parse(document, app::known_modules());
  } catch (const config::ConfigError& error) {
    return error.what();
  }
  return "(no error)";
}

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

TestServer::TestServer(config::Config config, std::function<void(app::Application&)> before_start, bool demo) {
  app_ = std::make_unique<app::Application>(std::move(config),
                                            app::Application::Options{.demo = demo, .handle_signals = true});
  if (before_start) before_start(*app_);
  port_ = app_->start();
}

TestServer::~TestServer() { app_.reset(); }

void migrate_module(const db::ModuleDb& database, std::string_view component, int below_version) {
  auto owner = database.open(db::Role::owner);
  db::Migrator migrator(*owner);
  auto files = migrations::embedded_migrations();
  auto all = db::migrations_for(files, "bus");
  for (const auto& migration : db::migrations_for(files, component))
    if (migration.version < below_version) all.push_back(migration);
  migrator.apply(all);
}

std::int64_t insert_citizen_dead_letter(const std::filesystem::path& data_dir, std::int64_t citizen_id,
                                        const std::string& name, std::int64_t event_number) {
  bus::Event event;
  event.event_id = "auth:" + std::to_string(event_number);
  event.event_type = "citizen.updated";
  event.topic = "gov.auth.citizen";
  event.source = "auth";
  event.aggregate_type = "citizen";
  event.aggregate_id = std::to_string(citizen_id);
  event.event_version = 1;
  event.occurred_at = "2026-11-22T00:00:00.000Z";
  event.data = {{"snapshot",
                 {{"id", citizen_id},
                  {"email", "citizen" + std::to_string(citizen_id) + "@example.org"},
                  {"name", name},
                  {"phone", nullptr},
                  {"address", nullptr},
                  {"city", nullptr},
                  {"postal_code", nullptr},
                  {"has_national_id", false},
                  {"email_verified", false},
                  {"identity_verified", false},
                  {"is_active", true},
                  {"event_version", 1},
                  {"created_at", "2026-11-22T00:00:00.000Z"},
                  {"updated_at", "2026-11-22T00:00:00.000Z"}}}};
  db::ModuleDb permits("permits", data_dir / "permits.db", {});
  auto owner = permits.open(db::Role::owner);
  auto insert = owner->prepare(
      "INSERT INTO dead_letters (subscription, event_id, event, error, attempts, first_failed_at, last_failed_at) "
      "VALUES ('citizen_refs', ?, ?, 'database is locked', 5, '2026-11-22T00:00:00.000Z', "
      "'2026-11-22T00:00:01.000Z')");
  insert.bind(1, event.event_id);
  insert.bind(2, bus::to_json(event).dump());
  insert.exec();
  return owner->sql().getLastInsertRowid();
}

HttpResponse call(unsigned short port, const std::string& method, const std::string& target, const std::string& body,
                  const std::string& token) {
  std::vector<std::string> headers;
  if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  return http_request(port, method, target, body, headers);
}

std::string login(unsigned short port, const std::string& email, const std::string& password) {
  auto response =
      call(port, "POST", "/api/v1/auth/login", nlohmann::json{{"email", email}, {"password", password}}.dump());
  if (response.status != 200) return {};
  return nlohmann::json::parse(response.body)["token"].get<std::string>();
}

}  // namespace townhall::testing
