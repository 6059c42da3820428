// The consistency check of the caches against their sources (and of the tables a module
// derives from its own rows against those rows): run on demand, on a schedule and after a
// source restore, one at a time, its results kept as metrics.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "application_impl.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::app {

// Compares every cache (of `module`, or of all) with its source; with `repair`, resyncs
// what differs. One run at a time.
asio::awaitable<Result<consistency::Report>> Application::Impl::run_consistency(std::optional<std::string> module,
                                                                                bool repair) {
  if (module && !config.module(*module)) co_return make_error(Errc::not_found, "no module '" + *module + "'");
  if (checking.exchange(true)) co_return make_error(Errc::conflict, "a consistency check is already running");
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag = false; }
  } release{checking};
  consistency::Report report;
  report.started_at = utc::now();
  report.repair = repair;
  const auto started = std::chrono::steady_clock::now();
  for (auto& slot : slots) {
    if (module && slot->config->name != *module) continue;
    // Restore awareness in the check (issue 13.2): a source restored in place since the
    // consumer opened is found here, the consumer rewound before its caches are compared.
    if (slot->gate->is_open() && dynamic_cast<bus::Consumer*>(slot->module.get())) {
      auto name = slot->config->name;
      auto rewound = co_await slot->writer->run([this, &name] { return bus->rewind_restored_sources(name); });
      report.rewound.insert(report.rewound.end(), rewound.begin(), rewound.end());
    }
    auto down = [&](const std::string& cache_module, const std::string& table, const std::string& source) {
      consistency::CacheReport entry;
      entry.cache = cache_module + "." + table;
      entry.source = source;
      entry.error = "the " + cache_module + " module is down";
      report.caches.push_back(std::move(entry));
    };
    // Tables the module derives from its own rows (a report's per-day counts).
    for (const auto& derived : slot->database->manifest().derived) {
      const auto& name = slot->config->name;
      if (!slot->gate->is_open()) {
        down(name, derived.table, name + "." + derived.source);
        continue;
      }
      report.caches.push_back(co_await consistency::check(name, derived, *slot->database, *slot->writer, repair));
    }
    auto* checked = dynamic_cast<consistency::Checked*>(slot->module.get());
    if (!checked) continue;
    for (const auto& cache : checked->caches()) {
      if (!slot->gate->is_open()) {
        down(cache.module, cache.table, cache.source);
        continue;
      }
      report.caches.push_back(co_await consistency::check(cache, *slot->database, *slot->writer, repair));
    }
    for (const auto& cache : checked->keyed_caches()) {
      if (!slot->gate->is_open()) {
        down(cache.module, cache.table, cache.source);
        continue;
      }
      report.caches.push_back(co_await consistency::check(cache, *slot->database, *slot->writer, repair));
    }
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  record_consistency(report);
  co_return report;
}

Application::Impl::ConsistencyMetrics::ConsistencyMetrics(metrics::Registry& metrics)
    : missing(metrics.gauge("townhall_consistency_missing_records",
                            "Cache rows missing against their source, at the latest check", {"cache"})),
      stale(metrics.gauge("townhall_consistency_stale_records",
                          "Cache rows at another version than their source's, at the latest check", {"cache"})),
      extra(metrics.gauge("townhall_consistency_extra_records",
                          "Cache rows their source does not have, at the latest check", {"cache"})),
      repaired(metrics.counter("townhall_consistency_repaired_records_total",
                               "Cache rows resynced by consistency checks", {"cache"})),
      failed(metrics.gauge("townhall_consistency_check_failed", "1 when the latest check of the cache could not finish",
                           {"cache"})),
      last_run(metrics.gauge("townhall_consistency_last_run_timestamp_seconds",
                             "When the latest consistency check finished (Unix time)")) {}

void Application::Impl::record_consistency(const consistency::Report& report) {
  auto& [missing, stale, extra, repaired, failed, last_run] = consistency_metrics;
  for (const auto& c : report.caches) {
    missing.with({c.cache}).set(static_cast<double>(c.missing_count()));
    stale.with({c.cache}).set(static_cast<double>(c.stale_count()));
    extra.with({c.cache}).set(static_cast<double>(c.extra_count()));
    repaired.with({c.cache}).inc(static_cast<std::uint64_t>(std::max<std::int64_t>(0, c.repaired)));
    failed.with({c.cache}).set(c.error.empty() ? 0 : 1);
  }
  last_run.with({}).set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  std::lock_guard lock(last_check_mutex);
  last_check = report;
}

void Application::Impl::repair_after_rewinds() {
  for (auto& slot : slots) slot->writer->drain();  // the consumers have opened (and rewound)
  std::set<std::string> modules;
  {
    std::lock_guard lock(rewound_mutex);
    modules.swap(rewound);
    serving = true;
  }
  for (const auto& module : modules) {
    auto report = run_blocking(run_consistency(module, true));
    if (report)
      spdlog::warn("consistency: {}'s caches repaired after a source restore, before serving: {}", module,
                   report->consistent() ? "consistent" : "NOT consistent, see GET /admin/consistency");
  }
}

asio::awaitable<void> Application::Impl::check_after_rewind(std::string module) {
  asio::steady_timer wait(io);
  for (int attempt = 0; attempt < 60 && !shutting_down; ++attempt) {
    auto report = co_await run_consistency(module, true);
    if (report) {
      spdlog::warn("consistency: {}'s caches checked after a source restore: {}", module,
                   report->consistent() ? "consistent" : "NOT consistent, see GET /admin/consistency");
      co_return;
    }
    if (report.error().code != Errc::conflict) co_return;
    wait.expires_after(std::chrono::seconds(1));  // another check is running
    co_await wait.async_wait(asio::use_awaitable);
  }
}

void Application::Impl::schedule_consistency() {
  if (config.consistency.interval.count() == 0) return;
  consistency_timer->expires_after(config.consistency.interval);
  consistency_timer->async_wait([this](const boost::system::error_code& ec) {
    if (ec || shutting_down) return;
    asio::co_spawn(io, scheduled_check(), asio::detached);
  });
}

asio::awaitable<void> Application::Impl::scheduled_check() {
  auto report = co_await run_consistency(std::nullopt, config.consistency.repair);
  if (!report) spdlog::warn("consistency: scheduled check skipped: {}", report.error().message);
  if (!shutting_down) schedule_consistency();
}

}  // namespace townhall::app
