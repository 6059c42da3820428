#pragma once

#include <vector>

#include "townhall/bus/bus.hpp"
#include "townhall/platform/basic_module.hpp"
#include "townhall/platform/consistency.hpp"

namespace townhall::bus {

// A ServiceModule (platform/basic_module.hpp) whose service consumes events and keeps
// caches: its subscriptions go to the bus, its caches (and keyed caches, when it has
// them) to the consistency check. Here rather than in platform because platform does not
// know the bus.
template <class Service>
class ConsumerModule : public ServiceModule<Service>, public Consumer, public consistency::Checked {
 public:
  using ServiceModule<Service>::ServiceModule;

  std::vector<Subscription> subscriptions() override { return this->service().subscriptions(); }
  std::vector<consistency::Cache> caches() override { return this->service().caches(); }
  std::vector<consistency::KeyedCache> keyed_caches() override {
    if constexpr (requires(Service & s) { s.keyed_caches(); })
      return this->service().keyed_caches();
    else
      return {};
  }
};

}  // namespace townhall::bus
