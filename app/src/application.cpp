#include "townhall/app/application.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "admin_routes.hpp"
#include "application_impl.hpp"
#include "dashboard.hpp"
#include "portal.hpp"
#include "townhall/auth/http_api.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/thread_name.hpp"

namespace townhall::app {

// Samples every subscription's lag for the dashboard's chart (LagHistory).
void Application::Impl::schedule_history_sample() {
  history_timer->expires_after(lag_history.interval());
  history_timer->async_wait([this](const boost::system::error_code& ec) {
    if (ec || shutting_down) return;
    lag_history.record(bus->measure(), std::chrono::system_clock::now());
    schedule_history_sample();
  });
}

// auth's Api for other processes, on a listener of its own (README "Internal API"). Only
// auth serves one in this build; a module's internal key_file is the key it signs with,
// so the verifier holds them all.
void Application::Impl::start_internal_listener() {
  for (const auto& module : config.modules)
    if (module.internal && module.internal->port && module.name != "auth")
      throw config::ConfigError("modules." + module.name +
                                ".internal.port: only auth serves its Api over HTTP in this build");
  const auto* auth = config.module("auth");
  // A split's process without auth has a client of auth's Api, not auth: nothing to serve.
  if (!auth || !auth->internal || !auth->internal->port || !apis.auth || !config.serves("auth")) return;
  std::map<std::string, signing::Key, std::less<>> keys;
  for (const auto& module : config.modules) {
    if (!module.internal || module.internal->key_file.empty()) continue;
    auto file = module.internal->key_file.is_absolute() ? module.internal->key_file
                                                        : config.data_dir / module.internal->key_file;
    try {
      keys.emplace(module.name, signing::load_key(file));
    } catch (const std::runtime_error& error) {
      throw config::ConfigError("modules." + module.name + ".internal.key_file: " + error.what());
    }
  }
  internal_verifier = std::make_unique<signing::Verifier>(std::move(keys), auth->internal->replay_window);
  auto options = config.server.http;
  options.address = auth->internal->address;
  options.port = *auth->internal->port;
  options.trusted_proxies.clear();  // callers are modules, never behind a proxy
  internal_server =
      std::make_unique<http::Server>(io, options, auth::internal_handler(*apis.auth, *internal_verifier), metrics);
  internal_port = internal_server->listen();
  internal_server->start();
  spdlog::info("auth's internal Api listening on http://{}:{}", options.address, *internal_port);
}

void Application::Impl::finish(bool drained) {
  if (!drained) spdlog::warn("shutdown grace period over with requests still in flight; closing them");
  if (retry_timer) retry_timer->cancel();
  if (consistency_timer) consistency_timer->cancel();
  if (history_timer) history_timer->cancel();
  close();
  if (signals) {
    boost::system::error_code ignored;
    signals->cancel(ignored);
  }
  io.stop();
}

void Application::Impl::shutdown() {
  if (shutting_down.exchange(true)) return;
  spdlog::info("shutting down: no new connections, draining in-flight requests");
  // The internal listener drains alongside the public one; the modules close once both
  // have (an internal call in flight still reaches a running auth).
  struct Draining {
    std::atomic<int> listeners;
    std::atomic<bool> all_drained{true};
  };
  auto draining = std::make_shared<Draining>();
  draining->listeners = internal_server ? 2 : 1;
  auto drained = [this, draining](bool complete) {
    if (!complete) draining->all_drained = false;
    if (--draining->listeners == 0) asio::post(io, [this, draining] { finish(draining->all_drained.load()); });
  };
  if (internal_server) internal_server->shutdown(config.server.shutdown_grace, drained);
  server->shutdown(config.server.shutdown_grace, drained);
}

Application::Application(config::Config config, Options options)
    : impl_(std::make_unique<Impl>(std::move(config), options)) {}

Application::~Application() {
  if (impl_->started) {
    request_shutdown();
    wait();
  }
  impl_->close();
  // Then members go in reverse declaration order: the server and io_context (with any
  // suspended request) first, then the modules, the bus, and the metrics they report to.
  impl_->server.reset();
  impl_->internal_server.reset();
  impl_->signals.reset();
  impl_->retry_timer.reset();
  impl_->consistency_timer.reset();
  impl_->history_timer.reset();
}

void Application::open() {
  impl_->register_metrics();
  impl_->open();
}

std::uint16_t Application::start() {
  auto& impl = *impl_;
  impl.metrics_token = load_metrics_token(impl.config);
  open();
  impl.add_ops_routes();
  impl.document_ops_routes();
  add_bus_admin_routes(impl.router, *impl.bus, [&impl](std::string_view module) -> db::Writer* {
    for (auto& slot : impl.slots)
      if (slot->config->name == module) return slot->writer.get();
    return nullptr;
  });
  add_consistency_admin_routes(
      impl.router,
      [&impl](std::optional<std::string> module, bool repair) {
        return impl.run_consistency(std::move(module), repair);
      },
      [&impl]() -> std::optional<consistency::Report> {
        std::lock_guard lock(impl.last_check_mutex);
        return impl.last_check;
      });
  add_bus_history_route(impl.router, impl.lag_history);
  add_registry_admin_route(impl.router, impl.config);
  add_dashboard_routes(impl.router);
  add_portal_routes(impl.router, impl.config, impl.options.demo);
  document_admin_routes(impl.router);
  std::vector<Gateway::GatedModule> gates;
  for (auto& slot : impl.slots) {
    slot->module->add_routes(impl.router, slot->config->route_prefix);
    gates.push_back({slot->config->name, slot->config->route_prefix, slot->gate});
  }
  std::unique_ptr<http::RateLimiter> limiter;
  const auto& rate = impl.config.server.rate_limit;
  if (rate.enabled) limiter = std::make_unique<http::RateLimiter>(rate.requests_per_second, rate.burst);
  Gateway::Authenticator authenticator;
  if (auto* auth_api = impl.apis.auth)
    authenticator = [auth_api](std::string_view token, const std::string& request_id) {
      return auth_api->authenticate(CallContext::as_service("gateway", request_id, std::chrono::seconds(5)),
                                    std::string(token));
    };
  impl.gateway = std::make_unique<Gateway>(impl.router, std::move(limiter), std::move(gates), std::move(authenticator));

  impl.server = std::make_unique<http::Server>(
      impl.io, impl.config.server.http,
      [gateway = impl.gateway.get()](http::Request& request) { return gateway->dispatch(request); }, impl.metrics);
  impl.repair_after_rewinds();
  auto port = impl.server->listen();
  impl.start_internal_listener();
  impl.server->start();
  impl.retry_timer = std::make_unique<asio::steady_timer>(impl.io);
  impl.schedule_retry();
  impl.consistency_timer = std::make_unique<asio::steady_timer>(impl.io);
  impl.schedule_consistency();
  impl.history_timer = std::make_unique<asio::steady_timer>(impl.io);
  impl.lag_history.record(impl.bus->measure(), std::chrono::system_clock::now());
  impl.schedule_history_sample();

  if (impl.options.handle_signals) {
    impl.signals = std::make_unique<asio::signal_set>(impl.io, SIGINT, SIGTERM);
    impl.signals->async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (ec) return;
      spdlog::info("received signal {}", signal_number);
      impl_->shutdown();
    });
  }
  int thread_count = std::max(1, impl.config.server.threads);
  for (int i = 0; i < thread_count; ++i) {
    impl.threads.emplace_back([&impl, i] {
      name_this_thread("http-" + std::to_string(i));
      for (;;) {
        try {
          impl.io.run();
          return;
        } catch (const std::exception& error) {
          spdlog::error("unhandled exception on a network thread: {}", error.what());
        }
      }
    });
  }
  impl.started = true;
  spdlog::info("listening on http://{}:{}", impl.config.server.http.address, port);
  return port;
}

void Application::wait() {
  std::lock_guard lock(impl_->done_mutex);
  for (auto& thread : impl_->threads)
    if (thread.joinable()) thread.join();
  impl_->threads.clear();
}

void Application::request_shutdown() {
  if (!impl_->server) return;
  asio::post(impl_->io, [impl = impl_.get()] { impl->shutdown(); });
}

bus::Bus& Application::bus() { return *impl_->bus; }

Result<consistency::Report> Application::check_consistency(std::optional<std::string> module, bool repair) {
  return run_blocking(impl_->run_consistency(std::move(module), repair));
}

std::optional<std::uint16_t> Application::internal_port() const { return impl_->internal_port; }

http::Router& Application::router() { return impl_->router; }
metrics::Registry& Application::metrics() { return impl_->metrics; }
const config::Config& Application::config() const { return impl_->config; }

std::vector<ModuleState> Application::module_states() const {
  std::vector<ModuleState> out;
  for (const auto& slot : impl_->slots)
    out.push_back({slot->config->name, slot->config->route_prefix, slot->gate->is_open(), slot->gate->reason()});
  return out;
}

}  // namespace townhall::app
