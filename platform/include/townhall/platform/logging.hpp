#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace townhall::logging {

enum class AccessLogFormat { off, text, json };

enum class LogFormat { text, json };

struct Options {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  // json: one object per line {"time","level","logger","message"} (journald, log shippers)
  LogFormat format = LogFormat::text;
  AccessLogFormat access_log = AccessLogFormat::text;
};

// Configures the default logger ("townhall", stderr) and the access logger ("access",
// stdout). Safe to call more than once; the last call wins.
void init(const Options& options);

// A line for the operator on stdout (the "listening" line, the demo accounts): as it is,
// or with `format` json one JSON object like a log line's (logger "townhall"), so that
// every line a json-configured server writes parses. Flushed at once.
void print(std::string_view message);

std::shared_ptr<spdlog::logger> access_logger();
AccessLogFormat access_log_format();

AccessLogFormat parse_access_log_format(std::string_view text);  // throws on unknown

}  // namespace townhall::logging
