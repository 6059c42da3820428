#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"

namespace townhall {

// What every module has in common: a name, a pool of reader connections to its file,
// a health flag, and GET <prefix>/status (schema versions and outbox backlog, read from
// the module's own file). Modules derive from it and add their own routes.
class BasicModule : public Module {
 public:
  BasicModule(std::string name, ModuleContext& context);

  std::string_view name() const override { return name_; }
  // start(): on_start(), then serving; stop(): not serving, then on_stop(). Modules put
  // their service's start and stop in the hooks, not in overrides of these.
  void start() final;
  void stop() final;
  void add_routes(http::Router& router, const std::string& prefix) override;
  ModuleHealth health() const override;

 protected:
  virtual void on_start() {}
  virtual void on_stop() {}
  db::ReaderPool& readers() { return readers_; }
  ModuleContext& context() { return context_; }

 private:
  boost::asio::awaitable<http::Response> status(http::Request& request);

  std::string name_;
  ModuleContext& context_;
  db::ReaderPool readers_;
  std::atomic<bool> running_{false};
};

}  // namespace townhall
