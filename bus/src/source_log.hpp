#pragma once

// Where a source module's events are read from: the seam between the bus's per-source
// state (window, feeds, lanes) and the storage of the source's log. Today the log is the
// source's own outbox table (local_log.cpp); a broker-backed log (the source's stream,
// when the source runs in another process) implements the same contract.
//
// Contract of every log:
//   - ids are positive and increase; a reader sees them in order, so a read that returns
//     fewer rows than asked for has seen everything up to its last row;
//   - ids are never reused (a restored source's log may end below ids already seen: the
//     bus detects it by newest() < a cursor);
//   - only pruning removes events, always the oldest first: a first row past after + 1
//     with oldest() > after + 1 means the events in between are gone.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "townhall/bus/bus.hpp"

namespace townhall::bus::detail {

using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

struct Row {
  std::int64_t id = 0;
  std::string topic, event_type, aggregate_type, aggregate_id, occurred_at, correlation_id, causation_id, data;
  std::int64_t version = 0;
  int schema = 1;
};

std::uint64_t fnv1a(std::string_view text);
// The event of an outbox row as stored; `data` stays a string when it is not JSON.
Event fields_of(const std::string& source, const Row& row);
// The event of an outbox row; an Error when the row cannot be a valid event.
Result<Event> to_event(const std::string& source, const Row& row);
// The envelope as kept in dead_letters, also for rows that are not valid events.
std::string envelope_of(const std::string& source, const Row& row);

// An outbox row as the feeds of one source share it: read from the log once, its event
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

// The source's log cannot be read now: the consumer is fine, the feed waits and retries.
struct SourceUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One reading context's handle on a source's log (for the local log: a connection on the
// source's file, opened on first use and dropped on failure). Not thread-safe: each feed
// (on its consumer's writer) and the relay thread have their own.
class LogReader {
 public:
  virtual ~LogReader() = default;
  // Appends up to `limit` rows with after < id <= up_to, in id order. Throws
  // SourceUnavailable.
  virtual void read(std::int64_t after, std::int64_t up_to, std::size_t limit, Rows& out) = 0;
  // The newest and the oldest id the log holds (0 when it is empty). Throw
  // SourceUnavailable.
  virtual std::int64_t newest() = 0;
  virtual std::int64_t oldest() = 0;

  // For logs that are not random-access (a stream): the feed's cursor and the stream
  // offset stored with it, where the reader starts receiving, and how the bus is woken
  // when rows arrive. The local log reads wherever it is asked and ignores these.
  virtual void attach(std::int64_t /*cursor*/, std::optional<std::int64_t> /*stream_offset*/,
                      std::function<void()> /*wake*/) {}
  // Every row up to `up_to` is done for good (the feed's watermark): a stream reader drops
  // what it holds for lane retries up to there.
  virtual void release(std::int64_t /*up_to*/) {}
  // The stream offset to store with a cursor at `position` (see bus_cursors.stream_offset);
  // nullopt for the local log.
  virtual std::optional<std::int64_t> resume_offset(std::int64_t /*position*/) const { return std::nullopt; }
};

// What status and metrics need to know of a source's backlog.
struct Backlog {
  std::int64_t head = 0;     // newest id
  std::int64_t pending = 0;  // events after the lowest of the cursors asked about
  // Per cursor asked about: when the first event after it occurred (none: caught up).
  std::vector<std::optional<SystemClock::time_point>> first_unapplied_at;
};

// What may be pruned: events every subscriber has applied (id <= applied) once they are
// older than `retention_cutoff`, and any event older than `hold_cutoff` (a subscriber
// that still needs it bootstraps). ISO-8601 UTC timestamps, as events carry.
struct PruneBounds {
  std::int64_t applied = 0;
  std::string retention_cutoff, hold_cutoff;
};

class SourceLog {
 public:
  virtual ~SourceLog() = default;
  // Random-access logs (the outbox table) are read wherever a feed asks, through the
  // source's shared window; a stream is received in order by one reader per feed, which
  // the bus reads directly. A stream's oldest() is the first id after the last gap its
  // reader saw, its newest() the highest id received, and it has no restore to detect (a
  // restored source's publisher moves its ids past the stream's tail).
  virtual bool random_access() const { return true; }
  virtual std::unique_ptr<LogReader> open_reader() = 0;
  // From any thread (status, metrics, flush): one connection shared under a lock. Throws
  // when the log cannot be read.
  virtual std::int64_t head() = 0;
  virtual Backlog backlog(const std::vector<std::int64_t>& cursors) = 0;
  // On the source's writer. Returns how many events past retention are kept because
  // some subscriber has not applied them. Throws when the log cannot be pruned.
  virtual std::int64_t prune(const PruneBounds& bounds) = 0;
  // Drops the connections this log holds for status and pruning (bus stop).
  virtual void close() = 0;
};

// The source's own outbox table, read on relay connections of its file.
std::unique_ptr<SourceLog> make_local_log(const db::ModuleDb& database);

// The columns of an outbox row, read from a statement selecting them in kOutboxColumns'
// order (local_log.cpp), for the local reader and the stream publisher.
inline constexpr const char* kOutboxColumns =
    "id, topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, correlation_id, causation_id, "
    "schema, data";

}  // namespace townhall::bus::detail
