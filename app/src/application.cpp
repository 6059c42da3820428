#include "townhall/app/application.hpp"

#include <SQLiteCpp/Database.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "admin_routes.hpp"
#include "dashboard.hpp"
#include "gateway.hpp"
#include "openapi.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/migrations.hpp"
#include "townhall/notify/events.hpp"
#include "townhall/notify/module.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/parks/module.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/permits/module.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/data_lock.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/migrator.hpp"
#include "townhall/platform/module.hpp"
#include "townhall/platform/server.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/platform/writer.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/module.hpp"

namespace townhall::app {
std::span<const EmbeddedFile> embedded_registry_files();

namespace {

namespace asio = boost::asio;

// The Apis of the modules built so far, handed explicitly to the modules that need
// them (built after them: the registry lists modules in dependency order).
struct BuiltApis {
  auth::Api* auth = nullptr;
};

struct ModuleFactory {
  std::string_view name;
  db::TableManifest (*manifest)();
  std::span<const std::string_view> topics;  // what it publishes: its contract's kTopics
  std::unique_ptr<Module> (*make)(ModuleContext&, BuiltApis&);
};

constexpr ModuleFactory kFactories[] = {
    {"auth", auth::table_manifest, auth::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       auto instance = auth::make_module(context);
       apis.auth = instance.api;
       return std::move(instance.module);
     }},
    {"permits", permits::table_manifest, permits::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       if (!apis.auth)
         throw config::ConfigError("modules.permits: needs the auth module (list auth first, in depends_on)");
       return permits::make_module(context, *apis.auth);
     }},
    {"revenue", revenue::table_manifest, revenue::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       if (!apis.auth)
         throw config::ConfigError("modules.revenue: needs the auth module (list auth first, in depends_on)");
       return revenue::make_module(context, *apis.auth);
     }},
    {"parks", parks::table_manifest, parks::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       if (!apis.auth)
         throw config::ConfigError("modules.parks: needs the auth module (list auth first, in depends_on)");
       return parks::make_module(context, *apis.auth);
     }},
    {"notify", notify::table_manifest, notify::events::kTopics,
     [](ModuleContext& context, BuiltApis& apis) {
       if (!apis.auth)
         throw config::ConfigError("modules.notify: needs the auth module (list auth first, in depends_on)");
       return notify::make_module(context, *apis.auth);
     }},
};
constexpr std::string_view kKnownModules[] = {"auth", "permits", "revenue", "parks", "notify"};

const ModuleFactory& factory_for(std::string_view name) {
  for (const auto& factory : kFactories)
    if (factory.name == name) return factory;
  throw std::logic_error("no factory for module " + std::string(name));
}

std::vector<db::Migration> migrations_of(std::string_view module) {
  auto files = migrations::embedded_migrations();
  auto all = db::migrations_for(files, "bus");
  auto own = db::migrations_for(files, module);
  all.insert(all.end(), own.begin(), own.end());
  return all;
}

std::unique_ptr<db::ModuleDb> open_module_db(const config::Config& config, const config::Module& module,
                                             metrics::Registry* metrics) {
  // Every way to a module file passes here: new files owner-only, exposed ones refused.
  db::restrict_new_files();
  db::check_private(config.data_dir, config.data_dir / module.db_file);
  return std::make_unique<db::ModuleDb>(module.name, config.data_dir / module.db_file,
                                        factory_for(module.name).manifest(), config.database, metrics);
}

// The bearer token /metrics requires (server.metrics_token_file), or "" when none is
// configured. Throws when the file cannot be read, is readable by group or others, or
// holds a token too short to resist guessing.
std::string load_metrics_token(const config::Config& config) {
  if (config.server.metrics_token_file.empty()) return {};
  auto path = config.server.metrics_token_file.is_absolute() ? config.server.metrics_token_file
                                                             : config.data_dir / config.server.metrics_token_file;
  std::error_code ec;
  auto permissions = std::filesystem::status(path, ec).permissions();
  if (ec) throw std::runtime_error("cannot read the metrics token file " + path.string() + ": " + ec.message());
  using std::filesystem::perms;
  if ((permissions & (perms::group_all | perms::others_all)) != perms::none)
    throw std::runtime_error("the metrics token file " + path.string() +
                             " is readable by group or others; chmod 600 it");
  std::ifstream file(path);
  std::string token;
  if (!file || !std::getline(file, token))
    throw std::runtime_error("cannot read the metrics token file " + path.string());
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) token.pop_back();
  if (token.size() < 32 || token.find_first_of(" \t") != std::string::npos)
    throw std::runtime_error("the metrics token in " + path.string() +
                             " must be one line of at least 32 characters without spaces (e.g. openssl rand -hex 32)");
  return token;
}

// Brings a module file to the current schema; throws on any failure.
std::vector<db::AppliedMigration> migrate(db::ModuleDb& database) {
  auto owner = database.open(db::Role::owner);
  db::Migrator migrator(*owner);
  auto migrations = migrations_of(database.module());
  auto applied = migrator.apply(migrations);
  auto undeclared = database.undeclared_tables(*owner);
  if (!undeclared.empty()) {
    std::string list;
    for (const auto& table : undeclared) list += (list.empty() ? "" : ", ") + table;
    throw std::runtime_error("module '" + database.module() + "': tables not declared in its manifest: " + list);
  }
  return applied;
}

// The registry says what a module consumes (DESIGN §1: docs are generated from it); a
// topic the code subscribes to that the registry does not list is a deployment error.
// The registry's subscriptions and the code's agree both ways: each topic the module
// consumes is listed, and each listed topic is one a module of this registry publishes
// (its contract's kTopics) and this module consumes. A typo is an error naming the key.
void check_subscriptions_registered(const config::Config& config, const config::Module& module,
                                    const std::vector<bus::Subscription>& subscriptions) {
  // The registry's entries first: a typo there is the likelier mistake, named by its key.
  for (std::size_t i = 0; i < module.subscriptions.size(); ++i) {
    const auto& registered = module.subscriptions[i].topic;
    const auto key = "modules." + module.name + ".subscriptions[" + std::to_string(i) + "].topic";
    std::string published;  // every topic of the registry's modules, for the message
    bool known = false;
    for (const auto& producer : config.modules)
      for (auto topic : factory_for(producer.name).topics) {
        known = known || bus::topic_matches(registered, topic) || registered == topic;
        published += (published.empty() ? "" : ", ") + std::string(topic);
      }
    if (!known)
      throw config::ConfigError(key + ": no module of this registry publishes '" + registered +
                                "' (published: " + published + ")");
    bool consumed = false;
    for (const auto& subscription : subscriptions)
      for (const auto& topic : subscription.topics)
        consumed = consumed || bus::topic_matches(registered, topic) || bus::topic_matches(topic, registered) ||
                   registered == topic;
    if (!consumed)
      throw config::ConfigError(key + ": the " + module.name + " module does not consume '" + registered + "'");
  }
  for (const auto& subscription : subscriptions)
    for (const auto& topic : subscription.topics) {
      bool listed = false;
      for (const auto& registered : module.subscriptions)
        listed = listed || bus::topic_matches(registered.topic, topic) || registered.topic == topic;
      if (!listed)
        throw config::ConfigError("modules." + module.name + ".subscriptions: the module consumes '" + topic +
                                  "' (subscription " + subscription.name + ") but the registry does not list it");
    }
}

}  // namespace

std::span<const std::string_view> known_modules() { return kKnownModules; }

std::string_view default_registry() { return embedded_registry_files().front().contents; }

bool migrate_all(const config::Config& config, std::vector<std::string>& report) {
  bool ok = true;
  for (const auto& module : config.modules) {
    try {
      auto database = open_module_db(config, module, nullptr);
      auto applied = migrate(*database);
      if (applied.empty()) report.push_back(module.name + ": up to date");
      for (const auto& m : applied) report.push_back(module.name + ": applied " + m.component + "/" + m.name);
    } catch (const std::exception& error) {
      ok = false;
      report.push_back(module.name + ": FAILED: " + error.what());
    }
  }
  return ok;
}

Result<auth::CreatedStaffUser> create_staff_user(const config::Config& config, const auth::StaffUser& user) {
  const auto* module = config.module("auth");
  if (!module) return make_error(Errc::unavailable, "the registry has no auth module");
  auto database = open_module_db(config, *module, nullptr);
  migrate(*database);
  return auth::create_staff_user(*database, module->settings, user);
}

Result<auth::IssuedPasswordReset> issue_password_reset(const config::Config& config, const std::string& email) {
  const auto* module = config.module("auth");
  if (!module) return make_error(Errc::unavailable, "the registry has no auth module");
  auto database = open_module_db(config, *module, nullptr);
  migrate(*database);
  return auth::issue_password_reset(*database, module->settings, email);
}

RegistryGraph registry_graph_model(const config::Config& config) {
  RegistryGraph graph;
  for (const auto& module : config.modules) graph.modules.push_back({module.name, module.db_file, module.route_prefix});
  for (const auto& module : config.modules)
    for (const auto& subscription : module.subscriptions) {
      // gov.<source>.<aggregate>: the events come from <source>'s outbox.
      auto rest = subscription.topic.substr(subscription.topic.find('.') + 1);
      graph.edges.push_back({rest.substr(0, rest.find('.')), module.name, "events", subscription.topic});
    }
  for (const auto& module : config.modules)
    for (const auto& dependency : module.depends_on) graph.edges.push_back({module.name, dependency, "api", "Api"});
  return graph;
}

std::string registry_graph(const config::Config& config) {
  auto graph = registry_graph_model(config);
  std::string out = "flowchart LR\n";
  for (const auto& module : graph.modules)
    out +=
        "  " + module.name + "[\"" + module.name + "<br/>" + module.db_file + "<br/>" + module.route_prefix + "\"]\n";
  for (const auto& edge : graph.edges)
    out += edge.kind == "events" ? "  " + edge.from + " -- \"" + edge.label + "\" --> " + edge.to + "\n"
                                 : "  " + edge.from + " -. Api .-> " + edge.to + "\n";
  return out;
}

Result<std::int64_t> expire_business_licenses(const config::Config& config) {
  const auto* module = config.module("revenue");
  if (!module) return make_error(Errc::unavailable, "the registry has no revenue module");
  auto database = open_module_db(config, *module, nullptr);
  migrate(*database);
  return revenue::expire_lapsed_licenses(*database);
}

std::vector<bus::DeadLetter> list_dead_letters(const config::Config& config, const std::optional<std::string>& module,
                                               std::vector<std::string>& errors) {
  std::vector<bus::DeadLetter> out;
  for (const auto& m : config.modules) {
    if (module && m.name != *module) continue;
    try {
      auto letters = bus::read_dead_letters(*open_module_db(config, m, nullptr));
      out.insert(out.end(), letters.begin(), letters.end());
    } catch (const std::exception& error) {
      errors.push_back(m.name + ": " + error.what());
    }
  }
  return out;
}

struct Application::Impl {
  // One module: its file, its writer thread and the module itself exist from the start;
  // whether it is up depends on the file.
  struct Slot {
    const config::Module* config = nullptr;
    std::unique_ptr<db::ModuleDb> database;
    std::unique_ptr<db::Writer> writer;
    std::unique_ptr<ModuleContext> context;
    std::unique_ptr<Module> module;
    std::shared_ptr<std::atomic<bool>> up = std::make_shared<std::atomic<bool>>(false);
    mutable std::mutex reason_mutex;
    std::string down_reason = "not started";

    std::string reason() const {
      std::lock_guard lock(reason_mutex);
      return down_reason;
    }
    void set_reason(std::string text) {
      std::lock_guard lock(reason_mutex);
      down_reason = std::move(text);
    }
  };

  Impl(config::Config cfg, Options opts) : config(std::move(cfg)), options(opts) {}

  config::Config config;
  Options options;
  metrics::Registry metrics;
  std::unique_ptr<db::DataDirLock> data_lock;  // released last, after the files close
  std::unique_ptr<bus::Bus> bus;
  std::vector<std::unique_ptr<Slot>> slots;
  BuiltApis apis;
  http::Router router;
  std::unique_ptr<Gateway> gateway;
  asio::io_context io;
  std::unique_ptr<http::Server> server;
  std::unique_ptr<asio::signal_set> signals;
  std::unique_ptr<asio::steady_timer> retry_timer;
  std::unique_ptr<asio::steady_timer> consistency_timer;
  std::unique_ptr<asio::steady_timer> history_timer;
  LagHistory lag_history;
  std::atomic<bool> checking{false};
  // Consumers rewound at start (a restored source) whose caches start() repairs before
  // serving: a reused id at an equal version would otherwise hide behind the old row.
  std::mutex rewound_mutex;
  std::set<std::string> rewound;
  bool serving = false;
  std::mutex last_check_mutex;
  std::optional<consistency::Report> last_check;
  std::vector<std::thread> threads;
  std::atomic<bool> shutting_down{false};
  std::mutex done_mutex;
  bool opened = false;
  bool started = false;
  bool closed = false;

  bus::Options bus_options() {
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
  void open() {
    if (opened) return;
    data_lock = std::make_unique<db::DataDirLock>(config.data_dir);  // throws when another process writes it
    opened = true;
    bus = std::make_unique<bus::Bus>(bus_options(), metrics);
    for (const auto& module_config : config.modules) {
      auto slot = std::make_unique<Slot>();
      slot->config = &module_config;
      slot->database = open_module_db(config, module_config, &metrics);
      slot->writer = std::make_unique<db::Writer>(module_config.name);
      slot->context = std::make_unique<ModuleContext>(ModuleContext{
          module_config, *slot->database, *slot->writer, metrics,
          [bus = bus.get(), name = module_config.name] { bus->notify(name); }, options.demo,
          [bus = bus.get(), name = module_config.name] { return bus->outbox_head(name); }, options.fault_hook});
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
                          [up = slot->up] { return up->load(); });
      try_start(*slot);
      slots.push_back(std::move(slot));
    }
    bus->start();
  }

  // Opens and migrates the module's file and starts the module; a failure leaves it down.
  bool try_start(Slot& slot) {
    const auto& name = slot.config->name;
    try {
      auto applied = migrate(*slot.database);
      for (const auto& m : applied) spdlog::info("module {}: applied migration {}/{}", name, m.component, m.name);
      slot.module->start();
      slot.set_reason({});
      *slot.up = true;
      spdlog::info("module {} up ({})", name, slot.database->path().string());
      return true;
    } catch (const std::exception& error) {
      bool changed = slot.reason() != error.what();
      slot.set_reason(error.what());
      if (changed) spdlog::error("module {} is down: {}", name, error.what());
      return false;
    }
  }

  // Down modules are retried on their own writer thread, so a slow or hanging file
  // never holds a network thread: one that never started is started; a started one
  // whose file failed later is probed (fresh connection, one write) until it works.
  void schedule_retry() {
    retry_timer->expires_after(config.server.module_retry);
    retry_timer->async_wait([this](const boost::system::error_code& ec) {
      if (ec || shutting_down) return;
      for (auto& slot : slots) {
        if (!*slot->up)
          slot->writer->post([this, s = slot.get()] {
            if (!shutting_down && !*s->up) try_start(*s);
          });
        else if (slot->database->storage_failure())
          slot->writer->post([this, s = slot.get()] {
            if (!shutting_down && s->database->storage_failure()) s->database->probe(bus::touch_storage_probe);
          });
      }
      schedule_retry();
    });
  }

  // Compares every cache (of `module`, or of all) with its source; with `repair`, resyncs
  // what differs. One run at a time.
  asio::awaitable<Result<consistency::Report>> run_consistency(std::optional<std::string> module, bool repair) {
    if (module && !config.module(*module)) co_return make_error(Errc::not_found, "no module '" + *module + "'");
    if (checking.exchange(true)) co_return make_error(Errc::conflict, "a consistency check is already running");
    struct Release {
      std::atomic<bool>& flag;
      ~Release() { flag = false; }
    } release{checking};
    consistency::Report report;
    report.started_at = utc::now();
    report.repair = repair;
    const auto started = std::chrono::steady_clock::now();
    for (auto& slot : slots) {
      if (module && slot->config->name != *module) continue;
      // Restore awareness in the check (issue 13.2): a source restored in place since the
      // consumer opened is found here, the consumer rewound before its caches are compared.
      if (*slot->up && dynamic_cast<bus::Consumer*>(slot->module.get())) {
        auto name = slot->config->name;
        auto rewound = co_await slot->writer->run([this, &name] { return bus->rewind_restored_sources(name); });
        report.rewound.insert(report.rewound.end(), rewound.begin(), rewound.end());
      }
      auto* checked = dynamic_cast<consistency::Checked*>(slot->module.get());
      if (!checked) continue;
      auto down = [&](const std::string& cache_module, const std::string& table, const std::string& source) {
        consistency::CacheReport entry;
        entry.cache = cache_module + "." + table;
        entry.source = source;
        entry.error = "the " + cache_module + " module is down";
        report.caches.push_back(std::move(entry));
      };
      for (const auto& cache : checked->caches()) {
        if (!*slot->up) {
          down(cache.module, cache.table, cache.source);
          continue;
        }
        report.caches.push_back(co_await consistency::check(cache, *slot->database, *slot->writer, repair));
      }
      for (const auto& cache : checked->keyed_caches()) {
        if (!*slot->up) {
          down(cache.module, cache.table, cache.source);
          continue;
        }
        report.caches.push_back(co_await consistency::check(cache, *slot->database, *slot->writer, repair));
      }
    }
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    record_consistency(report);
    co_return report;
  }

  // Registered at start, so alert rules find them before the first check has run.
  struct ConsistencyMetrics {
    explicit ConsistencyMetrics(metrics::Registry& metrics)
        : missing(metrics.gauge("townhall_consistency_missing_records",
                                "Cache rows missing against their source, at the latest check", {"cache"})),
          stale(metrics.gauge("townhall_consistency_stale_records",
                              "Cache rows at another version than their source's, at the latest check", {"cache"})),
          extra(metrics.gauge("townhall_consistency_extra_records",
                              "Cache rows their source does not have, at the latest check", {"cache"})),
          repaired(metrics.counter("townhall_consistency_repaired_records_total",
                                   "Cache rows resynced by consistency checks", {"cache"})),
          failed(metrics.gauge("townhall_consistency_check_failed",
                               "1 when the latest check of the cache could not finish", {"cache"})),
          last_run(metrics.gauge("townhall_consistency_last_run_timestamp_seconds",
                                 "When the latest consistency check finished (Unix time)")) {}
    metrics::GaugeFamily& missing;
    metrics::GaugeFamily& stale;
    metrics::GaugeFamily& extra;
    metrics::CounterFamily& repaired;
    metrics::GaugeFamily& failed;
    metrics::GaugeFamily& last_run;
  };
  ConsistencyMetrics consistency_metrics{metrics};

  void record_consistency(const consistency::Report& report) {
    auto& [missing, stale, extra, repaired, failed, last_run] = consistency_metrics;
    for (const auto& c : report.caches) {
      missing.with({c.cache}).set(static_cast<double>(c.missing_count()));
      stale.with({c.cache}).set(static_cast<double>(c.stale_count()));
      extra.with({c.cache}).set(static_cast<double>(c.extra_count()));
      repaired.with({c.cache}).inc(static_cast<std::uint64_t>(std::max<std::int64_t>(0, c.repaired)));
      failed.with({c.cache}).set(c.error.empty() ? 0 : 1);
    }
    last_run.with({}).set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    std::lock_guard lock(last_check_mutex);
    last_check = report;
  }

  void repair_after_rewinds() {
    for (auto& slot : slots) slot->writer->drain();  // the consumers have opened (and rewound)
    std::set<std::string> modules;
    {
      std::lock_guard lock(rewound_mutex);
      modules.swap(rewound);
      serving = true;
    }
    for (const auto& module : modules) {
      auto report = run_blocking(run_consistency(module, true));
      if (report)
        spdlog::warn("consistency: {}'s caches repaired after a source restore, before serving: {}", module,
                     report->consistent() ? "consistent" : "NOT consistent, see GET /admin/consistency");
    }
  }

  asio::awaitable<void> check_after_rewind(std::string module) {
    asio::steady_timer wait(io);
    for (int attempt = 0; attempt < 60 && !shutting_down; ++attempt) {
      auto report = co_await run_consistency(module, true);
      if (report) {
        spdlog::warn("consistency: {}'s caches checked after a source restore: {}", module,
                     report->consistent() ? "consistent" : "NOT consistent, see GET /admin/consistency");
        co_return;
      }
      if (report.error().code != Errc::conflict) co_return;
      wait.expires_after(std::chrono::seconds(1));  // another check is running
      co_await wait.async_wait(asio::use_awaitable);
    }
  }

  void schedule_consistency() {
    if (config.consistency.interval.count() == 0) return;
    consistency_timer->expires_after(config.consistency.interval);
    consistency_timer->async_wait([this](const boost::system::error_code& ec) {
      if (ec || shutting_down) return;
      asio::co_spawn(io, scheduled_check(), asio::detached);
    });
  }

  // Samples every subscription's lag for the dashboard's chart (LagHistory).
  void schedule_history_sample() {
    history_timer->expires_after(lag_history.interval());
    history_timer->async_wait([this](const boost::system::error_code& ec) {
      if (ec || shutting_down) return;
      lag_history.record(bus->measure(), std::chrono::system_clock::now());
      schedule_history_sample();
    });
  }

  asio::awaitable<void> scheduled_check() {
    auto report = co_await run_consistency(std::nullopt, config.consistency.repair);
    if (!report) spdlog::warn("consistency: scheduled check skipped: {}", report.error().message);
    if (!shutting_down) schedule_consistency();
  }

  void document_ops_routes() {
    router.document(
        http::Method::get, "/healthz",
        {"Liveness: the process answers", "",
         R"({"type":"object","required":["status"],"additionalProperties":false,"properties":{"status":{"const":"ok"}}})",
         200});
    router.document(
        http::Method::get, "/readyz",
        {"Readiness: 200 while any module serves (status degraded when one is down or degraded), 503 when none "
         "does or the server is shutting down; each module's state and why",
         "",
         R"({"type":"object","required":["status","modules"],"properties":{"status":{"enum":["ready","degraded","not_ready"]},)"
         R"("modules":{"type":"object","additionalProperties":{"type":"object","properties":{"state":{"enum":["up","degraded","down"]},"detail":{"type":"string"}}}}}})",
         200});
    router.document(http::Method::get, "/metrics",
                    {"Prometheus metrics (text format 0.0.4): for the bearer token in server.metrics_token_file, "
                     "or without one for clients on this host only",
                     "", "", 200, "text/plain"});
    router.document(http::Method::get, "/openapi.json",
                    {"This document (OpenAPI 3.1)", "", R"({"type":"object","required":["openapi","paths"]})", 200});
  }

  std::string metrics_token;  // server.metrics_token_file's; empty: local clients only

  void add_ops_routes() {
    router.add(
        http::Method::get, "/openapi.json",
        [this](http::Request&) -> asio::awaitable<http::Response> {
          co_return http::json_response(200, openapi_document(router, TOWNHALL_VERSION).dump());
        },
        http::Access::public_route);
    router.add(
        http::Method::get, "/healthz",
        [](http::Request&) -> asio::awaitable<http::Response> {
          co_return http::json_response(200, R"({"status":"ok"})");
        },
        http::Access::public_route);
    router.add(
        http::Method::get, "/readyz",
        [this](http::Request&) -> asio::awaitable<http::Response> {
          // Readiness is the process's ability to serve (issue 27.6): a load balancer that
          // dropped the whole site because one module is down would take the others with
          // it. 503 only while shutting down or when no module serves; each module's state
          // (up, degraded, down) and why are in the body, /metrics and the dashboard.
          nlohmann::json modules = nlohmann::json::object();
          int serving_modules = 0;
          bool all_up = true;
          for (const auto& slot : slots) {
            nlohmann::json entry;
            if (*slot->up) {
              auto health = slot->module->health();
              const char* state = !health.up ? "down" : health.degraded ? "degraded" : "up";
              entry = {{"state", state}, {"detail", health.detail}};
              serving_modules += health.up ? 1 : 0;
              all_up = all_up && health.up && !health.degraded;
            } else {
              entry = {{"state", "down"}, {"detail", slot->reason()}};
              all_up = false;
            }
            modules[slot->config->name] = entry;
          }
          const bool ready = !shutting_down.load() && serving_modules > 0;
          const char* status = !ready ? "not_ready" : all_up ? "ready" : "degraded";
          nlohmann::json body = {{"status", status}, {"modules", modules}};
          co_return http::json_response(ready ? 200 : 503,
                                        body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        },
        http::Access::public_route);
    router.add(
        http::Method::get, "/metrics",
        [this](http::Request& request) -> asio::awaitable<http::Response> {
          // Not for everyone: the series show login outcomes, admin traffic and dead
          // letters. (No label carries personal data: routes are patterns, never paths.)
          switch (http::metrics_access(request, metrics_token)) {
            case http::MetricsAccess::allowed: break;
            case http::MetricsAccess::needs_token: {
              auto refused = http::problem(401, "unauthorized", "Unauthorized",
                                           "the metrics need the bearer token of server.metrics_token_file");
              refused.set_header("WWW-Authenticate", R"(Bearer realm="townhall-metrics")");
              co_return refused;
            }
            case http::MetricsAccess::refused:
              co_return http::problem(403, "forbidden", "Forbidden",
                                      "the metrics are served to clients on this host only (not through a proxy); "
                                      "configure server.metrics_token_file to scrape them from elsewhere");
          }
          http::Response response;
          response.content_type = "text/plain; version=0.0.4; charset=utf-8";
          response.body = metrics.render();
          co_return response;
        },
        http::Access::public_route);
  }

  void register_metrics() {
    auto& module_up =
        metrics.gauge("townhall_module_up", "1 when the module is serving, 0 when it is down", {"module"});
    auto& module_degraded = metrics.gauge(
        "townhall_module_degraded", "1 when the module serves but part of it is unavailable (see /readyz)", {"module"});
    metrics.add_collector([this, &module_up, &module_degraded] {
      for (const auto& slot : slots) {
        auto health = *slot->up ? slot->module->health() : ModuleHealth{false, {}};
        module_up.with({slot->config->name}).set(health.up ? 1 : 0);
        module_degraded.with({slot->config->name}).set(health.up && health.degraded ? 1 : 0);
      }
    });
  }

  // Stops the bus, the modules (reverse order) and their writers; files close last.
  void close() {
    if (closed) return;
    closed = true;
    if (bus) {
      // Apply what is committed before the consumers stop, so caches are current after a
      // restart (it would be applied then anyway: the outbox keeps it).
      auto flush_limit = std::min<std::chrono::milliseconds>(config.server.shutdown_grace, std::chrono::seconds(5));
      if (!bus->flush(flush_limit)) spdlog::warn("bus: events still pending at shutdown; applied on the next start");
      bus->stop();
    }
    for (auto it = slots.rbegin(); it != slots.rend(); ++it) {
      auto& slot = **it;
      if (*slot.up) {
        try {
          slot.writer->drain();
          slot.module->stop();
          spdlog::info("module {} stopped", slot.config->name);
        } catch (const std::exception& error) {
          spdlog::error("module {} failed to stop cleanly: {}", slot.config->name, error.what());
        }
        *slot.up = false;
      }
      slot.writer->stop();
    }
  }

  void finish(bool drained) {
    if (!drained) spdlog::warn("shutdown grace period over with requests still in flight; closing them");
    if (retry_timer) retry_timer->cancel();
    if (consistency_timer) consistency_timer->cancel();
    if (history_timer) history_timer->cancel();
    close();
    if (signals) {
      boost::system::error_code ignored;
      signals->cancel(ignored);
    }
    io.stop();
  }

  void shutdown() {
    if (shutting_down.exchange(true)) return;
    spdlog::info("shutting down: no new connections, draining in-flight requests");
    server->shutdown(config.server.shutdown_grace,
                     [this](bool drained) { asio::post(io, [this, drained] { finish(drained); }); });
  }
};

Application::Application(config::Config config, Options options)
    : impl_(std::make_unique<Impl>(std::move(config), options)) {}

Application::~Application() {
  if (impl_->started) {
    request_shutdown();
    wait();
  }
  impl_->close();
  // Then members go in reverse declaration order: the server and io_context (with any
  // suspended request) first, then the modules, the bus, and the metrics they report to.
  impl_->server.reset();
  impl_->signals.reset();
  impl_->retry_timer.reset();
  impl_->consistency_timer.reset();
  impl_->history_timer.reset();
}

void Application::open() {
  impl_->register_metrics();
  impl_->open();
}

std::uint16_t Application::start() {
  auto& impl = *impl_;
  impl.metrics_token = load_metrics_token(impl.config);
  open();
  impl.add_ops_routes();
  impl.document_ops_routes();
  add_bus_admin_routes(impl.router, *impl.bus, [&impl](std::string_view module) -> db::Writer* {
    for (auto& slot : impl.slots)
      if (slot->config->name == module) return slot->writer.get();
    return nullptr;
  });
  add_consistency_admin_routes(
      impl.router,
      [&impl](std::optional<std::string> module, bool repair) {
        return impl.run_consistency(std::move(module), repair);
      },
      [&impl]() -> std::optional<consistency::Report> {
        std::lock_guard lock(impl.last_check_mutex);
        return impl.last_check;
      });
  add_bus_history_route(impl.router, impl.lag_history);
  add_registry_admin_route(impl.router, impl.config);
  add_dashboard_routes(impl.router);
  document_admin_routes(impl.router);
  std::vector<Gateway::ModuleGate> gates;
  for (auto& slot : impl.slots) {
    slot->module->add_routes(impl.router, slot->config->route_prefix);
    gates.push_back({slot->config->name, slot->config->route_prefix, slot->up});
  }
  std::unique_ptr<http::RateLimiter> limiter;
  const auto& rate = impl.config.server.rate_limit;
  if (rate.enabled) limiter = std::make_unique<http::RateLimiter>(rate.requests_per_second, rate.burst);
  Gateway::Authenticator authenticator;
  if (auto* auth_api = impl.apis.auth)
    authenticator = [auth_api](std::string_view token, const std::string& request_id) {
      return auth_api->authenticate(CallContext::as_service("gateway", request_id, std::chrono::seconds(5)),
                                    std::string(token));
    };
  impl.gateway = std::make_unique<Gateway>(impl.router, std::move(limiter), std::move(gates), std::move(authenticator));

  impl.server = std::make_unique<http::Server>(
      impl.io, impl.config.server.http,
      [gateway = impl.gateway.get()](http::Request& request) { return gateway->dispatch(request); }, impl.metrics);
  impl.repair_after_rewinds();
  auto port = impl.server->listen();
  impl.server->start();
  impl.retry_timer = std::make_unique<asio::steady_timer>(impl.io);
  impl.schedule_retry();
  impl.consistency_timer = std::make_unique<asio::steady_timer>(impl.io);
  impl.schedule_consistency();
  impl.history_timer = std::make_unique<asio::steady_timer>(impl.io);
  impl.lag_history.record(impl.bus->measure(), std::chrono::system_clock::now());
  impl.schedule_history_sample();

  if (impl.options.handle_signals) {
    impl.signals = std::make_unique<asio::signal_set>(impl.io, SIGINT, SIGTERM);
    impl.signals->async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (ec) return;
      spdlog::info("received signal {}", signal_number);
      impl_->shutdown();
    });
  }
  int thread_count = std::max(1, impl.config.server.threads);
  for (int i = 0; i < thread_count; ++i) {
    impl.threads.emplace_back([&impl] {
      for (;;) {
        try {
          impl.io.run();
          return;
        } catch (const std::exception& error) {
          spdlog::error("unhandled exception on a network thread: {}", error.what());
        }
      }
    });
  }
  impl.started = true;
  spdlog::info("listening on http://{}:{}", impl.config.server.http.address, port);
  return port;
}

void Application::wait() {
  std::lock_guard lock(impl_->done_mutex);
  for (auto& thread : impl_->threads)
    if (thread.joinable()) thread.join();
  impl_->threads.clear();
}

void Application::request_shutdown() {
  if (!impl_->server) return;
  asio::post(impl_->io, [impl = impl_.get()] { impl->shutdown(); });
}

bus::Bus& Application::bus() { return *impl_->bus; }

Result<consistency::Report> Application::check_consistency(std::optional<std::string> module, bool repair) {
  return run_blocking(impl_->run_consistency(std::move(module), repair));
}

http::Router& Application::router() { return impl_->router; }
metrics::Registry& Application::metrics() { return impl_->metrics; }
const config::Config& Application::config() const { return impl_->config; }

std::vector<ModuleState> Application::module_states() const {
  std::vector<ModuleState> out;
  for (const auto& slot : impl_->slots)
    out.push_back({slot->config->name, slot->config->route_prefix, slot->up->load(), slot->reason()});
  return out;
}

}  // namespace townhall::app
