#pragma once

// The bus's internals, shared by its source files (not a public header). Each part says
// which thread owns its state:
//   outbox.cpp       appending, reading and pruning outboxes: a feed's reader on its
//                    consumer's writer; the pruner on the source's writer
//   window.cpp       the shared window of newest rows per source (window_mutex) and the
//                    read-ahead on the bus-relay thread
//   apply.cpp        applying batches, retries and dead letters, bootstraps: the
//                    consumer's writer thread
//   bookkeeping.cpp  cursors, processed ranges, dead letters, opening and pruning a
//                    consumer, replays: the consumer's writer thread
//   bus.cpp          lifecycle, scheduling, the sweeper thread, status and metrics
#include <SQLiteCpp/Transaction.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "source_log.hpp"
#include "stream_link.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::bus {

using detail::Clock;
using detail::envelope_of;
using detail::fnv1a;
using detail::Row;
using detail::Rows;
using detail::SharedRow;
using detail::SourceUnavailable;
using detail::SystemClock;

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
    std::unique_ptr<detail::LogReader> reader;  // consumer writer only
    std::vector<Lane> lanes;
    // The cursor row's value: written on the consumer's writer, read by the pruner. It may
    // trail the lanes by events the subscription took nothing from (apply.cpp).
    std::atomic<std::int64_t> persisted{0};
    std::unique_ptr<boost::asio::steady_timer> persist_timer;  // consumer writer only
    bool persist_armed = false;                                // consumer writer only
    std::atomic<std::int64_t> watermark{0};                    // min over lanes
    std::atomic<std::int64_t> head{0};                         // newest outbox id seen in the source
    std::atomic<bool> pump_scheduled{false};
    std::atomic<std::int64_t> bootstraps{0};
    // Behind the source's window, the relay reads this feed's next batch ahead: `ahead`
    // holds the rows right after `ahead_after` (-1: none).
    std::mutex ahead_mutex;
    Rows ahead;
    std::int64_t ahead_after = -1;
    std::atomic<bool> ahead_scheduled{false};
    std::unique_ptr<detail::LogReader> ahead_reader;  // relay thread only
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
    metrics::Counter* batches_committed = nullptr;
    metrics::Counter* batches_passed = nullptr;  // took nothing: no transaction
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
    std::unique_ptr<detail::SourceLog> log;
    // The source's writer: pruning runs on it. Null for a remote source (its stream is
    // pruned by the broker).
    db::Writer* writer = nullptr;
    const db::ModuleDb* database = nullptr;  // local sources: published by the stream link
    std::vector<Feed*> feeds;
    Clock::time_point last_prune{};
    // Events past retention kept because some subscription has not applied them.
    std::atomic<std::int64_t> held_events{0};

    // The newest rows of the log, shared by its feeds: with N subscriptions reading
    // live, an event is read and parsed once instead of N times. It holds every row with
    // window_from < id <= window_to. A feed behind the window reads the log itself (up
    // to window_from, where it joins); a feed at its end reads the next rows into it.
    std::mutex window_mutex;
    std::deque<std::shared_ptr<const SharedRow>> window;
    std::int64_t window_from = 0, window_to = 0;
    bool window_open = false;
    // One reader at a time extends the window from the log, without holding the lock
    // during the read; feeds that need the same rows wait for them (`extended`) instead
    // of reading and parsing them again. Feeds inside the window are never held up.
    bool extending = false;
    std::condition_variable extended;
    std::atomic<bool> prefetch_scheduled{false};
    std::unique_ptr<detail::LogReader> prefetch_reader;  // the relay thread only

    // The newest id in the log (0 when empty), from any thread. Throws when the log
    // cannot be read. A local log is read again only when it may have changed since the
    // last read (`head_changes`: every commit that appended, every prune and every sweep
    // bump it), so status and metrics pollers do not each take a read transaction; a
    // remote log's head moves as rows arrive and is always asked.
    std::int64_t outbox_head() {
      if (!writer || !head_cacheable.load(std::memory_order_acquire)) return log->head();
      const auto changes = head_changes.load(std::memory_order_acquire);
      {
        std::lock_guard lock(head_mutex);
        if (head_known && head_read_at == changes) return head;
      }
      const auto newest = log->head();  // reflects at least every change counted in `changes`
      std::lock_guard lock(head_mutex);
      if (!head_known || changes > head_read_at) {
        head = newest;
        head_read_at = changes;
        head_known = true;
      }
      return newest;
    }
    void head_may_have_changed() { head_changes.fetch_add(1, std::memory_order_acq_rel); }

    std::atomic<bool> head_cacheable{false};  // from wiring on: before it, commits do not notify
    std::atomic<std::uint64_t> head_changes{0};
    std::mutex head_mutex;
    bool head_known = false;
    std::uint64_t head_read_at = 0;  // head_changes when `head` was read
    std::int64_t head = 0;
  };

  Impl(Options opts, metrics::Registry& registry) : options(std::move(opts)), metrics(registry) {}

  Options options;
  metrics::Registry& metrics;
  std::vector<std::unique_ptr<Source>> sources;
  std::vector<std::unique_ptr<Consumer>> consumers;
  std::atomic<bool> started{false};
  // Set once start() has wired every feed: from then on notify() reads the sources' feeds,
  // which nothing changes any more (modules' writers notify from other threads).
  std::atomic<bool> wired{false};
  std::atomic<bool> stopping{false};
  std::mutex sweep_mutex;
  std::condition_variable sweep_wake;
  std::thread sweeper;
  // Reads and parses the next rows into the sources' windows ahead of the subscriptions
  // that are working through a backlog, so reading overlaps applying (two cores).
  std::unique_ptr<db::Writer> relay_thread;
  // The split deployment's broker link (Options::transport); null in one process.
  std::unique_ptr<detail::StreamLink> link;

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

  void schedule_pump(Feed* feed);

  void schedule_open(Consumer* consumer);

  // ---- source side (source writer) ----

  // How far `feed` has certainly applied: its live watermark while its consumer is up,
  // else the cursor persisted in the consumer's file (0 when unreadable: hold).
  std::int64_t applied_up_to(Feed& feed);

  void prune_source(Source& source);
  metrics::CounterFamily& outbox_prunes() {
    return metrics.counter("townhall_bus_outbox_prunes_total", "Pruning passes over a module's outbox", {"module"});
  }

  // ---- consumer side (consumer writer) ----

  void open_consumer(Consumer& consumer);

  void load_recorded(Consumer& consumer, const SubscriptionState& subscription, Feed& feed, std::int64_t cursor);
  // The source's outbox ends below `cursor` (restored from an older backup): its next
  // events reuse ids the cursor has passed. Moves the cursor back to the source's head and
  // forgets what was recorded as done past it, so none of them is skipped. Returns the
  // position to go on from.
  metrics::CounterFamily& source_rewinds() {
    return metrics.counter("townhall_bus_source_rewinds_total",
                           "Subscriptions rewound because their source's outbox ended below their cursor (a restore)",
                           {"module", "subscription", "source"});
  }
  std::int64_t rewind_if_source_restored(Consumer& consumer, const SubscriptionState& subscription, Feed& feed,
                                         std::int64_t cursor);

  void consumer_failed(Consumer& consumer, const std::exception& error);

  // Closes the consumer's connections; the sweep opens it again (and it catches up from
  // its cursors) once its file and its module work.
  void close_consumer(Consumer& consumer);

  db::Connection& connection_for(SubscriptionState& subscription) {
    return subscription.spec.role == db::Role::service ? *subscription.consumer->service : *subscription.consumer->sync;
  }

  std::int64_t lane_watermark(const Feed& feed, std::size_t lane, std::int64_t lane_position);

  void write_cursor(db::Connection& connection, Feed& feed, std::int64_t position);

  void record_range(db::Connection& connection, const SubscriptionState& subscription, const std::string& source,
                    std::int64_t first, std::int64_t last, const std::string& held);

  // A commit grew `module`'s outbox: wake its subscribers now, not at the next sweep.
  void outbox_grew(const std::string& module);
  std::vector<FeedStatus> status();
  // Bus::replay and Bus::discard: `action` on the consumer's writer while it is up
  // (not_found, unavailable otherwise); a storage failure takes the consumer down (as a
  // failed batch does) and is Errc::unavailable.
  Result<Unit> operator_action(const std::string& module, const std::function<Result<Unit>(Consumer*)>& action);
  BusMeasurement measure();  // reads each source's outbox

  void insert_dead_letter(db::Connection& connection, SubscriptionState& subscription, const std::string& event_id,
                          const std::string& envelope, const std::string& error, int attempts,
                          const std::string& first_failed_at);

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

  // `reader`, opened on `source`'s log first if it is not open yet.
  static detail::LogReader& reader_on(std::unique_ptr<detail::LogReader>& reader, const Source& source) {
    if (!reader) reader = source.log->open_reader();
    return *reader;
  }

  void schedule_prefetch(Source* source);

  // Appends the next batch to the window, then parses the rows some subscription wants
  // while the subscriptions are still applying the previous batch. The file is read
  // outside the window's lock: a slow source file delays this thread, not the feeds.
  void prefetch(Source& source);

  void schedule_read_ahead(Feed* feed, std::int64_t after, std::int64_t up_to);

  // The feed's next batch, read and parsed while it applies the current one. If the feed
  // has moved elsewhere meanwhile (a failing lane), read_rows drops it.
  void read_ahead(Feed& feed, std::int64_t after, std::int64_t up_to);

  std::size_t window_capacity() const { return std::max(options.window, options.batch); }

  // Appends rows read from the file after the window's end (their first row follows the
  // end as it was when they were read); rows another reader appended meanwhile are
  // skipped. Drops the oldest rows beyond capacity. The caller holds window_mutex.
  // `fresh` was read after `read_from` (the window's end then); the window may have been
  // reset since (a restored source), and rows not continuing it are not merged.
  void merge_into_window(Source& source, const Rows& fresh, std::int64_t read_from) {
    if (!source.window_open || read_from != source.window_to) return;
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
  Rows read_rows(Feed& feed, std::int64_t after);

  void exec_cached(db::Connection& connection, const char* sql) { connection.cached(sql)->exec(); }

  static void hold(std::string& held, std::int64_t id) {
    if (!held.empty()) held += ',';
    held += std::to_string(id);
  }

  // Reads the next batch once and applies it for every lane in one transaction (group
  // commit). A failing event stops only its own lane; the others go on in the same
  // transaction. Returns true when more may be waiting.
  bool pump_batch(Feed& feed);

  // Every row of `rows` is one the feed's lanes have passed, a topic its subscription does
  // not take, or an event it recorded as done: applying the batch would write nothing but
  // the cursor. Never while a lane backs off (its rows must be held).
  bool takes_nothing_from(const Feed& feed, const Rows& rows);
  // Moves the lanes past such a batch without a transaction; the cursor row follows
  // within options.passed_cursor_delay, at once past options.passed_cursor_events.
  void pass_without_commit(Feed& feed, const Rows& rows);
  // Whether a batch that moves the feed to `position` writes the cursor row in its own
  // transaction: a stream's always (the row carries where to attach again); the outbox's
  // only once the row trails by options.passed_cursor_events, else it follows within
  // options.passed_cursor_delay (follow_later). Until then the batch's processed_ranges
  // record, written with its events, is what keeps a restart from applying them twice
  // (for a versioned subscription, its handler's version check: design note 70).
  bool writes_cursor_with_batch(const Feed& feed, std::int64_t position) const;
  // Arms the feed's timer that writes the cursor row after options.passed_cursor_delay.
  void follow_later(Feed& feed);
  // The cursor row now holds `position` (committed).
  void cursor_written(Feed& feed, std::int64_t position);
  // Writes the cursor row alone, in a transaction of its own.
  void write_cursor_row(Feed& feed, std::int64_t position);

  // The oldest and the newest id in the feed's source, on its reader.
  std::int64_t source_oldest(Feed& feed) { return reader_on(feed.reader, *feed.source).oldest(); }
  std::int64_t source_head(Feed& feed) { return reader_on(feed.reader, *feed.source).newest(); }

  // The source no longer holds events this feed never applied (after `from`). With a
  // bootstrap: the snapshot, then the cursor at the source's head as read before it.
  // Without: on from the oldest retained event, the gap logged and counted.
  void start_over(Feed& feed, std::int64_t from);

  void handle_failure(Feed& feed, std::size_t lane_index, const Failure& failure);

  void pump(Feed& feed);

  void persist(Feed& feed);

  void prune_consumer(Consumer& consumer);

  void sweep_loop();

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

}  // namespace townhall::bus
