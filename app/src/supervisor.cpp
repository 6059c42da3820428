// The modules' lifecycle: each built with its file and writer, brought up in dependency
// order, a down one retried on its own writer thread, all stopped in reverse.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <fstream>

#include "application_impl.hpp"
#include "townhall/auth/http_api.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/platform/thread_name.hpp"

namespace townhall::app {
namespace {

// The broker's URL: bus.transport.url, or the first line of url_file (relative: the data
// dir), which holds a password and so must be the service user's alone.
std::string transport_url(const config::Config& config) {
  const auto& transport = config.bus.transport;
  if (transport.url_file.empty()) return transport.url;
  auto path = transport.url_file.is_absolute() ? transport.url_file : config.data_dir / transport.url_file;
  std::error_code ec;
  auto permissions = std::filesystem::status(path, ec).permissions();
  if (ec) throw config::ConfigError("bus.transport.url_file: cannot read " + path.string() + ": " + ec.message());
  using std::filesystem::perms;
  if ((permissions & (perms::group_all | perms::others_all)) != perms::none)
    throw config::ConfigError("bus.transport.url_file: " + path.string() +
                              " is readable by group or others; chmod 600 it");
  std::ifstream in(path);
  std::string url;
  if (!in || !std::getline(in, url)) throw config::ConfigError("bus.transport.url_file: cannot read " + path.string());
  while (!url.empty() && (url.back() == '\r' || url.back() == ' ' || url.back() == '\t')) url.pop_back();
  if (!url.starts_with("amqp://") && !url.starts_with("amqps://"))
    throw config::ConfigError("bus.transport.url_file: " + path.string() +
                              " must hold one line amqp://user:password@host:5672/vhost");
  return url;
}

// The module a topic pattern's events come from: gov.<source>.<aggregate>.
std::string source_of(const std::string& topic) {
  auto rest = topic.substr(topic.find('.') + 1);
  return rest.substr(0, rest.find('.'));
}

}  // namespace

IoThread::IoThread(std::string name)
    : work_(io_.get_executor()), thread_([this, name = std::move(name)] {
        name_this_thread(name);
        io_.run();
      }) {}

void IoThread::stop() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

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
  // Only a process of a split uses the broker; one process reads its sources' files.
  if (config.process) {
    bus::StreamTransport transport;
    transport.url = transport_url(config);
    transport.stream_prefix = config.bus.transport.stream_prefix;
    // The broker's policy (registry --deploy) writes the same max-age: x-max-age compares as written.
    transport.max_age = config.bus.max_hold;
    out.transport = std::move(transport);
  }
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

// A process of a split that does not run auth: every module here that calls auth gets an
// auth::HttpApi of its own to auth's internal endpoint (modules.auth.internal), signing as
// itself with its key (modules.<m>.internal.key_file). They run on a thread of their own, not
// on the network threads: modules call auth while they start (bootstraps, revenue's demo
// seed), before those threads run, and at shutdown a writer waiting for auth must not wait
// for a network thread that is waiting for that writer.
void Application::Impl::open_remote_apis() {
  const auto* auth = config.module("auth");
  if (!config.process || config.serves("auth") || !auth || !auth->internal || !auth->internal->port) return;
  api_clients = std::make_unique<IoThread>("api-clients");
  for (const auto& module : config.modules) {
    if (!config.serves(module.name) ||
        std::find(module.depends_on.begin(), module.depends_on.end(), "auth") == module.depends_on.end())
      continue;
    auth::HttpApiOptions client;
    client.address = auth->internal->address;
    client.port = *auth->internal->port;
    client.module = module.name;
    client.token_cache_ttl = auth::token_cache_ttl(auth->settings);
    if (module.internal && !module.internal->key_file.empty()) {
      auto file = module.internal->key_file.is_absolute() ? module.internal->key_file
                                                          : config.data_dir / module.internal->key_file;
      try {
        client.key = signing::load_key(file);
      } catch (const std::runtime_error& error) {
        throw config::ConfigError("modules." + module.name + ".internal.key_file: " + error.what());
      }
    }
    auto& api = remote_auth[module.name] = std::make_unique<auth::HttpApi>(api_clients->io(), std::move(client));
    if (remote_checks.empty())  // is auth there, and does it accept this process's signature?
      remote_checks.push_back({"auth", [api = api.get(), name = module.name]() -> asio::awaitable<ModuleHealth> {
                                 auto departments = co_await api->departments(
                                     CallContext::as_service(name, "readyz", std::chrono::seconds(2)));
                                 if (departments) co_return ModuleHealth{true, "reached over HTTP"};
                                 co_return ModuleHealth{false, departments.error().message};
                               }});
  }
}

// Builds every module (no I/O), then brings each up in dependency order. A process of a
// split (serve --modules) builds only its own modules; the others' events come from the
// broker and auth's Api, when auth runs elsewhere, over HTTP.
void Application::Impl::open() {
  if (opened) return;
  data_lock = std::make_unique<db::DataDirLock>(config.data_dir);  // throws when another process writes it
  opened = true;
  cursors = std::make_unique<PageCursors>(load_or_create_cursor_key(config.data_dir / "cursor.key"));
  bus = std::make_unique<bus::Bus>(bus_options(), metrics);
  starter = std::make_unique<db::Writer>("starter");
  open_remote_apis();
  std::set<std::string> remote_sources;
  for (const auto& module_config : config.modules) {
    if (!config.serves(module_config.name)) continue;
    if (auto remote = remote_auth.find(module_config.name); remote != remote_auth.end())
      apis.auth = remote->second.get();  // this module's own client, signing as it
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
      for (const auto& subscription : subscriptions)
        for (const auto& topic : subscription.topics)
          if (config.process && !config.serves(source_of(topic))) remote_sources.insert(source_of(topic));
    }
    bus->add_source(module_config.name, *slot->database, *slot->writer);
    if (consumer)
      bus->add_consumer(module_config.name, *slot->database, *slot->writer, std::move(subscriptions),
                        [gate = slot->gate] { return gate->is_open(); });
    slots.push_back(std::move(slot));
  }
  for (const auto& source : remote_sources) bus->add_remote_source(source);
  if (config.process)  // the broker: down is degraded (modules serve, events wait), not unready
    remote_checks.push_back(
        {"broker", [bus = bus.get()]() -> asio::awaitable<ModuleHealth> {
           auto link = bus->transport_status();
           if (link.publishing && link.consuming) co_return ModuleHealth{true, "connected"};
           co_return ModuleHealth{false, link.last_error.empty() ? "connecting" : "unreachable: " + link.last_error};
         }});
  // The gateway checks tokens with the first module's client (it signs as that module).
  if (!remote_auth.empty())
    for (const auto& module_config : config.modules)
      if (auto remote = remote_auth.find(module_config.name); remote != remote_auth.end()) {
        apis.auth = remote->second.get();
        break;
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
  if (api_clients) api_clients->stop();  // the modules no longer call auth
}

}  // namespace townhall::app
