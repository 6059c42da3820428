// The stream link's publisher thread: a process's outboxes to their streams (stream_link.hpp).
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "stream_state.hpp"

namespace townhall::bus::detail {

using json = nlohmann::json;

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
      auto opened = connect("publish", *publish_reconnects, backoff);
      if (!opened) {
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

}  // namespace townhall::bus::detail
