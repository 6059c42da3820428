// Child process for the bus crash test: publishes changes in a source module and
// consumes them into four consumer files (the fourth's subscription versioned), and gets
// SIGKILLed — by the parent at a random moment, or by itself at a chosen point of the
// delivery path.
//
//   bus_crash_child DATA_DIR run SEED CRASH_POINT CRASH_AFTER
//   bus_crash_child DATA_DIR drain
//
// CRASH_POINT is one of after_source_commit, before_apply, after_apply, after_commit,
// after_pass or none; the child kills itself on the CRASH_AFTER-th time it reaches that
// point. A quarter of the source's commits are of a topic no consumer takes, so feeds
// also pass batches without a transaction (design note 66), their cursor rows behind.
#include <SQLiteCpp/Transaction.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "bus_fixture.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/metrics.hpp"

using namespace townhall;

namespace {
// An event of a topic the consumers do not subscribe to.
void publish_other(db::Connection& service, const std::string& id) {
  SQLite::Transaction transaction(service.sql(), SQLite::TransactionBehavior::IMMEDIATE);
  bus::NewEvent event;
  event.topic = "gov.src.other";
  event.event_type = "other.noted";
  event.aggregate_type = "other";
  event.aggregate_id = id;
  event.event_version = 1;
  event.data = {{"snapshot", {{"id", id}}}};
  bus::append(service, event);
  transaction.commit();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  std::filesystem::path dir = argv[1];
  std::string mode = argv[2];
  std::string crash_point = argc > 4 ? argv[4] : "none";
  long crash_after = argc > 5 ? std::stol(argv[5]) : 0;
  auto maybe_crash = testing::crash_at(crash_point, crash_after);

  testing::TestModule source(dir, "src");
  std::vector<std::unique_ptr<testing::TestModule>> consumers;
  // c4's subscription is versioned (design note 70): no range records, a kill re-delivers.
  for (auto name : {"c1", "c2", "c3", "c4"}) consumers.push_back(std::make_unique<testing::TestModule>(dir, name));

  metrics::Registry metrics;
  bus::Options options;
  options.batch = 64;
  options.sweep_interval = std::chrono::milliseconds(50);
  options.fault_hook = maybe_crash;
  options.passed_cursor_delay = std::chrono::milliseconds(20);
  options.passed_cursor_events = 8;
  bus::Bus bus(options, metrics);
  bus.add_source("src", *source.database, *source.writer);
  for (auto& consumer : consumers)
    bus.add_consumer(consumer->name, *consumer->database, *consumer->writer,
                     {bus::Subscription{"item_refs",
                                        {"gov.src.item"},
                                        db::Role::sync,
                                        testing::apply_item,
                                        {},
                                        /*versioned=*/consumer->name == "c4"}});
  if (mode == "drain") {
    bus.start();
    if (!testing::drain_while_progressing(
            bus, [&] { return bus.caught_up(); }, std::chrono::seconds(60)))
      return 1;
    bus.stop();
    std::printf("drained\n");
    return 0;
  }

  std::mt19937 random(static_cast<unsigned>(std::stoul(argv[3])));
  auto service = source.database->open(db::Role::service);
  // Before start: the consumers may reach the crash point while catching up at once.
  std::printf("running\n");
  std::fflush(stdout);
  bus.start();
  for (long i = 0;; ++i) {
    std::string id = "agg-" + std::to_string(random() % 40);
    if (random() % 4 == 0)
      publish_other(*service, id);
    else
      testing::publish_item(*service, id, "value-" + std::to_string(i));
    maybe_crash("after_source_commit");  // committed, relay not told yet
    bus.notify("src");
    if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}
