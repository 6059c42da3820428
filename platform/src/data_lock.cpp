#include "townhall/platform/data_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

namespace townhall::db {

DataDirInUse::DataDirInUse(const std::filesystem::path& dir, int holder_pid)
    : std::runtime_error("data directory " + dir.string() + " is in use by another townhall process" +
                         (holder_pid > 0 ? " (pid " + std::to_string(holder_pid) + ")" : std::string())),
      holder_pid_(holder_pid) {}

void restrict_new_files() { ::umask(077); }

void check_private(const std::filesystem::path& dir, const std::filesystem::path& file) {
  auto mode_of = [](const std::filesystem::path& path) -> int {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) return -1;
    return static_cast<int>(info.st_mode & 0777);
  };
  auto octal = [](int mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", mode);
    return std::string(text);
  };
  std::string found, commands;
  if (int mode = mode_of(dir); mode >= 0 && (mode & 077) != 0) {
    found += " " + dir.string() + " (" + octal(mode) + ")";
    commands += "chmod 700 '" + dir.string() + "'";
  }
  std::string files;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    auto path = file.string() + suffix;
    if (int mode = mode_of(path); mode >= 0 && (mode & 077) != 0) {
      found += " " + path + " (" + octal(mode) + ")";
      files += " '" + path + "'";
    }
  }
  if (!files.empty()) commands += (commands.empty() ? "" : " && ") + std::string("chmod 600") + files;
  if (!found.empty())
    throw std::runtime_error("personal data must be readable by its owner only, but group or others can reach" + found +
                             "; run: " + commands);
}

DataDirLock::DataDirLock(const std::filesystem::path& dir) {
  restrict_new_files();
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
