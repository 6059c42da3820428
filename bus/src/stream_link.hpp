#pragma once

// The split deployment's broker link (issue 23 §2, design note 56): every local source's
// outbox published to its RabbitMQ stream, and the streams of the sources other
// processes serve received for this process's subscriptions.
//
//   publisher  one thread ("bus-publish") owning the publishing connection: for each local
//              source, reads the outbox after what the broker confirmed, publishes in id
//              order with confirms, and records the new position in the source's file
//              (bus_publications) through the source's writer. A kill between the
//              broker's confirm and that record publishes the rows again; consumers drop
//              them by id.
//   consumer   one thread ("bus-consume") owning the consuming connection: one stream
//              consumer (own channel, basic.qos, manual acks) per remote feed, attached at
//              the offset stored with the feed's cursor; rows are kept for the feed's
//              reader until the feed's watermark passes them.
//
// Both reconnect with backoff and declare their streams again after every connect (a
// broker killed right after a declare can lose the stream). Failures never reach the
// feeds: a feed whose stream is silent just waits, and its lag grows.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "source_log.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/metrics.hpp"

namespace townhall::db {
class Writer;
}

namespace townhall::bus::detail {

class StreamLink {
 public:
  StreamLink(StreamTransport options, std::function<void(std::string_view)> fault_hook, metrics::Registry& metrics);
  ~StreamLink();
  StreamLink(const StreamLink&) = delete;
  StreamLink& operator=(const StreamLink&) = delete;

  // Before start(): a local source whose outbox goes to its stream.
  void add_publisher(const std::string& module, const db::ModuleDb& database, db::Writer& writer);
  // Before start(): the log of a source another process serves (its stream).
  std::unique_ptr<SourceLog> remote_log(const std::string& module);

  void start();
  // Joins both threads; the rows a feed holds stay readable (its cursor is persisted
  // after this, with the offsets they came from).
  void stop();

  // `module`'s outbox grew: the publisher reads it now instead of at its next poll.
  void outbox_grew(std::string_view module);
  // How far `module`'s outbox is confirmed by the broker (what pruning must keep above);
  // nullopt for a module this link does not publish, or before its position is known.
  std::optional<std::int64_t> published(std::string_view module) const;
  TransportStatus status() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// The transport's metric families, registered by every bus (so alert rules find them in a
// single process too) and filled by the link.
struct StreamMetrics {
  metrics::GaugeFamily& connected;
  metrics::CounterFamily& reconnects;
  metrics::CounterFamily& published;
};
StreamMetrics stream_metrics(metrics::Registry& metrics);

// A row as it travels on a stream (the message body; its id also in the outbox-id header).
std::string encode_row(const Row& row);
// nullopt when `body` is not what encode_row writes.
std::optional<Row> decode_row(std::string_view body);

}  // namespace townhall::bus::detail
