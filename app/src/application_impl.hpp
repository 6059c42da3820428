#pragma once

// What the parts of the composition root share (application.cpp, supervisor.cpp,
// consistency_runner.cpp, ops_routes.cpp, and the offline tools): the application's
// state and the way to a module file.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "admin_routes.hpp"
#include "gateway.hpp"
#include "module_table.hpp"
#include "townhall/app/application.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/data_lock.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/migrator.hpp"
#include "townhall/platform/module.hpp"
#include "townhall/platform/module_gate.hpp"
#include "townhall/platform/page_cursor.hpp"
#include "townhall/platform/server.hpp"
#include "townhall/platform/service_signing.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::app {

namespace asio = boost::asio;

// Opens a module's file (refusing one group or others can read); `metrics` may be null.
std::unique_ptr<db::ModuleDb> open_module_db(const config::Config& config, const config::Module& module,
                                             metrics::Registry* metrics);

// Brings a module file to the current schema; throws on any failure.
std::vector<db::AppliedMigration> migrate(db::ModuleDb& database);

// Throws config::ConfigError unless the registry's subscriptions of `module` and the
// ones its code makes agree both ways (registry.cpp).
void check_subscriptions_registered(const config::Config& config, const config::Module& module,
                                    const std::vector<bus::Subscription>& subscriptions);

// The bearer token /metrics requires (server.metrics_token_file), or "" when none is
// configured; throws when the file is unreadable, exposed or holds a weak token.
std::string load_metrics_token(const config::Config& config);

// An io_context run by a thread of its own until stop() (or destruction).
class IoThread {
 public:
  explicit IoThread(std::string name);
  ~IoThread() { stop(); }
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  asio::io_context& io() { return io_; }
  void stop();

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

// Something this process needs from another one (a split's remote Api, the broker), as
// /readyz reports it beside the modules.
struct RemoteCheck {
  std::string name;
  std::function<asio::awaitable<ModuleHealth>()> probe;
};

struct Application::Impl {
  // One module: its file, its writer thread, its gate and the module itself exist from
  // the start; whether it is up is its gate's (opened by the module once started).
  struct Slot {
    const config::Module* config = nullptr;
    std::shared_ptr<ModuleGate> gate;  // shared with the gateway; outlives the module
    std::unique_ptr<db::ModuleDb> database;
    std::unique_ptr<db::Writer> writer;
    std::unique_ptr<ModuleContext> context;
    std::unique_ptr<Module> module;
    std::atomic<bool> start_queued{false};  // a retried start waits on the starter thread
  };

  Impl(config::Config cfg, Options opts) : config(std::move(cfg)), options(opts) {}

  config::Config config;
  Options options;
  metrics::Registry metrics;
  std::unique_ptr<db::DataDirLock> data_lock;  // released last, after the files close
  std::unique_ptr<PageCursors> cursors;        // every module's list cursors (data_dir/cursor.key)
  // A process of a split without auth (serve --modules): auth's Api over HTTP, a client per
  // calling module (each signs with its own key), on a thread of their own. Declared before
  // the modules, which hold them, so they outlive them.
  std::unique_ptr<IoThread> api_clients;
  std::map<std::string, std::unique_ptr<auth::Api>> remote_auth;  // by calling module
  std::unique_ptr<bus::Bus> bus;
  std::vector<std::unique_ptr<Slot>> slots;
  BuiltApis apis;
  // What /readyz reports beside this process's modules: the Apis it reaches in other
  // processes (and the broker, once the bus has its transport).
  std::vector<RemoteCheck> remote_checks;
  http::Router router;
  std::unique_ptr<Gateway> gateway;
  asio::io_context io;
  std::unique_ptr<http::Server> server;
  // auth's internal listener (README "Internal API"): off unless the registry gives auth an
  // internal port; the verifier holds every calling module's key.
  std::unique_ptr<signing::Verifier> internal_verifier;
  std::unique_ptr<http::Server> internal_server;
  std::optional<std::uint16_t> internal_port;
  std::unique_ptr<asio::signal_set> signals;
  std::unique_ptr<asio::steady_timer> retry_timer;
  // Retried starts run here, never on the module's writer: a start may write through its
  // write path (revenue settles what a crash left pending), which needs the writer free.
  std::unique_ptr<db::Writer> starter;
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

  // Registered at start, so alert rules find them before the first check has run.
  struct ConsistencyMetrics {
    explicit ConsistencyMetrics(metrics::Registry& metrics);
    metrics::GaugeFamily& missing;
    metrics::GaugeFamily& stale;
    metrics::GaugeFamily& extra;
    metrics::CounterFamily& repaired;
    metrics::GaugeFamily& failed;
    metrics::GaugeFamily& last_run;
  };
  ConsistencyMetrics consistency_metrics{metrics};
  std::string metrics_token;  // server.metrics_token_file's; empty: local clients only

  // The modules' lifecycle (supervisor.cpp).
  bus::Options bus_options();
  void open_remote_apis();
  void open();
  bool try_start(Slot& slot);
  void schedule_retry();
  void close();

  // The consistency check (consistency_runner.cpp).
  asio::awaitable<Result<consistency::Report>> run_consistency(std::optional<std::string> module, bool repair);
  void record_consistency(const consistency::Report& report);
  void repair_after_rewinds();
  asio::awaitable<void> check_after_rewind(std::string module);
  void schedule_consistency();
  asio::awaitable<void> scheduled_check();

  // The ops routes and the modules' gauges (ops_routes.cpp).
  void document_ops_routes();
  void add_ops_routes();
  void register_metrics();

  // Serving and shutting down (application.cpp).
  void schedule_history_sample();
  void start_internal_listener();
  void finish(bool drained);
  void shutdown();
};

}  // namespace townhall::app
