#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "impl.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::bus {
namespace detail {

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

Event fields_of(const std::string& source, const Row& row) {
  Event event;
  event.event_id = source + ":" + std::to_string(row.id);
  event.position = row.id;
  event.topic = row.topic;
  event.event_type = row.event_type;
  event.source = source;
  event.aggregate_type = row.aggregate_type;
  event.aggregate_id = row.aggregate_id;
  event.event_version = row.version;
  event.occurred_at = row.occurred_at;
  event.correlation_id = row.correlation_id;
  event.causation_id = row.causation_id;
  event.schema = row.schema;
  event.data = nlohmann::json::parse(row.data, nullptr, false);
  if (event.data.is_discarded()) event.data = row.data;
  return event;
}

Result<Event> to_event(const std::string& source, const Row& row) {
  Event event = fields_of(source, row);
  if (!event.data.is_object()) return make_error(Errc::invalid_argument, "invalid event: data is not a JSON object");
  if (row.version < 1) return make_error(Errc::invalid_argument, "invalid event: event_version must be positive");
  if (row.schema != 1) return make_error(Errc::invalid_argument, "invalid event: unsupported schema");
  return event;
}

std::string envelope_of(const std::string& source, const Row& row) {
  return to_json(fields_of(source, row)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace detail

db::TableManifest with_bus_tables(std::vector<std::string> owned, std::vector<std::string> cache) {
  using db::TableKind;
  db::TableManifest manifest;
  manifest.owned = std::move(owned);
  manifest.cache = std::move(cache);
  for (auto [name, kind] :
       {std::pair{"outbox", TableKind::outbox}, std::pair{"bus_cursors", TableKind::cursors},
        std::pair{"processed_events", TableKind::bookkeeping}, std::pair{"processed_ranges", TableKind::bookkeeping},
        std::pair{"dead_letters", TableKind::bookkeeping}, std::pair{"storage_probe", TableKind::bookkeeping},
        std::pair{"bus_publications", TableKind::outbox}})
    manifest.infrastructure.emplace_back(name, kind);
  return manifest;
}

void touch_storage_probe(db::Connection& service) {
  service
      .cached(
          "INSERT INTO storage_probe (id, probed_at) VALUES (1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "
          "ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at")
      ->exec();
}

std::string append(db::Connection& service, const NewEvent& event) {
  const std::string& module = service.module();
  std::string prefix = "gov." + std::string(module) + ".";
  if (!event.topic.starts_with(prefix) || event.topic.size() == prefix.size())
    throw std::invalid_argument("module '" + std::string(module) + "' cannot publish on topic '" + event.topic + "'");
  if (event.event_version < 1) throw std::invalid_argument("event_version must be positive");
  if (!event.data.is_object()) throw std::invalid_argument("event data must be a JSON object");
  auto insert = service.cached(
      "INSERT INTO outbox (topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, "
      "correlation_id, causation_id, schema, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)");
  insert->bind(1, event.topic);
  insert->bind(2, event.event_type);
  insert->bind(3, event.aggregate_type);
  insert->bind(4, event.aggregate_id);
  insert->bind(5, static_cast<std::int64_t>(event.event_version));
  insert->bind(6, utc::now());
  insert->bind(7, event.correlation_id);
  insert->bind(8, event.causation_id);
  insert->bind(9, event.data.dump());
  insert->exec();
  service.note_event_appended();  // the commit wakes the bus (db::run_in_transaction)
  return std::string(module) + ":" + std::to_string(service.sql().getLastInsertRowid());
}

std::int64_t Bus::Impl::applied_up_to(Feed& feed) {
  auto& consumer = *feed.subscription->consumer;
  // What the cursor row holds, not what the lanes passed: a restart reads on from the
  // row, and pruning past it would look like a gap to bootstrap over.
  if (consumer.up) return std::min(feed.watermark.load(), feed.persisted.load());
  try {
    auto reader = consumer.database->open(db::Role::reader);
    auto query = reader->prepare("SELECT position FROM bus_cursors WHERE subscription = ? AND source = ?");
    query.bind(1, feed.subscription->spec.name);
    query.bind(2, feed.source->module);
    return query.executeStep() ? query.getColumn(0).getInt64() : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

void Bus::Impl::prune_source(Source& source) {
  // Published to its stream: what the broker has not confirmed stays, as for a feed behind.
  std::optional<std::int64_t> published;
  if (link) {
    published = link->published(source.module);
    if (!published) return;  // not known yet
  }
  if (stopping || (source.feeds.empty() && !published)) return;
  detail::PruneBounds bounds;
  bounds.applied = published.value_or(INT64_MAX);
  for (auto* feed : source.feeds) bounds.applied = std::min(bounds.applied, applied_up_to(*feed));
  bounds.retention_cutoff = utc::format(SystemClock::now() - options.retention);
  bounds.hold_cutoff = utc::format(SystemClock::now() - std::max(options.max_hold, options.retention));
  try {
    source.held_events = source.log->prune(bounds);
    source.head_may_have_changed();
    outbox_prunes().with({source.module}).inc();
  } catch (const std::exception& error) {
    spdlog::warn("bus: cannot prune the {} outbox: {}", source.module, error.what());
  }
}

void Bus::Impl::outbox_grew(const std::string& module) {
  if (auto* source = find_source(module)) {
    source->head_may_have_changed();
    for (auto* feed : source->feeds) schedule_pump(feed);
  }
  if (link) link->outbox_grew(module);
}

}  // namespace townhall::bus
