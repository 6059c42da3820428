// The stream link's consumer thread: remote streams into the feeds' inboxes (stream_link.hpp).
#include <spdlog/spdlog.h>

#include "stream_state.hpp"

namespace townhall::bus::detail {

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
      auto opened = connect("consume", *consume_reconnects, backoff);
      if (!opened) {
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

}  // namespace townhall::bus::detail
