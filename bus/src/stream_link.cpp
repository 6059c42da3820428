// The broker link of a split deployment: see stream_link.hpp.
#include "stream_link.hpp"

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

#include "townhall/platform/metrics.hpp"
#include "townhall/platform/thread_name.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/platform/writer.hpp"
#include "townhall/transport/amqp.hpp"

namespace townhall::bus::detail {

namespace amqp = transport::amqp;
using json = nlohmann::json;

std::string encode_row(const Row& row) {
  json body = {{"id", row.id},
               {"topic", row.topic},
               {"event_type", row.event_type},
               {"aggregate_type", row.aggregate_type},
               {"aggregate_id", row.aggregate_id},
               {"event_version", row.version},
               {"occurred_at", row.occurred_at},
               {"correlation_id", row.correlation_id},
               {"causation_id", row.causation_id},
               {"schema", row.schema},
               {"data", row.data}};  // as stored: a string, so it arrives byte for byte
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<Row> decode_row(std::string_view text) {
  auto body = json::parse(text, nullptr, false);
  if (!body.is_object()) return std::nullopt;
  try {
    Row row;
    row.id = body.at("id").get<std::int64_t>();
    row.topic = body.at("topic").get<std::string>();
    row.event_type = body.at("event_type").get<std::string>();
    row.aggregate_type = body.at("aggregate_type").get<std::string>();
    row.aggregate_id = body.at("aggregate_id").get<std::string>();
    row.version = body.at("event_version").get<std::int64_t>();
    row.occurred_at = body.at("occurred_at").get<std::string>();
    row.correlation_id = body.at("correlation_id").get<std::string>();
    row.causation_id = body.at("causation_id").get<std::string>();
    row.schema = body.at("schema").get<int>();
    row.data = body.at("data").get<std::string>();
    if (row.id <= 0) return std::nullopt;
    return row;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

StreamMetrics stream_metrics(metrics::Registry& metrics) {
  return {metrics.gauge("townhall_bus_stream_connected",
                        "Whether the broker connection is open (split deployment: 1 open, 0 lost or refused)",
                        {"connection"}),
          metrics.counter("townhall_bus_stream_reconnects_total",
                          "Broker connections lost or refused, by connection (publish, consume)", {"connection"}),
          metrics.counter("townhall_bus_stream_published_total",
                          "Events published to the module's stream, confirmed by the broker", {"module"})};
}

namespace {

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

}  // namespace

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

  Result<amqp::Connection> connect() {
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

// ---------------------------------------------------------------------------------------
// Publishing

bool StreamLink::State::load_confirmed(Publication& publication) {
  if (publication.confirmed >= 0) return true;
  try {
    auto reader = publication.database->open(db::Role::reader);
    auto query = reader->prepare("SELECT published_up_to FROM bus_publications WHERE id = 1");
    publication.confirmed = query.executeStep() ? query.getColumn(0).getInt64() : 0;
    return true;
  } catch (const std::exception& error) {
    spdlog::warn("bus: cannot read how far {} was published: {}", publication.module, error.what());
    return false;
  }
}

Result<StreamLink::State::StreamEnd> StreamLink::State::stream_end(amqp::Connection& connection,
                                                                   const std::string& stream) {
  auto subscription = connection.consume(stream, amqp::StreamOffset::last(), 1000);
  if (!subscription) return subscription.error();
  StreamEnd end;
  // The last chunk comes at once when there is one; an empty stream sends nothing. A
  // stream being published to never goes quiet: what has come within the cap is an end
  // at least as far as any offset stored before the probe.
  auto deadline = amqp::Clock::now() + std::max(options.tail_quiet, std::chrono::milliseconds(1000));
  const auto cap = amqp::Clock::now() + std::chrono::milliseconds(2000);
  while (amqp::Clock::now() < cap) {
    auto delivery = connection.receive(deadline);
    if (!delivery) return delivery.error();
    if (!*delivery) break;
    if ((*delivery)->channel != subscription->channel) continue;  // nothing else is subscribed yet
    if ((*delivery)->outbox_id) end.tail_id = std::max(end.tail_id, *(*delivery)->outbox_id);
    if ((*delivery)->stream_offset) end.next_offset = std::max(end.next_offset, *(*delivery)->stream_offset + 1);
    if (auto acked = connection.ack(**delivery); !acked) return acked.error();
    deadline = std::min(cap, amqp::Clock::now() + options.tail_quiet);
  }
  if (auto cancelled = connection.cancel(*subscription); !cancelled) return cancelled.error();
  return end;
}

void StreamLink::State::move_past(Publication& publication, std::int64_t tail) {
  // On the source's writer, so no write of the module comes between the check and the
  // marker; waited for, so nothing is published before it.
  std::promise<void> done;
  auto finished = done.get_future();
  publication.writer->post([&publication, tail, &done] {
    try {
      auto service = publication.database->open(db::Role::service);
      auto newest = service->prepare("SELECT coalesce(max(id), 0) FROM outbox");
      newest.executeStep();
      const auto head = newest.getColumn(0).getInt64();
      newest.reset();
      if (head < tail) {
        // tail + 2: the missing tail + 1 is the gap the remote subscriptions see. The
        // marker's topic is the id floor's, which no subscription matches.
        auto marker = service->prepare(
            "INSERT INTO outbox (id, topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, "
            "data) VALUES (?, 'bus.id_floor', 'bus.id_floor', 'bus', '', 1, ?, ?)");
        marker.bind(1, tail + 2);
        marker.bind(2, utc::now());
        marker.bind(3, json{{"reason", "restored below its stream's tail"}, {"stream_tail", tail}}.dump());
        marker.exec();
        spdlog::error(
            "bus: SOURCE RESTORED? {}'s outbox ends at event {} but its stream holds up to {}: its next events "
            "start after {}, and the subscriptions of other processes bootstrap over the gap",
            publication.module, head, tail, tail + 2);
      }
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  finished.get();
}

void StreamLink::State::record(Publication& publication, std::int64_t up_to) {
  publication.writer->post([self = shared_from_this(), &publication, up_to] {
    try {
      if (!publication.recorder) publication.recorder = publication.database->open(db::Role::relay);
      auto update = publication.recorder->cached(
          "UPDATE bus_publications SET published_up_to = max(published_up_to, ?), updated_at = ? WHERE id = 1");
      update->bind(1, up_to);
      update->bind(2, utc::now());
      update->exec();
    } catch (const std::exception& error) {
      // Published again after a restart; the consumers drop what they have by id.
      publication.recorder.reset();
      spdlog::warn("bus: cannot record that {} is published up to {}: {}", publication.module, up_to, error.what());
    }
  });
}

void StreamLink::State::publish_loop() {
  name_this_thread("bus-publish");
  amqp::Backoff backoff(options.reconnect_initial, options.reconnect_max);
  std::optional<amqp::Connection> connection;
  std::vector<amqp::OutgoingMessage> messages;
  Rows rows;
  auto lose = [&](const std::string& why) {
    spdlog::warn("bus: the stream publisher lost the broker: {}", why);
    failed("publish", why);
    publish_reconnects->inc();
    connection.reset();
    publishing = false;
    publish_connected->set(0);
  };
  while (!stopping) {
    if (!connection) {
      auto opened = connect();
      if (!opened) {
        failed("publish", opened.error().message);
        publish_reconnects->inc();
        if (backoff.attempts() == 1)
          spdlog::warn("bus: cannot reach the broker to publish: {}", opened.error().message);
        if (!back_off(backoff, publish_wake, publish_mutex)) break;
        continue;
      }
      connection = std::move(*opened);
      bool declared = true;
      for (auto& publication : publications) {
        publication->tail_checked = false;
        if (auto made = connection->declare_stream(publication->stream, stream_options); !made) {
          lose(made.error().message);
          declared = false;
          break;
        }
      }
      if (!declared) {
        if (!back_off(backoff, publish_wake, publish_mutex)) break;
        continue;
      }
      backoff.reset();
      publishing = true;
      publish_connected->set(1);
      spdlog::info("bus: publishing {} stream(s) to the broker", publications.size());
    }
    bool more = false;
    for (auto& publication : publications) {
      if (stopping || !connection) break;
      if (!load_confirmed(*publication)) continue;
      try {
        if (!publication->tail_checked) {
          auto end = stream_end(*connection, publication->stream);
          if (!end) {
            lose(end.error().message);
            break;
          }
          if (!publication->reader) publication->reader = make_local_log(*publication->database)->open_reader();
          if (publication->reader->newest() < end->tail_id) move_past(*publication, end->tail_id);
          publication->tail_checked = true;
        }
        rows.clear();
        if (!publication->reader) publication->reader = make_local_log(*publication->database)->open_reader();
        publication->reader->read(publication->confirmed, INT64_MAX, 512, rows);
      } catch (const std::exception& error) {
        // The source's file cannot be read now (a down module): tried again next round.
        publication->reader.reset();
        spdlog::debug("bus: cannot read {}'s outbox to publish: {}", publication->module, error.what());
        continue;
      }
      if (rows.empty()) continue;
      messages.clear();
      for (const auto& shared : rows)
        messages.push_back({shared->row.id, encode_row(shared->row), shared->row.event_type, {}});
      auto sent =
          connection->publish_confirmed(publication->stream, messages, amqp::Clock::now() + std::chrono::seconds(30));
      if (!sent) {
        lose(sent.error().message);
        break;
      }
      fault("after_publish");  // confirmed by the broker, not yet recorded in the file
      publication->confirmed = rows.back()->row.id;
      publication->published_events->inc(rows.size());
      record(*publication, rows.back()->row.id);
      more = more || rows.size() == 512;
    }
    if (more || !connection) continue;
    {
      std::unique_lock lock(publish_mutex);
      // The poll is the backstop for a commit that did not notify (a tool beside the data).
      publish_wake.wait_for(lock, std::chrono::seconds(1), [this] { return publish_pending || stopping.load(); });
      publish_pending = false;
    }
    // An idle publisher still answers the broker's heartbeats (at most a second apart).
    if (auto idle = connection->receive(amqp::Clock::now()); !idle) lose(idle.error().message);
  }
  publishing = false;
  publish_connected->set(0);
}

// ---------------------------------------------------------------------------------------
// Consuming

void StreamLink::State::deliver(amqp::Delivery& delivery, Inbox& inbox, Remote& remote) {
  std::optional<Row> row;
  if (delivery.outbox_id) row = decode_row(delivery.body);
  if (!row || row->id != *delivery.outbox_id) {
    // Not a message a publisher of this bus wrote: it cannot be placed among the ids.
    spdlog::error("bus: stream {} carries a message that is not an outbox row (offset {}); skipped", inbox.stream,
                  delivery.stream_offset.value_or(-1));
    std::lock_guard lock(inbox.mutex);
    inbox.ack_up_to = std::max(inbox.ack_up_to, delivery.delivery_tag);
    return;
  }
  {
    std::lock_guard lock(remote.mutex);
    remote.head = std::max(remote.head, row->id);
    if (remote.recent.empty() || remote.recent.back().id < row->id) {
      remote.recent.push_back({row->id, row->occurred_at});
      if (remote.recent.size() > 4096) remote.recent.pop_front();
    }
  }
  if (delivery.stream_offset) remote.next_offset = std::max(remote.next_offset, *delivery.stream_offset + 1);
  std::lock_guard lock(inbox.mutex);
  if (delivery.stream_offset) inbox.next_offset = *delivery.stream_offset + 1;
  if (row->id <= inbox.last_id) {
    // Published again (a publisher killed between the confirm and its record) or
    // received again after a reattach: the feed has it already.
    inbox.ack_up_to = std::max(inbox.ack_up_to, delivery.delivery_tag);
    return;
  }
  if (row->id > inbox.last_id + 1) {  // a gap: pruned or lost
    spdlog::warn("bus: stream {} skips from event {} to {} (offset {}): they were pruned or lost", inbox.stream,
                 inbox.last_id, row->id, delivery.stream_offset.value_or(-1));
    inbox.contiguous_from = row->id;
  }
  inbox.last_id = row->id;
  auto shared = std::make_shared<SharedRow>();
  shared->row = std::move(*row);
  shared->lane_hash = fnv1a(shared->row.aggregate_id);
  inbox.held.push_back(
      {std::move(shared), delivery.stream_offset.value_or(-1), delivery.delivery_tag, inbox.generation});
}

void StreamLink::State::consume_loop() {
  name_this_thread("bus-consume");
  amqp::Backoff backoff(options.reconnect_initial, options.reconnect_max);
  std::optional<amqp::Connection> connection;
  std::map<std::uint16_t, std::shared_ptr<Inbox>> by_channel;
  std::uint64_t generation = 0;
  auto lose = [&](const std::string& why) {
    spdlog::warn("bus: the stream consumer lost the broker: {}", why);
    failed("consume", why);
    consume_reconnects->inc();
    connection.reset();
    by_channel.clear();
    std::lock_guard lock(inboxes_mutex);
    for (auto& inbox : inboxes) inbox->subscription.reset();
    consuming = false;
    consume_connected->set(0);
  };
  std::vector<std::shared_ptr<Inbox>> woken;
  while (!stopping) {
    if (!connection) {
      auto opened = connect();
      if (!opened) {
        failed("consume", opened.error().message);
        consume_reconnects->inc();
        if (backoff.attempts() == 1)
          spdlog::warn("bus: cannot reach the broker to consume: {}", opened.error().message);
        if (!back_off(backoff, consumer_wake, inboxes_mutex)) break;
        continue;
      }
      connection = std::move(*opened);
      // Declared here too, so a consumer that starts before the source's process waits on
      // an empty stream rather than failing on a missing one (same registry, same args).
      std::string refused;
      for (const auto& stream : remote_streams) {
        if (auto made = connection->declare_stream(stream, stream_options); !made) {
          refused = made.error().message;
          break;
        }
        // Where it ends: a stored offset past it belongs to a stream the broker lost.
        auto end = stream_end(*connection, stream);
        if (!end) {
          refused = end.error().message;
          break;
        }
        remote(stream).next_offset = end->next_offset;
      }
      if (!refused.empty()) {
        lose(refused);
        if (!back_off(backoff, consumer_wake, inboxes_mutex)) break;
        continue;
      }
      backoff.reset();
      consuming = true;
      consume_connected->set(1);
    }
    // Attach new readers, detach gone ones, give credit for what the feeds took.
    std::vector<std::shared_ptr<Inbox>> current;
    {
      std::lock_guard lock(inboxes_mutex);
      std::erase_if(inboxes, [&](const std::shared_ptr<Inbox>& inbox) {
        std::lock_guard inbox_lock(inbox->mutex);
        if (!inbox->closed) return false;
        if (inbox->subscription) {
          by_channel.erase(inbox->subscription->channel);
          if (connection) (void)connection->cancel(*inbox->subscription);  // a failure shows on the next call
        }
        return true;
      });
      current = inboxes;
    }
    std::string failure;
    for (auto& inbox : current) {
      std::optional<std::int64_t> offset;
      {
        std::lock_guard lock(inbox->mutex);
        if (inbox->subscription) {
          // ack_up_to holds tags of this subscription only (read() checks the generation).
          if (inbox->ack_up_to > inbox->acked) {
            if (auto acked = connection->ack(inbox->subscription->channel, inbox->ack_up_to, true); !acked) {
              failure = acked.error().message;
              break;
            }
            inbox->acked = inbox->ack_up_to;
          }
          continue;
        }
        offset = inbox->next_offset;
      }
      if (offset && *offset > remote(inbox->stream).next_offset) {
        // Past the end: the broker lost the stream and a publisher declared it again, so
        // its offsets started over. Read the new one from its start; ids tell the rest (a
        // gap for what was lost, duplicates dropped).
        spdlog::warn(
            "bus: stream {} ends at offset {}, below the offset {} a subscription stored: it was lost and "
            "declared again; reading it from its first offset",
            inbox->stream, remote(inbox->stream).next_offset, *offset);
        offset.reset();
      }
      auto subscribed = connection->consume(
          inbox->stream, offset ? amqp::StreamOffset::at(*offset) : amqp::StreamOffset::first(), options.prefetch);
      if (!subscribed) {
        failure = subscribed.error().message;
        break;
      }
      spdlog::info("bus: reading stream {} from {} (channel {})", inbox->stream,
                   offset ? "offset " + std::to_string(*offset) : std::string("its first offset"), subscribed->channel);
      std::lock_guard lock(inbox->mutex);
      inbox->subscription = *subscribed;
      inbox->generation = ++generation;
      inbox->acked = 0;
      inbox->ack_up_to = 0;
      // Tags of the rows held from an earlier subscription mean nothing on this one.
      for (auto& held : inbox->held) held.generation = 0;
      by_channel[subscribed->channel] = inbox;
    }
    if (!failure.empty()) {
      lose(failure);
      if (!back_off(backoff, consumer_wake, inboxes_mutex)) break;
      continue;
    }
    // Receive what has come, waking each feed once per round.
    woken.clear();
    auto deadline = amqp::Clock::now() + std::chrono::milliseconds(20);
    for (int received = 0; received < 1024; ++received) {
      auto delivery = connection->receive(deadline);
      if (!delivery) {
        failure = delivery.error().message;
        break;
      }
      if (!*delivery) break;
      auto found = by_channel.find((*delivery)->channel);
      if (found == by_channel.end()) continue;  // a subscription being cancelled
      auto& inbox = found->second;
      deliver(**delivery, *inbox, remote(inbox->stream));
      if (std::find(woken.begin(), woken.end(), inbox) == woken.end()) woken.push_back(inbox);
      deadline = amqp::Clock::now();  // take what is buffered, then wake the feeds
    }
    for (auto& inbox : woken) {
      std::function<void()> wake;
      {
        std::lock_guard lock(inbox->mutex);
        if (!inbox->closed) wake = inbox->wake;
      }
      if (wake) wake();
    }
    if (!failure.empty()) {
      lose(failure);
      if (!back_off(backoff, consumer_wake, inboxes_mutex)) break;
    }
  }
  consuming = false;
  consume_connected->set(0);
}

// ---------------------------------------------------------------------------------------
// A remote source's log

namespace {

class StreamReader final : public LogReader {
 public:
  StreamReader(std::shared_ptr<StreamLink::State> state, std::string stream)
      : state_(std::move(state)), stream_(std::move(stream)) {}
  ~StreamReader() override {
    if (!inbox_) return;
    std::lock_guard lock(inbox_->mutex);
    inbox_->closed = true;
    inbox_->wake = nullptr;
  }

  void attach(std::int64_t cursor, std::optional<std::int64_t> stream_offset, std::function<void()> wake) override {
    if (inbox_) return;  // attached once, for the life of this reader
    inbox_ = std::make_shared<Inbox>();
    inbox_->stream = stream_;
    inbox_->wake = std::move(wake);
    inbox_->last_id = cursor;
    inbox_->contiguous_from = cursor + 1;
    inbox_->next_offset = stream_offset;
    std::lock_guard lock(state_->inboxes_mutex);
    state_->inboxes.push_back(inbox_);
  }

  void read(std::int64_t after, std::int64_t up_to, std::size_t limit, Rows& out) override {
    if (!inbox_) throw SourceUnavailable("stream " + stream_ + ": the reader is not attached");
    std::lock_guard lock(inbox_->mutex);
    auto first = std::upper_bound(inbox_->held.begin(), inbox_->held.end(), after,
                                  [](std::int64_t id, const Inbox::Held& held) { return id < held.row->row.id; });
    for (auto it = first; it != inbox_->held.end() && out.size() < limit && it->row->row.id <= up_to; ++it) {
      out.push_back(it->row);
      auto index = static_cast<std::size_t>(it - inbox_->held.begin());
      if (index >= inbox_->handed) {
        inbox_->handed = index + 1;
        if (it->generation == inbox_->generation) inbox_->ack_up_to = std::max(inbox_->ack_up_to, it->tag);
      }
    }
  }

  std::int64_t newest() override {
    if (!inbox_) throw SourceUnavailable("stream " + stream_ + ": the reader is not attached");
    std::lock_guard lock(inbox_->mutex);
    return inbox_->last_id;
  }
  std::int64_t oldest() override {
    if (!inbox_) throw SourceUnavailable("stream " + stream_ + ": the reader is not attached");
    std::lock_guard lock(inbox_->mutex);
    return inbox_->contiguous_from;
  }

  void release(std::int64_t up_to) override {
    if (!inbox_) return;
    std::lock_guard lock(inbox_->mutex);
    while (!inbox_->held.empty() && inbox_->held.front().row->row.id <= up_to) {
      inbox_->held.pop_front();
      if (inbox_->handed > 0) --inbox_->handed;
    }
  }

  std::optional<std::int64_t> resume_offset(std::int64_t position) const override {
    if (!inbox_) return std::nullopt;
    std::lock_guard lock(inbox_->mutex);
    for (const auto& held : inbox_->held)
      if (held.row->row.id > position) return held.offset >= 0 ? std::optional(held.offset) : std::nullopt;
    return inbox_->next_offset;
  }

 private:
  std::shared_ptr<StreamLink::State> state_;
  std::string stream_;
  std::shared_ptr<Inbox> inbox_;
};

class StreamLog final : public SourceLog {
 public:
  StreamLog(std::shared_ptr<StreamLink::State> state, std::string stream)
      : state_(std::move(state)), stream_(std::move(stream)) {}

  bool random_access() const override { return false; }
  std::unique_ptr<LogReader> open_reader() override { return std::make_unique<StreamReader>(state_, stream_); }

  std::int64_t head() override {
    auto& remote = state_->remote(stream_);
    std::lock_guard lock(remote.mutex);
    return remote.head;
  }

  Backlog backlog(const std::vector<std::int64_t>& cursors) override {
    auto& remote = state_->remote(stream_);
    std::lock_guard lock(remote.mutex);
    Backlog out;
    out.head = remote.head;
    std::int64_t lowest = out.head;
    for (auto cursor : cursors) {
      std::optional<SystemClock::time_point> at;
      if (cursor < out.head) {
        auto next = std::upper_bound(remote.recent.begin(), remote.recent.end(), cursor,
                                     [](std::int64_t id, const Recent& recent) { return id < recent.id; });
        // Older than what is remembered: at least as old as the oldest remembered.
        if (next == remote.recent.end() && !remote.recent.empty()) next = remote.recent.begin();
        if (next != remote.recent.end())
          if (auto parsed = utc::parse(next->occurred_at)) at = *parsed;
      }
      out.first_unapplied_at.push_back(at);
      lowest = std::min(lowest, cursor);
    }
    out.pending = std::max<std::int64_t>(0, out.head - lowest);
    return out;
  }

  // The broker's retention (x-max-age) prunes a stream, not this process.
  std::int64_t prune(const PruneBounds&) override { return 0; }
  void close() override {}

 private:
  std::shared_ptr<StreamLink::State> state_;
  std::string stream_;
};

}  // namespace

// ---------------------------------------------------------------------------------------

StreamLink::StreamLink(StreamTransport options, std::function<void(std::string_view)> fault_hook,
                       metrics::Registry& metrics)
    : state_(std::make_shared<State>(std::move(options), std::move(fault_hook), metrics)) {}

StreamLink::~StreamLink() { stop(); }

void StreamLink::add_publisher(const std::string& module, const db::ModuleDb& database, db::Writer& writer) {
  auto publication = std::make_unique<Publication>();
  publication->module = module;
  publication->stream = state_->options.stream_prefix + module;
  publication->database = &database;
  publication->writer = &writer;
  publication->published_events = &stream_metrics(state_->metrics).published.with({module});
  state_->publications.push_back(std::move(publication));
}

std::unique_ptr<SourceLog> StreamLink::remote_log(const std::string& module) {
  auto stream = state_->options.stream_prefix + module;
  state_->remote_streams.push_back(stream);
  state_->remotes.emplace(stream, std::make_unique<State::Remote>());
  return std::make_unique<StreamLog>(state_, stream);
}

void StreamLink::start() {
  auto& state = *state_;
  if (!state.publications.empty())
    state.publisher = std::thread([self = state_] { self->publish_loop(); });
  else
    state.publishing = true;  // nothing to publish: nothing to wait for
  if (!state.remote_streams.empty())
    state.consumer = std::thread([self = state_] { self->consume_loop(); });
  else
    state.consuming = true;
}

void StreamLink::stop() {
  auto& state = *state_;
  if (state.stopping.exchange(true)) return;
  {
    std::lock_guard lock(state.publish_mutex);
    state.publish_wake.notify_all();
  }
  {
    std::lock_guard lock(state.inboxes_mutex);
    state.consumer_wake.notify_all();
  }
  if (state.publisher.joinable()) state.publisher.join();
  if (state.consumer.joinable()) state.consumer.join();
}

void StreamLink::outbox_grew(std::string_view) {
  auto& state = *state_;
  if (state.publications.empty()) return;
  std::lock_guard lock(state.publish_mutex);
  state.publish_pending = true;
  state.publish_wake.notify_one();
}

std::optional<std::int64_t> StreamLink::published(std::string_view module) const {
  for (const auto& publication : state_->publications)
    if (publication->module == module) {
      auto confirmed = publication->confirmed.load();
      return confirmed < 0 ? std::nullopt : std::optional(confirmed);
    }
  return std::nullopt;
}

TransportStatus StreamLink::status() const {
  TransportStatus out;
  out.enabled = true;
  out.publishing = state_->publishing;
  out.consuming = state_->consuming;
  out.reconnects = state_->reconnects;
  std::lock_guard lock(state_->status_mutex);
  out.last_error = state_->last_error;
  return out;
}

}  // namespace townhall::bus::detail
