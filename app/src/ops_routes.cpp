// What operators and their tools ask the process: /healthz, /readyz, /metrics (with
// its token) and /openapi.json, and the modules' up/degraded gauges.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "application_impl.hpp"
#include "openapi.hpp"

namespace townhall::app {

// The bearer token /metrics requires (server.metrics_token_file), or "" when none is
// configured. Throws when the file cannot be read, is readable by group or others, or
// holds a token too short to resist guessing.
std::string load_metrics_token(const config::Config& config) {
  if (config.server.metrics_token_file.empty()) return {};
  auto path = config.server.metrics_token_file.is_absolute() ? config.server.metrics_token_file
                                                             : config.data_dir / config.server.metrics_token_file;
  std::error_code ec;
  auto permissions = std::filesystem::status(path, ec).permissions();
  if (ec) throw std::runtime_error("cannot read the metrics token file " + path.string() + ": " + ec.message());
  using std::filesystem::perms;
  if ((permissions & (perms::group_all | perms::others_all)) != perms::none)
    throw std::runtime_error("the metrics token file " + path.string() +
                             " is readable by group or others; chmod 600 it");
  std::ifstream file(path);
  std::string token;
  if (!file || !std::getline(file, token))
    throw std::runtime_error("cannot read the metrics token file " + path.string());
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) token.pop_back();
  if (token.size() < 32 || token.find_first_of(" \t") != std::string::npos)
    throw std::runtime_error("the metrics token in " + path.string() +
                             " must be one line of at least 32 characters without spaces (e.g. openssl rand -hex 32)");
  return token;
}

void Application::Impl::document_ops_routes() {
  router.document(
      http::Method::get, "/healthz",
      {"Liveness: the process answers", "",
       R"({"type":"object","required":["status"],"additionalProperties":false,"properties":{"status":{"const":"ok"}}})",
       200});
  router.document(
      http::Method::get, "/readyz",
      {"Readiness: 200 while any module serves (status degraded when one is down or degraded), 503 when none "
       "does or the server is shutting down; each module's state and why, and in a split's process what it "
       "reaches in others (remote)",
       "",
       R"({"type":"object","required":["status","modules"],"properties":{"status":{"enum":["ready","degraded","not_ready"]},)"
       R"("modules":{"type":"object","additionalProperties":{"type":"object","properties":{"state":{"enum":["up","degraded","down"]},"detail":{"type":"string"}}}},)"
       R"("remote":{"type":"object","additionalProperties":{"type":"object","properties":{"state":{"enum":["up","down"]},"detail":{"type":"string"}}}}}})",
       200});
  router.document(http::Method::get, "/metrics",
                  {"Prometheus metrics (text format 0.0.4): for the bearer token in server.metrics_token_file, "
                   "or without one for clients on this host only",
                   "", "", 200, "text/plain"});
  router.document(http::Method::get, "/openapi.json",
                  {"This document (OpenAPI 3.1)", "", R"({"type":"object","required":["openapi","paths"]})", 200});
}

void Application::Impl::add_ops_routes() {
  router.add(
      http::Method::get, "/openapi.json",
      [this](http::Request&) -> asio::awaitable<http::Response> {
        co_return http::json_response(200, openapi_document(router, TOWNHALL_VERSION).dump());
      },
      http::Access::public_route);
  router.add(
      http::Method::get, "/healthz",
      [](http::Request&) -> asio::awaitable<http::Response> {
        co_return http::json_response(200, R"({"status":"ok"})");
      },
      http::Access::public_route);
  router.add(
      http::Method::get, "/readyz",
      [this](http::Request&) -> asio::awaitable<http::Response> {
        // Readiness is the process's ability to serve (issue 27.6): a load balancer that
        // dropped the whole site because one module is down would take the others with
        // it. 503 only while shutting down or when no module serves; each module's state
        // (up, degraded, down) and why are in the body, /metrics and the dashboard.
        nlohmann::json modules = nlohmann::json::object();
        int serving_modules = 0;
        bool all_up = true;
        for (const auto& slot : slots) {
          nlohmann::json entry;
          if (slot->gate->is_open()) {
            auto health = slot->module->health();
            const char* state = !health.up ? "down" : health.degraded ? "degraded" : "up";
            entry = {{"state", state}, {"detail", health.detail}};
            serving_modules += health.up ? 1 : 0;
            all_up = all_up && health.up && !health.degraded;
          } else {
            entry = {{"state", "down"}, {"detail", slot->gate->reason()}};
            all_up = false;
          }
          modules[slot->config->name] = entry;
        }
        // A split's process: what it reaches in others (auth's Api; the broker joins
        // remote_checks with the bus's transport). Down is degraded, not unready: the
        // modules here still serve what they can without it (permits from its cache).
        nlohmann::json remote = nlohmann::json::object();
        for (const auto& check : remote_checks) {
          auto health = co_await check.probe();
          remote[check.name] = {{"state", health.up ? "up" : "down"}, {"detail", health.detail}};
          all_up = all_up && health.up;
        }
        const bool ready = !shutting_down.load() && serving_modules > 0;
        const char* status = !ready ? "not_ready" : all_up ? "ready" : "degraded";
        nlohmann::json body = {{"status", status}, {"modules", modules}};
        if (!remote_checks.empty()) body["remote"] = remote;
        co_return http::json_response(ready ? 200 : 503,
                                      body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      },
      http::Access::public_route);
  router.add(
      http::Method::get, "/metrics",
      [this](http::Request& request) -> asio::awaitable<http::Response> {
        // Not for everyone: the series show login outcomes, admin traffic and dead
        // letters. (No label carries personal data: routes are patterns, never paths.)
        switch (http::metrics_access(request, metrics_token)) {
          case http::MetricsAccess::allowed: break;
          case http::MetricsAccess::needs_token: {
            auto refused = http::problem(401, "unauthorized", "Unauthorized",
                                         "the metrics need the bearer token of server.metrics_token_file");
            refused.set_header("WWW-Authenticate", R"(Bearer realm="townhall-metrics")");
            co_return refused;
          }
          case http::MetricsAccess::refused:
            co_return http::problem(403, "forbidden", "Forbidden",
                                    "the metrics are served to clients on this host only (not through a proxy); "
                                    "configure server.metrics_token_file to scrape them from elsewhere");
        }
        http::Response response;
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = metrics.render();
        co_return response;
      },
      http::Access::public_route);
}

void Application::Impl::register_metrics() {
  auto& module_up = metrics.gauge("townhall_module_up", "1 when the module is serving, 0 when it is down", {"module"});
  auto& module_degraded = metrics.gauge(
      "townhall_module_degraded", "1 when the module serves but part of it is unavailable (see /readyz)", {"module"});
  metrics.add_collector([this, &module_up, &module_degraded] {
    for (const auto& slot : slots) {
      auto health = slot->gate->is_open() ? slot->module->health() : ModuleHealth{false, {}};
      module_up.with({slot->config->name}).set(health.up ? 1 : 0);
      module_degraded.with({slot->config->name}).set(health.up && health.degraded ? 1 : 0);
    }
  });
}

}  // namespace townhall::app
