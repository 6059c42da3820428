// Event bus benchmark: commit -> applied latency at fixed rates fanned out to 3 consumer
// files, the maximum sustained rate, catch-up speed, and raw SQLite single-row commits
// on the same machine in the same run as the baseline.
//
//   bus_bench [--quick | --catch-up [N] | --catch-up-behind [N] | --sustained]   (make bench-bus, see bench/README.md)
#include <SQLiteCpp/Transaction.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus_fixture.hpp"
#include "support.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/logging.hpp"
#include "townhall/platform/metrics.hpp"

using namespace townhall;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// Latencies are taken when the consumer's transaction has committed: the handler notes
// the publish time of each event, the bus's after_commit point closes them.
struct LatencyRecorder {
  std::mutex mutex;
  std::vector<double> done_ms;
  static thread_local std::vector<std::int64_t> pending;

  void after_commit() {
    auto now = now_ns();
    std::lock_guard lock(mutex);
    for (auto published : pending) done_ms.push_back(static_cast<double>(now - published) / 1e6);
    pending.clear();
  }
  std::vector<double> take() {
    std::lock_guard lock(mutex);
    auto out = std::move(done_ms);
    done_ms.clear();
    return out;
  }
};
thread_local std::vector<std::int64_t> LatencyRecorder::pending;

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

std::int64_t publish(db::Connection& service, const std::string& id, std::int64_t version) {
  SQLite::Transaction transaction(service.sql(), SQLite::TransactionBehavior::IMMEDIATE);
  bus::NewEvent event{"gov.src.item",
                      "item.updated",
                      "item",
                      id,
                      version,
                      {{"snapshot", {{"id", id}, {"value", "v"}}}, {"t", now_ns()}},
                      "",
                      ""};
  bus::append(service, event);
  transaction.commit();
  return version;
}

struct Setup {
  explicit Setup(LatencyRecorder& recorder, int consumers = 3) : source(dir.path(), "src") {
    bus::Options options;
    options.sweep_interval = std::chrono::milliseconds(1000);
    if (const char* batch = std::getenv("BUS_BATCH")) options.batch = std::stoul(batch);
    options.fault_hook = [&recorder](std::string_view point) {
      if (point == "after_commit") recorder.after_commit();
    };
    bus = std::make_unique<bus::Bus>(options, metrics);
    bus->add_source("src", *source.database, *source.writer);
    for (int i = 0; i < consumers; ++i) {
      auto name = "c" + std::to_string(i + 1);
      sinks.push_back(std::make_unique<testing::TestModule>(dir.path(), name));
      bus->add_consumer(
          name, *sinks.back()->database, *sinks.back()->writer,
          {bus::Subscription{
              "item_refs", {"gov.src.item"}, db::Role::sync, [](const bus::Event& event, db::Connection& connection) {
                LatencyRecorder::pending.push_back(event.data.at("t").get<std::int64_t>());
                return testing::apply_item(event, connection);
              }}});
    }
    service = source.database->open(db::Role::service);
  }
  void wait_caught_up() {
    while (!bus->caught_up()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  testing::TempDir dir;
  testing::TestModule source;
  std::vector<std::unique_ptr<testing::TestModule>> sinks;
  metrics::Registry metrics;
  std::unique_ptr<bus::Bus> bus;
  std::unique_ptr<db::Connection> service;
};

double raw_sqlite_commits_per_second(double seconds) {
  testing::TempDir dir;
  SQLite::Database database((dir.path() / "raw.db").string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  database.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  database.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  SQLite::Statement insert(database, "INSERT INTO t (v) VALUES ('{\"snapshot\":{\"id\":\"x\",\"value\":\"v\"}}')");
  auto start = Clock::now();
  long count = 0;
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    SQLite::Transaction transaction(database, SQLite::TransactionBehavior::IMMEDIATE);
    insert.exec();
    insert.reset();
    transaction.commit();
    ++count;
  }
  return static_cast<double>(count) / std::chrono::duration<double>(Clock::now() - start).count();
}

void fixed_rate(int rate, double seconds) {
  LatencyRecorder recorder;
  Setup setup(recorder);
  setup.bus->start();
  setup.wait_caught_up();
  std::vector<std::int64_t> versions(1000, 0);
  auto start = Clock::now();
  long total = static_cast<long>(rate * seconds);
  for (long i = 0; i < total; ++i) {
    auto due = start + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * static_cast<double>(i) / rate));
    std::this_thread::sleep_until(due);
    auto slot = static_cast<std::size_t>(i % 1000);
    auto version = ++versions[slot];
    setup.source.writer->post([&setup, slot, version] {
      publish(*setup.service, "agg-" + std::to_string(slot), version);
      setup.bus->notify("src");
    });
  }
  setup.source.writer->drain();
  double achieved = static_cast<double>(total) / std::chrono::duration<double>(Clock::now() - start).count();
  setup.wait_caught_up();
  auto latencies = recorder.take();
  std::printf("rate %6d ev/s (achieved %7.0f) x3 consumers: %zu applies, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n",
              rate, achieved, latencies.size(), percentile(latencies, 0.50), percentile(latencies, 0.99),
              percentile(latencies, 0.999));
}

double max_sustained(double seconds) {
  LatencyRecorder recorder;
  Setup setup(recorder);
  setup.bus->start();
  setup.wait_caught_up();
  std::vector<std::int64_t> versions(1000, 0);
  auto start = Clock::now();
  long count = 0;
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    // Commits go through the source's writer thread, as a module's do; 64 at a time keeps
    // the queue short without idling the writer.
    for (int i = 0; i < 64; ++i) {
      auto slot = static_cast<std::size_t>(count % 1000);
      auto version = ++versions[slot];
      setup.source.writer->post([&setup, slot, version] {
        publish(*setup.service, "agg-" + std::to_string(slot), version);
        setup.bus->notify("src");
      });
      ++count;
    }
    setup.source.writer->drain();
  }
  setup.wait_caught_up();  // sustained = published and applied by all three
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  auto latencies = recorder.take();
  double rate = static_cast<double>(count) / elapsed;
  std::printf("max sustained: %ld events in %.2f s = %.0f ev/s fanned out to 3 (p99 %.1f ms under overload)\n", count,
              elapsed, rate, percentile(latencies, 0.99));
  return rate;
}

// A fresh cache works through `events` backlog events. With `behind`, a second consumer
// is already at the head, so the source's shared window sits there and the fresh one
// catches up from the file on its own (a module back after a fault, a cache added later).
void catch_up(long events, bool behind = false) {
  LatencyRecorder recorder;
  Setup setup(recorder, behind ? 2 : 1);
  {
    SQLite::Transaction transaction(setup.service->sql(), SQLite::TransactionBehavior::IMMEDIATE);
    for (long i = 0; i < events; ++i) {
      auto id = "agg-" + std::to_string(i % 10000);
      bus::NewEvent event{"gov.src.item",
                          "item.updated",
                          "item",
                          id,
                          i / 10000 + 1,
                          {{"snapshot", {{"id", id}, {"value", "v"}}}, {"t", 0}},
                          "",
                          ""};
      bus::append(*setup.service, event);
    }
    transaction.commit();
  }
  if (behind) {
    auto owner = setup.sinks[1]->database->open(db::Role::owner);
    owner->exec("INSERT INTO bus_cursors (subscription, source, position, updated_at) VALUES ('item_refs', 'src', " +
                std::to_string(events) + ", 'bench')");
  }
  auto start = Clock::now();
  setup.bus->start();
  setup.wait_caught_up();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("catch-up%s: %ld backlog events into a fresh cache in %.2f s = %.0f ev/s\n",
              behind ? " (behind the live window)" : "", events, elapsed, static_cast<double>(events) / elapsed);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  if (argc > 1 && std::string(argv[1]) == "--catch-up") {  // for profiling one phase
    logging::init(logging::Options{.level = "warn", .access_log = logging::AccessLogFormat::off});
    catch_up(argc > 2 ? std::stol(argv[2]) : 200'000);
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--catch-up-behind") {
    logging::init(logging::Options{.level = "warn", .access_log = logging::AccessLogFormat::off});
    catch_up(argc > 2 ? std::stol(argv[2]) : 200'000, true);
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--sustained") {  // for profiling one phase
    logging::init(logging::Options{.level = "warn", .access_log = logging::AccessLogFormat::off});
    max_sustained(5);
    return 0;
  }
  logging::init(logging::Options{.level = "warn", .access_log = logging::AccessLogFormat::off});
  {
    testing::TempDir warmup;
    db::ModuleDb settings("warmup", warmup.path() / "w.db", {});
  }  // SQLite config first
  double raw = raw_sqlite_commits_per_second(quick ? 1 : 3);
  std::printf("raw SQLite (WAL, synchronous=NORMAL) single-row commits: %.0f/s\n", raw);
  for (int rate : {1000, 5000, 20000}) fixed_rate(rate, quick ? 1 : 3);
  double sustained = max_sustained(quick ? 1 : 3);
  std::printf("ratio sustained bus events / raw single-row commits: %.2f\n", sustained / raw);
  catch_up(quick ? 100'000 : 1'000'000);
  catch_up(quick ? 100'000 : 1'000'000, true);
}
