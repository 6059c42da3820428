// Revenue benchmark: fee payments end to end over HTTP — POST /payments → the processor
// (the simulator) → payment.completed → permits moving the application to under_review —
// and idempotent retries of the same payments, against the storage work a payment needs
// at the least (two SQLite commits: the pending row, then the outcome with its outbox
// row) on the same machine in the same run.
//
//   revenue_bench [--quick] [--count N] [--clients C] [--new-connections]
//     (make bench-revenue, see bench/README.md). By default C = 32 keep-alive
//     connections, all driven by one thread as wrk drives its own; --new-connections
//     has C client threads open one per request (the first figures: 4 clients that way).
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/metrics.hpp"

using namespace townhall;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using bench::percentile;
using bench::seconds_since;

namespace {

struct Invoice {
  std::int64_t id = 0;
  std::string token;
};

// `clients` threads send one request per invoice each (their share), recording latency;
// `send(client, i)` gets its thread's number.
template <class F>
std::vector<double> drive(std::size_t count, int clients, F&& send) {
  std::vector<double> latency_ms(count);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      for (std::size_t i = next++; i < count; i = next++) {
        auto start = Clock::now();
        send(c, i);
        latency_ms[i] = seconds_since(start) * 1000;
      }
    });
  for (auto& thread : threads) thread.join();
  return latency_ms;
}

// `clients` keep-alive connections driven by one thread, as wrk drives its connections
// (32 blocking client threads in the server's process would compete with its few
// threads for the 2 cores): each connection sends its share of the requests one after
// another. `request(i)` is request i; every answer must be 201.
template <class MakeRequest>
std::vector<double> drive_connections(unsigned short port, std::size_t count, int clients, MakeRequest&& request) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  std::vector<double> latency_ms(count);
  std::size_t next = 0;
  asio::io_context io;
  for (int c = 0; c < clients; ++c)
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          beast::tcp_stream stream(io);
          co_await stream.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                        asio::use_awaitable);
          stream.socket().set_option(asio::ip::tcp::no_delay(true));
          beast::flat_buffer buffer;
          for (std::size_t i = next++; i < count; i = next++) {
            http::request<http::string_body> sent = request(i);
            auto start = Clock::now();
            co_await http::async_write(stream, sent, asio::use_awaitable);
            http::response<http::string_body> answer;
            co_await http::async_read(stream, buffer, answer, asio::use_awaitable);
            latency_ms[i] = seconds_since(start) * 1000;
            if (answer.result_int() != 201)
              std::fprintf(stderr, "payment answered %u: %s\n", answer.result_int(), answer.body().c_str());
          }
        },
        [](std::exception_ptr error) {
          if (error) std::rethrow_exception(error);
        });
  io.run();
  return latency_ms;
}

// The least storage work of one payment: commit a pending row, then its outcome and an
// outbox row, in WAL mode with synchronous=NORMAL (as the modules run).
double raw_sqlite_payments_per_second(const std::filesystem::path& file, int count) {
  SQLite::Database db(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  db.exec("CREATE TABLE payments (id INTEGER PRIMARY KEY, invoice_id INTEGER, idempotency_key TEXT, status TEXT)");
  db.exec("CREATE TABLE outbox (id INTEGER PRIMARY KEY, data TEXT)");
  SQLite::Statement insert(db, "INSERT INTO payments (invoice_id, idempotency_key, status) VALUES (?, ?, 'pending')");
  SQLite::Statement update(db, "UPDATE payments SET status = 'completed' WHERE id = ?");
  SQLite::Statement event(db, "INSERT INTO outbox (data) VALUES (?)");
  auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    {
      SQLite::Transaction transaction(db);
      insert.bind(1, i);
      insert.bind(2, "key-" + std::to_string(i));
      insert.exec();
      insert.reset();
      transaction.commit();
    }
    SQLite::Transaction transaction(db);
    update.bind(1, db.getLastInsertRowid());
    update.exec();
    update.reset();
    event.bind(1, R"({"snapshot":{"status":"completed"}})");
    event.exec();
    event.reset();
    transaction.commit();
  }
  return count / seconds_since(start);
}

// CPU seconds (user + system) this process has used so far: every thread, the clients' too.
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t count = 2000;
  int clients = 32;
  bool new_connections = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--quick") == 0) {
      count = 200;
    } else if (std::strcmp(argv[i], "--count") == 0 && has_value) {
      count = static_cast<std::size_t>(std::atol(argv[++i]));
    } else if (std::strcmp(argv[i], "--clients") == 0 && has_value) {
      clients = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--new-connections") == 0) {
      new_connections = true;
    } else {
      return std::fprintf(stderr, "usage: revenue_bench [--quick] [--count N] [--clients C] [--new-connections]\n"), 2;
    }
  }
  if (count < 1 || clients < 1) return std::fprintf(stderr, "revenue_bench: --count and --clients >= 1\n"), 2;
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  config.server.threads = 2;
  for (auto& module : config.modules)
    if (module.name == "auth") module.settings["login_throttle"]["max_failures_per_ip"] = 1000;
  if (!app::create_staff_user(config, auth::StaffUser{"rita@bench.test", "staff password 1", "Rita", "permits_reviewer",
                                                      std::string("BLD")}))
    return std::fprintf(stderr, "setup failed\n"), 1;
  // The baseline before the server starts and again after the payments (when its
  // checkpoints and mail may still be under way); the ratio takes the faster, the harder
  // one to reach. Either run alone moved by 10-15 % between binaries and runs.
  const double raw_before = raw_sqlite_payments_per_second(dir.path() / "raw-before.db", static_cast<int>(count));
  testing::TestServer server(config);
  const auto port = server.port();

  // Citizens, their fee applications, and the invoices revenue opens for them.
  std::vector<std::string> tokens;
  for (int i = 0; i < 8; ++i) {
    auto email = "citizen" + std::to_string(i) + "@bench.test";
    testing::call(port, "POST", "/api/v1/auth/register",
                  json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump());
    tokens.push_back(testing::login(port, email, "a long enough password"));
  }
  if (!testing::wait_until([&] { return server.app().bus().caught_up(); }))
    return std::fprintf(stderr, "setup: the bus did not catch up\n"), 1;
  drive(count, clients, [&](int, std::size_t i) {
    testing::call(port, "POST", "/api/v1/permits/applications",
                  R"({"permit_type":"renovation","description":"bench","property_address":"1 Bench St",)"
                  R"("department_code":"BLD"})",
                  tokens[i % tokens.size()]);
  });
  if (!testing::wait_until([&] { return server.app().bus().caught_up(); }, std::chrono::seconds(60)))
    return std::fprintf(stderr, "setup: invoices were not opened\n"), 1;
  std::vector<Invoice> invoices;
  for (const auto& token : tokens)
    for (std::string path = "/api/v1/revenue/invoices?page_size=100";;) {
      auto list = json::parse(testing::call(port, "GET", path, {}, token).body);
      for (const auto& item : list["items"]) invoices.push_back({item["id"].get<std::int64_t>(), token});
      if (!list["next_cursor"].is_string()) break;
      path = "/api/v1/revenue/invoices?page_size=100&cursor=" + list["next_cursor"].get<std::string>();
    }
  if (invoices.size() != count)
    return std::fprintf(stderr, "setup: %zu invoices for %zu applications\n", invoices.size(), count), 1;

  // Payment i: invoice i's, with a fresh Idempotency-Key (sent again as the retry).
  auto body_of = [&](std::size_t i) {
    return json{
        {"invoice_id", invoices[i].id}, {"amount_cents", 5000}, {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
        .dump();
  };
  auto key_of = [&](std::size_t i) { return "bench-" + std::to_string(invoices[i].id); };
  namespace http = boost::beast::http;
  std::vector<http::request<http::string_body>> requests;
  for (std::size_t i = 0; i < count; ++i) {
    http::request<http::string_body> request{http::verb::post, "/api/v1/revenue/payments", 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::authorization, "Bearer " + invoices[i].token);
    request.set("Idempotency-Key", key_of(i));
    request.set(http::field::content_type, "application/json");
    request.body() = body_of(i);
    request.prepare_payload();
    requests.push_back(std::move(request));
  }
  auto pay_all = [&] {
    if (!new_connections) return drive_connections(port, count, clients, [&](std::size_t i) { return requests[i]; });
    return drive(count, clients, [&](int, std::size_t i) {
      auto answer =
          testing::http_request(port, "POST", "/api/v1/revenue/payments", body_of(i),
                                {"Authorization: Bearer " + invoices[i].token, "Idempotency-Key: " + key_of(i)});
      if (answer.status != 201) std::fprintf(stderr, "payment answered %d: %s\n", answer.status, answer.body.c_str());
    });
  };

  // End to end: every payment answered and every application moved on by permits.
  std::fprintf(stderr, "revenue bench: paying %zu invoices\n", count);  // for a profiler to attach now
  auto start = Clock::now();
  const double cpu_before = process_cpu_seconds();
  auto paid_ms = pay_all();
  double answered_s = seconds_since(start);
  SQLite::Database permits((dir.path() / "permits.db").string(), SQLite::OPEN_READONLY);
  bool applied = testing::wait_until(
      [&] {
        return permits.execAndGet("SELECT count(*) FROM applications WHERE status = 'under_review'").getInt64() ==
               static_cast<std::int64_t>(count);
      },
      std::chrono::seconds(60));
  double end_to_end_s = seconds_since(start);
  const double payment_cpu_s = process_cpu_seconds() - cpu_before;
  if (!applied) return std::fprintf(stderr, "permits did not apply every payment\n"), 1;

  // Idempotent retries: the same key and body again, answered from revenue.db.
  start = Clock::now();
  auto retry_ms = pay_all();
  double retries_s = seconds_since(start);

  if (std::getenv("REVENUE_BENCH_METRICS")) {  // each write path's group sizes, for finding what serialises
    std::istringstream metrics(server.app().metrics().render());
    for (std::string line; std::getline(metrics, line);)
      if (line.starts_with("townhall_write_group_commands_sum") ||
          line.starts_with("townhall_write_group_commands_count"))
        std::printf("  %s\n", line.c_str());
  }
  const double raw_after = raw_sqlite_payments_per_second(dir.path() / "raw-after.db", static_cast<int>(count));
  const double raw = std::max(raw_before, raw_after);
  double payments_per_s = count / end_to_end_s;
  std::printf(
      "revenue bench: %zu payments, %d clients, %s\n", count, clients,
      new_connections ? "a thread each, one connection per request" : "keep-alive connections driven by one thread");
  std::printf("  payments end to end (request -> payment.completed applied by permits): %.0f /s\n", payments_per_s);
  std::printf("    answered: %.0f /s; latency p50 %.2f ms, p99 %.2f ms\n", count / answered_s, percentile(paid_ms, 0.5),
              percentile(paid_ms, 0.99));
  std::printf("    CPU (server and clients, one process): %.0f us a payment, %.0f %% of one core\n",
              payment_cpu_s / count * 1e6, payment_cpu_s / end_to_end_s * 100);
  std::printf("  idempotent retries: %.0f /s; latency p50 %.2f ms, p99 %.2f ms\n", count / retries_s,
              percentile(retry_ms, 0.5), percentile(retry_ms, 0.99));
  std::printf("  raw SQLite, two commits per payment, one thread: %.0f /s (before the server %.0f, after %.0f)\n", raw,
              raw_before, raw_after);
  std::printf("  ratios: end to end / raw SQLite %.2f; retries / first payments %.2f\n", payments_per_s / raw,
              (count / retries_s) / (count / answered_s));
  return 0;
}
