// Parks benchmark over HTTP against the real server in-process:
//  1. bookings per second of a free facility across many one-hour slots (4 clients),
//     against the same work done with raw SQLite (the overlap check and the insert with
//     its outbox row, one transaction per booking, one thread) in the same run;
//  2. the priced saga — POST /bookings → revenue opens the invoice → POST /payments →
//     payment.completed → parks confirms — started at a steady 100 per second, latency
//     from the booking request to the confirmation committed in parks.db (p50/p99).
//
//   parks_bench [--quick]   (make bench-parks, see bench/README.md)
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/time.hpp"

using namespace townhall;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using bench::percentile;
using bench::seconds_since;

namespace {

// One-hour slot `i` from two days ahead, as RFC 3339 UTC.
std::pair<std::string, std::string> slot(std::size_t i) {
  auto day = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()) + std::chrono::days(2);
  auto start = day + std::chrono::hours(static_cast<long>(i));
  return {utc::format(start), utc::format(start + std::chrono::hours(1))};
}

double raw_sqlite_bookings_per_second(const std::filesystem::path& file, std::size_t count) {
  SQLite::Database db(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  db.exec(
      "CREATE TABLE bookings (id INTEGER PRIMARY KEY, facility_id INTEGER, starts_at TEXT, ends_at TEXT, status TEXT);"
      "CREATE INDEX bookings_facility ON bookings (facility_id, starts_at) WHERE status <> 'cancelled';"
      "CREATE TABLE outbox (id INTEGER PRIMARY KEY, data TEXT)");
  SQLite::Statement overlap(db,
                            "SELECT 1 FROM bookings WHERE facility_id = 1 AND status <> 'cancelled' AND "
                            "starts_at > strftime('%Y-%m-%dT%H:%M:%fZ', ?2, '-1 day') AND starts_at < ?1 AND "
                            "?2 < ends_at LIMIT 1");
  SQLite::Statement insert(db, "INSERT INTO bookings (facility_id, starts_at, ends_at, status) VALUES (1, ?, ?, 'c')");
  SQLite::Statement event(db, "INSERT INTO outbox (data) VALUES (?)");
  auto start = Clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    auto [from, to] = slot(i);
    SQLite::Transaction transaction(db);
    overlap.bind(1, to);
    overlap.bind(2, from);
    if (overlap.executeStep()) return 0;
    overlap.reset();
    insert.bind(1, from);
    insert.bind(2, to);
    insert.exec();
    insert.reset();
    event.bind(1, R"({"snapshot":{"status":"confirmed"}})");
    event.exec();
    event.reset();
    transaction.commit();
  }
  return static_cast<double>(count) / seconds_since(start);
}

template <class F>
void drive(std::size_t count, int clients, F&& work) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      for (std::size_t i = next++; i < count; i = next++) work(i);
    });
  for (auto& thread : threads) thread.join();
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const std::size_t free_count = quick ? 300 : 3000;
  const std::size_t saga_count = quick ? 100 : 1000;
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  for (auto& module : config.modules)
    if (module.name == "parks") {
      // The caps on hoarding would refuse most of the load: 16 citizens from one address.
      module.settings["max_unpaid_per_address"] = 100000;
      module.settings["max_unpaid_per_citizen"] = 100;
      module.settings["max_active_bookings_per_kind"] = 1000;
    }
  if (!app::create_staff_user(
          config, auth::StaffUser{"pat@bench.test", "staff password 1", "Pat", "parks_staff", std::string("PRK")}) ||
      !app::create_staff_user(config,
                              auth::StaffUser{"admin@bench.test", "staff password 1", "Admin", "admin", std::nullopt}))
    return std::fprintf(stderr, "setup failed\n"), 1;
  testing::TestServer server(config);
  const auto port = server.port();
  auto staff = testing::login(port, "pat@bench.test", "staff password 1");
  auto admin = testing::login(port, "admin@bench.test", "staff password 1");
  std::vector<std::string> tokens;
  for (int i = 0; i < 16; ++i) {
    auto email = "citizen" + std::to_string(i) + "@bench.test";
    auto registered =
        testing::call(port, "POST", "/api/v1/auth/register",
                      json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump());
    // A priced booking needs a verified email.
    testing::call(port, "PATCH", "/api/v1/auth/citizens/" + json::parse(registered.body)["id"].dump(),
                  R"({"email_verified":true})", admin);
    tokens.push_back(testing::login(port, email, "a long enough password"));
  }
  testing::wait_until([&] { return server.app().bus().caught_up(); });
  json all_day = json::object();
  for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
    all_day[day] = {{"open", "00:00"}, {"close", "24:00"}};
  auto facility = [&](std::int64_t price) {
    auto created = testing::call(port, "POST", "/api/v1/parks/facilities",
                                 json{{"name", "F"},
                                      {"kind", "field"},
                                      {"capacity", 10},
                                      {"hourly_price_cents", price},
                                      {"time_zone", "UTC"},
                                      {"opening_hours", all_day}}
                                     .dump(),
                                 staff);
    return json::parse(created.body)["id"].get<std::int64_t>();
  };
  auto free_field = facility(0), court = facility(2500);

  // 1. Free bookings.
  std::atomic<int> refused{0};
  auto start = Clock::now();
  drive(free_count, 4, [&](std::size_t i) {
    auto [from, to] = slot(i);
    auto answer = testing::call(port, "POST", "/api/v1/parks/bookings",
                                json{{"facility_id", free_field}, {"starts_at", from}, {"ends_at", to}}.dump(),
                                tokens[i % tokens.size()]);
    if (answer.status != 201) ++refused;
  });
  double bookings_per_s = static_cast<double>(free_count) / seconds_since(start);
  double raw = raw_sqlite_bookings_per_second(dir.path() / "raw.db", free_count);

  // 2. The priced saga at 100 per second.
  std::vector<double> latency_ms(saga_count, -1);
  std::vector<std::int64_t> booking_ids(saga_count, 0);
  std::vector<Clock::time_point> requested(saga_count);
  std::vector<std::chrono::system_clock::time_point> requested_wall(saga_count);
  const auto t0 = Clock::now() + std::chrono::milliseconds(100);
  drive(saga_count, 16, [&](std::size_t i) {
    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(10) * static_cast<long>(i));  // the pacing
    const auto& token = tokens[i % tokens.size()];
    auto [from, to] = slot(i);
    requested_wall[i] = std::chrono::system_clock::now();
    auto booked = testing::call(port, "POST", "/api/v1/parks/bookings",
                                json{{"facility_id", court}, {"starts_at", from}, {"ends_at", to}}.dump(), token);
    if (booked.status != 201) return;
    auto id = json::parse(booked.body)["id"].get<std::int64_t>();
    booking_ids[i] = id;
    std::int64_t invoice = 0;
    testing::wait_until(
        [&] {
          auto list = json::parse(
              testing::call(port, "GET", "/api/v1/revenue/invoices?status=open&page_size=100", {}, token).body);
          for (const auto& item : list["items"])
            if (item["source"]["id"] == std::to_string(id)) invoice = item["id"];
          return invoice != 0;
        },
        std::chrono::seconds(10));
    testing::http_request(
        port, "POST", "/api/v1/revenue/payments",
        json{{"invoice_id", invoice}, {"amount_cents", 2500}, {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
            .dump(),
        {"Authorization: Bearer " + token, "Idempotency-Key: saga-" + std::to_string(i)});
  });
  SQLite::Database parks((dir.path() / "parks.db").string(), SQLite::OPEN_READONLY);
  bool all_confirmed = testing::wait_until(
      [&] {
        return parks.execAndGet("SELECT count(*) FROM bookings WHERE status = 'confirmed' AND amount_cents > 0")
                   .getInt64() == static_cast<std::int64_t>(saga_count);
      },
      std::chrono::seconds(60));
  std::vector<double> saga_ms;
  for (std::size_t i = 0; i < saga_count; ++i) {
    SQLite::Statement confirmed(parks, "SELECT updated_at FROM bookings WHERE id = ? AND status = 'confirmed'");
    confirmed.bind(1, booking_ids[i]);
    if (!confirmed.executeStep()) continue;
    auto at = utc::parse(confirmed.getColumn(0).getString());
    if (at) saga_ms.push_back(std::chrono::duration<double, std::milli>(*at - requested_wall[i]).count());
  }
  std::printf("parks bench: one connection per request\n");
  std::printf("  free bookings, %zu distinct slots, 4 clients: %.0f /s (%d refused)\n", free_count, bookings_per_s,
              refused.load());
  std::printf("  raw SQLite, overlap check + insert + outbox row per transaction, one thread: %.0f /s\n", raw);
  std::printf("  ratio bookings / raw SQLite: %.3f\n", bookings_per_s / raw);
  if (saga_ms.empty()) return std::fprintf(stderr, "no saga completed\n"), 1;
  std::printf("  priced saga at 100/s (%zu sagas, %zu confirmed%s): request -> confirmed p50 %.1f ms, p99 %.1f ms\n",
              saga_count, saga_ms.size(), all_confirmed ? "" : ", NOT ALL", percentile(saga_ms, 0.5),
              percentile(saga_ms, 0.99));
  return all_confirmed && refused == 0 ? 0 : 1;
}
