#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "townhall/platform/result.hpp"

namespace townhall {

// Whether a module serves: the one owner of its up/down. app/ makes one per module and
// hands it over in ModuleContext; the gateway answers 503 under the module's prefix
// while it is closed, the bus runs the module's handlers only while it is open, the
// module's service opens it once started (before its background jobs, which run while
// it is open) and closes it first when stopping, and every service call checks it.
class ModuleGate {
 public:
  explicit ModuleGate(std::string module, std::string reason = "not started");
  ModuleGate(const ModuleGate&) = delete;
  ModuleGate& operator=(const ModuleGate&) = delete;

  const std::string& module() const { return module_; }
  bool is_open() const { return open_.load(std::memory_order_acquire); }
  // Unit while open, else unavailable ("the <module> module is unavailable").
  Result<Unit> check() const;

  void open();
  // Closes the gate and records why (shown in /readyz while closed); returns whether it
  // was open, so the one stop that closed it is the one that stops the jobs.
  bool close(std::string reason = "stopped");
  // Why it is closed; empty while open.
  std::string reason() const;

 private:
  std::string module_;
  std::atomic<bool> open_{false};
  mutable std::mutex reason_mutex_;
  std::string reason_;
};

}  // namespace townhall
