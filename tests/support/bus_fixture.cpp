#include "bus_fixture.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "townhall/migrations.hpp"
#include "townhall/platform/migrator.hpp"

namespace townhall::testing {

TestModule::TestModule(const std::filesystem::path& dir, const std::string& module_name, bool create)
    : name(module_name), file(dir / (module_name + ".db")) {
  database = std::make_unique<db::ModuleDb>(name, file, bus::with_bus_tables({"items"}, {"item_refs"}));
  writer = std::make_unique<db::Writer>(name);
  if (create) create_schema();
}

void TestModule::create_schema() {
  auto owner = database->open(db::Role::owner);
  db::Migrator migrator(*owner);
  migrator.apply(db::migrations_for(migrations::embedded_migrations(), "bus"));
  owner->exec(
      "CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS item_refs (id TEXT PRIMARY KEY, value TEXT NOT NULL,"
      " event_version INTEGER NOT NULL, applied INTEGER NOT NULL, seen INTEGER NOT NULL DEFAULT 0)");
}

std::int64_t publish_item(db::Connection& service, const std::string& id, const std::string& value) {
  SQLite::Transaction transaction(service.sql(), SQLite::TransactionBehavior::IMMEDIATE);
  auto upsert = service.cached(
      "INSERT INTO items (id, version, value) VALUES (?, 1, ?) "
      "ON CONFLICT (id) DO UPDATE SET version = version + 1, value = excluded.value RETURNING version");
  upsert->bind(1, id);
  upsert->bind(2, value);
  upsert->executeStep();
  std::int64_t version = upsert->getColumn(0).getInt64();
  upsert->reset();
  bus::NewEvent event;
  event.topic = "gov." + service.module() + ".item";
  event.event_type = version == 1 ? "item.created" : "item.updated";
  event.aggregate_type = "item";
  event.aggregate_id = id;
  event.event_version = version;
  event.data = {{"snapshot", {{"id", id}, {"value", value}}}};
  bus::append(service, event);
  transaction.commit();
  return version;
}

bus::Outcome apply_item(const bus::Event& event, db::Connection& connection) {
  auto upsert = connection.cached(
      "INSERT INTO item_refs (id, value, event_version, applied) VALUES (?, ?, ?, 1) "
      "ON CONFLICT (id) DO UPDATE SET value = excluded.value, event_version = excluded.event_version, "
      "applied = applied + 1 WHERE item_refs.event_version < excluded.event_version");
  upsert->bind(1, event.aggregate_id);
  upsert->bind(2, event.data.at("snapshot").at("value").get<std::string>());
  upsert->bind(3, static_cast<std::int64_t>(event.event_version));
  bool stale = upsert->exec() == 0;
  // Every delivery counts, stale or not: exactly-once shows as seen == number of events.
  auto seen = connection.cached("UPDATE item_refs SET seen = seen + 1 WHERE id = ?");
  seen->bind(1, event.aggregate_id);
  seen->exec();
  return stale ? bus::Outcome::stale : bus::Outcome::applied;
}

std::map<std::string, ItemRef> read_refs(const db::ModuleDb& database) {
  std::map<std::string, ItemRef> out;
  auto reader = database.open(db::Role::reader);
  auto query = reader->prepare("SELECT id, value, event_version, applied, seen FROM item_refs");
  while (query.executeStep())
    out[query.getColumn(0).getString()] = {query.getColumn(1).getString(), query.getColumn(2).getInt64(),
                                           query.getColumn(3).getInt64(), query.getColumn(4).getInt64()};
  return out;
}

std::map<std::string, std::int64_t> read_item_versions(const db::ModuleDb& database) {
  std::map<std::string, std::int64_t> out;
  auto reader = database.open(db::Role::reader);
  auto query = reader->prepare("SELECT id, version FROM items");
  while (query.executeStep()) out[query.getColumn(0).getString()] = query.getColumn(1).getInt64();
  return out;
}

void expect_each_version_applied_once(const std::filesystem::path& dir, const std::string& consumer,
                                      const std::map<std::string, std::int64_t>& versions, bool versioned) {
  TestModule module(dir, consumer, false);
  auto refs = read_refs(*module.database);
  ASSERT_EQ(refs.size(), versions.size()) << consumer;
  for (const auto& [id, version] : versions) {
    EXPECT_EQ(refs[id].version, version) << consumer << " " << id;
    EXPECT_EQ(refs[id].applied, version) << consumer << " " << id;
    if (versioned)
      EXPECT_GE(refs[id].seen, version) << consumer << " " << id << ": each event delivered";
    else
      EXPECT_EQ(refs[id].seen, version) << consumer << " " << id << ": each event delivered exactly once";
  }
}

std::function<void(std::string_view)> crash_at(std::string point, long after) {
  auto hits = std::make_shared<std::atomic<long>>(0);
  return [point = std::move(point), after, hits](std::string_view reached) {
    if (reached == point && ++*hits == after) {
      std::printf("crash at %s\n", point.c_str());
      std::fflush(stdout);
      ::raise(SIGKILL);
    }
  };
}

bool drain_while_progressing(bus::Bus& bus, const std::function<bool()>& done, std::chrono::seconds stall) {
  auto print_cursors = [](const std::vector<bus::FeedStatus>& feeds) {
    for (const auto& feed : feeds)
      std::printf("%s cursor %lld of %lld\n", feed.consumer.c_str(), static_cast<long long>(feed.cursor),
                  static_cast<long long>(feed.source_head));
    std::fflush(stdout);
  };
  std::int64_t progress = -1;
  auto last_advance = std::chrono::steady_clock::now();
  auto last_report = last_advance;
  while (!done()) {
    const auto feeds = bus.status();
    std::int64_t sum = 0;
    for (const auto& feed : feeds) sum += feed.cursor;
    const auto now = std::chrono::steady_clock::now();
    if (sum != progress) {
      progress = sum;
      last_advance = now;
      if (now - last_report >= std::chrono::seconds(1)) {
        last_report = now;
        print_cursors(feeds);
      }
    } else if (now - last_advance > stall) {
      print_cursors(feeds);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace townhall::testing
