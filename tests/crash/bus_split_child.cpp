// Child process for the split bus crash test (issue 23 §2): the source module and its
// consumers in two processes, joined by a RabbitMQ stream, each SIGKILLed — by the parent
// at a random moment, or by itself at a chosen point of the delivery path.
//
//   bus_split_child DIR source   URL PREFIX SEED CRASH_POINT CRASH_AFTER
//       writes items in "src" and publishes its outbox to the stream
//   bus_split_child DIR consumer URL PREFIX SEED CRASH_POINT CRASH_AFTER
//       consumes the stream into c1, c2, c3 (c3's subscription can bootstrap from src's file)
//   bus_split_child DIR drain-source   URL PREFIX     publishes until the broker has it all
//   bus_split_child DIR drain-consumer URL PREFIX HEAD consumes until each feed is at HEAD
//
// CRASH_POINT: after_source_commit, after_publish (source); before_apply, after_apply,
// after_commit (consumer); or none.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "bus_fixture.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/metrics.hpp"

using namespace townhall;

namespace {

// c3's bootstrap: every item as the source holds it now, through a read of its file (the
// stand-in for the source's Api), applied with the version check like an event.
void bootstrap_from_source(const std::filesystem::path& dir, db::Connection& connection) {
  testing::TestModule source(dir, "src", false);
  for (const auto& [id, version] : testing::read_item_versions(*source.database)) {
    auto reader = source.database->open(db::Role::reader);
    auto value = reader->prepare("SELECT value FROM items WHERE id = ?");
    value.bind(1, id);
    value.executeStep();
    auto upsert = connection.cached(
        "INSERT INTO item_refs (id, value, event_version, applied, seen) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET value = excluded.value, event_version = excluded.event_version, "
        "applied = excluded.applied, seen = excluded.seen WHERE item_refs.event_version < excluded.event_version");
    upsert->bind(1, id);
    upsert->bind(2, value.getColumn(0).getString());
    upsert->bind(3, version);
    upsert->bind(4, version);
    upsert->bind(5, version);
    upsert->exec();
  }
  std::printf("bootstrapped\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  if (std::getenv("SPLIT_CHILD_DEBUG")) spdlog::set_level(spdlog::level::debug);
  std::filesystem::path dir = argv[1];
  std::string mode = argv[2];
  const bool drain = mode.starts_with("drain");
  std::string crash_point = !drain && argc > 6 ? argv[6] : "none";
  long crash_after = !drain && argc > 7 ? std::stol(argv[7]) : 0;
  auto maybe_crash = testing::crash_at(crash_point, crash_after);

  metrics::Registry metrics;
  bus::Options options;
  options.batch = 64;
  options.sweep_interval = std::chrono::milliseconds(50);
  options.fault_hook = maybe_crash;
  options.transport = bus::StreamTransport{};
  options.transport->url = argv[3];
  options.transport->stream_prefix = argv[4];
  options.transport->prefetch = 64;  // small: credit runs out and acks matter
  options.transport->reconnect_initial = std::chrono::milliseconds(50);
  options.transport->reconnect_max = std::chrono::milliseconds(500);
  bus::Bus bus(options, metrics);

  if (mode == "source" || mode == "drain-source") {
    testing::TestModule source(dir, "src");
    bus.add_source("src", *source.database, *source.writer);
    if (mode == "drain-source") {
      bus.start();
      // Done when the broker confirmed the newest row and the file says so.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      for (;;) {
        auto head = bus.outbox_head("src");
        auto reader = source.database->open(db::Role::reader);
        auto published = reader->prepare("SELECT published_up_to FROM bus_publications");
        published.executeStep();
        if (published.getColumn(0).getInt64() >= head) break;
        if (std::chrono::steady_clock::now() > deadline) {
          bus.stop();
          return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      bus.stop();
      std::printf("drained %lld\n", static_cast<long long>(bus.outbox_head("src")));
      return 0;
    }
    std::mt19937 random(static_cast<unsigned>(std::stoul(argv[5])));
    auto service = source.database->open(db::Role::service);
    bus.start();
    std::printf("running\n");
    std::fflush(stdout);
    for (long i = 0;; ++i) {
      std::string id = "agg-" + std::to_string(random() % 40);
      testing::publish_item(*service, id, "value-" + std::to_string(i) + "-" + argv[5]);
      maybe_crash("after_source_commit");  // committed, publisher not told yet
      bus.notify("src");
      if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  std::vector<std::unique_ptr<testing::TestModule>> consumers;
  for (auto name : {"c1", "c2", "c3"}) consumers.push_back(std::make_unique<testing::TestModule>(dir, name));
  bus.add_remote_source("src");
  for (auto& consumer : consumers) {
    bus::Subscription subscription{"item_refs", {"gov.src.item"}, db::Role::sync, testing::apply_item};
    if (consumer->name == "c3")
      subscription.bootstrap = [dir](db::Connection& connection) { bootstrap_from_source(dir, connection); };
    bus.add_consumer(consumer->name, *consumer->database, *consumer->writer, {subscription});
  }
  bus.start();
  if (mode == "drain-consumer") {
    const std::int64_t head = std::stoll(argv[5]);
    const bool drained = testing::drain_while_progressing(
        bus,
        [&] {
          for (const auto& feed : bus.status())
            if (!feed.consumer_up || feed.cursor < head) return false;
          return true;
        },
        std::chrono::seconds(60));
    bus.stop();
    if (!drained) return 1;
    std::printf("drained\n");
    return 0;
  }
  std::printf("running\n");
  std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}
