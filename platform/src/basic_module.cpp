#include "townhall/platform/basic_module.hpp"

#include <nlohmann/json.hpp>

#include "townhall/platform/schema.hpp"

namespace townhall {

BasicModule::BasicModule(std::string name, ModuleContext& context)
    : name_(std::move(name)), context_(context), readers_(context.db, 4) {}

ServiceDependencies BasicModule::service_dependencies() {
  return {context_.db,
          context_.writer,
          readers_,
          context_.events_committed,
          context_.gate,
          context_.metrics,
          context_.cursors,
          context_.fault_hook,
          context_.inputs_caught_up};
}

void BasicModule::start() {
  // A start that throws leaves the gate to app/, which closes it with the reason (a
  // service's jobs end at their next round) and retries the start.
  nlohmann::json schema = nlohmann::json::object();
  {
    auto connection = readers_.acquire();
    auto versions = connection->cached("SELECT component, max(version) FROM schema_migrations GROUP BY component");
    while (versions->executeStep()) schema[versions->getColumn(0).getString()] = versions->getColumn(1).getInt();
    versions->reset();
  }
  {
    std::lock_guard lock(schema_mutex_);
    schema_json_ = schema.dump();
  }
  on_start();
  context_.gate.open();
}

void BasicModule::stop() {
  on_stop();  // the service closes the gate first, then stops its jobs
  context_.gate.close();
}

ModuleHealth BasicModule::health() const {
  if (!context_.gate.is_open()) return {false, context_.gate.reason()};
  if (auto why = context_.db.storage_failure()) return {false, *why};
  return {true, "serving"};
}

void BasicModule::add_routes(http::Router& router, const std::string& prefix) {
  router.add(
      http::Method::get, prefix + "/status", [this](http::Request& request) { return status(request); },
      http::Access::public_route);
  namespace s = schema;
  router.document(
      http::Method::get, prefix + "/status",
      {"The module's state, schema versions (per component, as of its last start) and newest outbox event", "",
       s::text(s::object({{"module", s::string()},
                          {"state", s::one_of({"up", "stopped"})},
                          {"schema", {{"type", "object"}, {"additionalProperties", s::integer(1)}}},
                          {"outbox_head", s::integer(0)}})),
       200});
}

boost::asio::awaitable<http::Response> BasicModule::status(http::Request&) {
  // The newest event id; what subscribers have not applied yet is townhall_outbox_pending.
  const std::int64_t outbox_head = context_.outbox_head ? context_.outbox_head() : 0;
  // Written out rather than built as a DOM: every status poll answers this (keys in the
  // order nlohmann::json writes them, as before).
  std::string body;
  body.reserve(128);
  body += R"({"module":)";
  body += nlohmann::json(name_).dump();
  body += R"(,"outbox_head":)";
  body += std::to_string(outbox_head);
  body += R"(,"schema":)";
  {
    std::lock_guard lock(schema_mutex_);
    body += schema_json_;
  }
  body += context_.gate.is_open() ? R"(,"state":"up"})" : R"(,"state":"stopped"})";
  co_return http::json_response(200, std::move(body));
}

}  // namespace townhall
