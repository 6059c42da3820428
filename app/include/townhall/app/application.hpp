#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/auth/module.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/config.hpp"
#include "townhall/platform/consistency.hpp"
#include "townhall/platform/http.hpp"

namespace townhall::metrics {
class Registry;
}

namespace townhall::app {

// The modules compiled into this binary.
std::span<const std::string_view> known_modules();

// The registry compiled in from config/townhall.json.
std::string_view default_registry();

struct ModuleState {
  std::string name;
  std::string route_prefix;
  bool up = false;
  std::string reason;  // why it is down
};

// The composition root: builds the modules in dependency order from the registry,
// serves HTTP, and shuts down in order (stop accepting, drain, stop modules in
// reverse, close files).
class Application {
 public:
  struct Options {
    bool demo = false;
    bool handle_signals = true;  // SIGTERM/SIGINT start a graceful shutdown
    // false: the bus opens its consumers (for dead-letter replays) but applies nothing
    // and prunes nothing (`townhall dlq replay`).
    bool consume = true;
    // Crash points of the modules and the bus (ModuleContext::fault_hook,
    // bus::Options::fault_hook): only the test build of the binary sets it.
    std::function<void(std::string_view point)> fault_hook = {};
  };

  Application(config::Config config, Options options);
  ~Application();
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  // Takes the data directory's lock (db::DataDirInUse when another process holds it),
  // builds the modules and the bus, opens, migrates and starts each module (one that
  // fails is down and retried; the rest go on). No network. For offline commands.
  void open();
  // open(), then binds the listener and starts the network threads. Returns the port.
  std::uint16_t start();
  // The port auth's internal listener bound (README "Internal API"), after start();
  // nullopt when the registry gives auth no internal port.
  std::optional<std::uint16_t> internal_port() const;
  // Blocks until the shutdown has completed.
  void wait();
  // Starts a graceful shutdown, as SIGTERM does. Safe from any thread.
  void request_shutdown();

  // Extra routes; only before start().
  http::Router& router();
  metrics::Registry& metrics();
  bus::Bus& bus();  // after open()
  // The consistency check now, waited for (after open(); the CLI's `townhall check`).
  // conflict while another check runs; not_found for an unknown module.
  Result<consistency::Report> check_consistency(std::optional<std::string> module, bool repair);
  std::vector<ModuleState> module_states() const;
  const config::Config& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Applies every pending migration of every configured module. Returns a line per module
// on `report`; false when any module failed.
bool migrate_all(const config::Config& config, std::vector<std::string>& report);

// `townhall backup`: an online copy of every file the data directory needs to be whole
// into `out_dir`: each module file through SQLite's backup API (one consistent snapshot
// per file, while a server may be writing, checked with PRAGMA integrity_check) and
// auth's key file (0600), then manifest.json (each file's size, SHA-256 and schema, the
// Townhall version and time), then every file read back against the manifest. Never
// overwrites; a line per file on `report`; false when anything was not backed up.
bool backup_all(const config::Config& config, const std::filesystem::path& out_dir, std::vector<std::string>& report);

// `townhall backup --prune-days N`, after a backup succeeded: removes the backups beside
// `made` (in its parent directory) older than `keep_days` by their manifest's time. Only
// directories with a townhall manifest are touched, never `made`. The removed ones.
std::vector<std::filesystem::path> prune_backups(const std::filesystem::path& made, int keep_days,
                                                 std::vector<std::string>& report);

// `townhall restore`: verifies a backup's manifest and every file it installs (size,
// SHA-256, integrity_check, a schema this binary knows), takes the data directory's
// lock (db::DataDirInUse while a server holds it; the directory is created 0700 when
// missing), moves the files it replaces (with their -wal/-shm) into
// DATA_DIR/replaced-<time>/ and installs the backup's (0600, flushed, renamed into
// place). Every module of the registry, or `module` alone (auth with its key).
struct RestoreRequest {
  std::filesystem::path from;
  std::optional<std::string> module;
};
bool restore_backup(const config::Config& config, const RestoreRequest& request, std::vector<std::string>& report);

// Dead letters of the configured modules (or of one), read from their files.
std::vector<bus::DeadLetter> list_dead_letters(const config::Config& config, const std::optional<std::string>& module,
                                               std::vector<std::string>& errors);

// `townhall admin create-user`: brings auth.db to the current schema, then creates the
// employee (and the department when missing). No server needs to run.
Result<auth::CreatedStaffUser> create_staff_user(const config::Config& config, const auth::StaffUser& user);

// `townhall admin reset-password`: brings auth.db to the current schema, then issues a
// password reset token for the account with `email`. No server may run.
Result<auth::IssuedPasswordReset> issue_password_reset(const config::Config& config, const std::string& email);

// `townhall registry --graph`: the modules, the topics each consumes from whom, and the
// Api dependencies, as a Mermaid flowchart (docs/modules.md embeds it).
std::string registry_graph(const config::Config& config);

// `townhall registry --deploy DIR --hosts process=host,...` (README "Run split across
// machines"): writes into `dir` the infrastructure of the registry's deployment section —
// nginx/townhall.conf (each module's route prefix to the process serving it; /, /admin,
// /metrics, /readyz, /healthz and /openapi.json to the front process: the one with the most
// modules, the first by name on a tie), systemd/townhall-<process>.service (one unit per
// process, made from deploy/townhall.service), rabbitmq/ (rabbitmq.conf, setup.sh: vhost,
// user, the streams' retention policy covering bus.max_hold_hours) and README.md. `hosts`:
// where nginx reaches each process (default: its address in the deployment section).
// invalid_argument without a deployment, with the local transport, for an unknown process
// or a host nginx cannot take; a line per file written on `report`.
struct DeployRequest {
  std::filesystem::path dir;
  std::map<std::string, std::string> hosts;
};
Result<Unit> write_deployment(const config::Config& config, const DeployRequest& request,
                              std::vector<std::string>& report);

// The same graph as data (GET /admin/registry, the dashboard draws it): every module,
// an "events" edge per subscription (source -> consumer, labelled with the topic) and
// an "api" edge per Api dependency (module -> the module whose Api it calls).
struct RegistryGraph {
  struct Node {
    std::string name, db_file, route_prefix;
  };
  struct Edge {
    std::string from, to, kind, label;
  };
  std::vector<Node> modules;
  std::vector<Edge> edges;
};
RegistryGraph registry_graph_model(const config::Config& config);

// `townhall revenue expire-licenses`: the revenue module's expiry job, run now on its file.
Result<std::int64_t> expire_business_licenses(const config::Config& config);
// `townhall revenue mark-overdue`: the revenue module's overdue invoice job, run now on its file.
Result<std::int64_t> mark_overdue_invoices(const config::Config& config);

// The `townhall` command line. Returns the process exit code. `fault_hook`: the crash
// points `serve` runs with (tests/soak/faulty_server.cpp; never in `townhall`).
int run_cli(int argc, char** argv, std::function<void(std::string_view point)> fault_hook = {});

}  // namespace townhall::app
