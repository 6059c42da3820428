#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/platform/db.hpp"
#include "townhall/platform/logging.hpp"
#include "townhall/platform/server.hpp"

namespace townhall::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RateLimit {
  bool enabled = true;
  double requests_per_second = 20;
  double burst = 40;
};

struct Server {
  http::ServerOptions http;
  int threads = 2;
  std::chrono::milliseconds shutdown_grace{10'000};
  std::chrono::milliseconds module_retry{5'000};  // how often a down module is retried
  RateLimit rate_limit;
  // A file holding the bearer token /metrics requires (relative: to the data dir); empty:
  // no token, and /metrics answers clients on this host only (http::metrics_access).
  std::filesystem::path metrics_token_file;
};

// How a split deployment's processes carry events to each other (issue 23; README "Run
// split across machines"). local: one process, the bus reads the sources' files.
struct Transport {
  enum class Kind { local, rabbitmq };
  Kind kind = Kind::local;
  std::string url;                 // amqp://user:password@host:5672/vhost, inline
  std::filesystem::path url_file;  // or a file holding it (relative: data_dir): keeps the password out of the registry
  std::string stream_prefix = "townhall.";  // one stream per source module: <prefix><module>
};

// Event bus tuning (DESIGN.md §4); bus::Options is built from it.
struct Bus {
  int lanes = 4;
  int batch = 256;
  int window = 1024;  // newest events per source kept in memory for its subscriptions
  int max_attempts = 5;
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{5'000};
  std::chrono::milliseconds sweep_interval{1'000};
  std::chrono::hours retention{24 * 7};
  std::chrono::hours max_hold{24 * 30};  // longest a lagging subscription holds pruning back
  Transport transport = {};              // used only by a process of a split (serve --modules)
};

// The scheduled consistency check (README "Consistency check"): every cache against its source.
struct Consistency {
  std::chrono::milliseconds interval{std::chrono::hours(1)};  // 0: never on a schedule (still on demand)
  bool repair = true;                                         // the scheduled run resyncs what differs
};

struct Subscription {
  std::string topic;  // topic pattern, e.g. gov.auth.citizen or gov.auth.*
};

// A module's internal endpoint (DESIGN.md §9, README "Internal API"): where its Api
// listens for other processes, and the key it signs its own service calls with.
struct Internal {
  std::string address = "127.0.0.1";
  std::optional<std::uint16_t> port;       // set: the module's Api listens here (0: any free port)
  std::filesystem::path key_file;          // relative: to data_dir; empty: it signs no calls
  std::chrono::seconds replay_window{30};  // a signed call's timestamp may be this far off
};

struct Module {
  std::string name;
  std::string db_file;
  std::string route_prefix;
  std::vector<std::string> depends_on;
  std::vector<Subscription> subscriptions;
  nlohmann::json settings = nlohmann::json::object();  // the module's own section
  std::optional<Internal> internal;                    // absent: reached in-process only
};

// The service portal at / (app/portal/); a municipality with its own site turns it off.
struct Portal {
  bool enabled = true;
  std::string time_zone = "UTC";  // IANA zone the portal shows municipal dates in
};

// One process of a split deployment (README "Run split across machines"): its modules and
// its public HTTP listener, where it listens and where nginx reaches it.
struct Process {
  std::string name;
  std::vector<std::string> modules;  // in the registry's dependency order
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;
};

struct Config {
  Server server;
  std::filesystem::path data_dir = "data";
  db::Options database;
  Bus bus;
  Consistency consistency;
  logging::Options logging;
  Portal portal;
  std::vector<Module> modules;  // in dependency order (dependencies first)
  // The processes of a split deployment, each module served by exactly one; empty: none.
  // Only `serve --modules` runs one of them; without it every module runs in this process.
  std::vector<Process> deployment = {};
  // The deployment's process this one is (serve --modules); nullopt: every module here.
  std::optional<std::string> process = std::nullopt;

  const Module* module(std::string_view name) const;
  // Whether `module` runs in this process (every module when no process is selected).
  bool serves(std::string_view module) const;
  const Process* deployed(std::string_view process_name) const;
};

struct Overrides {
  std::optional<std::filesystem::path> data_dir;
  std::optional<std::uint16_t> port;
  // serve --modules: the modules of the deployment's process this one is.
  std::optional<std::vector<std::string>> modules = std::nullopt;
};

// Makes `config` the deployment's process whose modules are exactly `modules` (any order):
// sets config.process, and the public listener to that process's address and port. Refused
// (ConfigError, a message for the operator) without a deployment, with the local transport
// (a split needs the broker), for a name the registry has no module of, or when no process
// serves exactly these modules.
void select_process(Config& config, std::span<const std::string> modules);

// Parses and validates a registry document. `known_modules` are the modules compiled
// into this binary. Errors name the offending key path, e.g.
// "modules.permits.depends_on: unknown module 'billing'". Throws ConfigError.
Config parse(const nlohmann::json& document, std::span<const std::string_view> known_modules);

// Reads `file` (or `default_document`, the registry compiled into the binary, when no
// file is given), selects the process of `overrides.modules` (select_process), applies env
// (TOWNHALL_DATA_DIR, TOWNHALL_PORT) then the other `overrides`,
// validates, and checks that the data directory exists or can be created and is
// writable. Throws ConfigError.
Config load(const std::optional<std::filesystem::path>& file, std::string_view default_document,
            const Overrides& overrides, std::span<const std::string_view> known_modules);

std::uint16_t parse_port(std::string_view text);  // throws ConfigError

}  // namespace townhall::config
