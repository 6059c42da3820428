#pragma once

// The release `townhall serve` as a child process on a loopback ephemeral port.
#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include "bench_util.hpp"
#include "client.hpp"
#include "support.hpp"

namespace townhall::bench {

class Server {
 public:
  // Starts it and waits until it listens and /readyz answers 200 (every module up).
  Server(const std::string& townhall, const std::filesystem::path& data_dir, const std::filesystem::path& config)
      : started_(Clock::now()),
        child_({townhall, "serve", "--port", "0", "--config", config.string(), "--data-dir", data_dir.string()}) {
    auto line = child_.wait_for_line("townhall listening on", std::chrono::minutes(10));
    if (!line) throw std::runtime_error("townhall serve did not start: " + child_.output());
    listening_s_ = seconds_since(started_);
    port_ = static_cast<unsigned short>(std::stoi(line->substr(line->rfind(':') + 1)));
    Client client(port_);
    while (client.get("/readyz").status != 200) {
      if (seconds_since(started_) > 600) throw std::runtime_error("townhall serve never ready");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ready_s_ = seconds_since(started_);
  }
  ~Server() { stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // SIGTERM and a graceful exit.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    child_.signal(SIGTERM);
    child_.wait_exit(std::chrono::minutes(2));
  }

  unsigned short port() const { return port_; }
  Clock::time_point started() const { return started_; }
  double listening_seconds() const { return listening_s_; }
  double ready_seconds() const { return ready_s_; }

 private:
  Clock::time_point started_;
  testing::ChildProcess child_;
  unsigned short port_ = 0;
  double listening_s_ = 0, ready_s_ = 0;
  bool stopped_ = false;
};

}  // namespace townhall::bench
