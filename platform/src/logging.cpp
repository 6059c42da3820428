#include "townhall/platform/logging.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "townhall/platform/time.hpp"

namespace townhall::logging {
namespace {

std::atomic<AccessLogFormat> g_access_format{AccessLogFormat::text};
std::atomic<LogFormat> g_format{LogFormat::text};
std::mutex g_stdout_mutex;

// One JSON object per line, the message escaped (invalid UTF-8 replaced), for journald
// and log shippers that parse structured lines.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json line = {
        {"time", utc::format(std::chrono::time_point_cast<std::chrono::system_clock::duration>(msg.time))},
        {"level",
         std::string(spdlog::level::to_string_view(msg.level).data(), spdlog::level::to_string_view(msg.level).size())},
        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
        {"message", std::string(msg.payload.data(), msg.payload.size())}};
    auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

void init(const Options& options) {
  auto main = spdlog::get("townhall");
  if (!main) {
    main = spdlog::stderr_logger_mt("townhall");
    spdlog::set_default_logger(main);
  }
  g_format = options.format;
  if (options.format == LogFormat::json)
    main->set_formatter(std::make_unique<JsonFormatter>());
  else
    main->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  main->set_level(spdlog::level::from_str(options.level));

  auto access = spdlog::get("access");
  if (!access) access = spdlog::stdout_logger_mt("access");
  // With every log line JSON, the access log's default ("text") is JSON too: a json
  // server writes nothing a parser would choke on (issue 27.10).
  auto access_format = options.access_log == AccessLogFormat::text && options.format == LogFormat::json
                           ? AccessLogFormat::json
                           : options.access_log;
  g_access_format = access_format;
  if (access_format == AccessLogFormat::json)
    access->set_pattern("%v");
  else
    access->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z access %v");
  access->set_level(options.access_log == AccessLogFormat::off ? spdlog::level::off : spdlog::level::info);
  access->flush_on(spdlog::level::info);
}

void print(std::string_view message) {
  std::lock_guard lock(g_stdout_mutex);
  if (g_format.load() == LogFormat::json) {
    nlohmann::json line = {
        {"time", utc::now()}, {"level", "info"}, {"logger", "townhall"}, {"message", std::string(message)}};
    std::fputs(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str(), stdout);
  } else {
    std::fwrite(message.data(), 1, message.size(), stdout);
  }
  std::fputc('\n', stdout);
  std::fflush(stdout);
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
