#include "townhall/platform/module_gate.hpp"

namespace townhall {

ModuleGate::ModuleGate(std::string module, std::string reason)
    : module_(std::move(module)), reason_(std::move(reason)) {}

Result<Unit> ModuleGate::check() const {
  if (!is_open()) return make_error(Errc::unavailable, "the " + module_ + " module is unavailable");
  return Unit{};
}

void ModuleGate::open() {
  {
    std::lock_guard lock(reason_mutex_);
    reason_.clear();
  }
  open_.store(true, std::memory_order_release);
}

bool ModuleGate::close(std::string reason) {
  const bool was_open = open_.exchange(false, std::memory_order_acq_rel);
  std::lock_guard lock(reason_mutex_);
  reason_ = std::move(reason);
  return was_open;
}

std::string ModuleGate::reason() const {
  std::lock_guard lock(reason_mutex_);
  return reason_;
}

}  // namespace townhall
