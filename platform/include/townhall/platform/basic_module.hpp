#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"
#include "townhall/platform/module_gate.hpp"
#include "townhall/platform/service_kit.hpp"

namespace townhall {

// What every module has in common: a name, a pool of reader connections to its file,
// its gate (ModuleContext::gate), health, and GET <prefix>/status (the schema versions
// its file had when it last started, and its newest outbox event). Modules derive from it, most through
// ServiceModule below (or bus::ConsumerModule), and add their own routes.
class BasicModule : public Module {
 public:
  BasicModule(std::string name, ModuleContext& context);

  std::string_view name() const override { return name_; }
  // start(): on_start(), then the gate open (the service usually opened it already);
  // when on_start() throws, app/ closes the gate with the reason. stop(): on_stop()
  // (the service closes the gate first, then stops its jobs), then the gate closed
  // whatever the hook did. Modules put their service's start and stop in the hooks.
  void start() final;
  void stop() final;
  void add_routes(http::Router& router, const std::string& prefix) override;
  // Down while the gate is closed (its reason) or the file has failed; else serving.
  ModuleHealth health() const override;

 protected:
  virtual void on_start() {}
  virtual void on_stop() {}
  db::ReaderPool& readers() { return readers_; }
  ModuleContext& context() { return context_; }
  // What the module's service is built from.
  ServiceDependencies service_dependencies();

 private:
  boost::asio::awaitable<http::Response> status(http::Request& request);

  std::string name_;
  ModuleContext& context_;
  db::ReaderPool readers_;
  // The schema versions as a JSON object, read once per start (migrations run only
  // before a start), so the status route reads nothing from the file but the bus's head.
  mutable std::mutex schema_mutex_;
  std::string schema_json_ = "{}";
};

// A module whose behaviour is one service: the service is built from its settings, the
// kit's ServiceDependencies and its own extras; start and stop forward to it (and
// `serve --demo` runs its seed_demo(), when it has one); its routes are `routes` added
// after GET <prefix>/status. A module.cpp then states only what is its own.
template <class Service>
class ServiceModule : public BasicModule {
 public:
  using Routes = void (*)(http::Router& router, const std::string& prefix, Service& service);

  template <class Settings, class... Extras>
  ServiceModule(std::string name, ModuleContext& context, Routes routes, Settings settings, Extras&&... extras)
      : BasicModule(std::move(name), context),
        routes_(routes),
        service_(std::move(settings), service_dependencies(), std::forward<Extras>(extras)...) {}

  void add_routes(http::Router& router, const std::string& prefix) override {
    BasicModule::add_routes(router, prefix);
    routes_(router, prefix, service_);
  }

 protected:
  void on_start() override {
    service_.start();
    if constexpr (requires(Service & s) { s.seed_demo(); })
      if (context().demo) service_.seed_demo();
  }
  void on_stop() override { service_.stop(); }
  Service& service() { return service_; }
  const Service& service() const { return service_; }

 private:
  Routes routes_;
  Service service_;
};

}  // namespace townhall
