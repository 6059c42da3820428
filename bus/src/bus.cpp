#include "townhall/bus/bus.hpp"

#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::bus {
namespace {

using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

constexpr const char* kSelectOutbox =
    "SELECT id, topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, correlation_id, "
    "causation_id, schema, data FROM outbox WHERE id > ? AND id <= ? ORDER BY id LIMIT ?";

struct Row {
  std::int64_t id = 0;
  std::string topic, event_type, aggregate_type, aggregate_id, occurred_at, correlation_id, causation_id, data;
  std::int64_t version = 0;
  int schema = 1;
};

// The event of an outbox row as stored; `data` stays a string when it is not JSON.
Event fields_of(const std::string& source, const Row& row) {
  Event event;
  event.event_id = source + ":" + std::to_string(row.id);
  event.position = row.id;
  event.topic = row.topic;
  event.event_type = row.event_type;
  event.source = source;
  event.aggregate_type = row.aggregate_type;
  event.aggregate_id = row.aggregate_id;
  event.event_version = row.version;
  event.occurred_at = row.occurred_at;
  event.correlation_id = row.correlation_id;
  event.causation_id = row.causation_id;
  event.schema = row.schema;
  event.data = nlohmann::json::parse(row.data, nullptr, false);
  if (event.data.is_discarded()) event.data = row.data;
  return event;
}

// The event of an outbox row; an Error when the row cannot be a valid event.
Result<Event> to_event(const std::string& source, const Row& row) {
  Event event = fields_of(source, row);
  if (!event.data.is_object()) return make_error(Errc::invalid_argument, "invalid event: data is not a JSON object");
  if (row.version < 1) return make_error(Errc::invalid_argument, "invalid event: event_version must be positive");
  if (row.schema != 1) return make_error(Errc::invalid_argument, "invalid event: unsupported schema");
  return event;
}

// The envelope as kept in dead_letters, also for rows that are not valid events.
std::string envelope_of(const std::string& source, const Row& row) {
  return to_json(fields_of(source, row)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// An outbox row as the feeds of one source share it: read from the file once, its event
// parsed once on first use, whatever number of subscriptions apply it. Immutable once
// parsed, so consumer threads read it concurrently.
struct SharedRow {
  Row row;
  std::uint64_t lane_hash = 0;  // of the aggregate id

  const Result<Event>& event(const std::string& source) const {
    std::call_once(parsed_once_, [&] { parsed_ = to_event(source, row); });
    return parsed_;
  }

 private:
  mutable std::once_flag parsed_once_;
  mutable Result<Event> parsed_;
};
using Rows = std::vector<std::shared_ptr<const SharedRow>>;

}  // namespace

std::string append(db::Connection& service, const NewEvent& event) {
  const std::string& module = service.module();
  std::string prefix = "gov." + std::string(module) + ".";
  if (!event.topic.starts_with(prefix) || event.topic.size() == prefix.size())
    throw std::invalid_argument("module '" + std::string(module) + "' cannot publish on topic '" + event.topic + "'");
  if (event.event_version < 1) throw std::invalid_argument("event_version must be positive");
  if (!event.data.is_object()) throw std::invalid_argument("event data must be a JSON object");
  auto insert = service.cached(
      "INSERT INTO outbox (topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, "
      "correlation_id, causation_id, schema, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)");
  insert->bind(1, event.topic);
  insert->bind(2, event.event_type);
  insert->bind(3, event.aggregate_type);
  insert->bind(4, event.aggregate_id);
  insert->bind(5, static_cast<std::int64_t>(event.event_version));
  insert->bind(6, utc::now());
  insert->bind(7, event.correlation_id);
  insert->bind(8, event.causation_id);
  insert->bind(9, event.data.dump());
  insert->exec();
  return std::string(module) + ":" + std::to_string(service.sql().getLastInsertRowid());
}

struct Bus::Impl : std::enable_shared_from_this<Impl> {
  struct Consumer;
  struct SubscriptionState;
  struct Source;

  struct Lane {
    std::int64_t position = 0;  // everything up to here is done for this lane
    int attempts = 0;           // of the event `failing` (when failing)
    std::int64_t failing = 0;   // the id of the event this lane is retrying; 0: none
    std::string first_failed_at;
    bool waiting = false;  // in backoff
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  // One subscription reading one source.
  struct Feed {
    SubscriptionState* subscription = nullptr;
    Source* source = nullptr;
    std::unique_ptr<db::Connection> reader;  // relay role on the source file; consumer writer only
    std::vector<Lane> lanes;
    std::int64_t persisted = 0;              // cursor row value; consumer writer only
    std::atomic<std::int64_t> watermark{0};  // min over lanes
    std::atomic<std::int64_t> head{0};       // newest outbox id seen in the source
    std::atomic<bool> pump_scheduled{false};
    std::atomic<std::int64_t> bootstraps{0};
    // Behind the source's window, the relay reads this feed's next batch ahead: `ahead`
    // holds the rows right after `ahead_after` (-1: none).
    std::mutex ahead_mutex;
    Rows ahead;
    std::int64_t ahead_after = -1;
    std::atomic<bool> ahead_scheduled{false};
    std::unique_ptr<db::Connection> ahead_reader;  // relay thread only
    // Events above the cursor recorded as done before this run (processed_ranges and
    // replays in processed_events), loaded when the consumer opens. Within a run the
    // lane positions say what is done; these matter only after a restart or a lost cursor.
    struct Range {
      std::int64_t first = 0, last = 0;
      std::vector<std::int64_t> held;  // sorted
    };
    std::vector<Range> recorded_ranges;
    std::vector<std::int64_t> recorded_ids;  // sorted
    std::int64_t recorded_max = 0;

    bool recorded(std::int64_t id) const {
      if (id > recorded_max) return false;
      if (std::binary_search(recorded_ids.begin(), recorded_ids.end(), id)) return true;
      for (const auto& range : recorded_ranges)
        if (range.first <= id && id <= range.last && !std::binary_search(range.held.begin(), range.held.end(), id))
          return true;
      return false;
    }
  };

  struct SubscriptionState {
    Subscription spec;
    Consumer* consumer = nullptr;
    std::vector<std::unique_ptr<Feed>> feeds;
    metrics::Counter* applied = nullptr;
    metrics::Counter* stale = nullptr;
    metrics::Counter* duplicate = nullptr;
    metrics::Counter* failures = nullptr;
    metrics::Histogram* latency = nullptr;
    metrics::Gauge* dead_letters = nullptr;
    metrics::Counter* bootstraps = nullptr;
    metrics::Counter* gaps = nullptr;
  };

  struct Consumer {
    std::string module;
    const db::ModuleDb* database = nullptr;
    db::Writer* writer = nullptr;
    std::vector<std::unique_ptr<SubscriptionState>> subscriptions;
    std::unique_ptr<db::Connection> sync;     // writer only
    std::unique_ptr<db::Connection> service;  // writer only
    std::function<bool()> serving;            // the module is up; empty: always
    std::atomic<bool> up{false};
    std::atomic<bool> open_attempted{false};  // the first open has run (up or down since)
    std::atomic<bool> open_scheduled{false};
    Clock::time_point last_prune{};

    bool module_serving() const { return !serving || serving(); }
  };

  struct Source {
    std::string module;
    const db::ModuleDb* database = nullptr;
    db::Writer* writer = nullptr;
    std::vector<Feed*> feeds;
    std::unique_ptr<db::Connection> relay;  // source writer only
    Clock::time_point last_prune{};
    // Events past retention kept because some subscription has not applied them.
    std::atomic<std::int64_t> held_events{0};

    // The newest rows of the outbox, shared by its feeds: with N subscriptions reading
    // live, an event is read and parsed once instead of N times. It holds every row with
    // window_from < id <= window_to. A feed behind the window reads the file itself (up
    // to window_from, where it joins); a feed at its end reads the next rows into it.
    std::mutex window_mutex;
    std::deque<std::shared_ptr<const SharedRow>> window;
    std::int64_t window_from = 0, window_to = 0;
    bool window_open = false;
    std::atomic<bool> prefetch_scheduled{false};
    std::unique_ptr<db::Connection> prefetch_reader;  // the relay thread only

    // For status and metrics, from any thread: one connection, not one per call.
    std::mutex status_mutex;
    std::unique_ptr<db::Connection> status_reader;  // under status_mutex

    // Runs f on the status connection; a failure drops the connection and rethrows.
    template <class F>
    auto with_status_reader(F&& f) {
      std::lock_guard lock(status_mutex);
      try {
        if (!status_reader) status_reader = database->open(db::Role::relay);
        return f(*status_reader);
      } catch (...) {
        status_reader.reset();
        throw;
      }
    }

    // The newest outbox id (0 when empty), on the status connection. Throws when the file
    // cannot be read.
    std::int64_t outbox_head() {
      return with_status_reader([](db::Connection& reader) {
        auto query = reader.cached("SELECT coalesce(max(id), 0) FROM outbox");
        query->executeStep();
        return query->getColumn(0).getInt64();
      });
    }
  };

  Impl(Options opts, metrics::Registry& registry) : options(std::move(opts)), metrics(registry) {}

  Options options;
  metrics::Registry& metrics;
  std::vector<std::unique_ptr<Source>> sources;
  std::vector<std::unique_ptr<Consumer>> consumers;
  std::atomic<bool> started{false};
  std::atomic<bool> stopping{false};
  std::mutex sweep_mutex;
  std::condition_variable sweep_wake;
  std::thread sweeper;
  // Reads and parses the next rows into the sources' windows ahead of the subscriptions
  // that are working through a backlog, so reading overlaps applying (two cores).
  std::unique_ptr<db::Writer> relay_thread;

  void fault(std::string_view point) {
    if (options.fault_hook) options.fault_hook(point);
  }

  Source* find_source(std::string_view module) {
    for (auto& source : sources)
      if (source->module == module) return source.get();
    return nullptr;
  }
  Consumer* find_consumer(std::string_view module) {
    for (auto& consumer : consumers)
      if (consumer->module == module) return consumer.get();
    return nullptr;
  }

  // ---- scheduling (any thread) ----

  void schedule_pump(Feed* feed) {
    if (stopping || !options.consume || !feed->subscription->consumer->up) return;
    if (feed->pump_scheduled.exchange(true)) return;
    feed->subscription->consumer->writer->post([self = shared_from_this(), feed] {
      feed->pump_scheduled = false;
      self->pump(*feed);
    });
  }

  void schedule_open(Consumer* consumer) {
    if (stopping || consumer->up || consumer->open_scheduled.exchange(true)) return;
    consumer->writer->post([self = shared_from_this(), consumer] {
      consumer->open_scheduled = false;
      self->open_consumer(*consumer);
    });
  }

  // ---- source side (source writer) ----

  // How far `feed` has certainly applied: its live watermark while its consumer is up,
  // else the cursor persisted in the consumer's file (0 when unreadable: hold).
  std::int64_t applied_up_to(Feed& feed) {
    auto& consumer = *feed.subscription->consumer;
    if (consumer.up) return feed.watermark.load();
    try {
      auto reader = consumer.database->open(db::Role::reader);
      auto query = reader->prepare("SELECT position FROM bus_cursors WHERE subscription = ? AND source = ?");
      query.bind(1, feed.subscription->spec.name);
      query.bind(2, feed.source->module);
      return query.executeStep() ? query.getColumn(0).getInt64() : 0;
    } catch (const std::exception&) {
      return 0;
    }
  }

  void prune_source(Source& source) {
    if (stopping || source.feeds.empty()) return;
    std::int64_t below = INT64_MAX;
    for (auto* feed : source.feeds) below = std::min(below, applied_up_to(*feed));
    try {
      if (!source.relay) source.relay = source.database->open(db::Role::relay);
      auto cutoff = utc::format(SystemClock::now() - options.retention);
      auto hold_cutoff = utc::format(SystemClock::now() - std::max(options.max_hold, options.retention));
      // Past retention and applied by every subscription; or past the hold bound (a
      // subscription that still needs it bootstraps). The newest row stays: a new row's
      // id is max(id) + 1, and ids must never be reused (bus/0003_outbox_plain_rowid.sql).
      auto prune = source.relay->cached(
          "DELETE FROM outbox WHERE ((id <= ?1 AND occurred_at < ?2) OR occurred_at < ?3) "
          "AND id < (SELECT max(id) FROM outbox)");
      prune->bind(1, below);
      prune->bind(2, cutoff);
      prune->bind(3, hold_cutoff);
      int removed = prune->exec();
      if (removed > 0) spdlog::info("bus: pruned {} events from the {} outbox", removed, source.module);
      auto held = source.relay->cached("SELECT count(*) FROM outbox WHERE id > ? AND occurred_at < ?");
      held->bind(1, below);
      held->bind(2, cutoff);
      held->executeStep();
      source.held_events = held->getColumn(0).getInt64();
      held->reset();
    } catch (const std::exception& error) {
      source.relay.reset();
      spdlog::warn("bus: cannot prune the {} outbox: {}", source.module, error.what());
    }
  }

  // ---- consumer side (consumer writer) ----

  void open_consumer(Consumer& consumer) {
    if (stopping || consumer.up) return;
    if (!consumer.module_serving()) {
      // A module that is down does not consume: its events wait in the sources' outboxes.
      consumer.open_attempted = true;
      return;
    }
    try {
      consumer.sync = consumer.database->open(db::Role::sync);
      consumer.service = consumer.database->open(db::Role::service);
      auto cursor = consumer.sync->cached("SELECT position FROM bus_cursors WHERE subscription = ? AND source = ?");
      for (auto& subscription : consumer.subscriptions) {
        for (auto& feed : subscription->feeds) {
          cursor->reset();
          cursor->clearBindings();
          cursor->bind(1, subscription->spec.name);
          cursor->bind(2, feed->source->module);
          std::int64_t position = cursor->executeStep() ? cursor->getColumn(0).getInt64() : 0;
          load_recorded(consumer, *subscription, *feed, position);
          feed->persisted = position;
          feed->watermark = position;
          for (auto& lane : feed->lanes) {
            lane.position = position;
            lane.attempts = 0;
            lane.failing = 0;
            lane.waiting = false;
          }
        }
        auto pending =
            consumer.sync->cached("SELECT count(*) FROM dead_letters WHERE subscription = ? AND replayed_at IS NULL");
        pending->bind(1, subscription->spec.name);
        pending->executeStep();
        subscription->dead_letters->set(static_cast<double>(pending->getColumn(0).getInt64()));
      }
      consumer.up = true;
      consumer.open_attempted = true;
      spdlog::info("bus: consumer {} up", consumer.module);
    } catch (const std::exception& error) {
      consumer.sync.reset();
      consumer.service.reset();
      consumer.open_attempted = true;
      spdlog::warn("bus: consumer {} unavailable: {}", consumer.module, error.what());
      return;
    }
    for (auto& subscription : consumer.subscriptions)
      for (auto& feed : subscription->feeds) schedule_pump(feed.get());
  }

  void load_recorded(Consumer& consumer, const SubscriptionState& subscription, Feed& feed, std::int64_t cursor) {
    feed.recorded_ranges.clear();
    feed.recorded_ids.clear();
    feed.recorded_max = 0;
    auto ranges = consumer.sync->cached(
        "SELECT first_id, last_id, held FROM processed_ranges WHERE subscription = ? AND source = ? AND last_id > ?");
    ranges->bind(1, subscription.spec.name);
    ranges->bind(2, feed.source->module);
    ranges->bind(3, cursor);
    while (ranges->executeStep()) {
      Feed::Range range{ranges->getColumn(0).getInt64(), ranges->getColumn(1).getInt64(), {}};
      std::string held = ranges->getColumn(2).getString();
      for (std::size_t pos = 0; pos < held.size();) {
        auto comma = held.find(',', pos);
        range.held.push_back(std::stoll(held.substr(pos, comma - pos)));
        pos = comma == std::string::npos ? held.size() : comma + 1;
      }
      std::sort(range.held.begin(), range.held.end());
      feed.recorded_max = std::max(feed.recorded_max, range.last);
      feed.recorded_ranges.push_back(std::move(range));
    }
    // Replayed dead letters (and files from before processed_ranges) are single events.
    auto events = consumer.sync->cached(
        "SELECT event_id FROM processed_events WHERE subscription = ? AND event_id > ? AND event_id < ?");
    events->bind(1, subscription.spec.name);
    events->bind(2, feed.source->module + ":");
    events->bind(3, feed.source->module + ";");  // ';' follows ':': every "<source>:<id>"
    while (events->executeStep()) {
      std::string event_id = events->getColumn(0).getString();
      std::int64_t id = std::stoll(event_id.substr(feed.source->module.size() + 1));
      if (id <= cursor) continue;
      feed.recorded_ids.push_back(id);
      feed.recorded_max = std::max(feed.recorded_max, id);
    }
    std::sort(feed.recorded_ids.begin(), feed.recorded_ids.end());
  }

  void consumer_failed(Consumer& consumer, const std::exception& error) {
    spdlog::error("bus: consumer {} failed and is down until its file works again: {}", consumer.module, error.what());
    close_consumer(consumer);
  }

  // Closes the consumer's connections; the sweep opens it again (and it catches up from
  // its cursors) once its file and its module work.
  void close_consumer(Consumer& consumer) {
    consumer.up = false;
    for (auto& subscription : consumer.subscriptions)
      for (auto& feed : subscription->feeds) feed->reader.reset();
    consumer.sync.reset();
    consumer.service.reset();
  }

  db::Connection& connection_for(SubscriptionState& subscription) {
    return subscription.spec.role == db::Role::service ? *subscription.consumer->service : *subscription.consumer->sync;
  }

  std::int64_t lane_watermark(const Feed& feed, std::size_t lane, std::int64_t lane_position) {
    std::int64_t low = lane_position;
    for (std::size_t i = 0; i < feed.lanes.size(); ++i)
      if (i != lane) low = std::min(low, feed.lanes[i].position);
    return low;
  }

  void write_cursor(db::Connection& connection, Feed& feed, std::int64_t position) {
    auto upsert = connection.cached(
        "INSERT INTO bus_cursors (subscription, source, position, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (subscription, source) DO UPDATE SET position = max(position, excluded.position), "
        "updated_at = excluded.updated_at");
    upsert->bind(1, feed.subscription->spec.name);
    upsert->bind(2, feed.source->module);
    upsert->bind(3, position);
    upsert->bind(4, utc::now());
    upsert->exec();
  }

  void record_range(db::Connection& connection, const SubscriptionState& subscription, const std::string& source,
                    std::int64_t first, std::int64_t last, const std::string& held) {
    auto record = connection.cached(
        "INSERT INTO processed_ranges (subscription, source, first_id, last_id, held, processed_at) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    record->bind(1, subscription.spec.name);
    record->bind(2, source);
    record->bind(3, first);
    record->bind(4, last);
    record->bind(5, held);
    record->bind(6, utc::now());
    record->exec();
  }

  // The newest id of the consumer's own outbox: a saga step appends there.
  static std::int64_t own_outbox_head(db::Connection& connection) {
    auto query = connection.cached("SELECT coalesce(max(id), 0) FROM outbox");
    query->executeStep();
    auto head = query->getColumn(0).getInt64();
    query->reset();
    return head;
  }

  // A commit grew `module`'s outbox: wake its subscribers now, not at the next sweep.
  void outbox_grew(const std::string& module) {
    if (auto* source = find_source(module))
      for (auto* feed : source->feeds) schedule_pump(feed);
  }

  void insert_dead_letter(db::Connection& connection, SubscriptionState& subscription, const std::string& event_id,
                          const std::string& envelope, const std::string& error, int attempts,
                          const std::string& first_failed_at) {
    auto insert = connection.cached(
        "INSERT INTO dead_letters (subscription, event_id, event, error, attempts, first_failed_at, last_failed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    insert->bind(1, subscription.spec.name);
    insert->bind(2, event_id);
    insert->bind(3, envelope);
    insert->bind(4, error);
    insert->bind(5, attempts);
    insert->bind(6, first_failed_at);
    insert->bind(7, utc::now());
    insert->exec();
  }

  bool wanted(const SubscriptionState& subscription, const Row& row) {
    for (const auto& pattern : subscription.spec.topics)
      if (topic_matches(pattern, row.topic)) return true;
    return false;
  }

  struct Failure {
    std::shared_ptr<const SharedRow> shared;
    std::string error;
    bool permanent = false;  // retrying cannot help: dead-letter now
  };

  // The source's file cannot be read: the consumer is fine, the feed waits for the sweep.
  struct SourceUnavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  // Up to `limit` rows with after < id <= up_to from the source's outbox on `reader`.
  // One writer per file assigns outbox ids under SQLite's write lock, so ids become
  // visible in order: a read that returns fewer rows than asked for has seen everything
  // up to its last row.
  void read_outbox(std::unique_ptr<db::Connection>& reader, const Source& source, std::int64_t after,
                   std::int64_t up_to, std::size_t limit, Rows& out) {
    try {
      if (!reader) reader = source.database->open(db::Role::relay);
      auto select = reader->cached(kSelectOutbox);
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
    } catch (const std::exception& error) {
      reader.reset();
      throw SourceUnavailable(error.what());
    }
  }

  void schedule_prefetch(Source* source) {
    if (stopping || !relay_thread || source->prefetch_scheduled.exchange(true)) return;
    relay_thread->post([self = shared_from_this(), source] {
      source->prefetch_scheduled = false;
      self->prefetch(*source);
    });
  }

  // Appends the next batch to the window, then parses the rows some subscription wants
  // while the subscriptions are still applying the previous batch. The file is read
  // outside the window's lock: a slow source file delays this thread, not the feeds.
  void prefetch(Source& source) {
    if (stopping) return;
    std::int64_t from = 0;
    {
      std::lock_guard lock(source.window_mutex);
      if (!source.window_open) return;
      from = source.window_to;
    }
    Rows fresh;
    try {
      read_outbox(source.prefetch_reader, source, from, INT64_MAX, options.batch, fresh);
    } catch (const SourceUnavailable&) {
      return;  // the subscriptions find out on their next read
    }
    {
      std::lock_guard lock(source.window_mutex);
      merge_into_window(source, fresh);
    }
    for (const auto& shared : fresh) {
      bool wanted_by_any = false;
      for (const auto* feed : source.feeds) wanted_by_any = wanted_by_any || wanted(*feed->subscription, shared->row);
      if (wanted_by_any) shared->event(source.module);
    }
  }

  void schedule_read_ahead(Feed* feed, std::int64_t after, std::int64_t up_to) {
    if (stopping || !relay_thread || feed->ahead_scheduled.exchange(true)) return;
    relay_thread->post([self = shared_from_this(), feed, after, up_to] {
      feed->ahead_scheduled = false;
      self->read_ahead(*feed, after, up_to);
    });
  }

  // The feed's next batch, read and parsed while it applies the current one. If the feed
  // has moved elsewhere meanwhile (a failing lane), read_rows drops it.
  void read_ahead(Feed& feed, std::int64_t after, std::int64_t up_to) {
    if (stopping) return;
    Rows rows;
    try {
      read_outbox(feed.ahead_reader, *feed.source, after, up_to, options.batch, rows);
    } catch (const SourceUnavailable&) {
      return;  // the feed finds out on its own read
    }
    for (const auto& shared : rows)
      if (wanted(*feed.subscription, shared->row)) shared->event(feed.source->module);
    std::lock_guard lock(feed.ahead_mutex);
    feed.ahead = std::move(rows);
    feed.ahead_after = after;
  }

  std::size_t window_capacity() const { return std::max(options.window, options.batch); }

  // Appends rows read from the file after the window's end (their first row follows the
  // end as it was when they were read); rows another reader appended meanwhile are
  // skipped. Drops the oldest rows beyond capacity. The caller holds window_mutex.
  void merge_into_window(Source& source, const Rows& fresh) {
    if (!source.window_open) return;
    for (const auto& shared : fresh) {
      if (shared->row.id <= source.window_to) continue;
      source.window.push_back(shared);
      source.window_to = shared->row.id;
    }
    while (source.window.size() > window_capacity()) {
      source.window_from = source.window.front()->row.id;
      source.window.pop_front();
    }
  }

  // The next rows after `after` for `feed`: from the source's shared window when `after`
  // is inside it, else from the file.
  Rows read_rows(Feed& feed, std::int64_t after) {
    Source& source = *feed.source;
    Rows rows;
    rows.reserve(options.batch);
    std::int64_t behind_up_to = -1;
    std::int64_t extend_from = -1;  // >= 0: the window ends here and this feed needs more
    {
      std::lock_guard lock(source.window_mutex);
      if (!source.window_open || after > source.window_to) {
        // First read, or (defensively) a position past the window: start it here.
        source.window.clear();
        source.window_from = source.window_to = after;
        source.window_open = true;
      }
      if (after < source.window_from) {
        behind_up_to = source.window_from;
      } else {
        auto first = std::upper_bound(source.window.begin(), source.window.end(), after,
                                      [](std::int64_t id, const auto& shared) { return id < shared->row.id; });
        for (auto it = first; it != source.window.end() && rows.size() < options.batch; ++it) rows.push_back(*it);
        if (rows.size() < options.batch) extend_from = source.window_to;
      }
    }
    if (extend_from >= 0) {
      // At the window's end: read on from the file (without the lock, so a slow source
      // file holds up only this feed) and share what was read with the other feeds.
      Rows fresh;
      read_outbox(feed.reader, source, extend_from, INT64_MAX, options.batch - rows.size(), fresh);
      bool backlog = false;
      {
        std::lock_guard lock(source.window_mutex);
        merge_into_window(source, fresh);
        rows.insert(rows.end(), fresh.begin(), fresh.end());
        // A full batch ending near the window's end: a backlog is being worked through.
        backlog = rows.size() == options.batch && source.window_to - rows.back()->row.id < std::int64_t(options.batch);
      }
      if (backlog) schedule_prefetch(&source);
    }
    // Behind the window (catch-up): read the file up to where the window starts, so the
    // feed joins it with no gap and no overlap; the relay reads the next batch ahead.
    if (behind_up_to >= 0) {
      {
        std::lock_guard lock(feed.ahead_mutex);
        if (feed.ahead_after == after) rows = std::move(feed.ahead);
        feed.ahead.clear();
        feed.ahead_after = -1;
      }
      if (rows.empty()) read_outbox(feed.reader, source, after, behind_up_to, options.batch, rows);
      if (rows.size() == options.batch && rows.back()->row.id < behind_up_to)
        schedule_read_ahead(&feed, rows.back()->row.id, behind_up_to);
    }
    if (!rows.empty() && rows.back()->row.id > feed.head) feed.head = rows.back()->row.id;
    return rows;
  }

  void exec_cached(db::Connection& connection, const char* sql) { connection.cached(sql)->exec(); }

  static void hold(std::string& held, std::int64_t id) {
    if (!held.empty()) held += ',';
    held += std::to_string(id);
  }

  // Reads the next batch once and applies it for every lane in one transaction (group
  // commit). A failing event stops only its own lane; the others go on in the same
  // transaction. Returns true when more may be waiting.
  bool pump_batch(Feed& feed) {
    auto& subscription = *feed.subscription;
    const std::string& source = feed.source->module;
    const std::size_t lane_count = feed.lanes.size();
    std::int64_t from = INT64_MAX;
    for (const auto& lane : feed.lanes)
      if (!lane.waiting) from = std::min(from, lane.position);
    if (from == INT64_MAX) return false;  // every lane is backing off

    auto rows = read_rows(feed, from);
    if (rows.empty()) return false;
    // Outbox ids are contiguous (max + 1, never reused, only pruning removes rows): a
    // first row past from + 1 means the source pruned what this feed had not read.
    if (rows.front()->row.id > from + 1 && source_oldest(feed) > from + 1) {
      start_over(feed, from);
      return true;
    }
    const std::int64_t scanned = rows.back()->row.id;

    std::vector<std::int64_t> positions(lane_count);
    std::vector<std::optional<Failure>> failures(lane_count);
    for (std::size_t l = 0; l < lane_count; ++l) positions[l] = feed.lanes[l].position;
    std::vector<std::pair<double, bool>> observed;  // latency, stale
    int duplicates = 0;
    int dead = 0;
    db::Connection& connection = connection_for(subscription);
    const bool may_append = subscription.spec.role == db::Role::service;
    bool appended = false;
    {
      SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
      const std::int64_t own_head = may_append ? own_outbox_head(connection) : 0;
      std::string now = utc::now();
      std::string held;  // ids of this batch its lanes did not handle
      for (const auto& shared : rows) {
        const Row& row = shared->row;
        std::size_t l = shared->lane_hash % lane_count;
        if (row.id <= positions[l]) continue;
        if (feed.lanes[l].waiting || failures[l]) {
          hold(held, row.id);
          continue;
        }
        if (feed.recorded(row.id)) {
          ++duplicates;
          positions[l] = row.id;
          spdlog::debug("bus: {} skipped duplicate {}:{}", subscription.spec.name, source, row.id);
          continue;
        }
        if (!wanted(subscription, row)) {
          positions[l] = row.id;
          continue;
        }
        const auto& event = shared->event(source);
        if (!event) {
          // Never valid, so never retried: straight to dead letters.
          insert_dead_letter(connection, subscription, source + ":" + std::to_string(row.id), envelope_of(source, row),
                             event.error().message, 1, now);
          ++dead;
          positions[l] = row.id;
          continue;
        }
        fault("before_apply");
        exec_cached(connection, "SAVEPOINT bus_event");
        try {
          Outcome outcome = subscription.spec.handler(event.value(), connection);
          exec_cached(connection, "RELEASE bus_event");
          double latency = 0;
          if (auto occurred = utc::parse(event->occurred_at))
            latency = std::chrono::duration<double>(SystemClock::now() - *occurred).count();
          observed.emplace_back(latency, outcome == Outcome::stale);
          positions[l] = row.id;
        } catch (const PermanentError& error) {
          exec_cached(connection, "ROLLBACK TO bus_event");
          exec_cached(connection, "RELEASE bus_event");
          failures[l] = Failure{shared, error.what(), true};
        } catch (const nlohmann::json::exception& error) {  // the payload lacks a field or has the wrong type
          exec_cached(connection, "ROLLBACK TO bus_event");
          exec_cached(connection, "RELEASE bus_event");
          std::string_view what = error.what();  // "[json.exception.out_of_range.403] key 'x' not found"
          if (auto bracket = what.find("] "); what.starts_with("[json.exception.") && bracket != what.npos)
            what.remove_prefix(bracket + 2);
          failures[l] = Failure{shared, "malformed payload: " + std::string(what), true};
        } catch (const std::exception& error) {
          exec_cached(connection, "ROLLBACK TO bus_event");
          exec_cached(connection, "RELEASE bus_event");
          failures[l] = Failure{shared, error.what()};
        } catch (...) {  // a handler must not take the consumer's thread down
          exec_cached(connection, "ROLLBACK TO bus_event");
          exec_cached(connection, "RELEASE bus_event");
          failures[l] = Failure{shared, "handler threw a non-standard exception"};
        }
        if (failures[l]) hold(held, row.id);
      }
      // One record for the batch (not one per event), in the same transaction: it keeps
      // a lost or lagging cursor from applying anything twice.
      record_range(connection, subscription, source, rows.front()->row.id, scanned, held);
      // Lanes that went through the whole batch have seen everything up to its end.
      for (std::size_t l = 0; l < lane_count; ++l)
        if (!feed.lanes[l].waiting && !failures[l]) positions[l] = std::max(positions[l], scanned);
      fault("after_apply");
      write_cursor(connection, feed, *std::min_element(positions.begin(), positions.end()));
      appended = may_append && own_outbox_head(connection) > own_head;
      transaction.commit();
    }
    fault("after_commit");
    // A saga step appended events: the next hop starts now (DESIGN §4.9).
    if (appended) outbox_grew(subscription.consumer->module);
    for (std::size_t l = 0; l < lane_count; ++l) {
      auto& lane = feed.lanes[l];
      lane.position = positions[l];
      // A lane's attempts end when it got past the event that failed, not when a batch
      // (read for another lane) simply did not reach that event.
      if (!failures[l] && !lane.waiting && positions[l] >= lane.failing) {
        lane.attempts = 0;
        lane.failing = 0;
      }
    }
    feed.persisted = std::max(feed.persisted, *std::min_element(positions.begin(), positions.end()));
    if (feed.recorded_max != 0 && feed.persisted >= feed.recorded_max) {
      feed.recorded_ranges.clear();
      feed.recorded_ids.clear();
      feed.recorded_max = 0;
    }
    for (auto [latency, stale] : observed) {
      if (stale) {
        subscription.stale->inc();
        spdlog::debug("bus: {} skipped a stale event", subscription.spec.name);
      } else {
        subscription.applied->inc();
        subscription.latency->observe(std::max(0.0, latency));
      }
    }
    subscription.duplicate->inc(static_cast<std::uint64_t>(duplicates));
    if (dead > 0) subscription.dead_letters->add(dead);
    bool failed = false;
    for (std::size_t l = 0; l < lane_count; ++l)
      if (failures[l]) {
        failed = true;
        handle_failure(feed, l, *failures[l]);
      }
    return rows.size() == options.batch || failed;
  }

  std::int64_t source_oldest(Feed& feed) {
    try {
      if (!feed.reader) feed.reader = feed.source->database->open(db::Role::relay);
      auto query = feed.reader->cached("SELECT coalesce(min(id), 0) FROM outbox");
      query->executeStep();
      auto oldest = query->getColumn(0).getInt64();
      query->reset();
      return oldest;
    } catch (const std::exception& error) {
      feed.reader.reset();
      throw SourceUnavailable(error.what());
    }
  }

  std::int64_t source_head(Feed& feed) {
    try {
      if (!feed.reader) feed.reader = feed.source->database->open(db::Role::relay);
      auto query = feed.reader->cached("SELECT coalesce(max(id), 0) FROM outbox");
      query->executeStep();
      auto head = query->getColumn(0).getInt64();
      query->reset();
      return head;
    } catch (const std::exception& error) {
      feed.reader.reset();
      throw SourceUnavailable(error.what());
    }
  }

  // The source no longer holds events this feed never applied (after `from`). With a
  // bootstrap: the snapshot, then the cursor at the source's head as read before it.
  // Without: on from the oldest retained event, the gap logged and counted.
  void start_over(Feed& feed, std::int64_t from) {
    auto& subscription = *feed.subscription;
    const std::string& source = feed.source->module;
    std::int64_t oldest = source_oldest(feed);
    std::int64_t position = oldest - 1;
    db::Connection& connection = connection_for(subscription);
    if (subscription.spec.bootstrap) {
      position = source_head(feed);  // before the snapshot: what changes after it, events carry
      spdlog::warn(
          "bus: {}/{} is behind what {} still holds (cursor {}, oldest event {}); bootstrapping from a "
          "snapshot, then joining at event {}",
          subscription.consumer->module, subscription.spec.name, source, from, oldest, position);
      SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
      subscription.spec.bootstrap(connection);
      write_cursor(connection, feed, position);
      transaction.commit();
      subscription.bootstraps->inc();
      ++feed.bootstraps;
    } else {
      spdlog::error(
          "bus: {}/{} lost events {}..{} of {}: pruned before it read them and it has no bootstrap; going "
          "on from event {}",
          subscription.consumer->module, subscription.spec.name, from + 1, oldest - 1, source, oldest);
      SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
      write_cursor(connection, feed, position);
      transaction.commit();
      subscription.gaps->inc();
    }
    for (auto& lane : feed.lanes) {
      lane.position = position;
      lane.attempts = 0;
      lane.failing = 0;
    }
    feed.persisted = position;
    feed.watermark = position;
  }

  void handle_failure(Feed& feed, std::size_t lane_index, const Failure& failure) {
    Lane& lane = feed.lanes[lane_index];
    auto& subscription = *feed.subscription;
    subscription.failures->inc();
    if (lane.failing != failure.shared->row.id) {  // a new failing event: count afresh
      lane.failing = failure.shared->row.id;
      lane.attempts = 0;
    }
    if (lane.attempts == 0) lane.first_failed_at = utc::now();
    ++lane.attempts;
    std::string event_id = feed.source->module + ":" + std::to_string(failure.shared->row.id);
    if (lane.attempts >= options.max_attempts || failure.permanent) {
      spdlog::error("bus: {} gave up on {} after {} attempt(s){}: {}", subscription.spec.name, event_id, lane.attempts,
                    failure.permanent ? " (a permanent error)" : "", failure.error);
      db::Connection& connection = connection_for(subscription);
      SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
      insert_dead_letter(connection, subscription, event_id, envelope_of(feed.source->module, failure.shared->row),
                         failure.error, lane.attempts, lane.first_failed_at);
      // Handled, in the same transaction: other lanes may hold the cursor below it, and a
      // restart, a reopen or a lost cursor must not try it again (only a replay applies it).
      record_range(connection, subscription, feed.source->module, failure.shared->row.id, failure.shared->row.id, {});
      write_cursor(connection, feed, lane_watermark(feed, lane_index, failure.shared->row.id));
      transaction.commit();
      subscription.dead_letters->add(1);
      lane.position = failure.shared->row.id;
      lane.attempts = 0;
      lane.failing = 0;
      return;
    }
    auto base = options.backoff_initial * (1 << std::min(lane.attempts - 1, 20));
    auto capped = std::min<std::chrono::milliseconds>(std::chrono::duration_cast<std::chrono::milliseconds>(base),
                                                      options.backoff_max);
    thread_local std::mt19937 random{std::random_device{}()};
    // Jitter in [50%, 100%] so many failing consumers do not retry in lockstep.
    auto delay = std::chrono::milliseconds(
        static_cast<long>(capped.count() * std::uniform_real_distribution<double>(0.5, 1.0)(random)));
    spdlog::warn("bus: {} failed on {} (attempt {} of {}), retrying in {} ms: {}", subscription.spec.name, event_id,
                 lane.attempts, options.max_attempts, delay.count(), failure.error);
    lane.waiting = true;
    if (!lane.timer) lane.timer = std::make_unique<boost::asio::steady_timer>(subscription.consumer->writer->context());
    lane.timer->expires_after(delay);
    lane.timer->async_wait([self = shared_from_this(), feed = &feed, lane_index](const boost::system::error_code& ec) {
      if (ec || self->stopping) return;
      feed->lanes[lane_index].waiting = false;
      self->schedule_pump(feed);
    });
  }

  void pump(Feed& feed) {
    auto& consumer = *feed.subscription->consumer;
    if (stopping || !consumer.up) return;
    if (!consumer.module_serving()) {
      spdlog::warn("bus: module {} is down; its subscriptions stop until it serves again", consumer.module);
      close_consumer(consumer);
      return;
    }
    bool more = false;
    try {
      more = pump_batch(feed);
      std::int64_t low = feed.lanes.front().position;
      for (const auto& lane : feed.lanes) low = std::min(low, lane.position);
      feed.watermark = low;
    } catch (const SourceUnavailable& error) {
      spdlog::debug("bus: {} cannot read source {}: {}", feed.subscription->spec.name, feed.source->module,
                    error.what());
      return;
    } catch (const SQLite::Exception& error) {
      feed.reader.reset();
      consumer_failed(consumer, error);
      return;
    }
    if (more) schedule_pump(&feed);  // yield the writer between batches
  }

  void persist(Feed& feed) {
    auto low = feed.watermark.load();
    if (low <= feed.persisted || !feed.subscription->consumer->up) return;
    db::Connection& connection = connection_for(*feed.subscription);
    SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
    write_cursor(connection, feed, low);
    transaction.commit();
    feed.persisted = low;
  }

  void prune_consumer(Consumer& consumer) {
    if (stopping || !consumer.up) return;
    try {
      auto cutoff = utc::format(SystemClock::now() - options.retention);
      auto prune = consumer.sync->cached("DELETE FROM processed_events WHERE processed_at < ?");
      prune->bind(1, cutoff);
      prune->exec();
      // A range wholly at or below its feed's cursor can never be consulted again; one
      // above it is what keeps a lagging cursor from applying twice, however old it is.
      exec_cached(*consumer.sync,
                  "DELETE FROM processed_ranges WHERE last_id <= (SELECT position FROM bus_cursors c WHERE "
                  "c.subscription = processed_ranges.subscription AND c.source = processed_ranges.source)");
    } catch (const std::exception& error) {
      spdlog::warn("bus: cannot prune processed events of {}: {}", consumer.module, error.what());
    }
  }

  void sweep_loop() {
    std::unique_lock lock(sweep_mutex);
    while (!stopping) {
      sweep_wake.wait_for(lock, options.sweep_interval);
      if (stopping) break;
      auto now = Clock::now();
      for (auto& consumer : consumers) {
        if (!consumer->up) {
          schedule_open(consumer.get());
          continue;
        }
        for (auto& subscription : consumer->subscriptions)
          for (auto& feed : subscription->feeds) schedule_pump(feed.get());
        if (options.consume && now - consumer->last_prune >= options.prune_interval) {
          consumer->last_prune = now;
          consumer->writer->post([self = shared_from_this(), c = consumer.get()] { self->prune_consumer(*c); });
        }
      }
      for (auto& source : sources) {
        if (options.consume && now - source->last_prune >= options.prune_interval) {
          source->last_prune = now;
          source->writer->post([self = shared_from_this(), s = source.get()] { self->prune_source(*s); });
        }
      }
    }
  }

  template <class F>
  auto on_writer(db::Writer& writer, F task) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    if (writer.on_writer_thread()) return task();
    std::packaged_task<R()> packaged(std::move(task));
    auto future = packaged.get_future();
    writer.post([&packaged] { packaged(); });
    return future.get();
  }
};

Bus::Bus(Options options, metrics::Registry& metrics) : impl_(std::make_shared<Impl>(std::move(options), metrics)) {
  if (impl_->options.lanes < 1) impl_->options.lanes = 1;
  if (impl_->options.batch < 1) impl_->options.batch = 1;
  if (impl_->options.max_attempts < 1) impl_->options.max_attempts = 1;
}

Bus::~Bus() { stop(); }

void Bus::add_source(const std::string& module, const db::ModuleDb& database, db::Writer& writer) {
  if (impl_->started) throw std::logic_error("bus: add_source after start");
  if (impl_->find_source(module)) throw std::logic_error("bus: source " + module + " added twice");
  auto source = std::make_unique<Impl::Source>();
  source->module = module;
  source->database = &database;
  source->writer = &writer;
  impl_->sources.push_back(std::move(source));
}

void Bus::add_consumer(const std::string& module, const db::ModuleDb& database, db::Writer& writer,
                       std::vector<Subscription> subscriptions, std::function<bool()> serving) {
  if (impl_->started) throw std::logic_error("bus: add_consumer after start");
  if (impl_->find_consumer(module)) throw std::logic_error("bus: consumer " + module + " added twice");
  auto consumer = std::make_unique<Impl::Consumer>();
  consumer->module = module;
  consumer->database = &database;
  consumer->writer = &writer;
  consumer->serving = std::move(serving);
  auto& metrics = impl_->metrics;
  auto& skipped = metrics.counter("townhall_bus_events_skipped_total",
                                  "Events a subscription skipped, by reason (stale or duplicate)",
                                  {"module", "subscription", "reason"});
  std::set<std::string> names;
  for (auto& spec : subscriptions) {
    if (!spec.handler) throw std::invalid_argument("bus: subscription " + spec.name + " has no handler");
    if (spec.role != db::Role::sync && spec.role != db::Role::service)
      throw std::invalid_argument("bus: subscription " + spec.name + " must run as sync or service");
    if (!names.insert(spec.name).second) throw std::invalid_argument("bus: duplicate subscription " + spec.name);
    auto state = std::make_unique<Impl::SubscriptionState>();
    state->spec = std::move(spec);
    state->consumer = consumer.get();
    const std::string& name = state->spec.name;
    state->applied = &metrics
                          .counter("townhall_bus_events_applied_total", "Events applied by a subscription",
                                   {"module", "subscription"})
                          .with({module, name});
    state->stale = &skipped.with({module, name, "stale"});
    state->duplicate = &skipped.with({module, name, "duplicate"});
    state->failures =
        &metrics
             .counter("townhall_sync_failures_total", "Failed attempts to apply an event", {"module", "subscription"})
             .with({module, name});
    state->latency =
        &metrics
             .histogram("townhall_sync_latency_seconds", "Time from an event's occurred_at to its being applied",
                        {"module", "subscription"})
             .with({module, name});
    state->dead_letters =
        &metrics.gauge("townhall_dead_letters", "Dead letters not yet replayed", {"module", "subscription"})
             .with({module, name});
    state->bootstraps = &metrics
                             .counter("townhall_bus_bootstraps_total",
                                      "Times a subscription started over from a snapshot of its source (the "
                                      "source had pruned events it never read)",
                                      {"module", "subscription"})
                             .with({module, name});
    state->gaps = &metrics
                       .counter("townhall_bus_gaps_total",
                                "Times a subscription without a bootstrap skipped events its source had pruned",
                                {"module", "subscription"})
                       .with({module, name});
    consumer->subscriptions.push_back(std::move(state));
  }
  impl_->consumers.push_back(std::move(consumer));
}

void Bus::start() {
  auto& impl = *impl_;
  if (impl.started.exchange(true)) return;
  // Wire each subscription to every source whose topics it covers.
  for (auto& consumer : impl.consumers) {
    for (auto& subscription : consumer->subscriptions) {
      for (auto& source : impl.sources) {
        bool covers = false;
        for (const auto& pattern : subscription->spec.topics)
          covers = covers || pattern.starts_with("gov." + source->module + ".");
        if (!covers) continue;
        auto feed = std::make_unique<Impl::Feed>();
        feed->subscription = subscription.get();
        feed->source = source.get();
        feed->lanes.resize(static_cast<std::size_t>(impl.options.lanes));
        source->feeds.push_back(feed.get());
        subscription->feeds.push_back(std::move(feed));
      }
    }
  }
  auto& lag_events = impl.metrics.gauge("townhall_bus_consumer_lag_events",
                                        "Events in the source's outbox not yet applied by the subscription",
                                        {"module", "subscription", "source"});
  auto& lag_seconds = impl.metrics.gauge("townhall_bus_consumer_lag_seconds",
                                         "Age of the oldest event the subscription has not applied",
                                         {"module", "subscription", "source"});
  auto& pending = impl.metrics.gauge("townhall_outbox_pending",
                                     "Outbox events not yet applied by every subscription reading them", {"module"});
  auto& held =
      impl.metrics.gauge("townhall_bus_outbox_held_events",
                         "Outbox events past retention kept because a subscription has not applied them", {"module"});
  std::weak_ptr<Impl> weak = impl_;
  impl.metrics.add_collector([weak, &lag_events, &lag_seconds, &pending, &held] {
    auto self = weak.lock();
    if (!self || self->stopping) return;
    for (auto& source : self->sources) {
      try {
        std::int64_t head = source->outbox_head();
        source->with_status_reader([&](db::Connection& reader) {
          auto oldest = reader.cached("SELECT occurred_at FROM outbox WHERE id > ? ORDER BY id LIMIT 1");
          std::int64_t lowest = head;
          for (auto* feed : source->feeds) {
            auto cursor = feed->watermark.load();
            std::vector<std::string> labels{feed->subscription->consumer->module, feed->subscription->spec.name,
                                            source->module};
            lag_events.with(labels).set(static_cast<double>(std::max<std::int64_t>(0, head - cursor)));
            double age = 0;
            oldest->reset();
            oldest->bind(1, cursor);
            if (cursor < head && oldest->executeStep())
              if (auto at = utc::parse(oldest->getColumn(0).getString()))
                age = std::max(0.0, std::chrono::duration<double>(SystemClock::now() - *at).count());
            lag_seconds.with(labels).set(age);
            lowest = std::min(lowest, cursor);
          }
          auto count = reader.cached("SELECT count(*) FROM outbox WHERE id > ?");
          count->bind(1, lowest);
          count->executeStep();
          pending.with({source->module}).set(static_cast<double>(count->getColumn(0).getInt64()));
          held.with({source->module}).set(static_cast<double>(source->held_events.load()));
        });
      } catch (const std::exception& error) {
        spdlog::debug("bus metrics: source {} unreadable: {}", source->module, error.what());
      }
    }
  });

  // The first prune comes one interval after the start, not at the first sweep.
  for (auto& consumer : impl.consumers) consumer->last_prune = Clock::now();
  for (auto& source : impl.sources) source->last_prune = Clock::now();
  impl.relay_thread = std::make_unique<db::Writer>("bus-relay");  // before anything can pump
  for (auto& consumer : impl.consumers) impl.schedule_open(consumer.get());
  impl.sweeper = std::thread([self = impl_] { self->sweep_loop(); });
}

void Bus::stop() {
  auto& impl = *impl_;
  if (!impl.started || impl.stopping.exchange(true)) return;
  {
    std::lock_guard lock(impl.sweep_mutex);
    impl.sweep_wake.notify_all();
  }
  if (impl.sweeper.joinable()) impl.sweeper.join();
  std::set<db::Writer*> writers;
  for (auto& consumer : impl.consumers) writers.insert(consumer->writer);
  for (auto& source : impl.sources) writers.insert(source->writer);
  // Cancel retries, persist cursors, close connections, each on its own writer.
  for (auto& consumer : impl.consumers) {
    impl.on_writer(*consumer->writer, [&impl, c = consumer.get()] {
      for (auto& subscription : c->subscriptions) {
        for (auto& feed : subscription->feeds) {
          for (auto& lane : feed->lanes)
            if (lane.timer) lane.timer->cancel();
          try {
            if (c->up) impl.persist(*feed);
          } catch (const std::exception& error) {
            spdlog::warn("bus: cannot persist the cursor of {}: {}", subscription->spec.name, error.what());
          }
          feed->reader.reset();
          for (auto& lane : feed->lanes) lane.timer.reset();
        }
      }
      c->sync.reset();
      c->service.reset();
      c->up = false;
      return 0;
    });
  }
  // No pump runs any more, so nothing schedules a prefetch: finish the queued ones.
  if (impl.relay_thread) impl.relay_thread->stop();
  for (auto& consumer : impl.consumers)
    for (auto& subscription : consumer->subscriptions)
      for (auto& feed : subscription->feeds) {
        feed->ahead_reader.reset();
        feed->ahead.clear();
      }
  for (auto& source : impl.sources)
    impl.on_writer(*source->writer, [s = source.get()] {
      s->relay.reset();
      std::lock_guard lock(s->window_mutex);  // no pump runs any more (consumers stopped first)
      s->prefetch_reader.reset();
      s->window.clear();
      s->window_open = false;
      std::lock_guard status_lock(s->status_mutex);
      s->status_reader.reset();
      return 0;
    });
  for (auto* writer : writers) writer->drain();
}

void Bus::notify(std::string_view source_module) {
  auto* source = impl_->find_source(source_module);
  if (!source || !impl_->started) return;
  for (auto* feed : source->feeds) impl_->schedule_pump(feed);
}

bool Bus::flush(std::chrono::milliseconds timeout) {
  auto& impl = *impl_;
  if (!impl.started || impl.stopping || !impl.options.consume) return true;
  auto deadline = Clock::now() + timeout;
  std::vector<std::pair<Impl::Feed*, std::int64_t>> targets;
  for (auto& source : impl.sources) {
    std::int64_t head = 0;
    try {
      head = source->outbox_head();
    } catch (const std::exception& error) {
      spdlog::warn("bus: cannot flush {}: {}", source->module, error.what());
      continue;
    }
    for (auto* feed : source->feeds) {
      targets.emplace_back(feed, head);
      impl.schedule_pump(feed);
    }
  }
  for (;;) {
    bool done = true;
    for (auto [feed, head] : targets) {
      const auto& consumer = *feed->subscription->consumer;
      // Up: wait for it. Opening (not yet tried): wait, it is about to consume. Tried and
      // down: nothing to wait for (its events stay in the outbox for the next start).
      bool settled = consumer.up ? feed->watermark.load() >= head : consumer.open_attempted.load();
      done = done && settled;
    }
    if (done) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // bounded by the deadline
  }
}

std::vector<FeedStatus> Bus::status() {
  std::vector<FeedStatus> out;
  for (auto& consumer : impl_->consumers)
    for (auto& subscription : consumer->subscriptions)
      for (auto& feed : subscription->feeds)
        out.push_back({consumer->module, subscription->spec.name, feed->source->module, consumer->up.load(),
                       feed->watermark.load(), feed->head.load(), feed->bootstraps.load()});
  return out;
}

bool Bus::caught_up() {
  for (auto& source : impl_->sources) {
    std::int64_t head = 0;
    try {
      head = source->outbox_head();
    } catch (const std::exception&) {
      return false;
    }
    for (auto* feed : source->feeds) {
      if (!feed->subscription->consumer->up) return false;
      if (feed->watermark.load() < head) {
        impl_->schedule_pump(feed);
        return false;
      }
    }
  }
  return true;
}

std::vector<DeadLetter> read_dead_letters(const db::ModuleDb& database) {
  std::vector<DeadLetter> out;
  auto reader = database.open(db::Role::reader);
  auto query = reader->prepare(
      "SELECT id, subscription, event_id, event, error, attempts, first_failed_at, last_failed_at, "
      "coalesce(replayed_at, '') FROM dead_letters ORDER BY id");
  while (query.executeStep()) {
    DeadLetter letter;
    letter.id = query.getColumn(0).getInt64();
    letter.module = database.module();
    letter.subscription = query.getColumn(1).getString();
    letter.event_id = query.getColumn(2).getString();
    letter.event = query.getColumn(3).getString();
    letter.error = query.getColumn(4).getString();
    letter.attempts = query.getColumn(5).getInt();
    letter.first_failed_at = query.getColumn(6).getString();
    letter.last_failed_at = query.getColumn(7).getString();
    letter.replayed_at = query.getColumn(8).getString();
    out.push_back(std::move(letter));
  }
  return out;
}

std::vector<DeadLetter> Bus::dead_letters(const std::optional<std::string>& module) {
  std::vector<DeadLetter> out;
  for (auto& consumer : impl_->consumers) {
    if (module && consumer->module != *module) continue;
    try {
      auto letters = read_dead_letters(*consumer->database);
      out.insert(out.end(), letters.begin(), letters.end());
    } catch (const std::exception& error) {
      spdlog::warn("bus: cannot read dead letters of {}: {}", consumer->module, error.what());
    }
  }
  return out;
}

Result<Unit> Bus::replay(const std::string& module, std::int64_t dead_letter_id) {
  auto* consumer = impl_->find_consumer(module);
  if (!consumer) return make_error(Errc::not_found, "no consumer module '" + module + "'");
  auto& impl = *impl_;
  return impl.on_writer(*consumer->writer, [&impl, consumer, dead_letter_id]() -> Result<Unit> {
    if (!consumer->up) return make_error(Errc::unavailable, "module '" + consumer->module + "' is down");
    auto lookup =
        consumer->sync->cached("SELECT subscription, event, replayed_at IS NOT NULL FROM dead_letters WHERE id = ?");
    lookup->bind(1, dead_letter_id);
    if (!lookup->executeStep()) return make_error(Errc::not_found, "no dead letter " + std::to_string(dead_letter_id));
    std::string name = lookup->getColumn(0).getString();
    std::string envelope = lookup->getColumn(1).getString();
    bool already = lookup->getColumn(2).getInt() != 0;
    lookup->reset();
    if (already) return make_error(Errc::conflict, "dead letter " + std::to_string(dead_letter_id) + " was replayed");
    Impl::SubscriptionState* subscription = nullptr;
    for (auto& s : consumer->subscriptions)
      if (s->spec.name == name) subscription = s.get();
    if (!subscription) return make_error(Errc::not_found, "no subscription '" + name + "' in " + consumer->module);
    auto event = parse_event(envelope);
    if (!event) return event.error();
    db::Connection& connection = impl.connection_for(*subscription);
    try {
      SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
      auto mark = connection.cached(
          "INSERT INTO processed_events (subscription, event_id, processed_at) VALUES (?, ?, ?) "
          "ON CONFLICT DO NOTHING");
      mark->bind(1, name);
      mark->bind(2, event->event_id);
      mark->bind(3, utc::now());
      const bool may_append = subscription->spec.role == db::Role::service;
      const std::int64_t own_head = may_append ? Impl::own_outbox_head(connection) : 0;
      if (mark->exec() > 0) subscription->spec.handler(*event, connection);
      auto done = connection.cached("UPDATE dead_letters SET replayed_at = ? WHERE id = ?");
      done->bind(1, utc::now());
      done->bind(2, dead_letter_id);
      done->exec();
      bool appended = may_append && Impl::own_outbox_head(connection) > own_head;
      transaction.commit();
      if (appended) impl.outbox_grew(consumer->module);
    } catch (const std::exception& error) {
      subscription->failures->inc();
      return make_error(Errc::unprocessable,
                        "replay of dead letter " + std::to_string(dead_letter_id) + " failed: " + error.what());
    }
    subscription->dead_letters->add(-1);
    spdlog::info("bus: replayed dead letter {} ({}) into {}", dead_letter_id, event->event_id, name);
    return Unit{};
  });
}

}  // namespace townhall::bus
