#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <boost/version.hpp>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "townhall/app/application.hpp"
#include "townhall/platform/data_lock.hpp"

namespace townhall::app {
namespace {

constexpr const char* kVersion = TOWNHALL_VERSION;

constexpr const char* kUsage = R"(usage: townhall <command> [options]

Commands:
  serve      run the HTTP server with every module in the registry (or, split,
             one process's: --modules)
  migrate    apply pending database migrations to every module file, then exit
  dlq        list or replay dead letters (events a module gave up on)
  backup     copy every file the data directory needs into a directory, online
  restore    install a backup into the data directory (the server stopped)
  admin      administration: create-user (an employee with a role),
             reset-password (a single-use password reset token for an account)
  revenue    revenue jobs: expire-licenses (run the daily license expiry now),
             mark-overdue (mark open invoices past their due date overdue now)
  registry   print the registry: --graph (modules, topics, Api dependencies as Mermaid);
             --deploy DIR: a split deployment's nginx site, units and broker settings
  check      compare every cache with its source (--repair resyncs what differs)
  version    print the version and exit

Options for every command:
  --config FILE     registry file (default: the built-in config/townhall.json)
  --data-dir DIR    where the module files live (env TOWNHALL_DATA_DIR; default ./data)
  --help            show help for the command

Run 'townhall <command> --help' for a command's own options.
)";

constexpr const char* kServeUsage =
    R"(usage: townhall serve [--config FILE] [--data-dir DIR] [--port P] [--demo] [--modules M,M...]

Runs the server until SIGTERM or SIGINT, then shuts down gracefully.
  --port P      listen port, 0 for any free port (env TOWNHALL_PORT; default from the registry,
                or with --modules from the process's entry in the deployment section)
  --demo        seed demo data on start (each module seeds what it owns)
  --modules L   run one process of a split deployment: L (comma-separated) must be exactly
                the modules of one process in the registry's deployment section, and
                bus.transport the broker; the other modules run in other processes
                (README "Run split across machines"). Without it every module runs here.
)";

constexpr const char* kMigrateUsage = R"(usage: townhall migrate [--init] [--config FILE] [--data-dir DIR]

Applies pending migrations to every module file and reports, per module, what it did.
Exits 1 when a module could not be migrated (e.g. a tampered or missing migration).
  --init        create the installation (the data directory and its module files)
                when DIR holds none; without it a directory with no module file is
                refused, so a command run from the wrong folder creates nothing
)";

constexpr const char* kDlqUsage = R"(usage: townhall dlq list [--module M] [--config FILE] [--data-dir DIR]
       townhall dlq replay ID --module M [--config FILE] [--data-dir DIR]
       townhall dlq replay --all [--module M] [--config FILE] [--data-dir DIR]
       townhall dlq discard ID --module M [--config FILE] [--data-dir DIR]

list     prints every dead letter: id, module, subscription, event id, attempts,
         last failure, state (pending, replayed or discarded) and error
replay   applies dead letters again with their subscription's handler (after the
         handler or the data was fixed); a replayed letter is kept, marked replayed.
         Exits 1 when any replay failed.
discard  marks a pending dead letter discarded: its event is never applied (it was
         wrong, or its effect was made by hand); the letter is kept, marked.
)";

constexpr const char* kBackupUsage =
    R"(usage: townhall backup --out DIR [--prune-days N] [--config FILE] [--data-dir DIR]

Copies every file the data directory needs to be whole into DIR (created when missing),
while a server may be running: each module file with SQLite's online backup (one
consistent snapshot of the file, checked with PRAGMA integrity_check, a single file
with no -wal) and auth's key file (without it no national id can be read), then
DIR/manifest.json (each file's size, SHA-256 and schema; the Townhall version; the
time), then reads every file back against the manifest. Nothing in DIR is overwritten.
Restore with `townhall restore --from DIR`. Exits 1 when anything was not backed up.
  --prune-days N  after a successful backup, remove the backups beside DIR (in its parent
                  directory, only those made by townhall backup) older than N days
)";

constexpr const char* kRestoreUsage =
    R"(usage: townhall restore --from DIR [--module M] [--config FILE] [--data-dir DIR]

Installs the backup in DIR (made by `townhall backup`) into the data directory, with the
server stopped (refused while one holds the directory). First verifies the manifest and
every file it installs: size, SHA-256, integrity_check, and a schema this version knows.
Then each file the backup replaces (with its -wal/-shm) is moved into
DATA_DIR/replaced-<time>/, and the backup's file is installed owner-only (0600; the
directory 0700, created when missing, e.g. on a new machine). Prints what it did.
  --module M    restore module M's files alone (auth: auth.db with its key); the other
                modules catch up with it when the server starts
Exits 1 when the backup does not verify or a file could not be installed.
)";

constexpr const char* kAdminUsage =
    R"(usage: townhall admin create-user --email E --password P --name N --role ROLE [--department CODE]
                                  [--config FILE] [--data-dir DIR]
       townhall admin reset-password --email E [--config FILE] [--data-dir DIR]

create-user     creates an employee with one role (admin, clerk, permits_reviewer,
                revenue_clerk, parks_staff), creating the department when it does not
                exist. --password - reads the password from the first line of stdin
                (keeps it out of the process list and shell history).
reset-password  prints a single-use password reset token for the account (citizen or
                employee) with email E, valid for modules.auth.settings.
                password_reset_ttl_seconds (30 min); it replaces the account's unused
                tokens. Hand it to the account's owner, who sets a new password with
                POST /api/v1/auth/password-resets/confirm {token, new_password}.
Both with the server stopped (a running server holds the data directory; there, staff
issue reset tokens with POST /api/v1/auth/password-resets).
)";

constexpr const char* kRevenueUsage = R"(usage: townhall revenue expire-licenses [--config FILE] [--data-dir DIR]
       townhall revenue mark-overdue [--config FILE] [--data-dir DIR]

expire-licenses: expires every active business license whose term has passed
(license.expired each) and lapses every approved one whose fee is unpaid past its due
date (license.lapsed, its invoice voided), as the server's daily job does. A running
server runs the job itself and through POST <revenue prefix>/business-licenses/expire
(revenue staff).
mark-overdue: marks every open invoice whose due date (a tax bill's instalment) has
passed overdue (invoice.overdue each, which notify turns into a notice at the next
start), as the server's daily job does; the invoice stays payable.
Both with the server stopped.
)";

constexpr const char* kRegistryUsage = R"(usage: townhall registry --graph [--config FILE]
       townhall registry --deploy DIR [--hosts PROCESS=HOST,...] [--config FILE]

--graph   prints the registry's modules (file, route prefix), the topics each consumes
          and from which module, and the Api dependencies, as a Mermaid flowchart.
          docs/modules.md embeds it; `make docs` regenerates it and `make test` fails
          when it is stale.
--deploy  writes the infrastructure of the registry's split deployment (its deployment
          section) into DIR (created; files there are replaced): nginx/townhall.conf (the
          front door, each module's route prefix to the process that serves it),
          systemd/townhall-PROCESS.service (one hardened unit per process),
          rabbitmq/ (rabbitmq.conf, setup.sh: vhost, user, stream retention policy) and
          README.md for the operator. --hosts: the host nginx reaches each process at
          (default: the process's address in the deployment section).
)";

constexpr const char* kCheckUsage = R"(usage: townhall check [--module M] [--repair] [--config FILE] [--data-dir DIR]

Compares every cache (or module M's) with its source through the source's Api: range
digests of (id, event_version), bisected to the ids that differ. Prints the report as
JSON; exits 0 when the caches equal their sources (or --repair resynced them), 1 when
they differ or a check could not finish. With the server stopped; a running server
runs it on a schedule and through POST /admin/consistency.
)";

constexpr const char* kVersionUsage = R"(usage: townhall version

Prints the version of townhall and of the libraries it was built with.
)";

struct Parsed {
  std::string command;
  std::optional<std::filesystem::path> config_file;
  config::Overrides overrides;
  bool demo = false;
  bool help = false;
  std::string dlq_action;                           // list | replay | discard
  std::optional<std::string> module;                // --module
  std::optional<std::int64_t> letter_id;            // replay ID
  bool all = false;                                 // replay --all, check --repair
  bool init = false;                                // migrate --init
  std::string admin_action;                         // create-user, expire-licenses, mark-overdue, --graph
  std::optional<std::filesystem::path> backup_dir;  // backup --out, restore --from
  std::optional<int> prune_days;                    // backup --prune-days
  std::map<std::string, std::string> admin_options;
  std::optional<std::filesystem::path> deploy_dir;  // registry --deploy
  std::map<std::string, std::string> hosts;         // registry --hosts process=host
};

// "a,b,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// True when the data directory holds at least one of the registry's module files.
bool has_installation(const config::Config& config) {
  std::error_code ignored;
  for (const auto& module : config.modules)
    if (std::filesystem::exists(config.data_dir / module.db_file, ignored)) return true;
  return false;
}

int usage_error(const std::string& message, const char* usage) {
  std::cerr << "townhall: " << message << "\n\n" << usage;
  return 2;
}

int run_dlq(const config::Config& config, const Parsed& parsed) {
  if (parsed.module && !config.module(*parsed.module)) {
    std::cerr << "townhall: no module '" << *parsed.module << "' in the registry\n";
    return 2;
  }
  std::vector<std::string> errors;
  auto letters = list_dead_letters(config, parsed.module, errors);
  for (const auto& error : errors) std::cerr << "townhall: cannot read " << error << "\n";
  if (parsed.dlq_action == "list") {
    std::cout << "ID\tMODULE\tSUBSCRIPTION\tEVENT\tATTEMPTS\tLAST_FAILED_AT\tSTATE\tERROR\n";
    for (const auto& l : letters)
      std::cout << l.id << "\t" << l.module << "\t" << l.subscription << "\t" << l.event_id << "\t" << l.attempts
                << "\t" << l.last_failed_at << "\t" << l.state() << "\t" << l.error << "\n";
    std::cout << letters.size() << " dead letter(s)\n";
    return errors.empty() ? 0 : 1;
  }

  // Replay needs the modules' handlers: build the modules and the bus (consumers open,
  // no subscription runs), no network. Only one process writes the data directory: with
  // a server running, the replay goes through its admin API.
  Application application(config, Application::Options{.demo = false, .handle_signals = false, .consume = false});
  try {
    application.open();
  } catch (const db::DataDirInUse& error) {
    std::cerr << "townhall: " << error.what() << ".\n"
              << "A running server applies dead letters itself: use its dashboard (http://"
              << config.server.http.address << ":" << config.server.http.port
              << "/admin/) or its admin API as an admin,\n"
              << "  curl -X POST -H 'Authorization: Bearer <admin token>' \\\n"
              << "    http://" << config.server.http.address << ":" << config.server.http.port
              << "/admin/dead-letters/<module>/<id>/" << parsed.dlq_action << "\n"
              << "(list them with `townhall dlq list`), or stop the server and run this command again.\n";
    return 1;
  }
  auto& bus = application.bus();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto consumer_up = [&](const std::string& module) {
    for (;;) {
      bool known = false;
      for (const auto& feed : bus.status()) {
        if (feed.consumer != module) continue;
        known = true;
        if (feed.consumer_up) return true;
      }
      if (!known || std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  const bool discard = parsed.dlq_action == "discard";
  int failed = 0, replayed = 0;
  for (const auto& letter : letters) {
    if (letter.state() != "pending") continue;
    if (parsed.letter_id && letter.id != *parsed.letter_id) continue;
    consumer_up(letter.module);
    auto result = discard ? bus.discard(letter.module, letter.id) : bus.replay(letter.module, letter.id);
    if (result) {
      ++replayed;
      std::cout << (discard ? "discarded " : "replayed ") << letter.module << " #" << letter.id << " ("
                << letter.event_id << ")\n";
    } else {
      ++failed;
      std::cout << "FAILED " << letter.module << " #" << letter.id << " (" << letter.event_id
                << "): " << result.error().message << "\n";
    }
  }
  if (parsed.letter_id && replayed + failed == 0) {
    std::cout << "no pending dead letter " << *parsed.letter_id << " in " << *parsed.module << "\n";
    return 1;
  }
  std::cout << replayed << (discard ? " discarded, " : " replayed, ") << failed << " failed\n";
  return failed == 0 && errors.empty() ? 0 : 1;
}

// Runs `command` holding the data directory's lock; another process holding it is an
// error naming its pid (exit 1).
// `when_in_use` says what to do instead (by default: stop the server).
template <class F>
int with_data_dir_lock(const config::Config& config, F command, const std::string& when_in_use = "stop it first") {
  std::unique_ptr<db::DataDirLock> lock;
  try {
    lock = std::make_unique<db::DataDirLock>(config.data_dir);
  } catch (const db::DataDirInUse& error) {
    std::cerr << "townhall: " << error.what() << "; " << when_in_use << "\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "townhall: " << error.what() << "\n";
    return 1;
  }
  return command();
}

int run_create_user(const config::Config& config, const Parsed& parsed) {
  auto& options = parsed.admin_options;
  auth::StaffUser user{options.at("email"), options.at("password"), options.at("name"), options.at("role"),
                       std::nullopt};
  if (user.password == "-" && !std::getline(std::cin, user.password)) {
    std::cerr << "townhall: no password on stdin\n";
    return 2;
  }
  if (auto it = options.find("department"); it != options.end()) {
    std::string code = it->second;
    for (auto& c : code)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    user.department_code = code;
  }
  try {
    auto created = create_staff_user(config, user);
    if (!created) {
      std::cerr << "townhall: cannot create user: " << created.error().message << "\n";
      return created.error().code == Errc::invalid_argument || created.error().code == Errc::unprocessable ||
                     created.error().code == Errc::conflict
                 ? 2
                 : 1;
    }
    if (created->department_created) std::cout << "created department " << *user.department_code << "\n";
    std::cout << "created employee " << created->id << " <" << user.email << "> with role " << user.role << "\n";
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "townhall: cannot create user: " << error.what() << "\n";
    return 1;
  }
}

int run_reset_password(const config::Config& config, const Parsed& parsed) {
  const auto& email = parsed.admin_options.at("email");
  try {
    auto issued = issue_password_reset(config, email);
    if (!issued) {
      std::cerr << "townhall: cannot issue a password reset: " << issued.error().message << "\n";
      return issued.error().code == Errc::invalid_argument || issued.error().code == Errc::not_found ? 2 : 1;
    }
    std::cout << "password reset token for " << issued->account << " <" << email << ">, valid until "
              << issued->expires_at << " (single use; shown only now):\n"
              << issued->token << "\n"
              << "The account's owner sets a new password with POST /api/v1/auth/password-resets/confirm "
                 "{\"token\": \"...\", \"new_password\": \"...\"}; that ends every session of the account.\n";
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "townhall: cannot issue a password reset: " << error.what() << "\n";
    return 1;
  }
}

// What to do instead of reset-password when a server holds the data directory.
std::string reset_password_on_the_server(const config::Config& config) {
  return "a running server issues reset tokens itself: as staff (citizens:write for a citizen, auth:admin for an "
         "employee),\n  curl -X POST -H 'Authorization: Bearer <token>' -d '{\"email\": \"...\"}' \\\n    http://" +
         config.server.http.address + ":" + std::to_string(config.server.http.port) +
         "/api/v1/auth/password-resets\n(or stop the server and run this command again)";
}

}  // namespace

int run_cli(int argc, char** argv, std::function<void(std::string_view point)> fault_hook) {
  db::restrict_new_files();  // before anything is created: data, keys and backups are owner-only
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("missing command", kUsage);
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return 0;
  }

  Parsed parsed;
  parsed.command = args[0];
  static const std::map<std::string, const char*> usages{
      {"serve", kServeUsage},       {"migrate", kMigrateUsage}, {"dlq", kDlqUsage},         {"backup", kBackupUsage},
      {"restore", kRestoreUsage},   {"admin", kAdminUsage},     {"version", kVersionUsage}, {"revenue", kRevenueUsage},
      {"registry", kRegistryUsage}, {"check", kCheckUsage}};
  auto usage_it = usages.find(parsed.command);
  if (usage_it == usages.end()) return usage_error("unknown command '" + parsed.command + "'", kUsage);
  const char* usage = usage_it->second;

  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](const std::string& name) -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      (void)name;
      return args[++i];
    };
    if (arg == "--help" || arg == "-h") {
      parsed.help = true;
    } else if (parsed.command != "version" && arg == "--config") {
      auto v = value(arg);
      if (!v) return usage_error("--config needs a file", usage);
      parsed.config_file = *v;
    } else if (parsed.command != "version" && arg == "--data-dir") {
      auto v = value(arg);
      if (!v) return usage_error("--data-dir needs a directory", usage);
      parsed.overrides.data_dir = *v;
    } else if (parsed.command == "serve" && arg == "--port") {
      auto v = value(arg);
      if (!v) return usage_error("--port needs a number", usage);
      try {
        parsed.overrides.port = config::parse_port(*v);
      } catch (const config::ConfigError& error) {
        return usage_error(error.what(), usage);
      }
    } else if (parsed.command == "migrate" && arg == "--init") {
      parsed.init = true;
    } else if (parsed.command == "serve" && arg == "--demo") {
      parsed.demo = true;
    } else if (parsed.command == "dlq" && i == 1 && (arg == "list" || arg == "replay" || arg == "discard")) {
      parsed.dlq_action = arg;
    } else if (parsed.command == "serve" && arg == "--modules") {
      auto v = value(arg);
      if (!v || split_list(*v).empty()) return usage_error("--modules needs a comma-separated list of modules", usage);
      parsed.overrides.modules = split_list(*v);
    } else if (parsed.command == "registry" && arg == "--graph") {
      parsed.admin_action = arg;
    } else if (parsed.command == "registry" && arg == "--deploy") {
      auto v = value(arg);
      if (!v || v->empty()) return usage_error("--deploy needs a directory", usage);
      parsed.admin_action = arg;
      parsed.deploy_dir = *v;
    } else if (parsed.command == "registry" && arg == "--hosts") {
      auto v = value(arg);
      if (!v) return usage_error("--hosts needs PROCESS=HOST,...", usage);
      for (const auto& item : split_list(*v)) {
        auto equals = item.find('=');
        if (equals == 0 || equals == std::string::npos || equals + 1 == item.size())
          return usage_error("--hosts: expected PROCESS=HOST, got '" + item + "'", usage);
        parsed.hosts[item.substr(0, equals)] = item.substr(equals + 1);
      }
    } else if (parsed.command == "revenue" && i == 1 && (arg == "expire-licenses" || arg == "mark-overdue")) {
      parsed.admin_action = arg;
    } else if (parsed.command == "admin" && i == 1 && (arg == "create-user" || arg == "reset-password")) {
      parsed.admin_action = arg;
    } else if (parsed.command == "admin" && parsed.admin_action == "reset-password" && arg == "--email") {
      auto v = value(arg);
      if (!v) return usage_error(arg + " needs a value", usage);
      parsed.admin_options[arg.substr(2)] = *v;
    } else if (parsed.command == "admin" && parsed.admin_action == "create-user" &&
               (arg == "--email" || arg == "--password" || arg == "--name" || arg == "--role" ||
                arg == "--department")) {
      auto v = value(arg);
      if (!v) return usage_error(arg + " needs a value", usage);
      parsed.admin_options[arg.substr(2)] = *v;
    } else if (parsed.command == "backup" && arg == "--out") {
      auto v = value(arg);
      if (!v || v->empty()) return usage_error("--out needs a directory", usage);
      parsed.backup_dir = *v;
    } else if (parsed.command == "backup" && arg == "--prune-days") {
      auto v = value(arg);
      int days = 0;
      if (!v || v->empty() || v->size() > 5 || v->find_first_not_of("0123456789") != std::string::npos ||
          (days = std::stoi(*v)) < 1)
        return usage_error("--prune-days needs a number of days, at least 1", usage);
      parsed.prune_days = days;
    } else if (parsed.command == "restore" && arg == "--from") {
      auto v = value(arg);
      if (!v || v->empty()) return usage_error("--from needs a backup directory", usage);
      parsed.backup_dir = *v;
    } else if (parsed.command == "check" && arg == "--repair") {
      parsed.all = true;
    } else if ((parsed.command == "dlq" || parsed.command == "check" || parsed.command == "restore") &&
               arg == "--module") {
      auto v = value(arg);
      if (!v) return usage_error("--module needs a module name", usage);
      parsed.module = *v;
    } else if (parsed.command == "dlq" && parsed.dlq_action == "replay" && arg == "--all") {
      parsed.all = true;
    } else if (parsed.command == "dlq" && (parsed.dlq_action == "replay" || parsed.dlq_action == "discard") &&
               !parsed.letter_id && !arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos &&
               arg.size() < 18) {
      parsed.letter_id = std::stoll(arg);
    } else {
      return usage_error("unknown option '" + arg + "' for " + parsed.command, usage);
    }
  }
  if (parsed.help) {
    std::cout << usage;
    return 0;
  }
  if (parsed.command == "dlq") {
    if (parsed.dlq_action.empty()) return usage_error("dlq needs 'list', 'replay' or 'discard'", usage);
    if (parsed.dlq_action == "discard" && (!parsed.letter_id || !parsed.module))
      return usage_error("dlq discard needs an ID and --module", usage);
    if (parsed.dlq_action == "replay" && parsed.all == parsed.letter_id.has_value())
      return usage_error("dlq replay needs either an ID or --all", usage);
    if (parsed.letter_id && !parsed.module) return usage_error("dlq replay ID needs --module", usage);
  }

  if (parsed.command == "backup" && !parsed.backup_dir) return usage_error("backup needs --out DIR", usage);
  if (parsed.command == "restore" && !parsed.backup_dir) return usage_error("restore needs --from DIR", usage);

  if (parsed.command == "admin") {
    if (parsed.admin_action.empty()) return usage_error("admin needs 'create-user' or 'reset-password'", usage);
    if (parsed.admin_action == "reset-password" && !parsed.admin_options.contains("email"))
      return usage_error("reset-password needs --email", usage);
    if (parsed.admin_action == "create-user")
      for (const char* required : {"email", "password", "name", "role"})
        if (!parsed.admin_options.contains(required))
          return usage_error(std::string("create-user needs --") + required, usage);
  }

  if (parsed.command == "registry" && parsed.admin_action.empty())
    return usage_error("registry needs --graph or --deploy DIR", usage);
  if (parsed.command == "registry" && !parsed.hosts.empty() && parsed.admin_action != "--deploy")
    return usage_error("--hosts goes with --deploy", usage);
  if (parsed.command == "revenue" && parsed.admin_action.empty())
    return usage_error("revenue needs 'expire-licenses' or 'mark-overdue'", usage);

  if (parsed.command == "version") {
    std::cout << "townhall " << kVersion << " (SQLite " << sqlite3_libversion() << ", Boost " << BOOST_VERSION / 100000
              << "." << BOOST_VERSION / 100 % 1000 << ")\n";
    return 0;
  }

  config::Config config;
  try {
    config = config::load(parsed.config_file, default_registry(), parsed.overrides, known_modules());
  } catch (const config::ConfigError& error) {
    std::cerr << "townhall: invalid configuration: " << error.what() << "\n";
    return 2;
  }
  logging::init(config.logging);

  // Every command but serve, restore and migrate --init works on an existing
  // installation: run from the wrong folder, it must not quietly create an empty one
  // (and then report it consistent) but say where it looked (issue 27.8).
  const bool creates = parsed.command == "serve" || parsed.command == "restore" || parsed.command == "registry" ||
                       (parsed.command == "migrate" && parsed.init);
  if (!creates && !has_installation(config)) {
    std::string files;
    for (const auto& module : config.modules) files += (files.empty() ? "" : ", ") + module.db_file;
    std::cerr << "townhall: no Townhall installation in " << std::filesystem::absolute(config.data_dir).string()
              << " (none of " << files << " is there).\n"
              << "Name the data directory with --data-dir DIR (or TOWNHALL_DATA_DIR), or create one with "
                 "`townhall migrate --init --data-dir DIR` (`townhall serve` creates one too).\n";
    return 1;
  }

  if (parsed.command == "dlq") return run_dlq(config, parsed);
  if (parsed.command == "admin" && parsed.admin_action == "reset-password")
    return with_data_dir_lock(
        config, [&] { return run_reset_password(config, parsed); }, reset_password_on_the_server(config));
  if (parsed.command == "admin") return with_data_dir_lock(config, [&] { return run_create_user(config, parsed); });

  if (parsed.command == "registry" && parsed.admin_action == "--deploy") {
    std::vector<std::string> report;
    auto written = write_deployment(config, DeployRequest{*parsed.deploy_dir, parsed.hosts}, report);
    for (const auto& line : report) std::cout << line << "\n";
    if (!written) {
      std::cerr << "townhall: " << written.error().message << "\n";
      return written.error().code == Errc::invalid_argument ? 2 : 1;
    }
    return 0;
  }
  if (parsed.command == "registry") {
    std::cout << registry_graph(config);
    return 0;
  }

  if (parsed.command == "revenue") {
    return with_data_dir_lock(config, [&] {
      if (parsed.admin_action == "mark-overdue") {
        auto marked = mark_overdue_invoices(config);
        if (!marked) {
          std::cerr << "townhall: " << marked.error().message << "\n";
          return 1;
        }
        std::cout << *marked << " invoice(s) marked overdue\n";
        return 0;
      }
      auto expired = expire_business_licenses(config);
      if (!expired) {
        std::cerr << "townhall: " << expired.error().message << "\n";
        return 1;
      }
      std::cout << *expired << " business license(s) expired or lapsed\n";
      return 0;
    });
  }

  if (parsed.command == "check") {
    try {
      Application application(config, Application::Options{.handle_signals = false, .consume = false});
      application.open();  // takes the data directory's lock
      auto report = application.check_consistency(parsed.module, parsed.all);
      if (!report) {
        std::cerr << "townhall: " << report.error().message << "\n";
        return 2;
      }
      std::cout << consistency::to_json(*report).dump(2) << "\n";
      return report->consistent() ? 0 : 1;
    } catch (const db::DataDirInUse& error) {
      std::cerr << "townhall: " << error.what() << "; use POST /admin/consistency on the running server\n";
      return 1;
    } catch (const std::exception& error) {
      std::cerr << "townhall: " << error.what() << "\n";
      return 1;
    }
  }

  if (parsed.command == "backup") {
    std::vector<std::string> report;
    bool ok = backup_all(config, *parsed.backup_dir, report);
    if (ok && parsed.prune_days) prune_backups(*parsed.backup_dir, *parsed.prune_days, report);
    for (const auto& line : report) std::cout << line << "\n";
    return ok ? 0 : 1;
  }

  if (parsed.command == "restore") {
    std::vector<std::string> report;
    try {
      bool ok = restore_backup(config, RestoreRequest{*parsed.backup_dir, parsed.module}, report);
      for (const auto& line : report) std::cout << line << "\n";
      return ok ? 0 : 1;
    } catch (const db::DataDirInUse& error) {
      for (const auto& line : report) std::cout << line << "\n";
      std::cerr << "townhall: " << error.what() << "; stop the server first, then restore\n";
      return 1;
    }
  }

  if (parsed.command == "migrate") {
    return with_data_dir_lock(config, [&] {
      std::vector<std::string> report;
      bool ok = migrate_all(config, report);
      for (const auto& line : report) std::cout << line << "\n";
      return ok ? 0 : 1;
    });
  }

  // serve
  try {
    Application application(
        config, Application::Options{.demo = parsed.demo, .handle_signals = true, .fault_hook = std::move(fault_hook)});
    auto port = application.start();
    // Machine-readable line for scripts and tests that start the binary on port 0.
    logging::print("townhall listening on http://" + config.server.http.address + ":" + std::to_string(port));
    application.wait();
    spdlog::info("shutdown complete");
    return 0;
  } catch (const db::DataDirInUse& error) {
    std::cerr << "townhall: " << error.what() << "; one server per data directory\n";
    spdlog::critical("cannot serve: {}", error.what());
    return 1;
  } catch (const std::exception& error) {
    spdlog::critical("cannot serve: {}", error.what());
    return 1;
  }
}

}  // namespace townhall::app
