#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "support.hpp"

namespace townhall::testing {

// A RabbitMQ broker of its own for a test: Debian's rabbitmq-server started as a child in
// a temp dir, its AMQP listener, Erlang distribution and epmd on free loopback ports, a
// unique node name, no plugins and no system configuration (/etc/rabbitmq is not read).
// It can be stopped, killed and started again on the same data dir and port, as a broker
// restart mid-stream looks to a client. The destructor kills the broker and the epmd it
// started. Tests check installed() first and skip with skip_reason() when it is absent.
class RabbitMqBroker {
 public:
  static constexpr const char* kServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server";
  static bool installed();
  static std::string skip_reason();

  // Starts it (throws std::runtime_error with the log's tail when it does not come up).
  RabbitMqBroker();
  ~RabbitMqBroker();
  RabbitMqBroker(const RabbitMqBroker&) = delete;
  RabbitMqBroker& operator=(const RabbitMqBroker&) = delete;

  // Starts it again (after stop() or kill()): same node, data dir and ports. Returns when it
  // accepts AMQP connections; throws when it has not by `deadline`.
  void start(std::chrono::seconds deadline = std::chrono::seconds(90));
  // SIGTERM: the broker shuts down gracefully (connections closed with a reason).
  void stop();
  // SIGKILL of the broker's process group: connections drop without a word.
  void kill();
  bool running() const { return broker_pid_ > 0; }

  unsigned short port() const { return node_port_; }
  std::string host() const { return "127.0.0.1"; }
  std::string url() const;  // amqp://guest:guest@127.0.0.1:PORT/%2f (the "/" vhost)
  const std::filesystem::path& dir() const { return dir_.path(); }
  // How long the last start() took until the broker accepted AMQP.
  std::chrono::milliseconds last_start_time() const { return last_start_time_; }
  // The end of the broker's log and of its console output, for failure messages.
  std::string log_tail(std::size_t bytes = 4000) const;

 private:
  void start_epmd();
  bool accepts_amqp() const;
  void reap(std::chrono::milliseconds timeout);

  TempDir dir_;
  std::string node_name_;
  unsigned short node_port_ = 0;
  unsigned short dist_port_ = 0;
  unsigned short epmd_port_ = 0;
  int broker_pid_ = -1;  // the rabbitmq-server script, leader of its process group
  int epmd_pid_ = -1;
  std::chrono::milliseconds last_start_time_{0};
};

// A loopback TCP port nobody listens on right now (bound, then released).
unsigned short free_loopback_port();

}  // namespace townhall::testing
