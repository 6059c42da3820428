// Writes through a module's write path (db::WritePath: the writer thread, group commit,
// a savepoint per command) against raw SQLite single-row commits with the same pragmas
// (the same kind of module file through SQLite's own VFS, IMMEDIATE transaction, one
// INSERT, COMMIT, in a loop on one thread; also through a module's service connection,
// for reference), measured in alternating rounds of one run.
// The write path is driven by C concurrent callers: coroutines on two threads, as the
// HTTP server's network threads await it.
//
//   write_bench [--seconds S per measurement, default 2] [--rounds R, default 3]
//               [--callers C1,C2,... default 1,4,16,64]
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "bus_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/logging.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/result.hpp"
#include "townhall/platform/write_path.hpp"

using namespace townhall;
using bench::Clock;
using bench::seconds_since;

namespace {

constexpr const char* kInsert = "INSERT INTO items (id, version, value) VALUES (?, 1, ?)";
constexpr const char* kValue = R"({"phone":"+15555550100","name":"Maria Lopez"})";

// One row, as a module's command writes it (the caller's transaction around it).
Result<int> insert_item(db::Connection& service, const std::string& id) {
  auto insert = service.cached(kInsert);
  insert->bind(1, id);
  insert->bind(2, kValue);
  insert->exec();
  insert->reset();
  return 1;
}

// Raw SQLite: the same statement, each in its own IMMEDIATE transaction on one thread,
// on the same kind of file. `sqlites_own`: SQLite's own VFS and defaults with the
// modules' pragmas (WAL, synchronous=NORMAL), issue 24's baseline; otherwise a service
// connection of the module (its VFS, design note 65, and its authorizer).
double raw_commits_per_second(double seconds, bool sqlites_own) {
  testing::TempDir dir;
  testing::TestModule module(dir.path(), "raw");
  auto service = module.database->open(db::Role::service);
  SQLite::Database plain(module.file.string(), SQLite::OPEN_READWRITE, 5000, "unix");
  plain.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  SQLite::Statement insert(plain, kInsert);
  long count = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < seconds) {
    if (sqlites_own) {
      SQLite::Transaction transaction(plain, SQLite::TransactionBehavior::IMMEDIATE);
      insert.bind(1, "raw-" + std::to_string(count));
      insert.bind(2, kValue);
      insert.exec();
      insert.reset();
      transaction.commit();
    } else {
      SQLite::Transaction transaction(service->sql(), SQLite::TransactionBehavior::IMMEDIATE);
      (void)insert_item(*service, "raw-" + std::to_string(count));
      transaction.commit();
    }
    ++count;
  }
  return static_cast<double>(count) / seconds_since(start);
}

struct PathRun {
  double commands_per_second = 0;
  double commands_per_commit = 0;
};

// `callers` coroutines on two threads, each awaiting its next command as soon as the
// last one is answered, for `seconds`.
PathRun write_path_commands_per_second(int callers, double seconds) {
  testing::TempDir dir;
  testing::TestModule module(dir.path(), "path");
  metrics::Registry metrics;
  db::WritePath path(
      *module.database, *module.writer, [] {}, &metrics);
  path.open();
  boost::asio::io_context io;
  std::atomic<long> done{0};
  std::atomic<bool> stop{false};
  std::atomic<int> running{callers};
  const auto start = Clock::now();
  for (int c = 0; c < callers; ++c) {
    boost::asio::co_spawn(
        io,
        [&, c]() -> boost::asio::awaitable<void> {
          long n = 0;
          while (!stop.load(std::memory_order_relaxed)) {
            std::string id = std::to_string(c);  // c<caller>-<n>, appended apart: GCC 12 -Wrestrict
            id.insert(0, 1, 'c');
            id += '-';
            id += std::to_string(n++);
            // Captured by reference, as the modules' commands do: GCC 12 destroys a
            // coroutine argument's by-value lambda capture twice.
            auto result = co_await path.run([&id](db::Connection& service) { return insert_item(service, id); });
            if (!result) {
              std::fprintf(stderr, "write path: %s\n", result.error().message.c_str());
              std::exit(1);
            }
            done.fetch_add(1, std::memory_order_relaxed);
            if (seconds_since(start) >= seconds) stop = true;
          }
          --running;
        },
        boost::asio::detached);
  }
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
  const double elapsed = seconds_since(start);
  path.close();
  module.writer->stop();
  const double commits = metrics.counter("townhall_write_commits_total", "", {"module"}).with({"path"}).value();
  PathRun out;
  out.commands_per_second = static_cast<double>(done.load()) / elapsed;
  out.commands_per_commit = commits > 0 ? static_cast<double>(done.load()) / commits : 0;
  return out;
}

double median(std::vector<double> values) { return bench::percentile(std::move(values), 0.5); }

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2;
  int rounds = 3;
  std::vector<int> caller_counts{1, 4, 16, 64};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--seconds" && has_value) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--rounds" && has_value) {
      rounds = std::atoi(argv[++i]);
    } else if (arg == "--callers" && has_value) {
      caller_counts.clear();
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) caller_counts.push_back(std::atoi(item.c_str()));
    } else {
      std::fprintf(stderr, "usage: write_bench [--seconds S] [--rounds R] [--callers C1,C2,...]\n");
      return 2;
    }
  }
  if (seconds <= 0 || rounds < 1 || caller_counts.empty()) {
    std::fprintf(stderr, "write_bench: --seconds > 0, --rounds >= 1 and at least one caller count\n");
    return 2;
  }
  logging::init(logging::Options{.level = "warn", .access_log = logging::AccessLogFormat::off});
  std::printf(
      "%d rounds of %.1f s; in each, raw SQLite (its own VFS, then a module's connection) and the write path at "
      "each caller count\n",
      rounds, seconds);
  std::vector<double> raw, raw_module;
  std::vector<std::vector<double>> rates(caller_counts.size()), ratios(caller_counts.size()),
      group(caller_counts.size());
  for (int round = 0; round < rounds; ++round) {
    raw.push_back(raw_commits_per_second(seconds, true));
    raw_module.push_back(raw_commits_per_second(seconds, false));
    std::printf("round %d: raw %.0f commits/s (through a module's connection %.0f)", round + 1, raw.back(),
                raw_module.back());
    for (std::size_t i = 0; i < caller_counts.size(); ++i) {
      auto run = write_path_commands_per_second(caller_counts[i], seconds);
      rates[i].push_back(run.commands_per_second);
      ratios[i].push_back(run.commands_per_second / raw.back());
      group[i].push_back(run.commands_per_commit);
      std::printf(", %d callers %.0f/s", caller_counts[i], run.commands_per_second);
    }
    std::printf("\n");
  }
  std::printf(
      "\nmedians: raw SQLite single-row commits %.0f/s with its own VFS, %.0f/s through a module's connection\n",
      median(raw), median(raw_module));
  std::printf("| callers | write path commands/s | / raw (same round) | commands per commit |\n|---|---|---|---|\n");
  for (std::size_t i = 0; i < caller_counts.size(); ++i)
    std::printf("| %d | %.0f | %.2f | %.1f |\n", caller_counts[i], median(rates[i]), median(ratios[i]),
                median(group[i]));
}
