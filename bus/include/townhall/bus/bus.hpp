#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/bus/event.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/result.hpp"

namespace townhall::metrics {
class Registry;
}
namespace townhall::db {
class Writer;
}

namespace townhall::bus {

// Appends `event` to the outbox of the module `service` belongs to, inside the write
// transaction that makes the state change (transactional outbox); the topic must be that
// module's. Returns the event id. The write path (db::WritePath) wakes the bus after the
// commit; the bus does so itself for handlers' commits.
std::string append(db::Connection& service, const NewEvent& event);

// A module file's manifest: its `owned` and `cache` tables and the bus's (migrations/bus):
// every module file holds an outbox and the bookkeeping of its subscriptions. Each
// module's table_manifest() is built with it.
db::TableManifest with_bus_tables(std::vector<std::string> owned, std::vector<std::string> cache);

// One small write for db::ModuleDb::probe (the bus's storage_probe row): proves a file
// that failed takes a committed write again.
void touch_storage_probe(db::Connection& service);

// What a handler made of an event.
enum class Outcome {
  applied,
  stale,  // an older version than what the consumer already has: nothing changed
};

// Runs on the consumer's writer thread inside an open transaction on `connection` (the
// subscription's role). Its writes commit together with the processed-event record and
// the cursor. Throwing means "retry later"; after the last attempt the event becomes a
// dead letter. Throwing PermanentError (or a JSON type/range error from reading the
// payload) means retrying cannot help: the event goes to dead letters at once.
using Handler = std::function<Outcome(const Event& event, db::Connection& connection)>;

// An event this handler can never apply as it is (a malformed payload, a reference to
// something that cannot exist): dead-lettered at once with this reason, not retried.
class PermanentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Fills a subscription's state from a snapshot of the source, read through the source's
// Api (e.g. auth::Api::citizens_since for citizen_refs), applied with the same version
// checks as events. Runs on the consumer's writer inside the transaction that then moves
// the cursor to the source's head as it was before the snapshot was read: events after
// it are applied as usual (changes already in the snapshot are skipped as stale), so the
// subscription joins the stream with no gap and no duplicate effect. Throwing means
// "try again later".
using Bootstrap = std::function<void(db::Connection& connection)>;

struct Subscription {
  std::string name;                 // unique within the consumer module, e.g. "citizen_refs"
  std::vector<std::string> topics;  // patterns: gov.auth.citizen, gov.auth.*
  db::Role role = db::Role::sync;   // sync for caches, service for saga steps
  Handler handler;
  // When the source pruned events this subscription never read (a cache added to an
  // existing installation, a module down past the hold bound). Empty: the subscription
  // goes on from the oldest retained event, and the gap is logged and counted.
  Bootstrap bootstrap = {};
  // The handler applies each event at most once by itself: it keeps the aggregate's
  // event_version and answers Outcome::stale for a version it holds already or has passed
  // (a version-checked upsert, a cache). Applying an event again then changes nothing, so
  // a batch whose events were all applied or stale writes no processed_ranges record, and
  // a crash re-delivers what its trailing cursor row had not reached, skipped as stale
  // (design note 70). A batch that dead-letters or holds back an event records as always.
  bool versioned = false;
};

// The split deployment's transport (issue 23 §2, README "Run split across machines"):
// each module's events also go to its RabbitMQ stream, and the subscriptions of this
// process read the modules other processes serve from theirs.
struct StreamTransport {
  std::string url;                          // amqp://user:password@host:port/vhost
  std::string stream_prefix = "townhall.";  // a module's stream: prefix + module name
  // Stream retention (x-max-age, in hours as written: RabbitMQ compares it as text). At
  // least Options::max_hold, so a subscription that pruning would wait for finds its
  // events in the stream too.
  std::chrono::hours max_age{24 * 30};
  std::uint16_t prefetch = 512;  // per remote subscription (basic.qos)
  std::chrono::milliseconds reconnect_initial{200};
  std::chrono::milliseconds reconnect_max{5000};
  // A started stream consumer that has received nothing is told the stream's tail after
  // this long (the publisher reads it at connect to detect a restored source).
  std::chrono::milliseconds tail_quiet{300};
};

struct Options {
  int lanes = 4;              // per subscription and source; by hash of aggregate id
  std::size_t batch = 256;    // events read and applied per transaction (group commit)
  std::size_t window = 1024;  // newest events per source kept in memory for its subscriptions
  int max_attempts = 5;       // then dead letter
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds sweep_interval{1000};  // backstop wake-up, consumer recovery
  std::chrono::hours retention{24 * 7};            // outbox and processed_events
  // Pruning waits for every subscription of this bus, down ones included (by their
  // persisted cursors), but not longer than this past an event's time: after that a
  // subscription that still needs it bootstraps.
  std::chrono::hours max_hold{24 * 30};
  std::chrono::milliseconds prune_interval{60'000};
  // A batch a subscription takes nothing from (topics it does not subscribe to, events it
  // has) moves its cursor in memory without a transaction; the cursor row catches up
  // within this delay, or at once when it trails by this many events (design note 66).
  std::chrono::milliseconds passed_cursor_delay{1000};
  std::int64_t passed_cursor_events = 1000;
  // false: consumers open (so dead letters can be replayed) but nothing is applied or
  // pruned; for a tool beside the data, never for a server.
  bool consume = true;
  // Called (on the consumer's writer thread) when a consumer found a source whose outbox
  // ends below its cursor — the source was restored from an older backup — and rewound
  // that subscription to the source's head. app/ runs a repairing consistency check.
  std::function<void(const std::string& consumer, const std::string& source)> source_rewound;
  // Fault injection for crash tests: called at named points; null in production.
  std::function<void(std::string_view point)> fault_hook;
  // Absent: one process, every source local (the default).
  std::optional<StreamTransport> transport;
};

// The broker link of a split deployment, for /readyz and the dashboard.
struct TransportStatus {
  bool enabled = false;     // Options::transport was given
  bool publishing = false;  // the publisher's connection is open (or nothing to publish)
  bool consuming = false;   // the consumers' connection is open (or no remote source)
  std::string last_error;   // why the last connection attempt or connection failed
  std::int64_t reconnects = 0;
};

struct DeadLetter {
  std::int64_t id = 0;
  std::string module;
  std::string subscription;
  std::string event_id;
  std::string event;  // envelope JSON
  std::string error;
  int attempts = 0;
  std::string first_failed_at;
  std::string last_failed_at;
  std::string replayed_at;         // empty unless replayed
  std::string discarded_at;        // empty unless an operator discarded it
  std::string_view state() const;  // "pending", "replayed" or "discarded"
};

struct FeedStatus {
  std::string consumer;
  std::string subscription;
  std::string source;
  bool consumer_up = false;
  std::int64_t cursor = 0;       // every event up to here is applied or dead-lettered
  std::int64_t source_head = 0;  // newest event in the source's outbox
  std::int64_t bootstraps = 0;   // times it started over from a snapshot (this run)
  std::int64_t lag_events = 0;   // source_head - cursor
  double lag_seconds = 0;        // age of the oldest event not applied (measure() only)
};

struct OutboxStatus {
  std::string module;
  bool readable = false;     // false: the file could not be read (the rest is zero)
  std::int64_t head = 0;     // newest event id
  std::int64_t pending = 0;  // events some subscription reading them has not applied
  std::int64_t held = 0;     // past retention, kept for a subscription behind
};

struct BusMeasurement {
  std::vector<FeedStatus> feeds;
  std::vector<OutboxStatus> outboxes;
};

// The in-process event bus. Sources are modules whose outbox is read; consumers are
// modules with subscriptions. Every module file has its own Writer, on which the bus
// does that file's writes (applying events, marking published, pruning).
class Bus {
 public:
  Bus(Options options, metrics::Registry& metrics);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Before start(). `database` and `writer` outlive the bus.
  void add_source(const std::string& module, const db::ModuleDb& database, db::Writer& writer);
  // Before start(), with Options::transport: a module another process serves. This
  // process's subscriptions to its topics read its stream; its outbox is not read here.
  void add_remote_source(const std::string& module);
  // `serving` says whether the consumer module itself is up (its file migrated, the
  // module started): a module that is down does not consume, and its subscriptions
  // catch up from their cursors once it serves again. Empty: always.
  void add_consumer(const std::string& module, const db::ModuleDb& database, db::Writer& writer,
                    std::vector<Subscription> subscriptions, std::function<bool()> serving = {});

  // Opens connections, loads cursors and catches up. A consumer whose file cannot be
  // used is down; the sweep retries it and it catches up when it comes back.
  void start();
  // Waits until every consumer that is up has applied what its sources held when called
  // (or until `timeout`): the "flush the relay" step of a graceful shutdown. Returns
  // false on timeout. A consumer still opening is waited for; one that is down is not.
  bool flush(std::chrono::milliseconds timeout);
  // Stops waking anyone, cancels retries, waits for bus work on every writer to end.
  void stop();

  // A transaction that appended events to `source`'s outbox has committed.
  void notify(std::string_view source);

  std::vector<FeedStatus> status();
  TransportStatus transport_status();
  // The newest event id in `module`'s outbox (0 when empty); throws SQLite::Exception
  // when its file cannot be read, std::out_of_range for a module that is no source.
  std::int64_t outbox_head(std::string_view module);
  // Whether `module`'s consumer is up and has applied everything its sources have
  // committed by now (true for a module that consumes nothing); false before start().
  // Any thread; a feed found behind is pumped.
  bool consumer_caught_up(std::string_view module);
  // True once every consumer is up and has applied everything its sources had when called.
  bool caught_up();
  // status() with each source's outbox read now: fresh heads, lag in seconds, outbox
  // depth. What the metrics and the operator routes report.
  BusMeasurement measure();

  std::vector<DeadLetter> dead_letters(const std::optional<std::string>& module);
  // Applies a dead letter again with its subscription's handler; on success it is marked
  // replayed. Errc::not_found for an unknown id.
  Result<Unit> replay(const std::string& module, std::int64_t dead_letter_id);
  // Marks a pending dead letter discarded: kept for the record, never applied.
  // Errc::not_found for an unknown id, Errc::conflict when it is not pending.
  Result<Unit> discard(const std::string& module, std::int64_t dead_letter_id);

  // Restore awareness while running (the consistency check calls it): a feed whose
  // source's outbox now ends below its cursor (the source's file was restored in place,
  // e.g. `sqlite3 auth.db ".restore backup"` on the live file) has its consumer closed
  // and reopened, which rewinds it as at start (SOURCE RESTORED? in the log,
  // Options::source_rewound); done when this returns. Runs on `module`'s writer. The
  // feeds found, as "consumer.subscription<-source".
  std::vector<std::string> rewind_restored_sources(const std::string& module);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Implemented by a module that consumes events; app/ registers its subscriptions.
class Consumer {
 public:
  virtual ~Consumer() = default;
  virtual std::vector<Subscription> subscriptions() = 0;
};

// Dead letters of one module file, for the CLI when no server is running.
std::vector<DeadLetter> read_dead_letters(const db::ModuleDb& database);

}  // namespace townhall::bus
