#pragma once

// A thin blocking client for RabbitMQ streams over AMQP 0-9-1, on rabbitmq-c (whose headers
// stay in amqp.cpp). What the split deployment's bus transport is built from (issue 23).
//
// Threading: a Connection is owned by ONE thread, the process's transport I/O thread, and
// every call blocks that thread (each with a deadline). Nothing in it is thread-safe. That
// thread must call receive() (or another call) at least every heartbeat/2 so heartbeats
// are answered; a receive() with a deadline does that while it waits.
//
// Failures are values, never exceptions or crashes: a refused connection or login, a
// declare the broker refuses, a channel or connection the broker closes (its reply text in
// the message), a lost socket, a nack or a missed deadline. Once the connection is lost
// (Errc::unavailable with "connection" in the message, and is_open() false) every call
// fails the same way: the caller drops the Connection, waits (Backoff) and connects again,
// then resumes a consumer from the offset it stored.
//
// RabbitMQ recommends separate connections for publishing and consuming (a publisher that
// the broker blocks under flow control must not hold up the consumers' acks): one process
// opens one of each, both owned by its I/O thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "townhall/platform/result.hpp"

namespace townhall::transport::amqp {

using Clock = std::chrono::steady_clock;

struct ConnectOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  // Negotiated with the broker (the lower non-zero value wins); 0 turns heartbeats off.
  std::chrono::seconds heartbeat{10};
  // TCP connect plus the AMQP handshake and login.
  std::chrono::milliseconds connect_timeout{5000};
  // Each synchronous request (declare, qos, consume, confirm.select, close).
  std::chrono::milliseconds rpc_timeout{10000};

  // amqp://user:password@host:port/vhost (rabbitmq-c's parser: "%2f" is the "/" vhost).
  static Result<ConnectOptions> from_url(std::string_view url);
};

// A stream queue's arguments. The broker keeps whole segments: retention (age or size)
// removes the oldest segments, and only once a newer one is started.
struct StreamOptions {
  std::string max_age = "72h";                         // x-max-age: Y, M, D, h, m, s
  std::optional<std::int64_t> max_segment_size_bytes;  // x-stream-max-segment-size-bytes
  std::optional<std::int64_t> max_length_bytes;        // x-max-length-bytes
};

// Where a consumer attaches. An offset below the first one the stream still holds starts
// silently at that first one: a consumer detects the gap from its messages' ids.
class StreamOffset {
 public:
  static StreamOffset first() { return StreamOffset(std::string("first")); }
  static StreamOffset last() { return StreamOffset(std::string("last")); }  // the last chunk
  static StreamOffset next() { return StreamOffset(std::string("next")); }  // only new messages
  static StreamOffset at(std::int64_t offset) { return StreamOffset(offset); }
  const std::variant<std::string, std::int64_t>& value() const { return value_; }
  std::string describe() const;

 private:
  explicit StreamOffset(std::variant<std::string, std::int64_t> value) : value_(std::move(value)) {}
  std::variant<std::string, std::int64_t> value_;
};

struct OutgoingMessage {
  std::int64_t outbox_id = 0;  // in the "outbox-id" header (int64) and as message-id
  std::string body;
  std::string type;                                          // the AMQP type property (the event type), optional
  std::vector<std::pair<std::string, std::string>> headers;  // more string headers
};

struct Delivery {
  std::uint16_t channel = 0;  // the subscription's channel (acks go there)
  std::uint64_t delivery_tag = 0;
  std::string stream;  // the subscription's stream
  // The broker's x-stream-offset header. Increasing, but not one per message (a segment
  // roll takes an offset too): gaps are found by outbox id, never by offset.
  std::optional<std::int64_t> stream_offset;
  std::optional<std::int64_t> outbox_id;  // the publisher's outbox-id header
  std::string message_id;
  std::string type;
  std::string body;
  // Every header whose value is a string or an integer, integers in decimal.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const;
};

struct Subscription {
  std::uint16_t channel = 0;
  std::string stream;
  std::string consumer_tag;
};

class Connection {
 public:
  // Connects and logs in: unavailable (refused, unreachable, reset, a closed handshake),
  // deadline_exceeded (no answer within connect_timeout), unauthorized (login refused).
  static Result<Connection> open(const ConnectOptions& options);

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();  // closes politely when still open (bounded by rpc_timeout)

  bool is_open() const;
  // Why the connection is no longer open ("" while it is).
  const std::string& lost_reason() const;

  // A durable stream queue (x-queue-type=stream). Declaring an existing one with the same
  // arguments is fine; a refused or inequivalent declare is an error naming the queue
  // (conflict for PRECONDITION_FAILED), and the connection stays usable.
  Result<Unit> declare_stream(std::string_view name, const StreamOptions& options);
  // Deletes a queue (tests, tooling).
  Result<Unit> delete_queue(std::string_view name);

  // Publishes `messages` in order to the default exchange with the stream's name as the
  // routing key (mandatory: a missing stream comes back as an error, not a silent drop),
  // on a channel in confirm mode, and waits until the broker confirmed every one of them.
  // A nack, a returned message, a closed channel or the deadline → an error, and then
  // none of the batch may be taken as stored (the caller publishes it again: the consumer
  // dedups by outbox id).
  Result<Unit> publish_confirmed(std::string_view stream, std::span<const OutgoingMessage> messages,
                                 Clock::time_point deadline);

  // Starts a consumer on a stream from `offset`, on a channel of its own with basic.qos
  // prefetch (a stream refuses consumers without one) and manual acks. The broker counts
  // the prefetch in chunks (messages the stream stored together): it sends a whole chunk
  // while any credit is left, so up to prefetch + one chunk may be unacked.
  Result<Subscription> consume(std::string_view stream, const StreamOffset& offset, std::uint16_t prefetch);
  // Ends a consumer and closes its channel.
  Result<Unit> cancel(const Subscription& subscription);

  // The next delivery of any subscription, or nullopt when none came by the deadline.
  // Services heartbeats while waiting. A subscription the broker cancelled or whose
  // channel it closed, or a lost connection → an error.
  Result<std::optional<Delivery>> receive(Clock::time_point deadline);

  // Acks a delivery (and every earlier one on its channel when `multiple`). For a stream
  // an ack gives the consumer credit; it does not remove anything.
  Result<Unit> ack(std::uint16_t channel, std::uint64_t delivery_tag, bool multiple = false);
  Result<Unit> ack(const Delivery& delivery, bool multiple = false) {
    return ack(delivery.channel, delivery.delivery_tag, multiple);
  }

  struct State;  // rabbitmq-c's connection and the channels' bookkeeping

 private:
  explicit Connection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Delays between reconnection attempts: exponential from `initial` up to `max`, each
// drawn in [50%, 100%] of its step so many clients do not retry in lockstep. reset()
// after a success.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint64_t seed = 0);
  std::chrono::milliseconds next();
  void reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::uint64_t random_state_;
  int attempts_ = 0;
};

}  // namespace townhall::transport::amqp
