#pragma once

// The state shared by the stream link's publisher (stream_publish.cpp), its consumer
// (stream_consume.cpp) and the remote logs read by the feeds (stream_link.cpp). Private to
// the bus; see stream_link.hpp for what each thread owns.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "stream_link.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/thread_name.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/platform/writer.hpp"
#include "townhall/transport/amqp.hpp"

namespace townhall::bus::detail {

namespace amqp = transport::amqp;

// A local source published to its stream. Publisher thread only, except `confirmed`.
struct Publication {
  std::string module, stream;
  const db::ModuleDb* database = nullptr;
  db::Writer* writer = nullptr;
  std::unique_ptr<LogReader> reader;         // the outbox, on a relay connection
  std::atomic<std::int64_t> confirmed{-1};   // -1: not loaded from the file yet
  bool tail_checked = false;                 // on the current connection
  std::unique_ptr<db::Connection> recorder;  // the source's writer only
  metrics::Counter* published_events = nullptr;
};

// What a remote feed's reader holds: rows received from the stream and not yet released.
struct Inbox {
  struct Held {
    std::shared_ptr<const SharedRow> row;
    std::int64_t offset = -1;  // the stream offset it came from (-1: unknown)
    std::uint64_t tag = 0;     // its delivery tag on `generation`'s channel
    std::uint64_t generation = 0;
  };

  std::string stream;
  std::function<void()> wake;

  std::mutex mutex;
  std::deque<Held> held;                    // ids increasing
  std::size_t handed = 0;                   // held[0, handed) were read by the feed
  std::int64_t last_id = 0;                 // the highest id kept (starts at the cursor)
  std::int64_t contiguous_from = 1;         // the first id after the last gap
  std::optional<std::int64_t> next_offset;  // attach here next
  std::uint64_t generation = 0;             // of the subscription the tags below belong to
  std::uint64_t ack_up_to = 0;              // read or dropped: give the broker credit up to here
  bool closed = false;                      // the reader is gone

  // The consuming thread only.
  std::optional<amqp::Subscription> subscription;
  std::uint64_t acked = 0;
};

// Recent (id, occurred_at) of a remote source, for lag in seconds.
struct Recent {
  std::int64_t id = 0;
  std::string occurred_at;
};

struct StreamLink::State : std::enable_shared_from_this<StreamLink::State> {
  StreamTransport options;
  std::function<void(std::string_view)> fault_hook;
  metrics::Registry& metrics;
  amqp::StreamOptions stream_options;

  std::vector<std::unique_ptr<Publication>> publications;
  std::vector<std::string> remote_streams;

  std::atomic<bool> stopping{false};
  std::thread publisher, consumer;

  std::mutex publish_mutex;
  std::condition_variable publish_wake;
  bool publish_pending = false;

  std::mutex inboxes_mutex;
  std::vector<std::shared_ptr<Inbox>> inboxes;
  std::condition_variable consumer_wake;  // stopping, during a backoff

  mutable std::mutex status_mutex;
  std::string last_error;
  std::atomic<bool> publishing{false}, consuming{false};
  std::atomic<std::int64_t> reconnects{0};
  metrics::Gauge* publish_connected = nullptr;
  metrics::Gauge* consume_connected = nullptr;
  metrics::Counter* publish_reconnects = nullptr;
  metrics::Counter* consume_reconnects = nullptr;

  // Per remote stream: the highest id seen and the newest rows' times (lag).
  struct Remote {
    std::mutex mutex;
    std::int64_t head = 0;
    std::deque<Recent> recent;
    // The consuming thread only: the stream's end as known on this connection (probed at
    // connect, then as messages come).
    std::int64_t next_offset = 0;
  };
  std::map<std::string, std::unique_ptr<Remote>, std::less<>> remotes;

  State(StreamTransport opts, std::function<void(std::string_view)> hook, metrics::Registry& registry)
      : options(std::move(opts)), fault_hook(std::move(hook)), metrics(registry) {
    stream_options.max_age = std::to_string(options.max_age.count()) + "h";
    auto families = stream_metrics(metrics);
    publish_connected = &families.connected.with({"publish"});
    consume_connected = &families.connected.with({"consume"});
    publish_reconnects = &families.reconnects.with({"publish"});
    consume_reconnects = &families.reconnects.with({"consume"});
  }

  void fault(std::string_view point) {
    if (fault_hook) fault_hook(point);
  }

  void failed(const char* connection, const std::string& why) {
    {
      std::lock_guard lock(status_mutex);
      last_error = std::string(connection) + ": " + why;
    }
    ++reconnects;
  }

  // A connection for `role` ("publish", "consume"); a failure is counted and shown in the
  // status, and logged on the first attempt of a series (then the backoff's delays pass quietly).
  Result<amqp::Connection> connect(const char* role, metrics::Counter& reconnect_counter,
                                   const amqp::Backoff& backoff) {
    auto opened = open_connection();
    if (!opened) {
      failed(role, opened.error().message);
      reconnect_counter.inc();
      if (backoff.attempts() == 1) spdlog::warn("bus: cannot reach the broker to {}: {}", role, opened.error().message);
    }
    return opened;
  }
  Result<amqp::Connection> open_connection() const {
    auto endpoint = amqp::ConnectOptions::from_url(options.url);
    if (!endpoint) return endpoint.error();
    endpoint->rpc_timeout = std::chrono::milliseconds(5000);
    return amqp::Connection::open(*endpoint);
  }

  // Sleeps the backoff's next delay unless stopping. Returns false when stopping.
  bool back_off(amqp::Backoff& backoff, std::condition_variable& wake, std::mutex& mutex) {
    std::unique_lock lock(mutex);
    wake.wait_for(lock, backoff.next(), [this] { return stopping.load(); });
    return !stopping;
  }

  // ---- publisher ----

  void publish_loop();
  bool load_confirmed(Publication& publication);
  // The end of a stream, read from its last chunk (zeros when it is empty). Called right
  // after a connect, before anything else is consumed on it.
  struct StreamEnd {
    std::int64_t tail_id = 0;      // the highest outbox id it holds
    std::int64_t next_offset = 0;  // the offset its next message gets (at least)
  };
  Result<StreamEnd> stream_end(amqp::Connection& connection, const std::string& stream);
  // A restored source: its outbox ends below what its stream holds. Its next ids move
  // past the tail with a gap, so the remote subscriptions bootstrap (and repair) instead
  // of taking its new events for ones they have seen.
  void move_past(Publication& publication, std::int64_t tail);
  void record(Publication& publication, std::int64_t up_to);

  // ---- consumer ----

  void consume_loop();
  void deliver(amqp::Delivery& delivery, Inbox& inbox, Remote& remote);
  Remote& remote(std::string_view stream) { return *remotes.find(stream)->second; }
};

}  // namespace townhall::bus::detail
