// The log of a source that runs in this process: its outbox table, read on relay
// connections of its own file.
#include <spdlog/spdlog.h>

#include "source_log.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::bus::detail {
namespace {

const std::string kSelectOutbox =
    std::string("SELECT ") + kOutboxColumns + " FROM outbox WHERE id > ? AND id <= ? ORDER BY id LIMIT ?";

// Runs `f` on `connection`, opening it first when needed; a failure drops the connection
// (the next use opens a fresh one) and is SourceUnavailable.
template <class F>
auto on_connection(const db::ModuleDb& database, std::unique_ptr<db::Connection>& connection, F&& f) {
  try {
    if (!connection) connection = database.open(db::Role::relay);
    return f(*connection);
  } catch (const std::exception& error) {
    connection.reset();
    throw SourceUnavailable(error.what());
  }
}

std::int64_t outbox_bound(db::Connection& connection, bool newest) {
  auto query =
      connection.cached(newest ? "SELECT coalesce(max(id), 0) FROM outbox" : "SELECT coalesce(min(id), 0) FROM outbox");
  query->executeStep();
  auto id = query->getColumn(0).getInt64();
  query->reset();
  return id;
}

class LocalReader final : public LogReader {
 public:
  explicit LocalReader(const db::ModuleDb& database) : database_(database) {}

  void read(std::int64_t after, std::int64_t up_to, std::size_t limit, Rows& out) override {
    on_connection(database_, connection_, [&](db::Connection& connection) {
      auto select = connection.cached(kSelectOutbox);
      select->bind(1, after);
      select->bind(2, up_to);
      select->bind(3, static_cast<std::int64_t>(limit));
      while (select->executeStep()) {
        auto shared = std::make_shared<SharedRow>();
        Row& row = shared->row;
        row.id = select->getColumn(0).getInt64();
        row.topic = select->getColumn(1).getString();
        row.event_type = select->getColumn(2).getString();
        row.aggregate_type = select->getColumn(3).getString();
        row.aggregate_id = select->getColumn(4).getString();
        row.version = select->getColumn(5).getInt64();
        row.occurred_at = select->getColumn(6).getString();
        row.correlation_id = select->getColumn(7).getString();
        row.causation_id = select->getColumn(8).getString();
        row.schema = select->getColumn(9).getInt();
        row.data = select->getColumn(10).getString();
        shared->lane_hash = fnv1a(row.aggregate_id);
        out.push_back(std::move(shared));
      }
      select->reset();
      return 0;
    });
  }

  std::int64_t newest() override {
    return on_connection(database_, connection_, [](db::Connection& c) { return outbox_bound(c, true); });
  }
  std::int64_t oldest() override {
    return on_connection(database_, connection_, [](db::Connection& c) { return outbox_bound(c, false); });
  }

 private:
  const db::ModuleDb& database_;
  std::unique_ptr<db::Connection> connection_;
};

class LocalLog final : public SourceLog {
 public:
  explicit LocalLog(const db::ModuleDb& database) : database_(database) {}

  std::unique_ptr<LogReader> open_reader() override { return std::make_unique<LocalReader>(database_); }

  std::int64_t head() override {
    std::lock_guard lock(status_mutex_);
    return on_connection(database_, status_, [](db::Connection& c) { return outbox_bound(c, true); });
  }

  Backlog backlog(const std::vector<std::int64_t>& cursors) override {
    std::lock_guard lock(status_mutex_);
    return on_connection(database_, status_, [&](db::Connection& reader) {
      Backlog out;
      out.head = outbox_bound(reader, true);
      auto first_after = reader.cached("SELECT occurred_at FROM outbox WHERE id > ? ORDER BY id LIMIT 1");
      std::int64_t lowest = out.head;
      for (auto cursor : cursors) {
        std::optional<SystemClock::time_point> at;
        first_after->reset();
        first_after->bind(1, cursor);
        if (cursor < out.head && first_after->executeStep())
          if (auto parsed = utc::parse(first_after->getColumn(0).getString())) at = *parsed;
        out.first_unapplied_at.push_back(at);
        lowest = std::min(lowest, cursor);
      }
      first_after->reset();
      auto count = reader.cached("SELECT count(*) FROM outbox WHERE id > ?");
      count->bind(1, lowest);
      count->executeStep();
      out.pending = count->getColumn(0).getInt64();
      count->reset();
      return out;
    });
  }

  std::int64_t prune(const PruneBounds& bounds) override {
    return on_connection(database_, pruner_, [&](db::Connection& relay) {
      // The newest row stays: a new row's id is max(id) + 1, and ids must never be
      // reused (bus/0003_outbox_plain_rowid.sql).
      auto prune = relay.cached(
          "DELETE FROM outbox WHERE ((id <= ?1 AND occurred_at < ?2) OR occurred_at < ?3) "
          "AND id < (SELECT max(id) FROM outbox)");
      prune->bind(1, bounds.applied);
      prune->bind(2, bounds.retention_cutoff);
      prune->bind(3, bounds.hold_cutoff);
      int removed = prune->exec();
      prune->reset();
      if (removed > 0) spdlog::info("bus: pruned {} events from the {} outbox", removed, database_.module());
      auto held = relay.cached("SELECT count(*) FROM outbox WHERE id > ? AND occurred_at < ?");
      held->bind(1, bounds.applied);
      held->bind(2, bounds.retention_cutoff);
      held->executeStep();
      auto count = held->getColumn(0).getInt64();
      held->reset();
      return count;
    });
  }

  void close() override {
    pruner_.reset();
    std::lock_guard lock(status_mutex_);
    status_.reset();
  }

 private:
  const db::ModuleDb& database_;
  std::unique_ptr<db::Connection> pruner_;  // the source's writer only
  std::mutex status_mutex_;
  std::unique_ptr<db::Connection> status_;  // under status_mutex_
};

}  // namespace

std::unique_ptr<SourceLog> make_local_log(const db::ModuleDb& database) { return std::make_unique<LocalLog>(database); }

}  // namespace townhall::bus::detail
