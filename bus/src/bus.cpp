#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "impl.hpp"
#include "townhall/platform/thread_name.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::bus {

void Bus::Impl::schedule_pump(Feed* feed) {
  if (stopping || !options.consume || !feed->subscription->consumer->up) return;
  if (feed->pump_scheduled.exchange(true)) return;
  feed->subscription->consumer->writer->post([self = shared_from_this(), feed] {
    feed->pump_scheduled = false;
    self->pump(*feed);
  });
}

void Bus::Impl::schedule_open(Consumer* consumer) {
  if (stopping || consumer->up || consumer->open_scheduled.exchange(true)) return;
  consumer->writer->post([self = shared_from_this(), consumer] {
    consumer->open_scheduled = false;
    self->open_consumer(*consumer);
  });
}

void Bus::Impl::sweep_loop() {
  std::unique_lock lock(sweep_mutex);
  while (!stopping) {
    sweep_wake.wait_for(lock, options.sweep_interval);
    if (stopping) break;
    auto now = Clock::now();
    for (auto& consumer : consumers) {
      if (!consumer->up) {
        schedule_open(consumer.get());
        continue;
      }
      for (auto& subscription : consumer->subscriptions)
        for (auto& feed : subscription->feeds) schedule_pump(feed.get());
      if (options.consume && now - consumer->last_prune >= options.prune_interval) {
        consumer->last_prune = now;
        consumer->writer->post([self = shared_from_this(), c = consumer.get()] { self->prune_consumer(*c); });
      }
    }
    for (auto& source : sources) {
      if (!source->writer) continue;    // a remote source: the broker prunes its stream
      source->head_may_have_changed();  // a write that did not notify is seen within a sweep
      if (options.consume && now - source->last_prune >= options.prune_interval) {
        source->last_prune = now;
        source->writer->post([self = shared_from_this(), s = source.get()] { self->prune_source(*s); });
      }
    }
  }
}

Bus::Bus(Options options, metrics::Registry& metrics) : impl_(std::make_shared<Impl>(std::move(options), metrics)) {
  if (impl_->options.lanes < 1) impl_->options.lanes = 1;
  if (impl_->options.batch < 1) impl_->options.batch = 1;
  if (impl_->options.max_attempts < 1) impl_->options.max_attempts = 1;
  impl_->source_rewinds();  // exposed from the start, so alert rules always find it
  detail::stream_metrics(impl_->metrics);
}

Bus::~Bus() { stop(); }

void Bus::add_source(const std::string& module, const db::ModuleDb& database, db::Writer& writer) {
  if (impl_->started) throw std::logic_error("bus: add_source after start");
  if (impl_->find_source(module)) throw std::logic_error("bus: source " + module + " added twice");
  auto source = std::make_unique<Impl::Source>();
  source->module = module;
  source->log = detail::make_local_log(database);
  source->writer = &writer;
  source->database = &database;
  impl_->sources.push_back(std::move(source));
}

void Bus::add_remote_source(const std::string& module) {
  auto& impl = *impl_;
  if (impl.started) throw std::logic_error("bus: add_remote_source after start");
  if (!impl.options.transport) throw std::logic_error("bus: remote source " + module + " without a transport");
  if (impl.find_source(module)) throw std::logic_error("bus: source " + module + " added twice");
  if (!impl.link)
    impl.link = std::make_unique<detail::StreamLink>(*impl.options.transport, impl.options.fault_hook, impl.metrics);
  auto source = std::make_unique<Impl::Source>();
  source->module = module;
  source->log = impl.link->remote_log(module);
  impl.sources.push_back(std::move(source));
}

void Bus::add_consumer(const std::string& module, const db::ModuleDb& database, db::Writer& writer,
                       std::vector<Subscription> subscriptions, std::function<bool()> serving) {
  if (impl_->started) throw std::logic_error("bus: add_consumer after start");
  if (impl_->find_consumer(module)) throw std::logic_error("bus: consumer " + module + " added twice");
  auto consumer = std::make_unique<Impl::Consumer>();
  consumer->module = module;
  consumer->database = &database;
  consumer->writer = &writer;
  consumer->serving = std::move(serving);
  auto& metrics = impl_->metrics;
  auto& skipped = metrics.counter("townhall_bus_events_skipped_total",
                                  "Events a subscription skipped, by reason (stale or duplicate)",
                                  {"module", "subscription", "reason"});
  std::set<std::string> names;
  for (auto& spec : subscriptions) {
    if (!spec.handler) throw std::invalid_argument("bus: subscription " + spec.name + " has no handler");
    if (spec.role != db::Role::sync && spec.role != db::Role::service)
      throw std::invalid_argument("bus: subscription " + spec.name + " must run as sync or service");
    if (!names.insert(spec.name).second) throw std::invalid_argument("bus: duplicate subscription " + spec.name);
    auto state = std::make_unique<Impl::SubscriptionState>();
    state->spec = std::move(spec);
    state->consumer = consumer.get();
    const std::string& name = state->spec.name;
    state->applied = &metrics
                          .counter("townhall_bus_events_applied_total", "Events applied by a subscription",
                                   {"module", "subscription"})
                          .with({module, name});
    auto& batches = metrics.counter("townhall_bus_batches_total",
                                    "Batches a subscription read, by whether they took a transaction (false: "
                                    "nothing in them was for it)",
                                    {"module", "subscription", "committed"});
    state->batches_committed = &batches.with({module, name, "true"});
    state->batches_passed = &batches.with({module, name, "false"});
    state->stale = &skipped.with({module, name, "stale"});
    state->duplicate = &skipped.with({module, name, "duplicate"});
    state->failures =
        &metrics
             .counter("townhall_sync_failures_total", "Failed attempts to apply an event", {"module", "subscription"})
             .with({module, name});
    state->latency =
        &metrics
             .histogram("townhall_sync_latency_seconds", "Time from an event's occurred_at to its being applied",
                        {"module", "subscription"},
                        // Millisecond steps up to 5 ms: a cache's lag is judged there (bench/README.md).
                        {0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                         5, 10, 30, 60})
             .with({module, name});
    state->dead_letters =
        &metrics.gauge("townhall_dead_letters", "Dead letters not yet replayed", {"module", "subscription"})
             .with({module, name});
    state->bootstraps = &metrics
                             .counter("townhall_bus_bootstraps_total",
                                      "Times a subscription started over from a snapshot of its source (the "
                                      "source had pruned events it never read)",
                                      {"module", "subscription"})
                             .with({module, name});
    state->gaps = &metrics
                       .counter("townhall_bus_gaps_total",
                                "Times a subscription without a bootstrap skipped events its source had pruned",
                                {"module", "subscription"})
                       .with({module, name});
    consumer->subscriptions.push_back(std::move(state));
  }
  impl_->consumers.push_back(std::move(consumer));
}

void Bus::start() {
  auto& impl = *impl_;
  if (impl.started.exchange(true)) return;
  // Wire each subscription to every source whose topics it covers.
  for (auto& consumer : impl.consumers) {
    for (auto& subscription : consumer->subscriptions) {
      for (auto& source : impl.sources) {
        bool covers = false;
        for (const auto& pattern : subscription->spec.topics)
          covers = covers || pattern.starts_with("gov." + source->module + ".");
        if (!covers) continue;
        auto feed = std::make_unique<Impl::Feed>();
        feed->subscription = subscription.get();
        feed->source = source.get();
        feed->lanes.resize(static_cast<std::size_t>(impl.options.lanes));
        source->feeds.push_back(feed.get());
        subscription->feeds.push_back(std::move(feed));
      }
    }
  }
  auto& lag_events = impl.metrics.gauge("townhall_bus_consumer_lag_events",
                                        "Events in the source's outbox not yet applied by the subscription",
                                        {"module", "subscription", "source"});
  auto& lag_seconds = impl.metrics.gauge("townhall_bus_consumer_lag_seconds",
                                         "Age of the oldest event the subscription has not applied",
                                         {"module", "subscription", "source"});
  auto& pending = impl.metrics.gauge("townhall_outbox_pending",
                                     "Outbox events not yet applied by every subscription reading them", {"module"});
  auto& held =
      impl.metrics.gauge("townhall_bus_outbox_held_events",
                         "Outbox events past retention kept because a subscription has not applied them", {"module"});
  std::weak_ptr<Impl> weak = impl_;
  impl.metrics.add_collector([weak, &lag_events, &lag_seconds, &pending, &held] {
    auto self = weak.lock();
    if (!self || self->stopping) return;
    auto measured = self->measure();
    for (const auto& feed : measured.feeds) {
      std::vector<std::string> labels{feed.consumer, feed.subscription, feed.source};
      lag_events.with(labels).set(static_cast<double>(feed.lag_events));
      lag_seconds.with(labels).set(feed.lag_seconds);
    }
    for (const auto& outbox : measured.outboxes) {
      if (!outbox.readable) continue;
      pending.with({outbox.module}).set(static_cast<double>(outbox.pending));
      held.with({outbox.module}).set(static_cast<double>(outbox.held));
    }
  });

  // The first prune comes one interval after the start, not at the first sweep.
  for (auto& consumer : impl.consumers) consumer->last_prune = Clock::now();
  for (auto& source : impl.sources) source->last_prune = Clock::now();
  impl.relay_thread = std::make_unique<db::Writer>("bus-relay");  // before anything can pump
  if (impl.options.transport && impl.options.consume) {
    // Every local source goes to its stream: which processes subscribe is theirs to say.
    if (!impl.link)
      impl.link = std::make_unique<detail::StreamLink>(*impl.options.transport, impl.options.fault_hook, impl.metrics);
    for (auto& source : impl.sources)
      if (source->database) impl.link->add_publisher(source->module, *source->database, *source->writer);
    impl.link->start();
  }
  impl.wired = true;  // consumers' opens below read any backlog a notify before this missed
  // Every commit notifies from here on, so a source's head can be kept between them.
  for (auto& source : impl.sources) source->head_cacheable = true;
  for (auto& consumer : impl.consumers) impl.schedule_open(consumer.get());
  impl.sweeper = std::thread([self = impl_] {
    name_this_thread("bus-sweeper");
    self->sweep_loop();
  });
}

void Bus::stop() {
  auto& impl = *impl_;
  if (!impl.started || impl.stopping.exchange(true)) return;
  {
    std::lock_guard lock(impl.sweep_mutex);
    impl.sweep_wake.notify_all();
  }
  if (impl.sweeper.joinable()) impl.sweeper.join();
  std::set<db::Writer*> writers;
  for (auto& consumer : impl.consumers) writers.insert(consumer->writer);
  for (auto& source : impl.sources)
    if (source->writer) writers.insert(source->writer);
  // Cancel retries, persist cursors, close connections, each on its own writer.
  for (auto& consumer : impl.consumers) {
    impl.on_writer(*consumer->writer, [&impl, c = consumer.get()] {
      for (auto& subscription : c->subscriptions) {
        for (auto& feed : subscription->feeds) {
          for (auto& lane : feed->lanes)
            if (lane.timer) lane.timer->cancel();
          if (feed->persist_timer) feed->persist_timer->cancel();
          try {
            if (c->up) impl.persist(*feed);
          } catch (const std::exception& error) {
            spdlog::warn("bus: cannot persist the cursor of {}: {}", subscription->spec.name, error.what());
          }
          feed->reader.reset();
          for (auto& lane : feed->lanes) lane.timer.reset();
          feed->persist_timer.reset();
        }
      }
      c->sync.reset();
      c->service.reset();
      c->up = false;
      return 0;
    });
  }
  // No pump runs any more, so nothing schedules a prefetch: finish the queued ones.
  if (impl.relay_thread) impl.relay_thread->stop();
  // The consumers' cursors are persisted with their stream offsets: the link may go.
  if (impl.link) impl.link->stop();
  for (auto& consumer : impl.consumers)
    for (auto& subscription : consumer->subscriptions)
      for (auto& feed : subscription->feeds) {
        feed->ahead_reader.reset();
        feed->ahead.clear();
      }
  for (auto& source : impl.sources)
    if (!source->writer)
      source->log->close();
    else
      impl.on_writer(*source->writer, [s = source.get()] {
        s->log->close();
        std::lock_guard lock(s->window_mutex);  // no pump runs any more (consumers stopped first)
        s->prefetch_reader.reset();
        s->window.clear();
        s->window_open = false;
        return 0;
      });
  for (auto* writer : writers) writer->drain();
}

void Bus::notify(std::string_view source_module) {
  if (!impl_->wired) return;  // before that, the consumers' opens read what was written
  auto* source = impl_->find_source(source_module);
  if (!source) return;
  source->head_may_have_changed();
  for (auto* feed : source->feeds) impl_->schedule_pump(feed);
  if (impl_->link) impl_->link->outbox_grew(source_module);
}

TransportStatus Bus::transport_status() {
  if (!impl_->link) {
    TransportStatus out;
    out.enabled = impl_->options.transport.has_value();
    return out;
  }
  return impl_->link->status();
}

bool Bus::flush(std::chrono::milliseconds timeout) {
  auto& impl = *impl_;
  if (!impl.started || impl.stopping || !impl.options.consume) return true;
  auto deadline = Clock::now() + timeout;
  std::vector<std::pair<Impl::Feed*, std::int64_t>> targets;
  for (auto& source : impl.sources) {
    std::int64_t head = 0;
    try {
      head = source->outbox_head();
    } catch (const std::exception& error) {
      spdlog::warn("bus: cannot flush {}: {}", source->module, error.what());
      continue;
    }
    for (auto* feed : source->feeds) {
      targets.emplace_back(feed, head);
      impl.schedule_pump(feed);
    }
  }
  for (;;) {
    bool done = true;
    for (auto [feed, head] : targets) {
      const auto& consumer = *feed->subscription->consumer;
      // Up: wait for it. Opening (not yet tried): wait, it is about to consume. Tried and
      // down: nothing to wait for (its events stay in the outbox for the next start).
      bool settled = consumer.up ? feed->watermark.load() >= head : consumer.open_attempted.load();
      done = done && settled;
    }
    if (done) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // bounded by the deadline
  }
}

std::vector<FeedStatus> Bus::status() { return impl_->status(); }

std::int64_t Bus::outbox_head(std::string_view module) {
  for (auto& source : impl_->sources)
    if (source->module == module) return source->outbox_head();
  throw std::out_of_range("no bus source '" + std::string(module) + "'");
}

std::vector<FeedStatus> Bus::Impl::status() {
  std::vector<FeedStatus> out;
  for (auto& consumer : consumers)
    for (auto& subscription : consumer->subscriptions)
      for (auto& feed : subscription->feeds)
        out.push_back({consumer->module, subscription->spec.name, feed->source->module, consumer->up.load(),
                       feed->watermark.load(), feed->head.load(), feed->bootstraps.load(),
                       std::max<std::int64_t>(0, feed->head.load() - feed->watermark.load())});
  return out;
}

BusMeasurement Bus::measure() { return impl_->measure(); }

BusMeasurement Bus::Impl::measure() {
  BusMeasurement out;
  out.feeds = status();
  if (stopping) return out;
  for (auto& source : sources) {
    OutboxStatus outbox{source->module};
    try {
      std::vector<std::int64_t> cursors;
      std::vector<FeedStatus*> feeds;
      for (auto& feed : out.feeds)
        if (feed.source == source->module) {
          cursors.push_back(feed.cursor);
          feeds.push_back(&feed);
        }
      auto backlog = source->log->backlog(cursors);
      for (std::size_t i = 0; i < feeds.size(); ++i) {
        auto& feed = *feeds[i];
        feed.source_head = backlog.head;
        feed.lag_events = std::max<std::int64_t>(0, backlog.head - feed.cursor);
        if (auto at = backlog.first_unapplied_at[i])
          feed.lag_seconds = std::max(0.0, std::chrono::duration<double>(SystemClock::now() - *at).count());
      }
      outbox.pending = backlog.pending;
      outbox.head = backlog.head;
      outbox.held = source->held_events.load();
      outbox.readable = true;
    } catch (const std::exception& error) {
      spdlog::debug("bus: source {} unreadable: {}", source->module, error.what());
    }
    out.outboxes.push_back(std::move(outbox));
  }
  return out;
}

bool Bus::consumer_caught_up(std::string_view module) {
  if (!impl_->wired) return false;
  auto* consumer = impl_->find_consumer(module);
  if (!consumer) return true;
  for (auto& subscription : consumer->subscriptions)
    for (auto& feed : subscription->feeds) {
      if (!consumer->up) return false;
      std::int64_t head = 0;
      try {
        head = feed->source->outbox_head();
      } catch (const std::exception&) {
        return false;
      }
      if (feed->watermark.load() < head) {
        impl_->schedule_pump(feed.get());
        return false;
      }
    }
  return true;
}

bool Bus::caught_up() {
  for (auto& source : impl_->sources) {
    std::int64_t head = 0;
    try {
      head = source->outbox_head();
    } catch (const std::exception&) {
      return false;
    }
    for (auto* feed : source->feeds) {
      if (!feed->subscription->consumer->up) return false;
      if (feed->watermark.load() < head) {
        impl_->schedule_pump(feed);
        return false;
      }
    }
  }
  return true;
}

}  // namespace townhall::bus
