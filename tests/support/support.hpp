#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace townhall::testing {

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Polls `condition` until it holds or `timeout` passes. Tests wait on conditions, never
// on bare sleeps.
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string header(const std::string& name) const;
};

// A plain blocking TCP connection to 127.0.0.1:port for speaking raw HTTP/1.1, so tests
// can send exactly the bytes they mean (malformed, oversized, slow).
class RawConnection {
 public:
  explicit RawConnection(unsigned short port);
  // From `source` (empty: the kernel's choice), e.g. another loopback address such as
  // "127.0.0.2" (all of 127.0.0.0/8 is local on Linux) to stand for a second client.
  RawConnection(unsigned short port, const std::string& source);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool send(const std::string& bytes);
  // Reads one response; nullopt on timeout or when the peer closed first.
  std::optional<HttpResponse> read_response(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // True when the peer closes the connection within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  bool connected() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
  std::string buffer_;
};

// One request on its own connection ("Connection: close"). Its answer is awaited for up to
// 30 s: a whole-system route (a repairing consistency run) under ASan on 2 busy cores can
// take several seconds, and only a server that never answers should fail a test here.
HttpResponse http_request(unsigned short port, const std::string& method, const std::string& target,
                          const std::string& body = {}, const std::vector<std::string>& extra_headers = {});

// A child process with its stdout piped, killed (SIGKILL) on destruction if still running.
class ChildProcess {
 public:
  // `capture_stderr`: stderr (the log) goes into output() too.
  explicit ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                        bool capture_stderr = false);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits for a stdout line containing `needle`; returns the line.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds timeout = std::chrono::milliseconds(20000));
  void signal(int signal_number);
  // Exit code, or 128+signal; nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = std::chrono::milliseconds(20000));
  // Like wait_exit, for a child that reports its progress on stdout: waits as long as it
  // keeps writing, and gives up (nullopt) only after `stall` without a byte. A deadline
  // sized for an idle machine fails a healthy child on a loaded one (make test-stress).
  std::optional<int> wait_exit_while_progressing(std::chrono::milliseconds stall);
  const std::string& output() const { return output_; }
  int pid() const { return pid_; }
  // Whether it has exited (reaped now if it just did).
  bool exited();
  // Reads what it has written so far into output(): a child that runs on for long must
  // not block on a full pipe.
  void drain() { read_available(std::chrono::milliseconds(0)); }

 private:
  void read_available(std::chrono::milliseconds timeout);
  int pid_ = -1;
  int stdout_fd_ = -1;
  std::string output_;
  std::size_t scanned_ = 0;
  std::optional<int> exit_code_;
};

// What `action` throws (its what()), or "" when it does not throw: for settings parsers
// whose errors must name the key.
std::string thrown_message(const std::function<void()>& action);

// Reads the port from the "townhall listening on" line of a child `townhall serve` (0 when
// absent after 90 s, or when the child exits first).
unsigned short wait_for_port(ChildProcess& child);

}  // namespace townhall::testing
