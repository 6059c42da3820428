#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "townhall/platform/db.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/module_gate.hpp"
#include "townhall/platform/page_cursor.hpp"
#include "townhall/platform/row.hpp"
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
  const PageCursors& cursors;  // seals and opens its lists' cursors (page_cursor.hpp)
  // Crash points (ModuleContext::fault_hook); empty outside crash tests.
  std::function<void(std::string_view point)> fault_hook = {};
  std::function<bool()> inputs_caught_up = {};  // ModuleContext::inputs_caught_up
};

// A list read page by page in a fixed (sort key, id) order (keyset pagination).
template <class T>
struct PagedQuery {
  std::string_view list;  // its name, which its cursors carry: "permits.applications"
  std::string owner;      // whose view it is (the caller's scope): a cursor is good for it only
  // Up to `limit` rows past `after` (none: from the first), in the list's order.
  std::function<std::vector<T>(db::Connection&, const std::optional<PageAfter>& after, int limit)> rows;
  // The whole list's size, for ?include=total.
  std::function<std::int64_t(db::Connection&)> count;
  // A row's sort key; empty when the list is ordered by id alone (a row without an id
  // must be ordered by a unique key).
  std::function<std::string(const T&)> key_of = {};
};

// The part every service shares: its dependencies, its one write path, and usable() (the
// gate's answer) at the top of each call. Services derive from it privately.
class ModuleService {
 protected:
  explicit ModuleService(ServiceDependencies dependencies)
      : deps_(std::move(dependencies)),
        writes_(deps_.database, deps_.writer, deps_.events_committed, &deps_.metrics, deps_.fault_hook) {}

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

  // A page of `query`'s list: the gate, the cursor opened (sealed for another list or
  // owner, or altered: invalid_argument), page.size + 1 rows read on a WAL reader to learn
  // whether a next page exists, and its cursor sealed from the page's last row.
  template <class T>
  Result<input::Listed<T>> read_page(const input::Page& page, const PagedQuery<T>& query) const {
    if (auto ok = usable(); !ok) return ok.error();
    std::optional<PageAfter> after;
    if (!page.cursor.empty()) {
      auto opened = deps_.cursors.open(page.cursor, query.list, query.owner);
      if (!opened) return opened.error();
      after = std::move(*opened);
    }
    return deps_.readers.read([&](db::Connection& reader) -> Result<input::Listed<T>> {
      input::Listed<T> out;
      out.page_size = page.size;
      out.items = query.rows(reader, after, page.size + 1);
      if (out.items.size() > static_cast<std::size_t>(page.size)) {
        out.items.erase(out.items.begin() + page.size, out.items.end());
        const T& last = out.items.back();
        std::int64_t last_id = 0;  // a list keyed by a unique text (a code) has no id
        if constexpr (requires { last.id; }) last_id = last.id;
        out.next_cursor =
            deps_.cursors.seal(query.list, query.owner, {query.key_of ? query.key_of(last) : std::string(), last_id});
      }
      if (page.with_total) out.total = query.count(reader);
      return out;
    });
  }

  // A page of a store's list (row.hpp's KeysetList), named `list` as `owner` sees it.
  template <class T>
  Result<input::Listed<T>> read_page(const input::Page& page, std::string_view list, std::string owner,
                                     const db::KeysetList<T>& rows) const {
    return read_page(page, PagedQuery<T>{list, std::move(owner),
                                         [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                                           return rows.rows(reader, after, limit);
                                         },
                                         [&](db::Connection& reader) { return rows.count(reader); }, rows.key_of});
  }

  ServiceDependencies deps_;
  db::WritePath writes_;  // the module's one write path
};

}  // namespace townhall
