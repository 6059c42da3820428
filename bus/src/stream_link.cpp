// The broker link of a split deployment: see stream_link.hpp.
#include "stream_link.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "stream_state.hpp"

namespace townhall::bus::detail {

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
