#include "townhall/platform/data_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

namespace townhall::db {

DataDirInUse::DataDirInUse(const std::filesystem::path& dir, int holder_pid)
    : std::runtime_error("data directory " + dir.string() + " is in use by another townhall process" +
                         (holder_pid > 0 ? " (pid " + std::to_string(holder_pid) + ")" : std::string())),
      holder_pid_(holder_pid) {}

DataDirLock::DataDirLock(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  auto path = lock_file(dir);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    char text[32] = {};
    auto n = ::pread(fd_, text, sizeof text - 1, 0);
    int pid = 0;
    if (n > 0) std::from_chars(text, text + n, pid);
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) throw DataDirInUse(dir, pid);
    throw std::runtime_error("cannot lock " + path.string() + ": " + std::strerror(error));
  }
  // Ours now: say who holds it, for the message a second process prints.
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds regardless; only the message of a second process loses the pid.
  }
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (unlinking would race)
}

}  // namespace townhall::db
