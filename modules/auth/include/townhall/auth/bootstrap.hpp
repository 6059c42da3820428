#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>

#include "townhall/auth/api.hpp"
#include "townhall/platform/consistency.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/db.hpp"

// The client side of auth::Api that every module's citizen cache shares.
namespace townhall::auth {

// Every citizen auth has, oldest change first, read through Api::citizens_since in pages
// of 1000 as module `module`: a cache's bootstrap (bus::Subscription::bootstrap), on the
// consumer's writer thread. Throws std::runtime_error when auth cannot answer (the bus
// tries the bootstrap again later). Returns how many were visited.
inline std::size_t for_each_citizen(Api& auth, const std::string& module,
                                    const std::function<void(const Citizen&)>& visit) {
  std::int64_t seq = 0;
  std::size_t count = 0;
  for (;;) {
    auto page = run_blocking(auth.citizens_since(
        CallContext::as_service(module, "bootstrap:citizen_refs", std::chrono::seconds(30)), seq, 1000));
    if (!page) throw std::runtime_error("citizen_refs bootstrap: auth answered: " + page.error().message);
    for (const auto& citizen : page->citizens) visit(citizen);
    count += page->citizens.size();
    if (page->citizens.empty() || page->next <= seq) return count;
    seq = page->next;
  }
}

// A module's citizen_refs cache (citizen_id, event_version, the kept `fields`) as the
// consistency check sees its source: auth's Api, which hashes the same fields. `store` is
// the cache's own version-checked upsert, the one its event handler and bootstrap use.
class CitizenCacheSource final : public consistency::Source {
 public:
  using StoreCitizen = std::function<void(db::Connection& sync, const Citizen& citizen)>;
  CitizenCacheSource(Api& auth, std::string module, CitizenFields fields, StoreCitizen store)
      : auth_(auth), module_(std::move(module)), fields_(std::move(fields)), store_(std::move(store)) {}

  boost::asio::awaitable<Result<consistency::Digest>> digest(std::int64_t from_id, std::int64_t to_id) override {
    co_return co_await auth_.citizen_digest(context(), from_id, to_id, fields_);
  }

  boost::asio::awaitable<Result<std::vector<consistency::Entry>>> entries(std::int64_t from_id,
                                                                          std::int64_t to_id) override {
    std::vector<consistency::Entry> out;
    std::int64_t after = from_id - 1;
    for (;;) {
      auto page = co_await auth_.citizen_versions(context(), after, kPage, fields_);
      if (!page) co_return page.error();
      for (const auto& version : *page) {
        if (version.id >= to_id) co_return out;
        out.push_back({version.id, version.event_version, version.content});
      }
      if (page->size() < static_cast<std::size_t>(kPage)) co_return out;
      after = page->back().id;
    }
  }

  boost::asio::awaitable<Result<consistency::Store>> fetch(std::int64_t id) override {
    auto citizen = co_await auth_.get_citizen(context(), id);
    if (!citizen) co_return citizen.error();
    consistency::Store store = [store = store_, citizen = std::move(*citizen)](db::Connection& sync, bool force) {
      if (force) {  // the cache is ahead of auth (restored from an older backup): auth's record wins
        auto erase = sync.prepare("DELETE FROM citizen_refs WHERE citizen_id = ?");
        erase.bind(1, citizen.id);
        erase.exec();
      }
      store(sync, citizen);
    };
    co_return store;
  }

  void store_all(db::Connection& sync) override {
    for_each_citizen(auth_, module_, [&](const Citizen& citizen) { store_(sync, citizen); });
  }

 private:
  static constexpr int kPage = 1000;
  CallContext context() const {
    return CallContext::as_service(module_, "consistency:citizen_refs", std::chrono::seconds(30));
  }

  Api& auth_;
  std::string module_;
  CitizenFields fields_;
  StoreCitizen store_;
};

// `module`'s citizen_refs cache, keeping `fields`, as the consistency check compares it.
inline consistency::Cache citizen_cache(Api& auth, const std::string& module, const CitizenFields& fields,
                                        CitizenCacheSource::StoreCitizen store) {
  std::vector<std::string> columns;
  for (auto field : fields) columns.emplace_back(column_name(field));
  return {module,
          "citizen_refs",
          "citizen_id",
          "auth",
          std::make_shared<CitizenCacheSource>(auth, module, fields, std::move(store)),
          std::move(columns)};
}

}  // namespace townhall::auth
