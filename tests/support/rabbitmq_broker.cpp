#include "rabbitmq_broker.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace townhall::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kEpmd = "/usr/bin/epmd";

int connect_loopback(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string read_tail(const std::filesystem::path& file, std::size_t bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  std::stringstream content;
  content << in.rdbuf();
  auto text = content.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

void write_file(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// fork + exec with `env` added to this process's environment, in a process group of its
// own, stdout and stderr appended to `output`.
int spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
          const std::filesystem::path& output) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry; ++entry) {
    std::string_view item(*entry);
    // Nothing of the caller's RabbitMQ or Erlang settings leaks into the test broker.
    if (item.starts_with("RABBITMQ_") || item.starts_with("ERL_") || item.starts_with("HOME=")) continue;
    environment.emplace_back(item);
  }
  environment.insert(environment.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& item : environment) envp.push_back(item.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& arg : args) argp.push_back(arg.data());
  argp.push_back(nullptr);
  int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0) throw std::runtime_error("cannot open " + output.string());
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::execve(argp[0], argp.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: no race with a kill(-pid) right after
  ::close(out);
  ::close(in);
  return pid;
}

bool listening(unsigned short port) {
  int fd = connect_loopback(port);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace

unsigned short free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("no free loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

bool RabbitMqBroker::installed() { return ::access(kServerScript, X_OK) == 0 && ::access(kEpmd, X_OK) == 0; }

std::string RabbitMqBroker::skip_reason() {
  return std::string("RabbitMQ is not installed (") + kServerScript +
         "): scripts/install-deps.sh installs Debian's rabbitmq-server";
}

RabbitMqBroker::RabbitMqBroker() {
  // The broker's script, its Erlang VM and the VM's port helper share a process group;
  // once one of them dies its children would be orphans nobody reaps (a container's init
  // may not), so this process adopts them and reap() collects the whole group.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  static std::atomic<int> count{0};
  node_name_ = "th-" + std::to_string(::getpid()) + "-" + std::to_string(count++) + "@localhost";
  node_port_ = free_loopback_port();
  do dist_port_ = free_loopback_port();
  while (dist_port_ == node_port_);
  do epmd_port_ = free_loopback_port();
  while (epmd_port_ == node_port_ || epmd_port_ == dist_port_);
  // Only what the tests need: AMQP on loopback, guest allowed from it (a client library
  // connecting by name may arrive as ::1 or 127.0.0.1), no disk alarm on a small test
  // machine (it would block publishers), logs to a file.
  write_file(dir() / "rabbitmq.conf", "listeners.tcp.default = 127.0.0.1:" + std::to_string(node_port_) +
                                          "\n"
                                          "loopback_users = none\n"
                                          "disk_free_limit.absolute = 1MB\n"
                                          "log.console = false\n"
                                          "log.file.level = info\n");
  write_file(dir() / "enabled_plugins", "[].\n");
  write_file(dir() / "rabbitmq-env.conf", "");
  start_epmd();
  start();
}

RabbitMqBroker::~RabbitMqBroker() {
  // The data dir goes with the test: no need for a graceful stop.
  if (running()) kill();
  if (epmd_pid_ > 0) {
    ::kill(epmd_pid_, SIGKILL);
    ::waitpid(epmd_pid_, nullptr, 0);
  }
}

void RabbitMqBroker::start_epmd() {
  // The test's own epmd, a child of this process (a broker would otherwise start one as a
  // daemon nobody stops), on loopback and its own port.
  epmd_pid_ = spawn({kEpmd, "-port", std::to_string(epmd_port_), "-address", "127.0.0.1"}, {}, dir() / "epmd.log");
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!listening(epmd_port_)) {
    if (Clock::now() >= deadline || ::waitpid(epmd_pid_, nullptr, WNOHANG) == epmd_pid_)
      throw std::runtime_error("epmd did not start on port " + std::to_string(epmd_port_) + ": " +
                               read_tail(dir() / "epmd.log", 2000));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void RabbitMqBroker::start(std::chrono::seconds deadline) {
  if (running()) return;
  auto path = [&](const char* name) { return (dir() / name).string(); };
  std::vector<std::string> env = {
      "HOME=" + dir().string(),  // the Erlang cookie
      "RABBITMQ_NODENAME=" + node_name_,
      "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
      "RABBITMQ_NODE_PORT=" + std::to_string(node_port_),
      "RABBITMQ_DIST_PORT=" + std::to_string(dist_port_),
      "ERL_EPMD_PORT=" + std::to_string(epmd_port_),
      "ERL_EPMD_ADDRESS=127.0.0.1",
      "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
      "RABBITMQ_CONF_ENV_FILE=" + path("rabbitmq-env.conf"),
      "RABBITMQ_CONFIG_FILE=" + path("rabbitmq.conf"),
      "RABBITMQ_ADVANCED_CONFIG_FILE=" + path("advanced.config"),  // absent: none
      "RABBITMQ_ENABLED_PLUGINS_FILE=" + path("enabled_plugins"),
      "RABBITMQ_MNESIA_BASE=" + path("mnesia"),
      "RABBITMQ_LOG_BASE=" + path("log"),
      "RABBITMQ_PID_FILE=" + path("rabbitmq.pid"),
  };
  auto started = Clock::now();
  broker_pid_ = spawn({kServerScript}, env, dir() / "console.log");
  auto until = started + deadline;
  for (;;) {
    if (accepts_amqp()) break;
    int status = 0;
    if (::waitpid(broker_pid_, &status, WNOHANG) == broker_pid_) {
      broker_pid_ = -1;
      reap(std::chrono::milliseconds(2000));
      throw std::runtime_error("rabbitmq-server exited while starting:\n" + log_tail());
    }
    if (Clock::now() >= until) {
      kill();
      throw std::runtime_error("rabbitmq-server did not accept AMQP on port " + std::to_string(node_port_) +
                               " within " + std::to_string(deadline.count()) + " s:\n" + log_tail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  last_start_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
}

void RabbitMqBroker::stop() {
  if (!running()) return;
  // The script traps SIGTERM and stops the VM gracefully (rabbitmqctl stop's path).
  ::kill(broker_pid_, SIGTERM);
  reap(std::chrono::seconds(60));
}

void RabbitMqBroker::kill() {
  if (!running()) return;
  ::kill(-broker_pid_, SIGKILL);
  reap(std::chrono::seconds(30));
}

void RabbitMqBroker::reap(std::chrono::milliseconds timeout) {
  int group = broker_pid_ > 0 ? broker_pid_ : 0;
  auto deadline = Clock::now() + timeout;
  if (group > 0) {
    while (::waitpid(group, nullptr, WNOHANG) == 0) {
      if (Clock::now() >= deadline) {
        ::kill(-group, SIGKILL);
        ::waitpid(group, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // The VM and its helper (adopted: this process is their subreaper), until none is left.
    while (Clock::now() < deadline) {
      pid_t done = ::waitpid(-group, nullptr, WNOHANG);
      if (done < 0 && errno == ECHILD) break;
      if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (::waitpid(-group, nullptr, WNOHANG) >= 0) {
      ::kill(-group, SIGKILL);
      while (::waitpid(-group, nullptr, 0) > 0) {
      }
    }
  }
  broker_pid_ = -1;
}

bool RabbitMqBroker::accepts_amqp() const {
  int fd = connect_loopback(node_port_);
  if (fd < 0) return false;
  // The AMQP 0-9-1 protocol header; a broker that is up answers with connection.start, a
  // method frame (type 1) on channel 0.
  static constexpr char kHeader[] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
  bool ok = false;
  if (::send(fd, kHeader, sizeof kHeader, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof kHeader)) {
    pollfd p{fd, POLLIN, 0};
    unsigned char frame[7] = {};
    if (::poll(&p, 1, 2000) > 0 && ::recv(fd, frame, sizeof frame, MSG_WAITALL) == sizeof frame)
      ok = frame[0] == 1 && frame[1] == 0 && frame[2] == 0;
  }
  ::close(fd);
  return ok;
}

std::string RabbitMqBroker::url() const {
  return "amqp://guest:guest@127.0.0.1:" + std::to_string(node_port_) + "/%2f";
}

std::string RabbitMqBroker::log_tail(std::size_t bytes) const {
  auto node = node_name_;
  return "--- console ---\n" + read_tail(dir() / "console.log", bytes) + "\n--- " + node + ".log ---\n" +
         read_tail(dir() / "log" / (node + ".log"), bytes);
}

}  // namespace townhall::testing
