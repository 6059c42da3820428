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
void Bus::Impl::open_consumer(Consumer& consumer) {
  if (stopping || consumer.up) return;
  if (!consumer.module_serving()) {
    // A module that is down does not consume: its events wait in the sources' outboxes.
    consumer.open_attempted = true;
    return;
  }
  try {
    consumer.sync = consumer.database->open(db::Role::sync);
    consumer.service = consumer.database->open(db::Role::service);
    auto cursor =
        consumer.sync->cached("SELECT position, stream_offset FROM bus_cursors WHERE subscription = ? AND source = ?");
    for (auto& subscription : consumer.subscriptions) {
      for (auto& feed : subscription->feeds) {
        cursor->reset();
        cursor->clearBindings();
        cursor->bind(1, subscription->spec.name);
        cursor->bind(2, feed->source->module);
        std::int64_t position = 0;
        std::optional<std::int64_t> stream_offset;
        if (cursor->executeStep()) {
          position = cursor->getColumn(0).getInt64();
          if (!cursor->getColumn(1).isNull()) stream_offset = cursor->getColumn(1).getInt64();
        }
        cursor->reset();
        position = rewind_if_source_restored(consumer, *subscription, *feed, position);
        // A stream's reader starts receiving here (the local log ignores it).
        std::weak_ptr<Impl> weak = shared_from_this();
        reader_on(feed->reader, *feed->source).attach(position, stream_offset, [weak, f = feed.get()] {
          if (auto self = weak.lock()) self->schedule_pump(f);
        });
        load_recorded(consumer, *subscription, *feed, position);
        feed->persisted = position;
        feed->watermark = position;
        for (auto& lane : feed->lanes) {
          lane.position = position;
          lane.attempts = 0;
          lane.failing = 0;
          lane.waiting = false;
        }
      }
      auto pending = consumer.sync->cached(
          "SELECT count(*) FROM dead_letters WHERE subscription = ? AND replayed_at IS NULL AND discarded_at IS NULL");
      pending->bind(1, subscription->spec.name);
      pending->executeStep();
      subscription->dead_letters->set(static_cast<double>(pending->getColumn(0).getInt64()));
    }
    consumer.up = true;
    consumer.open_attempted = true;
    spdlog::info("bus: consumer {} up", consumer.module);
  } catch (const std::exception& error) {
    consumer.sync.reset();
    consumer.service.reset();
    consumer.open_attempted = true;
    spdlog::warn("bus: consumer {} unavailable: {}", consumer.module, error.what());
    return;
  }
  for (auto& subscription : consumer.subscriptions)
    for (auto& feed : subscription->feeds) schedule_pump(feed.get());
}

std::int64_t Bus::Impl::rewind_if_source_restored(Consumer& consumer, const SubscriptionState& subscription, Feed& feed,
                                                  std::int64_t cursor) {
  // A stream never goes back: a restored remote source's publisher moves its ids past it.
  if (!feed.source->log->random_access()) return cursor;
  std::int64_t head = 0;
  try {
    head = source_head(feed);
  } catch (const SourceUnavailable&) {
    return cursor;  // checked again when the consumer next opens
  }
  const auto& source = feed.source->module;
  auto& sync = *consumer.sync;
  // What the feed applied reaches past its cursor row: the row follows its batches (and a
  // lane that backs off holds it back), while each batch's range is recorded with it. A
  // versioned feed records no ranges (design note 70): only its row tells, exact after a
  // stop and written first when a running restore is found (rewind_restored_sources).
  auto recorded = sync.prepare(
      "SELECT max(coalesce((SELECT max(last_id) FROM processed_ranges WHERE subscription = ?1 AND source = ?2), 0), "
      "coalesce((SELECT max(CAST(substr(event_id, length(?2) + 2) AS INTEGER)) FROM processed_events "
      "WHERE subscription = ?1 AND event_id > ?2 || ':' AND event_id < ?2 || ';'), 0))");
  recorded.bind(1, subscription.spec.name);
  recorded.bind(2, source);
  const std::int64_t applied = recorded.executeStep() ? std::max(cursor, recorded.getColumn(0).getInt64()) : cursor;
  if (head >= applied) return cursor;
  const std::int64_t position = std::min(cursor, head);
  spdlog::error(
      "bus: SOURCE RESTORED? {}'s outbox ends at event {} but subscription {}.{} had applied up to {}: "
      "rewinding it to {} so the source's new events are not skipped; a consistency check repairs the cache",
      source, head, consumer.module, subscription.spec.name, applied, position);
  SQLite::Transaction transaction(sync.sql(), SQLite::TransactionBehavior::IMMEDIATE);
  auto move = sync.prepare("UPDATE bus_cursors SET position = ?, updated_at = ? WHERE subscription = ? AND source = ?");
  move.bind(1, position);
  move.bind(2, utc::now());
  move.bind(3, subscription.spec.name);
  move.bind(4, source);
  move.exec();
  auto drop = sync.prepare("DELETE FROM processed_ranges WHERE subscription = ? AND source = ? AND first_id > ?");
  drop.bind(1, subscription.spec.name);
  drop.bind(2, source);
  drop.bind(3, head);
  drop.exec();
  // Ranges that began at one id and ended past the head become one range, and the key
  // keeps one record of it: which does not matter, as the events of the restored file up
  // to the head are the ones those ranges recorded, and nothing past the head is.
  auto trim = sync.prepare(
      "UPDATE OR REPLACE processed_ranges SET last_id = ?1 WHERE subscription = ?2 AND source = ?3 AND last_id > ?1");
  trim.bind(1, head);
  trim.bind(2, subscription.spec.name);
  trim.bind(3, source);
  trim.exec();
  auto forget = sync.prepare(
      "DELETE FROM processed_events WHERE subscription = ?1 AND event_id > ?2 AND event_id < ?3 "
      "AND CAST(substr(event_id, length(?2) + 1) AS INTEGER) > ?4");
  forget.bind(1, subscription.spec.name);
  forget.bind(2, source + ":");
  forget.bind(3, source + ";");
  forget.bind(4, head);
  forget.exec();
  transaction.commit();
  source_rewinds().with({consumer.module, subscription.spec.name, source}).inc();
  if (options.source_rewound) options.source_rewound(consumer.module, source);
  return position;
}

void Bus::Impl::load_recorded(Consumer& consumer, const SubscriptionState& subscription, Feed& feed,
                              std::int64_t cursor) {
  feed.recorded_ranges.clear();
  feed.recorded_ids.clear();
  feed.recorded_max = 0;
  auto ranges = consumer.sync->cached(
      "SELECT first_id, last_id, held FROM processed_ranges WHERE subscription = ? AND source = ? AND last_id > ?");
  ranges->bind(1, subscription.spec.name);
  ranges->bind(2, feed.source->module);
  ranges->bind(3, cursor);
  while (ranges->executeStep()) {
    Feed::Range range{ranges->getColumn(0).getInt64(), ranges->getColumn(1).getInt64(), {}};
    std::string held = ranges->getColumn(2).getString();
    for (std::size_t pos = 0; pos < held.size();) {
      auto comma = held.find(',', pos);
      range.held.push_back(std::stoll(held.substr(pos, comma - pos)));
      pos = comma == std::string::npos ? held.size() : comma + 1;
    }
    std::sort(range.held.begin(), range.held.end());
    feed.recorded_max = std::max(feed.recorded_max, range.last);
    feed.recorded_ranges.push_back(std::move(range));
  }
  // Replayed dead letters (and files from before processed_ranges) are single events.
  auto events = consumer.sync->cached(
      "SELECT event_id FROM processed_events WHERE subscription = ? AND event_id > ? AND event_id < ?");
  events->bind(1, subscription.spec.name);
  events->bind(2, feed.source->module + ":");
  events->bind(3, feed.source->module + ";");  // ';' follows ':': every "<source>:<id>"
  while (events->executeStep()) {
    std::string event_id = events->getColumn(0).getString();
    std::int64_t id = std::stoll(event_id.substr(feed.source->module.size() + 1));
    if (id <= cursor) continue;
    feed.recorded_ids.push_back(id);
    feed.recorded_max = std::max(feed.recorded_max, id);
  }
  std::sort(feed.recorded_ids.begin(), feed.recorded_ids.end());
}

void Bus::Impl::consumer_failed(Consumer& consumer, const std::exception& error) {
  spdlog::error("bus: consumer {} failed and is down until its file works again: {}", consumer.module, error.what());
  // The module reports itself down too, and app/'s retry probes the file.
  if (const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&error); sqlite && db::is_storage_failure(*sqlite))
    consumer.database->note_failure(db::ModuleDb::Access::write, error.what());
  close_consumer(consumer);
}

void Bus::Impl::close_consumer(Consumer& consumer) {
  consumer.up = false;
  for (auto& subscription : consumer.subscriptions)
    for (auto& feed : subscription->feeds) feed->reader.reset();
  consumer.sync.reset();
  consumer.service.reset();
}

void Bus::Impl::write_cursor(db::Connection& connection, Feed& feed, std::int64_t position) {
  // A stream's reader says where to attach again for this position; written with it, so a
  // restart resumes at the first event the cursor has not passed (no loss, and what comes
  // twice is dropped by id).
  auto upsert = connection.cached(
      "INSERT INTO bus_cursors (subscription, source, position, updated_at, stream_offset) VALUES (?, ?, ?, ?, ?) "
      "ON CONFLICT (subscription, source) DO UPDATE SET "
      "stream_offset = CASE WHEN excluded.position >= position THEN excluded.stream_offset ELSE stream_offset END, "
      "position = max(position, excluded.position), updated_at = excluded.updated_at");
  upsert->bind(1, feed.subscription->spec.name);
  upsert->bind(2, feed.source->module);
  upsert->bind(3, position);
  upsert->bind(4, utc::now());
  auto offset = feed.reader ? feed.reader->resume_offset(position) : std::nullopt;
  if (offset)
    upsert->bind(5, *offset);
  else
    upsert->bind(5);
  upsert->exec();
}

void Bus::Impl::record_range(db::Connection& connection, const SubscriptionState& subscription,
                             const std::string& source, std::int64_t first, std::int64_t last,
                             const std::string& held) {
  // The same range recorded again (a retried batch that read no further, a dead letter
  // of a batch of one) replaces the earlier record: an id done then is skipped now, not
  // held, and an id held now was never applied, so the newer record knows no less.
  auto record = connection.cached(
      "INSERT INTO processed_ranges (subscription, source, first_id, last_id, held, processed_at) "
      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subscription, source, last_id, first_id) DO UPDATE SET "
      "held = excluded.held, processed_at = excluded.processed_at");
  record->bind(1, subscription.spec.name);
  record->bind(2, source);
  record->bind(3, first);
  record->bind(4, last);
  record->bind(5, held);
  record->bind(6, utc::now());
  record->exec();
}

void Bus::Impl::insert_dead_letter(db::Connection& connection, SubscriptionState& subscription,
                                   const std::string& event_id, const std::string& envelope, const std::string& error,
                                   int attempts, const std::string& first_failed_at) {
  auto insert = connection.cached(
      "INSERT INTO dead_letters (subscription, event_id, event, error, attempts, first_failed_at, last_failed_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, subscription.spec.name);
  insert->bind(2, event_id);
  insert->bind(3, envelope);
  insert->bind(4, error);
  insert->bind(5, attempts);
  insert->bind(6, first_failed_at);
  insert->bind(7, utc::now());
  insert->exec();
}

void Bus::Impl::prune_consumer(Consumer& consumer) {
  if (stopping || !consumer.up) return;
  try {
    auto cutoff = utc::format(SystemClock::now() - options.retention);
    auto prune = consumer.sync->cached("DELETE FROM processed_events WHERE processed_at < ?");
    prune->bind(1, cutoff);
    prune->exec();
    // A range wholly at or below its feed's cursor can never be consulted again; one
    // above it is what keeps a lagging cursor from applying twice, however old it is.
    exec_cached(*consumer.sync,
                "DELETE FROM processed_ranges WHERE last_id <= (SELECT position FROM bus_cursors c WHERE "
                "c.subscription = processed_ranges.subscription AND c.source = processed_ranges.source)");
  } catch (const std::exception& error) {
    spdlog::warn("bus: cannot prune processed events of {}: {}", consumer.module, error.what());
  }
}

namespace {
// A dead letter's state as SQL, for the checks that it is still pending.
constexpr std::string_view kLetterState =
    "CASE WHEN replayed_at IS NOT NULL THEN 'replayed' WHEN discarded_at IS NOT NULL THEN 'discarded' "
    "ELSE 'pending' END";
}  // namespace

std::string_view DeadLetter::state() const {
  if (!replayed_at.empty()) return "replayed";
  if (!discarded_at.empty()) return "discarded";
  return "pending";
}

std::vector<DeadLetter> read_dead_letters(const db::ModuleDb& database) {
  std::vector<DeadLetter> out;
  auto reader = database.open(db::Role::reader);
  auto query = reader->prepare(
      "SELECT id, subscription, event_id, event, error, attempts, first_failed_at, last_failed_at, "
      "coalesce(replayed_at, ''), coalesce(discarded_at, '') FROM dead_letters ORDER BY id");
  while (query.executeStep()) {
    DeadLetter letter;
    letter.id = query.getColumn(0).getInt64();
    letter.module = database.module();
    letter.subscription = query.getColumn(1).getString();
    letter.event_id = query.getColumn(2).getString();
    letter.event = query.getColumn(3).getString();
    letter.error = query.getColumn(4).getString();
    letter.attempts = query.getColumn(5).getInt();
    letter.first_failed_at = query.getColumn(6).getString();
    letter.last_failed_at = query.getColumn(7).getString();
    letter.replayed_at = query.getColumn(8).getString();
    letter.discarded_at = query.getColumn(9).getString();
    out.push_back(std::move(letter));
  }
  return out;
}

std::vector<DeadLetter> Bus::dead_letters(const std::optional<std::string>& module) {
  std::vector<DeadLetter> out;
  for (auto& consumer : impl_->consumers) {
    if (module && consumer->module != *module) continue;
    try {
      auto letters = read_dead_letters(*consumer->database);
      out.insert(out.end(), letters.begin(), letters.end());
    } catch (const std::exception& error) {
      spdlog::warn("bus: cannot read dead letters of {}: {}", consumer->module, error.what());
    }
  }
  return out;
}

Result<Unit> Bus::replay(const std::string& module, std::int64_t dead_letter_id) {
  auto& impl = *impl_;
  return impl.operator_action(module, [&](Impl::Consumer* consumer) -> Result<Unit> {
    auto lookup = consumer->sync->cached("SELECT subscription, event, " + std::string(kLetterState) +
                                         " FROM dead_letters WHERE id = ?");
    lookup->bind(1, dead_letter_id);
    if (!lookup->executeStep()) return make_error(Errc::not_found, "no dead letter " + std::to_string(dead_letter_id));
    std::string name = lookup->getColumn(0).getString();
    std::string envelope = lookup->getColumn(1).getString();
    std::string state = lookup->getColumn(2).getString();
    lookup->reset();
    if (state != "pending")
      return make_error(Errc::conflict, "dead letter " + std::to_string(dead_letter_id) + " was " + state);
    Impl::SubscriptionState* subscription = nullptr;
    for (auto& s : consumer->subscriptions)
      if (s->spec.name == name) subscription = s.get();
    if (!subscription) return make_error(Errc::not_found, "no subscription '" + name + "' in " + consumer->module);
    auto event = parse_event(envelope);
    if (!event) return event.error();
    db::Connection& connection = impl.connection_for(*subscription);
    try {
      SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
      auto mark = connection.cached(
          "INSERT INTO processed_events (subscription, event_id, processed_at) VALUES (?, ?, ?) "
          "ON CONFLICT DO NOTHING");
      mark->bind(1, name);
      mark->bind(2, event->event_id);
      mark->bind(3, utc::now());
      const bool may_append = subscription->spec.role == db::Role::service;
      const auto appended_before = connection.events_appended();
      if (mark->exec() > 0) subscription->spec.handler(*event, connection);
      auto done = connection.cached("UPDATE dead_letters SET replayed_at = ? WHERE id = ?");
      done->bind(1, utc::now());
      done->bind(2, dead_letter_id);
      done->exec();
      bool appended = may_append && connection.events_appended() > appended_before;
      transaction.commit();
      if (appended) impl.outbox_grew(consumer->module);
    } catch (const std::exception& error) {
      // The file failing is not the letter's fault: operator_action answers 503.
      if (const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&error);
          sqlite && db::is_storage_failure(*sqlite))
        throw;
      subscription->failures->inc();
      return make_error(Errc::unprocessable,
                        "replay of dead letter " + std::to_string(dead_letter_id) + " failed: " + error.what());
    }
    subscription->dead_letters->add(-1);
    spdlog::info("bus: replayed dead letter {} ({}) into {}", dead_letter_id, event->event_id, name);
    return Unit{};
  });
}

Result<Unit> Bus::discard(const std::string& module, std::int64_t dead_letter_id) {
  auto& impl = *impl_;
  return impl.operator_action(module, [&](Impl::Consumer* consumer) -> Result<Unit> {
    auto& sync = *consumer->sync;
    SQLite::Transaction transaction(sync.sql(), SQLite::TransactionBehavior::IMMEDIATE);
    auto lookup = sync.cached("SELECT subscription, " + std::string(kLetterState) + " FROM dead_letters WHERE id = ?");
    lookup->bind(1, dead_letter_id);
    if (!lookup->executeStep()) return make_error(Errc::not_found, "no dead letter " + std::to_string(dead_letter_id));
    std::string name = lookup->getColumn(0).getString();
    std::string state = lookup->getColumn(1).getString();
    lookup->reset();
    if (state != "pending")
      return make_error(Errc::conflict, "dead letter " + std::to_string(dead_letter_id) + " was " + state);
    auto mark = sync.cached("UPDATE dead_letters SET discarded_at = ? WHERE id = ?");
    mark->bind(1, utc::now());
    mark->bind(2, dead_letter_id);
    mark->exec();
    transaction.commit();
    for (auto& subscription : consumer->subscriptions)
      if (subscription->spec.name == name) subscription->dead_letters->add(-1);
    spdlog::warn("bus: dead letter {} of {}.{} discarded by an operator: its event will not be applied", dead_letter_id,
                 consumer->module, name);
    return Unit{};
  });
}

Result<Unit> Bus::Impl::operator_action(const std::string& module,
                                        const std::function<Result<Unit>(Consumer*)>& action) {
  auto* consumer = find_consumer(module);
  if (!consumer) return make_error(Errc::not_found, "no consumer module '" + module + "'");
  return on_writer(*consumer->writer, [&]() -> Result<Unit> {
    if (!consumer->up) return make_error(Errc::unavailable, "module '" + consumer->module + "' is down");
    try {
      return action(consumer);
    } catch (const SQLite::Exception& error) {
      if (!db::is_storage_failure(error)) throw;
      // As when a batch fails: the consumer goes down until its file works again (app/'s
      // retry probes it), and the operator is told to try again, not that the letter failed.
      consumer_failed(*consumer, error);
      return make_error(Errc::unavailable,
                        "module '" + consumer->module + "' cannot use its file right now; try again later");
    }
  });
}

std::vector<std::string> Bus::rewind_restored_sources(const std::string& module) {
  auto* consumer = impl_->find_consumer(module);
  if (!consumer) return {};
  auto& impl = *impl_;
  auto found = impl.on_writer(*consumer->writer, [&impl, consumer]() -> std::vector<std::string> {
    std::vector<std::string> restored;
    if (!consumer->up) return restored;  // its open checks the sources anyway
    for (auto& subscription : consumer->subscriptions)
      for (auto& feed : subscription->feeds) {
        if (!feed->source->log->random_access()) continue;  // see rewind_if_source_restored
        std::int64_t head = 0;
        try {
          head = impl.source_head(*feed);
        } catch (const std::exception&) {
          continue;  // the source cannot answer now; the next check or open asks again
        }
        if (head >= feed->watermark.load()) continue;
        restored.push_back(consumer->module + "." + subscription->spec.name + "<-" + feed->source->module);
        // The row first, at what the feed applied: the open below judges by the row and
        // the ranges, and a versioned feed's row trails with no ranges above it (design
        // note 70), so without it the open would neither rewind nor have the cache repaired.
        try {
          impl.persist(*feed);
        } catch (const std::exception& error) {
          spdlog::warn("bus: cannot write the cursor of {}: {}", subscription->spec.name, error.what());
        }
        // The rows read before the restore (the shared window, read-ahead batches) are
        // the old file's: under the ids the source now reuses they would be applied
        // instead of its new events.
        auto& source = *feed->source;
        {
          std::lock_guard lock(source.window_mutex);
          source.window.clear();
          source.window_from = source.window_to = 0;
          source.window_open = false;
        }
        for (auto* reader : source.feeds) {
          std::lock_guard lock(reader->ahead_mutex);
          reader->ahead.clear();
          reader->ahead_after = -1;
        }
      }
    if (!restored.empty()) {
      std::string feeds;
      for (const auto& name : restored) feeds += (feeds.empty() ? "" : ", ") + name;
      spdlog::error("bus: SOURCE RESTORED? found by the consistency check: {}; reopening consumer {} to rewind", feeds,
                    consumer->module);
      // Reopened here, on its writer, so the rewind is done when this returns (what the
      // source writes next is applied); should the open fail, the sweep retries it.
      impl.close_consumer(*consumer);
      impl.open_consumer(*consumer);
    }
    return restored;
  });
  return found;
}

}  // namespace townhall::bus
