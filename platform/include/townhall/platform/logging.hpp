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

std::shared_ptr<spdlog::logger> access_logger();
AccessLogFormat access_log_format();

AccessLogFormat parse_access_log_format(std::string_view text);  // throws on unknown

}  // namespace townhall::logging
