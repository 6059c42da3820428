// Auth benchmark: login latency at the configured Argon2id cost, and the gateway's
// per-request authentication on one thread: cached (the token cache), uncached (a
// session and principal read from auth.db), against a raw SQLite point read of the
// same session row on the same machine in the same run.
//
//   auth_bench [--quick]   (make bench-auth, see bench/README.md)
#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
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

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  logging::init(logging::Options{.level = "warn", .access_log = logging::AccessLogFormat::off});
  testing::TempDir dir;
  metrics::Registry metrics;
  db::ModuleDb database("auth", dir.path() / "auth.db", auth::table_manifest());
  testing::migrate_module(database, "auth");
  db::Writer writer("auth");
  db::ReaderPool readers(database, 2);
  auth::Settings settings;  // the production defaults: Argon2id 3 passes over 32 MiB
  auth::AuthService service(settings, dir.path() / "auth.key",
                            auth::AuthService::Dependencies{database, writer, readers, metrics, [] {}});
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
  auth::AuthService uncached_service(settings, dir.path() / "auth.key",
                                     auth::AuthService::Dependencies{database, writer, readers, metrics, [] {}});
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
  writer.stop();
  return 0;
}
