#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <type_traits>

#include "townhall/platform/db.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/module_gate.hpp"
#include "townhall/platform/write_path.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::metrics {
class Registry;
}

namespace townhall {

// What the kit gives every module's service (BasicModule::service_dependencies() makes
// it from the ModuleContext; service tests build it by hand). A service is constructed
// from its settings, this, and its own extras (other modules' Apis, a provider).
struct ServiceDependencies {
  const db::ModuleDb& database;
  db::Writer& writer;  // the one thread that writes `database`
  db::ReaderPool& readers;
  std::function<void()> events_committed;  // wakes the bus after a commit that grew the outbox
  ModuleGate& gate;                        // the module's up/down (module_gate.hpp)
  metrics::Registry& metrics;
  // Crash points (ModuleContext::fault_hook); empty outside crash tests.
  std::function<void(std::string_view point)> fault_hook = {};
};

// The part every service shares: its dependencies, its one write path, and usable() (the
// gate's answer) at the top of each call. Services derive from it privately.
class ModuleService {
 protected:
  explicit ModuleService(ServiceDependencies dependencies)
      : deps_(std::move(dependencies)), writes_(deps_.database, deps_.writer, deps_.events_committed) {}

  Result<Unit> usable() const { return deps_.gate.check(); }

  // The usual read of one entity: the gate, then `find` (Connection& -> std::optional<T>,
  // the caller's scope applied) on a WAL reader; nothing found is not_found naming `what`.
  template <class Find>
  auto read_one(std::string_view what, Find&& find) const
      -> Result<typename std::invoke_result_t<Find&, db::Connection&>::value_type> {
    using T = typename std::invoke_result_t<Find&, db::Connection&>::value_type;
    if (auto ok = usable(); !ok) return ok.error();
    return deps_.readers.read([&](db::Connection& reader) -> Result<T> {
      auto found = find(reader);
      if (!found) return make_error(Errc::not_found, "no such " + std::string(what));
      return std::move(*found);
    });
  }

  // The usual read of a list's page: the gate, then `list` (Connection&, offset, size,
  // std::int64_t& total -> std::vector<T>) on a WAL reader.
  template <class List>
  auto read_page(input::Page page, List&& list) const -> Result<input::Listed<
      typename std::invoke_result_t<List&, db::Connection&, std::int64_t, int, std::int64_t&>::value_type>> {
    using T = typename std::invoke_result_t<List&, db::Connection&, std::int64_t, int, std::int64_t&>::value_type;
    if (auto ok = usable(); !ok) return ok.error();
    return deps_.readers.read([&](db::Connection& reader) -> Result<input::Listed<T>> {
      input::Listed<T> out;
      out.page = page;
      out.items = list(reader, page.offset(), page.size, out.total);
      return out;
    });
  }

  ServiceDependencies deps_;
  db::WritePath writes_;  // the module's one write path
};

}  // namespace townhall
