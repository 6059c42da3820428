// Auth benchmark: login latency at the configured Argon2id cost, and the gateway's
// per-request authentication on one thread: cached (the token cache), uncached (a
// session and principal read from auth.db), against a raw SQLite point read of the
// same session row on the same machine in the same run. Then a victim's login latency
// while a few addresses sign one account in at the HTTP rate limit (issue 28 §7), with
// the login throttle and the bounded hashing queue, and without them (unprotected: the
// behaviour before), against no flood at all.
//
//   auth_bench [--quick] [--flood]   (make bench-auth, see bench/README.md;
//                                     --flood: only the flood measurement)
#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "coro.hpp"
#include "server_fixture.hpp"
#include "service.hpp"
#include "support.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/platform/logging.hpp"
#include "townhall/platform/metrics.hpp"

using namespace townhall;
using Clock = std::chrono::steady_clock;
using bench::percentile;
using bench::seconds_since;

namespace {

namespace asio = boost::asio;
constexpr const char* kPassword = "a long enough password";
constexpr auto kRateLimitInterval = std::chrono::milliseconds(50);  // server.rate_limit: 20 req/s per address
constexpr auto kVictimInterval = std::chrono::milliseconds(250);

struct FloodOutcome {
  std::mutex mutex;
  std::vector<double> victim_ms;  // every victim login, answered or not
  int victim_ok = 0, victim_throttled = 0, victim_busy = 0, victim_failed = 0;
  int attacker_ok = 0, attacker_throttled = 0, attacker_busy = 0;
  std::atomic<int> outstanding{0};
};

void tally(FloodOutcome& outcome, bool victim, Clock::time_point started, const Result<auth::LoginResult>& result) {
  std::lock_guard lock(outcome.mutex);
  Errc code = result ? Errc::internal : result.error().code;
  if (victim) {
    outcome.victim_ms.push_back(seconds_since(started) * 1000);
    (result                            ? outcome.victim_ok
     : code == Errc::too_many_requests ? outcome.victim_throttled
     : code == Errc::unavailable       ? outcome.victim_busy
                                       : outcome.victim_failed)++;
  } else {
    (result ? outcome.attacker_ok : code == Errc::unavailable ? outcome.attacker_busy : outcome.attacker_throttled)++;
  }
  --outcome.outstanding;
}

// Sends a login every `interval` from `ip` until `end`, each without waiting for the
// previous one (a client with many connections); `account` < 0: the attacked account,
// else a victim account per login (victim0, victim1, ...: one citizen each).
asio::awaitable<void> sign_in_repeatedly(auth::AuthService& service, FloodOutcome& outcome, std::string ip, bool victim,
                                         Clock::time_point start, Clock::time_point end,
                                         std::chrono::milliseconds interval) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  int n = 0;
  for (auto next = start; next < end; next += interval, ++n) {
    timer.expires_at(next);
    co_await timer.async_wait(asio::use_awaitable);
    // Named, not temporaries: GCC 12 mishandles temporaries in a statement with co_await.
    std::string email = victim ? "victim" + std::to_string(n) + "@example.org" : "attacked@example.org";
    std::string from = victim ? ip + std::to_string(n) : ip;
    auto started = Clock::now();
    ++outcome.outstanding;
    asio::co_spawn(executor, service.login(email, kPassword, from),
                   [&outcome, victim, started](std::exception_ptr, Result<auth::LoginResult> result) {
                     tally(outcome, victim, started, result);
                   });
  }
}

// `attackers` addresses sign the attacked account in at the rate limit for `duration`
// while victims sign in every 250 ms; two threads run the logins (the network threads).
void flood(auth::AuthService& service, FloodOutcome& outcome, int attackers, std::chrono::milliseconds duration) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  auto start = Clock::now() + std::chrono::milliseconds(20);
  auto end = start + duration;
  for (int a = 0; a < attackers; ++a)
    asio::co_spawn(io,
                   sign_in_repeatedly(service, outcome, "198.51.100." + std::to_string(a + 1), false, start, end,
                                      kRateLimitInterval),
                   asio::detached);
  // Victims start a little later, when the flood has had time to build a queue.
  asio::co_spawn(io,
                 sign_in_repeatedly(service, outcome, "192.0.2.", true, start + kVictimInterval, end, kVictimInterval),
                 asio::detached);
  std::thread second([&] { io.run(); });
  std::thread waiter([&] {
    while (Clock::now() < end || outcome.outstanding.load() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    work.reset();
  });
  io.run();
  second.join();
  waiter.join();
}

// One flood measurement with its own service (and so its own throttle), reported.
void measure_flood(const char* label, auth::Settings settings, const std::filesystem::path& key,
                   const ServiceDependencies& dependencies, int attackers, std::chrono::milliseconds duration) {
  auth::AuthService service(std::move(settings), dependencies, key);
  service.start();
  FloodOutcome outcome;
  auto started = Clock::now();
  flood(service, outcome, attackers, duration);
  service.stop();
  auto& ms = outcome.victim_ms;
  std::printf(
      "%-34s victim login p50 %7.1f ms, p99 %7.1f ms, max %7.1f ms (%zu: %d in, %d 429, %d 503, %d failed); "
      "attackers %d in, %d 429, %d 503; done after %.1f s\n",
      label, percentile(ms, 0.5), percentile(ms, 0.99), percentile(ms, 1.0), ms.size(), outcome.victim_ok,
      outcome.victim_throttled, outcome.victim_busy, outcome.victim_failed, outcome.attacker_ok,
      outcome.attacker_throttled, outcome.attacker_busy, seconds_since(started));
}

int flood_benchmark(bool quick, const std::filesystem::path& key, const ServiceDependencies& dependencies,
                    const auth::Settings& defaults) {
  const int attackers = 4;
  const auto duration = std::chrono::milliseconds(quick ? 2000 : 6000);
  {
    // The accounts: the attacked one and one per victim login (each signs in once).
    auth::AuthService setup(defaults, dependencies, key);
    setup.start();
    int victims = static_cast<int>(duration / kVictimInterval) + 1;
    for (int n = -1; n < victims; ++n) {
      std::string email = n < 0 ? "attacked@example.org" : "victim" + std::to_string(n) + "@example.org";
      auto registered = testing::run_awaitable(
          setup.register_citizen(CallContext{}, auth::Registration{email, kPassword, "Flood", {}, {}, {}, {}, {}}));
      if (!registered) return std::fprintf(stderr, "register failed: %s\n", registered.error().message.c_str()), 1;
    }
    setup.stop();
  }
  std::printf(
      "flood: %d addresses each signing one account in every %lld ms (the rate limit) for %.0f s; a victim "
      "(own account, own address) signs in every %lld ms\n",
      attackers, static_cast<long long>(kRateLimitInterval.count()), duration.count() / 1000.0,
      static_cast<long long>(kVictimInterval.count()));
  measure_flood("no flood (baseline):", defaults, key, dependencies, 0, duration);
  auto unprotected = defaults;  // before issue 28 §7: successful logins unthrottled, the queue unbounded
  unprotected.login_throttle.max_logins_per_account = 1'000'000;
  unprotected.login_throttle.max_logins_per_ip = 1'000'000;
  unprotected.max_queued_password_hashes = 1'000'000;
  measure_flood("flood, unprotected:", unprotected, key, dependencies, attackers, duration);
  measure_flood("flood, throttle + bounded queue:", defaults, key, dependencies, attackers, duration);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, flood_only = false;
  for (int i = 1; i < argc; ++i) {
    quick = quick || std::strcmp(argv[i], "--quick") == 0;
    flood_only = flood_only || std::strcmp(argv[i], "--flood") == 0;
  }
  logging::init(logging::Options{.level = "warn", .access_log = logging::AccessLogFormat::off});
  testing::TempDir dir;
  metrics::Registry metrics;
  db::ModuleDb database("auth", dir.path() / "auth.db", auth::table_manifest());
  testing::migrate_module(database, "auth");
  db::Writer writer("auth");
  db::ReaderPool readers(database, 2);
  const auth::Settings defaults;  // the production defaults: Argon2id 3 passes over 32 MiB
  ModuleGate gate("auth");        // shared by the benchmark's services, one running at a time
  const auto cursors = PageCursors::random();
  ServiceDependencies dependencies{database, writer, readers, [] {}, gate, metrics, cursors};
  if (flood_only) {
    int status = flood_benchmark(quick, dir.path() / "auth.key", dependencies, defaults);
    writer.stop();
    return status;
  }
  auto settings = defaults;  // one account signs in 20 times in a row here: not a flood
  settings.login_throttle.max_logins_per_account = 1000;
  settings.login_throttle.max_logins_per_ip = 1000;
  auth::AuthService service(settings, dependencies, dir.path() / "auth.key");
  service.start();

  auto registered = testing::run_awaitable(service.register_citizen(
      CallContext{}, auth::Registration{"bench@example.org", "a long enough password", "Bench", {}, {}, {}, {}, {}}));
  if (!registered) return std::fprintf(stderr, "register failed: %s\n", registered.error().message.c_str()), 1;

  // Login latency: Argon2id verify + session insert on the writer.
  std::vector<double> login_ms;
  std::string token;
  for (int i = 0; i < (quick ? 5 : 20); ++i) {
    auto start = Clock::now();
    auto session = testing::run_awaitable(service.login("bench@example.org", "a long enough password", "127.0.0.1"));
    login_ms.push_back(seconds_since(start) * 1000);
    if (!session) return std::fprintf(stderr, "login failed\n"), 1;
    token = session->token;
  }
  std::printf("login (Argon2id %llu passes, %zu MiB): p50 %.1f ms, p99 %.1f ms over %zu logins\n",
              settings.password_cost.passes, settings.password_cost.memory_bytes >> 20, percentile(login_ms, 0.5),
              percentile(login_ms, 0.99), login_ms.size());

  const int rounds = quick ? 200'000 : 2'000'000;
  // Cached: what the gateway pays per request once a token has been seen.
  auto start = Clock::now();
  for (int i = 0; i < rounds; ++i)
    if (!service.authenticate_now(token)) return std::fprintf(stderr, "authenticate failed\n"), 1;
  double cached = rounds / seconds_since(start);

  // Uncached: the same with the cache off (session + account + roles + permissions).
  settings.token_cache_ttl = std::chrono::milliseconds(0);
  auth::AuthService uncached_service(settings, dependencies, dir.path() / "auth.key");
  uncached_service.start();
  const int uncached_rounds = rounds / 20;
  start = Clock::now();
  for (int i = 0; i < uncached_rounds; ++i)
    if (!uncached_service.authenticate_now(token)) return std::fprintf(stderr, "authenticate failed\n"), 1;
  double uncached = uncached_rounds / seconds_since(start);
  uncached_service.stop();

  // Baseline: a raw SQLite point read of the session row by its hash.
  SQLite::Database raw((dir.path() / "auth.db").string(), SQLite::OPEN_READONLY);
  SQLite::Statement read(raw, "SELECT principal_id, expires_at FROM sessions WHERE token_hash = ?");
  auto hashed = auth::token_hash(token);
  start = Clock::now();
  for (int i = 0; i < uncached_rounds; ++i) {
    read.bind(1, hashed);
    if (!read.executeStep()) return std::fprintf(stderr, "raw read failed\n"), 1;
    read.reset();
  }
  double raw_reads = uncached_rounds / seconds_since(start);

  std::printf("authenticate, cached:   %.0f /s on one thread (goal >= 200000)\n", cached);
  std::printf("authenticate, uncached: %.0f /s on one thread\n", uncached);
  std::printf("raw SQLite point read:  %.0f /s on one thread\n", raw_reads);
  std::printf("ratios: cached / raw read = %.2f, uncached / raw read = %.2f\n", cached / raw_reads,
              uncached / raw_reads);
  service.stop();
  int status = flood_benchmark(quick, dir.path() / "auth.key", dependencies, defaults);
  writer.stop();
  return status;
}
