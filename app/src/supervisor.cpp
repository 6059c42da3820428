// The modules' lifecycle: each built with its file and writer, brought up in dependency
// order, a down one retried on its own writer thread, all stopped in reverse.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "application_impl.hpp"

namespace townhall::app {

bus::Options Application::Impl::bus_options() {
  bus::Options out;
  out.consume = options.consume;
  out.lanes = config.bus.lanes;
  out.batch = static_cast<std::size_t>(config.bus.batch);
  out.window = static_cast<std::size_t>(config.bus.window);
  out.max_attempts = config.bus.max_attempts;
  out.backoff_initial = config.bus.backoff_initial;
  out.backoff_max = config.bus.backoff_max;
  out.sweep_interval = config.bus.sweep_interval;
  out.retention = config.bus.retention;
  out.max_hold = config.bus.max_hold;
  out.fault_hook = options.fault_hook;
  // A restored source: once serving, repair the rewound consumer's caches.
  out.source_rewound = [this](const std::string& consumer, const std::string&) {
    {
      std::lock_guard lock(rewound_mutex);
      if (!serving) {  // start() repairs it before the first request
        rewound.insert(consumer);
        return;
      }
    }
    asio::post(io, [this, consumer] { asio::co_spawn(io, check_after_rewind(consumer), asio::detached); });
  };
  return out;
}

// Builds every module (no I/O), then brings each up in dependency order.
void Application::Impl::open() {
  if (opened) return;
  data_lock = std::make_unique<db::DataDirLock>(config.data_dir);  // throws when another process writes it
  opened = true;
  cursors = std::make_unique<PageCursors>(load_or_create_cursor_key(config.data_dir / "cursor.key"));
  bus = std::make_unique<bus::Bus>(bus_options(), metrics);
  starter = std::make_unique<db::Writer>("starter");
  for (const auto& module_config : config.modules) {
    auto slot = std::make_unique<Slot>();
    slot->config = &module_config;
    slot->gate = std::make_shared<ModuleGate>(module_config.name);
    slot->database = open_module_db(config, module_config, &metrics);
    slot->writer = std::make_unique<db::Writer>(module_config.name);
    slot->context = std::make_unique<ModuleContext>(ModuleContext{
        module_config, *slot->database, *slot->writer, *slot->gate, metrics, *cursors,
        [bus = bus.get(), name = module_config.name] { bus->notify(name); }, options.demo,
        [bus = bus.get(), name = module_config.name] { return bus->outbox_head(name); }, options.fault_hook,
        [bus = bus.get(), name = module_config.name] { return bus->consumer_caught_up(name); }});
    slot->module = factory_for(module_config.name).make(*slot->context, apis);
    std::vector<bus::Subscription> subscriptions;
    auto* consumer = dynamic_cast<bus::Consumer*>(slot->module.get());
    if (consumer) {
      subscriptions = consumer->subscriptions();
      check_subscriptions_registered(config, module_config, subscriptions);  // before the bus holds the slot
    }
    bus->add_source(module_config.name, *slot->database, *slot->writer);
    if (consumer)
      bus->add_consumer(module_config.name, *slot->database, *slot->writer, std::move(subscriptions),
                        [gate = slot->gate] { return gate->is_open(); });
    slots.push_back(std::move(slot));
  }
  // Started only once the bus holds every source and consumer: a started module's
  // writer may notify the bus at once (parks expires holds), and the bus's tables
  // must not change under it.
  for (auto& slot : slots) try_start(*slot);
  bus->start();
}

// Opens and migrates the module's file and starts the module; a failure leaves it down.
bool Application::Impl::try_start(Slot& slot) {
  const auto& name = slot.config->name;
  auto& database = *slot.database;
  try {
    // A file known to fail (the last start met it, or the bus did) is probed first: a
    // start on it would only fail again.
    if (database.storage_failure() && !database.probe(bus::touch_storage_probe))
      throw std::runtime_error(database.storage_failure().value_or("its file fails"));
    auto applied = migrate(database);
    for (const auto& m : applied) spdlog::info("module {}: applied migration {}/{}", name, m.component, m.name);
    slot.module->start();  // opens the gate
    // A start that met a failing file (revenue could not commit the payment it settled)
    // is undone, and done again once the file works: up means started on a working file.
    if (auto failure = database.storage_failure()) {
      slot.module->stop();
      throw std::runtime_error(*failure);
    }
    spdlog::info("module {} up ({})", name, database.path().string());
    return true;
  } catch (const std::exception& error) {
    bool changed = slot.gate->reason() != error.what();
    slot.gate->close(error.what());
    if (changed) spdlog::error("module {} is down: {}", name, error.what());
    return false;
  }
}

// Down modules are retried off the network threads, so a slow or hanging file never
// holds one: one that never started is started again on the starter thread (as open()
// started it: beside its writer, which the start may need); a started one whose file
// failed later is probed on its writer (fresh connection, one write) until it works.
void Application::Impl::schedule_retry() {
  retry_timer->expires_after(config.server.module_retry);
  retry_timer->async_wait([this](const boost::system::error_code& ec) {
    if (ec || shutting_down) return;
    for (auto& slot : slots) {
      if (!slot->gate->is_open()) {
        if (slot->start_queued.exchange(true)) continue;  // one queued start per module
        starter->post([this, s = slot.get()] {
          if (!shutting_down && !s->gate->is_open()) try_start(*s);
          s->start_queued = false;
        });
      } else if (slot->database->storage_failure())
        slot->writer->post([this, s = slot.get()] {
          if (!shutting_down && s->database->storage_failure()) s->database->probe(bus::touch_storage_probe);
        });
    }
    schedule_retry();
  });
}

// Stops the bus, the modules (reverse order) and their writers; files close last.
void Application::Impl::close() {
  if (closed) return;
  closed = true;
  if (starter) starter->stop();  // a start under way ends before the modules stop
  if (bus) {
    // Apply what is committed before the consumers stop, so caches are current after a
    // restart (it would be applied then anyway: the outbox keeps it).
    auto flush_limit = std::min<std::chrono::milliseconds>(config.server.shutdown_grace, std::chrono::seconds(5));
    if (!bus->flush(flush_limit)) spdlog::warn("bus: events still pending at shutdown; applied on the next start");
    bus->stop();
  }
  for (auto it = slots.rbegin(); it != slots.rend(); ++it) {
    auto& slot = **it;
    if (slot.gate->is_open()) {
      try {
        slot.writer->drain();
        slot.module->stop();  // closes the gate
        spdlog::info("module {} stopped", slot.config->name);
      } catch (const std::exception& error) {
        spdlog::error("module {} failed to stop cleanly: {}", slot.config->name, error.what());
      }
      slot.gate->close();
    }
    slot.writer->stop();
  }
}

}  // namespace townhall::app
