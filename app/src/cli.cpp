#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <boost/version.hpp>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "townhall/app/application.hpp"

namespace townhall::app {
namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kUsage = R"(usage: townhall <command> [options]

Commands:
  serve      run the HTTP server with every module in the registry
  migrate    apply pending database migrations to every module file, then exit
  version    print the version and exit

Options for every command:
  --config FILE     registry file (default: the built-in config/townhall.json)
  --data-dir DIR    where the module files live (env TOWNHALL_DATA_DIR; default ./data)
  --help            show help for the command

Run 'townhall <command> --help' for a command's own options.
)";

constexpr const char* kServeUsage = R"(usage: townhall serve [--config FILE] [--data-dir DIR] [--port P] [--demo]

Runs the server until SIGTERM or SIGINT, then shuts down gracefully.
  --port P      listen port, 0 for any free port (env TOWNHALL_PORT; default from the registry)
  --demo        seed demo data on start (each module seeds what it owns)
)";

constexpr const char* kMigrateUsage = R"(usage: townhall migrate [--config FILE] [--data-dir DIR]

Applies pending migrations to every module file and reports, per module, what it did.
Exits 1 when a module could not be migrated (e.g. a tampered or missing migration).
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
};

int usage_error(const std::string& message, const char* usage) {
  std::cerr << "townhall: " << message << "\n\n" << usage;
  return 2;
}

}  // namespace

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("missing command", kUsage);
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return 0;
  }

  Parsed parsed;
  parsed.command = args[0];
  static const std::map<std::string, const char*> usages{
      {"serve", kServeUsage}, {"migrate", kMigrateUsage}, {"version", kVersionUsage}};
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
    } else if (parsed.command == "serve" && arg == "--demo") {
      parsed.demo = true;
    } else {
      return usage_error("unknown option '" + arg + "' for " + parsed.command, usage);
    }
  }
  if (parsed.help) {
    std::cout << usage;
    return 0;
  }

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

  if (parsed.command == "migrate") {
    std::vector<std::string> report;
    bool ok = migrate_all(config, report);
    for (const auto& line : report) std::cout << line << "\n";
    return ok ? 0 : 1;
  }

  // serve
  try {
    Application application(config, Application::Options{.demo = parsed.demo, .handle_signals = true});
    auto port = application.start();
    // Machine-readable line for scripts and tests that start the binary on port 0.
    std::cout << "townhall listening on http://" << config.server.http.address << ":" << port << std::endl;
    application.wait();
    spdlog::info("shutdown complete");
    return 0;
  } catch (const std::exception& error) {
    spdlog::critical("cannot serve: {}", error.what());
    return 1;
  }
}

}  // namespace townhall::app
