#include "townhall/transport/amqp.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <random>
#include <set>

namespace townhall::transport::amqp {

// Channels: one for declares and deletes (a refused declare closes it; it is reopened on
// the next use), one in confirm mode for publishing, one per subscription after those.
constexpr amqp_channel_t kControlChannel = 1;
constexpr amqp_channel_t kPublishChannel = 2;
constexpr amqp_channel_t kFirstSubscriptionChannel = 3;
constexpr int kFrameMax = 131072;

struct SubscriptionState {
  std::string stream;
  std::string consumer_tag;
  std::string ended;  // why the broker ended it ("" while it runs)
};

struct Connection::State {
  ConnectOptions options;
  amqp_connection_state_t connection = nullptr;
  std::string lost;  // "" while open
  bool control_open = false;
  bool publish_open = false;
  std::uint64_t next_publish_tag = 1;
  std::set<std::uint64_t> unconfirmed;
  std::optional<Error> publish_failure;  // a nack, a return or the channel closed
  std::map<amqp_channel_t, SubscriptionState> subscriptions;
  amqp_channel_t next_channel = kFirstSubscriptionChannel;
  std::deque<Delivery> ready;

  ~State() {
    if (connection) amqp_destroy_connection(connection);
  }
};

namespace {

using State = Connection::State;

std::string text(amqp_bytes_t bytes) { return std::string(static_cast<const char*>(bytes.bytes), bytes.len); }
amqp_bytes_t bytes(std::string_view text) { return amqp_bytes_t{text.size(), const_cast<char*>(text.data())}; }

timeval to_timeval(std::chrono::microseconds duration) {
  auto us = std::max<std::int64_t>(0, duration.count());
  return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

timeval until(Clock::time_point deadline) {
  return to_timeval(std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()));
}

std::string endpoint(const ConnectOptions& options) {
  return "amqp://" + options.host + ":" + std::to_string(options.port);
}

// 406 PRECONDITION_FAILED (an inequivalent redeclare), 404 NOT_FOUND, 403 ACCESS_REFUSED,
// 405 RESOURCE_LOCKED; anything else is the broker being unable to serve now.
Errc code_for_reply(int reply_code) {
  switch (reply_code) {
    case 406: return Errc::conflict;
    case 405: return Errc::conflict;
    case 404: return Errc::not_found;
    case 403: return Errc::forbidden;
    case 530: return Errc::forbidden;
    default: return Errc::unavailable;
  }
}

Error lose(State& state, std::string reason, Errc code = Errc::unavailable) {
  if (state.lost.empty()) state.lost = reason;
  return make_error(code, "AMQP connection to " + endpoint(state.options) + " lost: " + state.lost);
}

Error lost_error(const State& state) {
  return make_error(Errc::unavailable, "AMQP connection to " + endpoint(state.options) + " lost: " + state.lost);
}

void close_channel_ok(State& state, amqp_channel_t channel) {
  amqp_channel_close_ok_t ok{};
  ok.dummy = 0;
  amqp_send_method(state.connection, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
}

void channel_closed(State& state, amqp_channel_t channel, const Error& why) {
  if (channel == kControlChannel) state.control_open = false;
  if (channel == kPublishChannel) {
    state.publish_open = false;
    state.publish_failure = why;
  }
  if (auto it = state.subscriptions.find(channel); it != state.subscriptions.end()) it->second.ended = why.message;
}

Error broker_closed_connection(State& state, const amqp_connection_close_t& close) {
  amqp_connection_close_ok_t ok{};
  ok.dummy = 0;
  amqp_send_method(state.connection, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
  return lose(state, "the broker closed it: " + std::to_string(close.reply_code) + " " + text(close.reply_text));
}

// The error for a failed synchronous request on `channel`; `what` names what was asked
// ("declaring stream 'x'"). A channel-level refusal leaves the connection usable.
Error reply_error(State& state, const amqp_rpc_reply_t& reply, amqp_channel_t channel, const std::string& what) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto& close = *static_cast<amqp_channel_close_t*>(reply.reply.decoded);
        Error error = make_error(
            code_for_reply(close.reply_code),
            what + " refused by the broker: " + std::to_string(close.reply_code) + " " + text(close.reply_text));
        close_channel_ok(state, channel);
        channel_closed(state, channel, error);
        return error;
      }
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto error = broker_closed_connection(state, *static_cast<amqp_connection_close_t*>(reply.reply.decoded));
        error.message = what + ": " + error.message;
        return error;
      }
      return lose(state, what + ": unexpected method " + std::to_string(reply.reply.id));
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      // After a timed-out request the connection's state is unknown: it is dropped.
      if (reply.library_error == AMQP_STATUS_TIMEOUT)
        return lose(state, what + ": no answer within " + std::to_string(state.options.rpc_timeout.count()) + " ms",
                    Errc::deadline_exceeded);
      return lose(state, what + ": " + amqp_error_string2(reply.library_error));
    default: return lose(state, what + ": no reply");
  }
}

Result<Unit> checked(State& state, amqp_channel_t channel, const std::string& what) {
  auto reply = amqp_get_rpc_reply(state.connection);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return Unit{};
  return reply_error(state, reply, channel, what);
}

Result<Unit> open_channel(State& state, amqp_channel_t channel) {
  amqp_channel_open(state.connection, channel);
  return checked(state, channel, "opening channel " + std::to_string(channel));
}

std::optional<std::int64_t> integer_value(const amqp_field_value_t& value) {
  switch (value.kind) {
    case AMQP_FIELD_KIND_I8: return value.value.i8;
    case AMQP_FIELD_KIND_U8: return value.value.u8;
    case AMQP_FIELD_KIND_I16: return value.value.i16;
    case AMQP_FIELD_KIND_U16: return value.value.u16;
    case AMQP_FIELD_KIND_I32: return value.value.i32;
    case AMQP_FIELD_KIND_U32: return value.value.u32;
    case AMQP_FIELD_KIND_I64: return value.value.i64;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: return static_cast<std::int64_t>(value.value.u64);
    default: return std::nullopt;
  }
}

void read_properties(const amqp_basic_properties_t& properties, Delivery& delivery) {
  if (properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) delivery.message_id = text(properties.message_id);
  if (properties._flags & AMQP_BASIC_TYPE_FLAG) delivery.type = text(properties.type);
  if (!(properties._flags & AMQP_BASIC_HEADERS_FLAG)) return;
  for (int i = 0; i < properties.headers.num_entries; ++i) {
    const auto& entry = properties.headers.entries[i];
    auto key = text(entry.key);
    auto number = integer_value(entry.value);
    if (key == "x-stream-offset" && number) delivery.stream_offset = number;
    if (key == "outbox-id" && number) delivery.outbox_id = number;
    if (number) {
      delivery.headers.emplace_back(key, std::to_string(*number));
    } else if (entry.value.kind == AMQP_FIELD_KIND_UTF8 || entry.value.kind == AMQP_FIELD_KIND_BYTES) {
      delivery.headers.emplace_back(key, text(entry.value.value.bytes));
    }
  }
}

// Reads and handles one frame, waiting at most until `deadline`. False when none came.
// Deliveries go to state.ready, confirms to state.unconfirmed, closings to their channel.
Result<bool> pump_one(State& state, Clock::time_point deadline) {
  amqp_maybe_release_buffers(state.connection);
  timeval timeout = until(deadline);
  amqp_frame_t frame;
  int status = amqp_simple_wait_frame_noblock(state.connection, &frame, &timeout);
  if (status == AMQP_STATUS_TIMEOUT) return false;
  if (status != AMQP_STATUS_OK) return lose(state, amqp_error_string2(status));
  if (frame.frame_type != AMQP_FRAME_METHOD) return true;  // content of a message nobody waits for
  amqp_channel_t channel = frame.channel;
  switch (frame.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
      const auto& deliver = *static_cast<amqp_basic_deliver_t*>(frame.payload.method.decoded);
      Delivery delivery;
      delivery.channel = channel;
      delivery.delivery_tag = deliver.delivery_tag;
      amqp_message_t message;
      auto reply = amqp_read_message(state.connection, channel, &message, 0);
      if (reply.reply_type != AMQP_RESPONSE_NORMAL) return reply_error(state, reply, channel, "reading a delivery");
      delivery.body = text(message.body);
      read_properties(message.properties, delivery);
      amqp_destroy_message(&message);
      auto subscription = state.subscriptions.find(channel);
      if (subscription == state.subscriptions.end()) return true;  // cancelled meanwhile
      delivery.stream = subscription->second.stream;
      state.ready.push_back(std::move(delivery));
      return true;
    }
    case AMQP_BASIC_ACK_METHOD: {
      const auto& ack = *static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
      if (channel != kPublishChannel) return true;
      if (ack.multiple)
        state.unconfirmed.erase(state.unconfirmed.begin(), state.unconfirmed.upper_bound(ack.delivery_tag));
      else
        state.unconfirmed.erase(ack.delivery_tag);
      return true;
    }
    case AMQP_BASIC_NACK_METHOD: {
      const auto& nack = *static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
      if (channel != kPublishChannel) return true;
      if (!state.publish_failure)
        state.publish_failure = make_error(Errc::unavailable, "the broker did not store a message (nack of publish " +
                                                                  std::to_string(nack.delivery_tag) +
                                                                  (nack.multiple ? " and before)" : ")"));
      if (nack.multiple)
        state.unconfirmed.erase(state.unconfirmed.begin(), state.unconfirmed.upper_bound(nack.delivery_tag));
      else
        state.unconfirmed.erase(nack.delivery_tag);
      return true;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      const auto& returned = *static_cast<amqp_basic_return_t*>(frame.payload.method.decoded);
      auto why = std::to_string(returned.reply_code) + " " + text(returned.reply_text);
      auto routing_key = text(returned.routing_key);
      amqp_message_t message;
      auto reply = amqp_read_message(state.connection, channel, &message, 0);
      if (reply.reply_type != AMQP_RESPONSE_NORMAL) return reply_error(state, reply, channel, "reading a return");
      amqp_destroy_message(&message);
      if (!state.publish_failure)
        state.publish_failure =
            make_error(Errc::not_found, "no stream '" + routing_key + "' took the message (returned: " + why + ")");
      return true;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
      if (auto it = state.subscriptions.find(channel); it != state.subscriptions.end())
        it->second.ended = "the broker cancelled the consumer of stream '" + it->second.stream + "'";
      return true;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const auto& close = *static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
      auto error = make_error(code_for_reply(close.reply_code), "the broker closed channel " + std::to_string(channel) +
                                                                    ": " + std::to_string(close.reply_code) + " " +
                                                                    text(close.reply_text));
      close_channel_ok(state, channel);
      channel_closed(state, channel, error);
      return true;
    }
    case AMQP_CONNECTION_CLOSE_METHOD:
      return broker_closed_connection(state, *static_cast<amqp_connection_close_t*>(frame.payload.method.decoded));
    default: return true;
  }
}

}  // namespace

std::string StreamOffset::describe() const {
  if (const auto* name = std::get_if<std::string>(&value_)) return *name;
  return std::to_string(std::get<std::int64_t>(value_));
}

std::string Delivery::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return value;
  return {};
}

Result<ConnectOptions> ConnectOptions::from_url(std::string_view url) {
  std::string buffer(url);
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK)
    return make_error(Errc::invalid_argument, "not an AMQP URL (amqp://user:password@host:port/vhost)");
  if (info.ssl) return make_error(Errc::invalid_argument, "amqps:// is not supported (use a TLS tunnel)");
  ConnectOptions options;
  options.host = info.host;
  options.port = static_cast<std::uint16_t>(info.port);
  options.user = info.user;
  options.password = info.password;
  options.vhost = info.vhost;
  return options;
}

Connection::Connection(std::unique_ptr<State> state) : state_(std::move(state)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

Connection::~Connection() {
  if (!state_ || !state_->connection || !state_->lost.empty()) return;
  // A polite close, bounded: the broker then logs a client close, not a lost connection.
  timeval close_timeout = to_timeval(std::chrono::milliseconds(std::min<std::int64_t>(
      2000, std::chrono::duration_cast<std::chrono::milliseconds>(state_->options.rpc_timeout).count())));
  amqp_set_rpc_timeout(state_->connection, &close_timeout);
  amqp_connection_close(state_->connection, AMQP_REPLY_SUCCESS);
}

Result<Connection> Connection::open(const ConnectOptions& options) {
  auto state = std::make_unique<State>();
  state->options = options;
  state->connection = amqp_new_connection();
  if (!state->connection) return make_error(Errc::internal, "cannot allocate an AMQP connection");
  amqp_socket_t* socket = amqp_tcp_socket_new(state->connection);
  if (!socket) return make_error(Errc::internal, "cannot allocate an AMQP socket");
  auto where = endpoint(options);
  auto started = Clock::now();
  timeval connect_timeout = to_timeval(options.connect_timeout);
  int status = amqp_socket_open_noblock(socket, options.host.c_str(), options.port, &connect_timeout);
  if (status != AMQP_STATUS_OK)
    return make_error(status == AMQP_STATUS_TIMEOUT ? Errc::deadline_exceeded : Errc::unavailable,
                      "cannot connect to " + where + ": " + amqp_error_string2(status));
  // Frames go out at once: a publish is three frames written one after another and an ack
  // is a lone small one, and Nagle would hold the later ones for the broker's delayed ACK.
  int no_delay = 1;
  ::setsockopt(amqp_socket_get_sockfd(socket), IPPROTO_TCP, TCP_NODELAY, &no_delay, sizeof no_delay);
  timeval handshake_timeout = until(started + options.connect_timeout);
  timeval rpc_timeout = to_timeval(options.rpc_timeout);
  amqp_set_handshake_timeout(state->connection, &handshake_timeout);
  amqp_set_rpc_timeout(state->connection, &rpc_timeout);
  auto reply =
      amqp_login(state->connection, options.vhost.c_str(), 0, kFrameMax, static_cast<int>(options.heartbeat.count()),
                 AMQP_SASL_METHOD_PLAIN, options.user.c_str(), options.password.c_str());
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return Connection(std::move(state));
  if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    const auto& close = *static_cast<amqp_connection_close_t*>(reply.reply.decoded);
    amqp_connection_close_ok_t ok{};
    amqp_send_method(state->connection, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    // 403 ACCESS_REFUSED: user or password; 530 NOT_ALLOWED: the vhost or its permissions.
    return make_error(close.reply_code == 403 ? Errc::unauthorized : code_for_reply(close.reply_code),
                      "login to " + where + " as '" + options.user + "' refused: " + std::to_string(close.reply_code) +
                          " " + text(close.reply_text));
  }
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_TIMEOUT)
    return make_error(Errc::deadline_exceeded, "no AMQP handshake with " + where + " within " +
                                                   std::to_string(options.connect_timeout.count()) + " ms");
  return make_error(Errc::unavailable, "AMQP handshake with " + where + " failed: " +
                                           (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                                                ? std::string(amqp_error_string2(reply.library_error))
                                                : std::string("no reply")));
}

bool Connection::is_open() const { return state_ && state_->connection && state_->lost.empty(); }

const std::string& Connection::lost_reason() const {
  static const std::string moved = "moved from";
  return state_ ? state_->lost : moved;
}

Result<Unit> Connection::declare_stream(std::string_view name, const StreamOptions& options) {
  auto& state = *state_;
  if (!is_open()) return lost_error(state);
  std::string what = "declaring stream '" + std::string(name) + "'";
  if (!state.control_open) {
    if (auto opened = open_channel(state, kControlChannel); !opened) return opened.error();
    state.control_open = true;
  }
  std::vector<amqp_table_entry_t> arguments;
  auto add_text = [&](const char* key, const std::string& value) {
    amqp_table_entry_t entry{};
    entry.key = amqp_cstring_bytes(key);
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = bytes(value);
    arguments.push_back(entry);
  };
  auto add_integer = [&](const char* key, std::int64_t value) {
    amqp_table_entry_t entry{};
    entry.key = amqp_cstring_bytes(key);
    entry.value.kind = AMQP_FIELD_KIND_I64;
    entry.value.value.i64 = value;
    arguments.push_back(entry);
  };
  static const std::string stream_type = "stream";
  add_text("x-queue-type", stream_type);
  if (!options.max_age.empty()) add_text("x-max-age", options.max_age);
  if (options.max_segment_size_bytes) add_integer("x-stream-max-segment-size-bytes", *options.max_segment_size_bytes);
  if (options.max_length_bytes) add_integer("x-max-length-bytes", *options.max_length_bytes);
  amqp_table_t table{static_cast<int>(arguments.size()), arguments.data()};
  amqp_queue_declare(state.connection, kControlChannel, bytes(name), /*passive=*/0, /*durable=*/1, /*exclusive=*/0,
                     /*auto_delete=*/0, table);
  return checked(state, kControlChannel, what);
}

Result<Unit> Connection::delete_queue(std::string_view name) {
  auto& state = *state_;
  if (!is_open()) return lost_error(state);
  if (!state.control_open) {
    if (auto opened = open_channel(state, kControlChannel); !opened) return opened.error();
    state.control_open = true;
  }
  amqp_queue_delete(state.connection, kControlChannel, bytes(name), 0, 0);
  return checked(state, kControlChannel, "deleting queue '" + std::string(name) + "'");
}

Result<Unit> Connection::publish_confirmed(std::string_view stream, std::span<const OutgoingMessage> messages,
                                           Clock::time_point deadline) {
  auto& state = *state_;
  if (!is_open()) return lost_error(state);
  std::string what = "publishing to stream '" + std::string(stream) + "'";
  if (!state.publish_open) {
    if (auto opened = open_channel(state, kPublishChannel); !opened) return opened.error();
    amqp_confirm_select(state.connection, kPublishChannel);
    if (auto selected = checked(state, kPublishChannel, "selecting publisher confirms"); !selected)
      return selected.error();
    state.publish_open = true;
    state.next_publish_tag = 1;  // confirms count publishes per channel from 1
  }
  state.unconfirmed.clear();
  state.publish_failure.reset();
  std::size_t sent = 0;
  for (const auto& message : messages) {
    auto outbox_id = std::to_string(message.outbox_id);
    std::vector<amqp_table_entry_t> headers;
    amqp_table_entry_t id_header{};
    id_header.key = amqp_cstring_bytes("outbox-id");
    id_header.value.kind = AMQP_FIELD_KIND_I64;
    id_header.value.value.i64 = message.outbox_id;
    headers.push_back(id_header);
    for (const auto& [key, value] : message.headers) {
      amqp_table_entry_t entry{};
      entry.key = bytes(key);
      entry.value.kind = AMQP_FIELD_KIND_UTF8;
      entry.value.value.bytes = bytes(value);
      headers.push_back(entry);
    }
    amqp_basic_properties_t properties{};
    properties._flags = AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    properties.headers = amqp_table_t{static_cast<int>(headers.size()), headers.data()};
    properties.message_id = bytes(outbox_id);
    properties.delivery_mode = 2;  // persistent (what a stream does anyway)
    if (!message.type.empty()) {
      properties._flags |= AMQP_BASIC_TYPE_FLAG;
      properties.type = bytes(message.type);
    }
    int status = amqp_basic_publish(state.connection, kPublishChannel, amqp_empty_bytes, bytes(stream),
                                    /*mandatory=*/1, /*immediate=*/0, &properties, bytes(message.body));
    if (status != AMQP_STATUS_OK) return lose(state, what + ": " + amqp_error_string2(status));
    state.unconfirmed.insert(state.next_publish_tag++);
    // Take the confirms that already came, so neither side's buffers fill on a long batch.
    if (++sent % 64 == 0) {
      for (;;) {
        auto pumped = pump_one(state, Clock::now());
        if (!pumped) return pumped.error();
        if (!*pumped) break;
      }
      if (state.publish_failure) break;
    }
  }
  // A return comes before its message's ack: once all are acked, all returns are known.
  while (!state.unconfirmed.empty() && !state.publish_failure) {
    if (Clock::now() >= deadline)
      return make_error(Errc::deadline_exceeded, what + ": " + std::to_string(state.unconfirmed.size()) + " of " +
                                                     std::to_string(messages.size()) +
                                                     " messages not confirmed by the deadline");
    auto pumped = pump_one(state, deadline);
    if (!pumped) return pumped.error();
  }
  if (state.publish_failure) {
    auto error = *state.publish_failure;
    error.message = what + ": " + error.message;
    return error;
  }
  return Unit{};
}

Result<Subscription> Connection::consume(std::string_view stream, const StreamOffset& offset, std::uint16_t prefetch) {
  auto& state = *state_;
  if (!is_open()) return lost_error(state);
  std::string what = "consuming stream '" + std::string(stream) + "' from " + offset.describe();
  // The next channel number not in use, within the broker's channel_max (2047 by default).
  int channel_max = amqp_get_channel_max(state.connection);
  if (channel_max <= 0 || channel_max > 65535) channel_max = 65535;
  amqp_channel_t channel = 0;
  for (int tries = 0; tries < channel_max && channel == 0; ++tries) {
    if (state.next_channel < kFirstSubscriptionChannel || state.next_channel > channel_max)
      state.next_channel = kFirstSubscriptionChannel;
    amqp_channel_t candidate = state.next_channel++;
    if (!state.subscriptions.contains(candidate)) channel = candidate;
  }
  if (channel == 0) return make_error(Errc::too_many_requests, what + ": every channel is in use");
  if (auto opened = open_channel(state, channel); !opened) return opened.error();
  // A stream refuses a consumer without a prefetch: it bounds the unacked deliveries.
  amqp_basic_qos(state.connection, channel, 0, prefetch, 0);
  if (auto set = checked(state, channel, what + ": basic.qos"); !set) return set.error();
  amqp_table_entry_t argument{};
  argument.key = amqp_cstring_bytes("x-stream-offset");
  const auto& value = offset.value();
  if (const auto* number = std::get_if<std::int64_t>(&value)) {
    argument.value.kind = AMQP_FIELD_KIND_I64;
    argument.value.value.i64 = *number;
  } else {
    argument.value.kind = AMQP_FIELD_KIND_UTF8;
    argument.value.value.bytes = bytes(std::get<std::string>(value));
  }
  amqp_table_t arguments{1, &argument};
  auto* ok = amqp_basic_consume(state.connection, channel, bytes(stream), amqp_empty_bytes, /*no_local=*/0,
                                /*no_ack=*/0, /*exclusive=*/0, arguments);
  if (auto started = checked(state, channel, what); !started) return started.error();
  Subscription subscription{channel, std::string(stream), text(ok->consumer_tag)};
  state.subscriptions[channel] = SubscriptionState{subscription.stream, subscription.consumer_tag, {}};
  return subscription;
}

Result<Unit> Connection::cancel(const Subscription& subscription) {
  auto& state = *state_;
  if (!is_open()) return lost_error(state);
  auto it = state.subscriptions.find(subscription.channel);
  if (it == state.subscriptions.end())
    return make_error(Errc::not_found, "no subscription on channel " + std::to_string(subscription.channel));
  bool channel_open = it->second.ended.empty();
  state.subscriptions.erase(it);
  std::erase_if(state.ready, [&](const Delivery& d) { return d.channel == subscription.channel; });
  if (!channel_open) return Unit{};
  amqp_basic_cancel(state.connection, subscription.channel, bytes(subscription.consumer_tag));
  if (auto cancelled =
          checked(state, subscription.channel, "cancelling the consumer of stream '" + subscription.stream + "'");
      !cancelled)
    return cancelled.error();
  amqp_channel_close(state.connection, subscription.channel, AMQP_REPLY_SUCCESS);
  auto closed = checked(state, subscription.channel, "closing channel " + std::to_string(subscription.channel));
  // Deliveries that were in flight during the cancel were queued behind it.
  std::erase_if(state.ready, [&](const Delivery& d) { return d.channel == subscription.channel; });
  return closed;
}

Result<std::optional<Delivery>> Connection::receive(Clock::time_point deadline) {
  auto& state = *state_;
  for (;;) {
    if (!is_open()) return lost_error(state);
    for (auto it = state.subscriptions.begin(); it != state.subscriptions.end(); ++it) {
      if (it->second.ended.empty()) continue;
      auto error = make_error(Errc::unavailable,
                              "subscription to stream '" + it->second.stream + "' ended: " + it->second.ended);
      auto channel = it->first;
      state.subscriptions.erase(it);
      std::erase_if(state.ready, [&](const Delivery& d) { return d.channel == channel; });
      return error;
    }
    if (!state.ready.empty()) {
      auto delivery = std::move(state.ready.front());
      state.ready.pop_front();
      return std::optional<Delivery>(std::move(delivery));
    }
    auto pumped = pump_one(state, deadline);
    if (!pumped) return pumped.error();
    if (!*pumped) return std::optional<Delivery>();
  }
}

Result<Unit> Connection::ack(std::uint16_t channel, std::uint64_t delivery_tag, bool multiple) {
  auto& state = *state_;
  if (!is_open()) return lost_error(state);
  auto it = state.subscriptions.find(channel);
  if (it == state.subscriptions.end() || !it->second.ended.empty())
    return make_error(Errc::not_found, "no running subscription on channel " + std::to_string(channel));
  int status = amqp_basic_ack(state.connection, channel, delivery_tag, multiple ? 1 : 0);
  if (status != AMQP_STATUS_OK) return lose(state, "acking: " + std::string(amqp_error_string2(status)));
  return Unit{};
}

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint64_t seed)
    : initial_(initial), max_(std::max(initial, max)), random_state_(seed ? seed : std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  auto step = initial_.count() << std::min(attempts_, 30);
  if (step <= 0 || step > max_.count()) step = max_.count();
  ++attempts_;
  // splitmix64: a generator of its own, so the helper needs no shared state.
  std::uint64_t z = (random_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  double fraction = 0.5 + 0.5 * static_cast<double>(z >> 11) / static_cast<double>(1ULL << 53);
  return std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(step * fraction)));
}

}  // namespace townhall::transport::amqp
