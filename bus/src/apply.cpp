#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "impl.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::bus {
std::int64_t Bus::Impl::lane_watermark(const Feed& feed, std::size_t lane, std::int64_t lane_position) {
  std::int64_t low = lane_position;
  for (std::size_t i = 0; i < feed.lanes.size(); ++i)
    if (i != lane) low = std::min(low, feed.lanes[i].position);
  return low;
}

bool Bus::Impl::pump_batch(Feed& feed) {
  auto& subscription = *feed.subscription;
  const std::string& source = feed.source->module;
  const std::size_t lane_count = feed.lanes.size();
  std::int64_t from = INT64_MAX;
  for (const auto& lane : feed.lanes)
    if (!lane.waiting) from = std::min(from, lane.position);
  if (from == INT64_MAX) return false;  // every lane is backing off

  auto rows = read_rows(feed, from);
  if (rows.empty()) return false;
  // Outbox ids are contiguous (max + 1, never reused, only pruning removes rows): a
  // first row past from + 1 means the source pruned what this feed had not read.
  if (rows.front()->row.id > from + 1 && source_oldest(feed) > from + 1) {
    start_over(feed, from);
    return true;
  }
  const std::int64_t scanned = rows.back()->row.id;
  if (takes_nothing_from(feed, rows)) {
    pass_without_commit(feed, rows);
    return rows.size() == options.batch;
  }

  std::vector<std::int64_t> positions(lane_count);
  std::vector<std::optional<Failure>> failures(lane_count);
  for (std::size_t l = 0; l < lane_count; ++l) positions[l] = feed.lanes[l].position;
  std::vector<std::pair<double, bool>> observed;  // latency, stale
  int duplicates = 0;
  int dead = 0;
  db::Connection& connection = connection_for(subscription);
  const bool may_append = subscription.spec.role == db::Role::service;
  bool appended = false;
  std::int64_t cursor = 0;
  bool cursor_in_batch = false;  // else the row follows (one page less a commit, design note 69)
  {
    SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
    const auto appended_before = connection.events_appended();
    std::string now = utc::now();
    std::string held;  // ids of this batch its lanes did not handle
    for (const auto& shared : rows) {
      const Row& row = shared->row;
      std::size_t l = shared->lane_hash % lane_count;
      if (row.id <= positions[l]) continue;
      if (feed.lanes[l].waiting || failures[l]) {
        hold(held, row.id);
        continue;
      }
      if (feed.recorded(row.id)) {
        ++duplicates;
        positions[l] = row.id;
        spdlog::debug("bus: {} skipped duplicate {}:{}", subscription.spec.name, source, row.id);
        continue;
      }
      if (!wanted(subscription, row)) {
        positions[l] = row.id;
        continue;
      }
      const auto& event = shared->event(source);
      if (!event) {
        // Never valid, so never retried: straight to dead letters.
        insert_dead_letter(connection, subscription, source + ":" + std::to_string(row.id), envelope_of(source, row),
                           event.error().message, 1, now);
        ++dead;
        positions[l] = row.id;
        continue;
      }
      fault("before_apply");
      exec_cached(connection, "SAVEPOINT bus_event");
      try {
        Outcome outcome = subscription.spec.handler(event.value(), connection);
        exec_cached(connection, "RELEASE bus_event");
        double latency = 0;
        if (auto occurred = utc::parse(event->occurred_at))
          latency = std::chrono::duration<double>(SystemClock::now() - *occurred).count();
        observed.emplace_back(latency, outcome == Outcome::stale);
        positions[l] = row.id;
      } catch (const PermanentError& error) {
        exec_cached(connection, "ROLLBACK TO bus_event");
        exec_cached(connection, "RELEASE bus_event");
        failures[l] = Failure{shared, error.what(), true};
      } catch (const nlohmann::json::exception& error) {  // the payload lacks a field or has the wrong type
        exec_cached(connection, "ROLLBACK TO bus_event");
        exec_cached(connection, "RELEASE bus_event");
        std::string_view what = error.what();  // "[json.exception.out_of_range.403] key 'x' not found"
        if (auto bracket = what.find("] "); what.starts_with("[json.exception.") && bracket != what.npos)
          what.remove_prefix(bracket + 2);
        failures[l] = Failure{shared, "malformed payload: " + std::string(what), true};
      } catch (const std::exception& error) {
        exec_cached(connection, "ROLLBACK TO bus_event");
        exec_cached(connection, "RELEASE bus_event");
        failures[l] = Failure{shared, error.what()};
      } catch (...) {  // a handler must not take the consumer's thread down
        exec_cached(connection, "ROLLBACK TO bus_event");
        exec_cached(connection, "RELEASE bus_event");
        failures[l] = Failure{shared, "handler threw a non-standard exception"};
      }
      if (failures[l]) hold(held, row.id);
    }
    // One record for the batch (not one per event), in the same transaction: it keeps
    // a lost or lagging cursor from applying anything twice. A versioned subscription's
    // handler skips a second delivery by itself, so only what it must not see again (a
    // dead letter) or has not seen yet (held ids) needs the record (design note 70).
    if (!subscription.spec.versioned || dead > 0 || !held.empty())
      record_range(connection, subscription, source, rows.front()->row.id, scanned, held);
    // Lanes that went through the whole batch have seen everything up to its end.
    for (std::size_t l = 0; l < lane_count; ++l)
      if (!feed.lanes[l].waiting && !failures[l]) positions[l] = std::max(positions[l], scanned);
    fault("after_apply");
    cursor = *std::min_element(positions.begin(), positions.end());
    cursor_in_batch = writes_cursor_with_batch(feed, cursor);
    if (cursor_in_batch) write_cursor(connection, feed, cursor);
    appended = may_append && connection.events_appended() > appended_before;
    transaction.commit();
  }
  subscription.batches_committed->inc();
  fault("after_commit");
  // A saga step appended events: the next hop starts now (DESIGN §4.9).
  if (appended) outbox_grew(subscription.consumer->module);
  for (std::size_t l = 0; l < lane_count; ++l) {
    auto& lane = feed.lanes[l];
    lane.position = positions[l];
    // A lane's attempts end when it got past the event that failed, not when a batch
    // (read for another lane) simply did not reach that event.
    if (!failures[l] && !lane.waiting && positions[l] >= lane.failing) {
      lane.attempts = 0;
      lane.failing = 0;
    }
  }
  if (cursor_in_batch)
    cursor_written(feed, cursor);
  else
    follow_later(feed);
  for (auto [latency, stale] : observed) {
    if (stale) {
      subscription.stale->inc();
      spdlog::debug("bus: {} skipped a stale event", subscription.spec.name);
    } else {
      subscription.applied->inc();
      subscription.latency->observe(std::max(0.0, latency));
    }
  }
  subscription.duplicate->inc(static_cast<std::uint64_t>(duplicates));
  if (dead > 0) subscription.dead_letters->add(dead);
  bool failed = false;
  for (std::size_t l = 0; l < lane_count; ++l)
    if (failures[l]) {
      failed = true;
      handle_failure(feed, l, *failures[l]);
    }
  return rows.size() == options.batch || failed;
}

bool Bus::Impl::takes_nothing_from(const Feed& feed, const Rows& rows) {
  // Only the outbox: a stream's reader is told where to attach by the offset written with
  // the cursor, and holds rows for retries until the watermark passes them.
  if (!feed.source->log->random_access()) return false;
  for (const auto& lane : feed.lanes)
    if (lane.waiting) return false;
  for (const auto& shared : rows) {
    const Row& row = shared->row;
    if (row.id <= feed.lanes[shared->lane_hash % feed.lanes.size()].position) continue;
    if (wanted(*feed.subscription, row) && !feed.recorded(row.id)) return false;
  }
  return true;
}

void Bus::Impl::pass_without_commit(Feed& feed, const Rows& rows) {
  auto& subscription = *feed.subscription;
  const std::int64_t scanned = rows.back()->row.id;
  std::uint64_t duplicates = 0;
  for (const auto& shared : rows)
    if (shared->row.id > feed.lanes[shared->lane_hash % feed.lanes.size()].position && feed.recorded(shared->row.id))
      ++duplicates;
  for (auto& lane : feed.lanes) {
    lane.position = std::max(lane.position, scanned);
    if (lane.position >= lane.failing) {
      lane.attempts = 0;
      lane.failing = 0;
    }
  }
  subscription.duplicate->inc(duplicates);
  subscription.batches_passed->inc();
  fault("after_pass");  // the lanes moved in memory only
  // Nothing was applied, so a cursor row left behind costs a restart only a re-read of
  // events it takes nothing from; bounded, so that re-read stays short.
  if (scanned - feed.persisted.load() >= options.passed_cursor_events) return write_cursor_row(feed, scanned);
  follow_later(feed);
}

bool Bus::Impl::writes_cursor_with_batch(const Feed& feed, std::int64_t position) const {
  return !feed.source->log->random_access() || position - feed.persisted.load() >= options.passed_cursor_events;
}

void Bus::Impl::follow_later(Feed& feed) {
  auto& subscription = *feed.subscription;
  if (feed.persist_armed) return;
  feed.persist_armed = true;
  if (!feed.persist_timer)
    feed.persist_timer = std::make_unique<boost::asio::steady_timer>(subscription.consumer->writer->context());
  feed.persist_timer->expires_after(options.passed_cursor_delay);
  feed.persist_timer->async_wait([self = shared_from_this(), feed = &feed](const boost::system::error_code& ec) {
    feed->persist_armed = false;
    if (ec || self->stopping) return;
    try {
      self->persist(*feed);
    } catch (const std::exception& error) {  // the next batch or the stop writes it
      spdlog::warn("bus: cannot write the cursor of {}: {}", feed->subscription->spec.name, error.what());
    }
  });
}

void Bus::Impl::cursor_written(Feed& feed, std::int64_t position) {
  if (position > feed.persisted.load()) feed.persisted = position;
  if (feed.recorded_max != 0 && feed.persisted.load() >= feed.recorded_max) {
    feed.recorded_ranges.clear();
    feed.recorded_ids.clear();
    feed.recorded_max = 0;
  }
}

void Bus::Impl::start_over(Feed& feed, std::int64_t from) {
  auto& subscription = *feed.subscription;
  const std::string& source = feed.source->module;
  std::int64_t oldest = source_oldest(feed);
  std::int64_t position = oldest - 1;
  db::Connection& connection = connection_for(subscription);
  if (subscription.spec.bootstrap) {
    position = source_head(feed);  // before the snapshot: what changes after it, events carry
    spdlog::warn(
        "bus: {}/{} is behind what {} still holds (cursor {}, oldest event {}); bootstrapping from a "
        "snapshot, then joining at event {}",
        subscription.consumer->module, subscription.spec.name, source, from, oldest, position);
    SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
    subscription.spec.bootstrap(connection);
    write_cursor(connection, feed, position);
    transaction.commit();
    subscription.bootstraps->inc();
    ++feed.bootstraps;
  } else {
    spdlog::error(
        "bus: {}/{} lost events {}..{} of {}: pruned before it read them and it has no bootstrap; going "
        "on from event {}",
        subscription.consumer->module, subscription.spec.name, from + 1, oldest - 1, source, oldest);
    SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
    write_cursor(connection, feed, position);
    transaction.commit();
    subscription.gaps->inc();
  }
  for (auto& lane : feed.lanes) {
    lane.position = position;
    lane.attempts = 0;
    lane.failing = 0;
  }
  feed.persisted = position;
  feed.watermark = position;
}

void Bus::Impl::handle_failure(Feed& feed, std::size_t lane_index, const Failure& failure) {
  Lane& lane = feed.lanes[lane_index];
  auto& subscription = *feed.subscription;
  subscription.failures->inc();
  if (lane.failing != failure.shared->row.id) {  // a new failing event: count afresh
    lane.failing = failure.shared->row.id;
    lane.attempts = 0;
  }
  if (lane.attempts == 0) lane.first_failed_at = utc::now();
  ++lane.attempts;
  std::string event_id = feed.source->module + ":" + std::to_string(failure.shared->row.id);
  if (lane.attempts >= options.max_attempts || failure.permanent) {
    spdlog::error("bus: {} gave up on {} after {} attempt(s){}: {}", subscription.spec.name, event_id, lane.attempts,
                  failure.permanent ? " (a permanent error)" : "", failure.error);
    db::Connection& connection = connection_for(subscription);
    SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
    insert_dead_letter(connection, subscription, event_id, envelope_of(feed.source->module, failure.shared->row),
                       failure.error, lane.attempts, lane.first_failed_at);
    // Handled, in the same transaction: other lanes may hold the cursor below it, and a
    // restart, a reopen or a lost cursor must not try it again (only a replay applies it).
    record_range(connection, subscription, feed.source->module, failure.shared->row.id, failure.shared->row.id, {});
    write_cursor(connection, feed, lane_watermark(feed, lane_index, failure.shared->row.id));
    transaction.commit();
    subscription.dead_letters->add(1);
    lane.position = failure.shared->row.id;
    lane.attempts = 0;
    lane.failing = 0;
    return;
  }
  auto base = options.backoff_initial * (1 << std::min(lane.attempts - 1, 20));
  auto capped = std::min<std::chrono::milliseconds>(std::chrono::duration_cast<std::chrono::milliseconds>(base),
                                                    options.backoff_max);
  thread_local std::mt19937 random{std::random_device{}()};
  // Jitter in [50%, 100%] so many failing consumers do not retry in lockstep.
  auto delay = std::chrono::milliseconds(
      static_cast<long>(capped.count() * std::uniform_real_distribution<double>(0.5, 1.0)(random)));
  spdlog::warn("bus: {} failed on {} (attempt {} of {}), retrying in {} ms: {}", subscription.spec.name, event_id,
               lane.attempts, options.max_attempts, delay.count(), failure.error);
  lane.waiting = true;
  if (!lane.timer) lane.timer = std::make_unique<boost::asio::steady_timer>(subscription.consumer->writer->context());
  lane.timer->expires_after(delay);
  lane.timer->async_wait([self = shared_from_this(), feed = &feed, lane_index](const boost::system::error_code& ec) {
    if (ec || self->stopping) return;
    feed->lanes[lane_index].waiting = false;
    self->schedule_pump(feed);
  });
}

void Bus::Impl::pump(Feed& feed) {
  auto& consumer = *feed.subscription->consumer;
  if (stopping || !consumer.up) return;
  if (!consumer.module_serving()) {
    spdlog::warn("bus: module {} is down; its subscriptions stop until it serves again", consumer.module);
    close_consumer(consumer);
    return;
  }
  bool more = false;
  try {
    more = pump_batch(feed);
    std::int64_t low = feed.lanes.front().position;
    for (const auto& lane : feed.lanes) low = std::min(low, lane.position);
    feed.watermark = low;
    if (feed.reader) feed.reader->release(low);
  } catch (const SourceUnavailable& error) {
    spdlog::debug("bus: {} cannot read source {}: {}", feed.subscription->spec.name, feed.source->module, error.what());
    return;
  } catch (const SQLite::Exception& error) {
    feed.reader.reset();
    consumer_failed(consumer, error);
    return;
  }
  if (more) schedule_pump(&feed);  // yield the writer between batches
}

void Bus::Impl::persist(Feed& feed) {
  auto low = feed.watermark.load();
  if (low <= feed.persisted.load() || !feed.subscription->consumer->up) return;
  write_cursor_row(feed, low);
}

void Bus::Impl::write_cursor_row(Feed& feed, std::int64_t position) {
  db::Connection& connection = connection_for(*feed.subscription);
  SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
  write_cursor(connection, feed, position);
  transaction.commit();
  cursor_written(feed, position);
}

}  // namespace townhall::bus
