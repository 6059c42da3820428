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

void Bus::Impl::schedule_prefetch(Source* source) {
  if (stopping || !relay_thread || source->prefetch_scheduled.exchange(true)) return;
  relay_thread->post([self = shared_from_this(), source] {
    source->prefetch_scheduled = false;
    self->prefetch(*source);
  });
}

void Bus::Impl::prefetch(Source& source) {
  if (stopping) return;
  std::int64_t from = 0;
  {
    std::lock_guard lock(source.window_mutex);
    if (!source.window_open || source.extending) return;  // a feed is reading on already
    source.extending = true;
    from = source.window_to;
  }
  Rows fresh;
  try {
    reader_on(source.prefetch_reader, source).read(from, INT64_MAX, options.batch, fresh);
  } catch (const SourceUnavailable&) {
    fresh.clear();  // the subscriptions find out on their next read
  }
  {
    std::lock_guard lock(source.window_mutex);
    merge_into_window(source, fresh, from);
    source.extending = false;
  }
  source.extended.notify_all();
  for (const auto& shared : fresh) {
    bool wanted_by_any = false;
    for (const auto* feed : source.feeds) wanted_by_any = wanted_by_any || wanted(*feed->subscription, shared->row);
    if (wanted_by_any) shared->event(source.module);
  }
}

void Bus::Impl::schedule_read_ahead(Feed* feed, std::int64_t after, std::int64_t up_to) {
  if (stopping || !relay_thread || feed->ahead_scheduled.exchange(true)) return;
  relay_thread->post([self = shared_from_this(), feed, after, up_to] {
    feed->ahead_scheduled = false;
    self->read_ahead(*feed, after, up_to);
  });
}

void Bus::Impl::read_ahead(Feed& feed, std::int64_t after, std::int64_t up_to) {
  if (stopping) return;
  Rows rows;
  try {
    reader_on(feed.ahead_reader, *feed.source).read(after, up_to, options.batch, rows);
  } catch (const SourceUnavailable&) {
    return;  // the feed finds out on its own read
  }
  for (const auto& shared : rows)
    if (wanted(*feed.subscription, shared->row)) shared->event(feed.source->module);
  std::lock_guard lock(feed.ahead_mutex);
  feed.ahead = std::move(rows);
  feed.ahead_after = after;
}

Rows Bus::Impl::read_rows(Feed& feed, std::int64_t after) {
  Source& source = *feed.source;
  Rows rows;
  rows.reserve(options.batch);
  if (!source.log->random_access()) {
    // A stream: each feed's reader holds what it received for it; no window to share.
    reader_on(feed.reader, source).read(after, INT64_MAX, options.batch, rows);
    if (!rows.empty() && rows.back()->row.id > feed.head) feed.head = rows.back()->row.id;
    return rows;
  }
  std::int64_t behind_up_to = -1;
  std::int64_t extend_from = -1;  // >= 0: this feed reads on from the window's end
  {
    std::unique_lock lock(source.window_mutex);
    if (!source.window_open || after > source.window_to) {
      // First read, or (defensively) a position past the window: start it here.
      source.window.clear();
      source.window_from = source.window_to = after;
      source.window_open = true;
    }
    for (;;) {
      if (after < source.window_from) {
        behind_up_to = source.window_from;
        break;
      }
      rows.clear();
      auto first = std::upper_bound(source.window.begin(), source.window.end(), after,
                                    [](std::int64_t id, const auto& shared) { return id < shared->row.id; });
      for (auto it = first; it != source.window.end() && rows.size() < options.batch; ++it) rows.push_back(*it);
      if (rows.size() == options.batch) break;
      if (!source.extending) {
        source.extending = true;
        extend_from = source.window_to;
        break;
      }
      // Another feed (or the relay) is reading what comes next: take it from the window.
      source.extended.wait(lock);
    }
  }
  if (extend_from >= 0) {
    // At the window's end: read on from the log without the lock (a slow source log
    // holds up only the feeds that need these rows) and share them with the others.
    Rows fresh;
    bool backlog = false;
    try {
      reader_on(feed.reader, source).read(extend_from, INT64_MAX, options.batch - rows.size(), fresh);
    } catch (...) {
      {
        std::lock_guard lock(source.window_mutex);
        source.extending = false;
      }
      source.extended.notify_all();
      throw;
    }
    {
      std::lock_guard lock(source.window_mutex);
      merge_into_window(source, fresh, extend_from);
      source.extending = false;
      rows.insert(rows.end(), fresh.begin(), fresh.end());
      // A full batch ending near the window's end: a backlog is being worked through.
      backlog = rows.size() == options.batch && source.window_to - rows.back()->row.id < std::int64_t(options.batch);
    }
    source.extended.notify_all();
    if (backlog) schedule_prefetch(&source);
  }
  // Behind the window (catch-up): read the log up to where the window starts, so the
  // feed joins it with no gap and no overlap; the relay reads the next batch ahead.
  if (behind_up_to >= 0) {
    rows.clear();
    {
      std::lock_guard lock(feed.ahead_mutex);
      if (feed.ahead_after == after) rows = std::move(feed.ahead);
      feed.ahead.clear();
      feed.ahead_after = -1;
    }
    if (rows.empty()) reader_on(feed.reader, source).read(after, behind_up_to, options.batch, rows);
    if (rows.size() == options.batch && rows.back()->row.id < behind_up_to)
      schedule_read_ahead(&feed, rows.back()->row.id, behind_up_to);
  }
  if (!rows.empty() && rows.back()->row.id > feed.head) feed.head = rows.back()->row.id;
  return rows;
}

}  // namespace townhall::bus
