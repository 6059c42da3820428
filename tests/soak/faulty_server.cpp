// The `townhall` command line with its storage under fire (issue 14, item 5): every
// module file goes through the fault VFS (tests/support/fault_vfs), and with
// TOWNHALL_FAULT_SEED set a thread keeps failing chosen calls of chosen files — one
// read, write, fsync or shared-memory call at a time, once or for a short while, as an
// I/O error or a full disk — for as long as `serve` runs. The crash soak runs it with
// --faults: the same invariants must hold with the disk failing under the load.
// Each injected fault is one line on stderr ("fault: ..."): the soak counts them.
// SIGUSR1 repairs the disk and holds the faults back, SIGUSR2 lets them go again: the
// soak checks its invariants on a repaired disk (a module the faults kept down must come
// up by itself then), and loads the server while the disk fails.
// With TOWNHALL_CRASH_AT=<point> the process kills itself (SIGKILL) the first time it
// reaches that crash point (Application::Options::fault_hook: "revenue.after_provider_answer",
// the bus's "after_commit", ...): the crash tests' kill -9 at a chosen step, with no
// switch for it in the production binary or its registry.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "fault_vfs.hpp"
#include "townhall/app/application.hpp"

namespace {

using townhall::testing::FaultVfs;

// Set from the signal handlers below (a signal handler can only reach a static).
std::atomic<bool> faults_held{false};
using namespace std::chrono_literals;

class Injector {
 public:
  Injector(FaultVfs& vfs, unsigned seed, std::chrono::milliseconds first_delay)
      : vfs_(vfs), random_(seed), first_delay_(first_delay), thread_([this] { loop(); }) {}
  ~Injector() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    vfs_.clear();
  }

 private:
  bool pause(std::chrono::milliseconds duration) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, duration, [this] { return stopping_; });
  }

  void loop() {
    static const char* const files[] = {"auth.db", "permits.db", "revenue.db", "parks.db"};
    static const FaultVfs::Call calls[] = {FaultVfs::Call::write, FaultVfs::Call::write, FaultVfs::Call::sync,
                                           FaultVfs::Call::read, FaultVfs::Call::shm};
    static const char* const call_names[] = {"write", "write", "sync", "read", "shm"};
    // By default the server opens its files first (a module down at start is
    // StorageFaultsAtStart's case); TOWNHALL_FAULT_DELAY_MS moves the first fault.
    if (!pause(first_delay_)) return;
    for (int count = 1;; ++count) {
      if (faults_held.load()) {
        vfs_.clear();
        if (!pause(20ms)) return;
        --count;
        continue;
      }
      auto pick = [this](std::size_t n) { return static_cast<std::size_t>(random_() % n); };
      FaultVfs::Fault fault;
      fault.file = files[pick(4)];
      auto call = pick(5);
      fault.call = calls[call];
      fault.after = pick(40);
      fault.persistent = pick(3) == 0;  // a third last a while (then the disk is repaired)
      fault.kind =
          fault.call == FaultVfs::Call::write && pick(2) == 0 ? FaultVfs::Kind::disk_full : FaultVfs::Kind::io_error;
      auto window = std::chrono::milliseconds(50 + pick(300));
      std::cerr << "fault: " << count << " " << fault.file << " " << call_names[call] << " after " << fault.after
                << (fault.kind == FaultVfs::Kind::disk_full ? " disk-full" : " io-error")
                << (fault.persistent ? " for " + std::to_string(window.count()) + " ms" : " once") << std::endl;
      vfs_.inject(fault);
      if (!pause(window)) return;
      if (fault.persistent) vfs_.clear();
      if (!pause(std::chrono::milliseconds(50 + pick(250)))) return;
    }
  }

  FaultVfs& vfs_;
  std::mt19937 random_;
  std::chrono::milliseconds first_delay_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  std::function<void(std::string_view)> crash_hook;
  if (const char* crash_at = std::getenv("TOWNHALL_CRASH_AT"); crash_at && *crash_at)
    crash_hook = [point = std::string(crash_at)](std::string_view reached) {
      if (reached == point) {
        std::cerr << "crash point " << point << ": SIGKILL" << std::endl;
        std::raise(SIGKILL);
      }
    };
  std::signal(SIGUSR1, [](int) { faults_held.store(true); });
  std::signal(SIGUSR2, [](int) { faults_held.store(false); });
  FaultVfs vfs(/*as_default=*/true);
  const char* seed = std::getenv("TOWNHALL_FAULT_SEED");
  std::unique_ptr<Injector> injector;
  if (seed && argc > 1 && std::string(argv[1]) == "serve") {
    const char* delay = std::getenv("TOWNHALL_FAULT_DELAY_MS");
    injector = std::make_unique<Injector>(vfs, static_cast<unsigned>(std::strtoul(seed, nullptr, 10)),
                                          std::chrono::milliseconds(delay ? std::strtol(delay, nullptr, 10) : 300));
  }
  int code = townhall::app::run_cli(argc, argv, std::move(crash_hook));
  injector.reset();
  return code;
}
