#include "townhall/platform/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <stdexcept>

namespace townhall::logging {
namespace {

std::atomic<AccessLogFormat> g_access_format{AccessLogFormat::text};

}  // namespace

void init(const Options& options) {
  auto main = spdlog::get("townhall");
  if (!main) {
    main = spdlog::stderr_logger_mt("townhall");
    spdlog::set_default_logger(main);
  }
  main->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  main->set_level(spdlog::level::from_str(options.level));

  auto access = spdlog::get("access");
  if (!access) access = spdlog::stdout_logger_mt("access");
  g_access_format = options.access_log;
  if (options.access_log == AccessLogFormat::json)
    access->set_pattern("%v");
  else
    access->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z access %v");
  access->set_level(options.access_log == AccessLogFormat::off ? spdlog::level::off : spdlog::level::info);
  access->flush_on(spdlog::level::info);
}

std::shared_ptr<spdlog::logger> access_logger() {
  auto logger = spdlog::get("access");
  if (!logger) {
    init(Options{});
    logger = spdlog::get("access");
  }
  return logger;
}

AccessLogFormat access_log_format() { return g_access_format.load(); }

AccessLogFormat parse_access_log_format(std::string_view text) {
  if (text == "off") return AccessLogFormat::off;
  if (text == "text") return AccessLogFormat::text;
  if (text == "json") return AccessLogFormat::json;
  throw std::invalid_argument("access_log must be one of off, text, json");
}

}  // namespace townhall::logging
