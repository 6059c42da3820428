// The parks module against the real server: facilities in their time zone, bookings
// (free at once, priced through revenue's invoice and payment: the saga of DESIGN §7),
// hold expiry and the slot released, cancellation and refund, 20 clients for one slot,
// program capacity and the waitlist, bad input, and the cross-module invariants read from
// the files.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/server.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::HttpResponse;
using Clock = std::chrono::system_clock;

// `hour`:00 local time in New York, `days` days from today there, as UTC RFC 3339.
std::string new_york(int days, int hour) {
  auto zone = date::locate_zone("America/New_York");
  auto today = date::floor<date::days>(zone->to_local(Clock::now()));
  auto local = today + date::days(days) + std::chrono::hours(hour);
  return utc::format(zone->to_sys(local));
}

// The next second Sunday of March (the US switch to daylight saving time) at least a day
// away, as a local day in New York.
date::local_days next_spring_forward() {
  auto zone = date::locate_zone("America/New_York");
  auto today = date::floor<date::days>(zone->to_local(Clock::now()));
  auto year = date::year_month_day(today).year();
  for (;; ++year) {
    date::local_days sunday{year / date::March / date::Sunday[2]};
    if (sunday > today + date::days(1)) return sunday;
  }
}

std::string at(date::local_days day, int hour) {
  return utc::format(date::locate_zone("America/New_York")->to_sys(day + std::chrono::hours(hour)));
}

json week(const std::string& open, const std::string& close) {
  json out = json::object();
  for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
    out[day] = {{"open", open}, {"close", close}};
  return out;
}

class ParksHttp : public ::testing::Test {
 protected:
  virtual std::int64_t hold_seconds() { return 60; }
  virtual std::int64_t refund_cutoff_hours() { return 24; }
  virtual void configure(config::Config&) {}

  void SetUp() override {
    auto config = testing::test_config(dir.path());
    for (auto& module : config.modules)
      if (module.name == "parks") {
        module.settings["hold_seconds"] = hold_seconds();
        module.settings["refund_cutoff_hours"] = refund_cutoff_hours();
      }
    configure(config);
    for (const auto& [email, role, department] : std::vector<std::array<std::string, 3>>{
             {"admin@example.org", "admin", ""}, {"pat@example.org", "parks_staff", "PRK"}}) {
      auto created = app::create_staff_user(
          config, auth::StaffUser{email, "staff password 1", "Staff", role,
                                  department.empty() ? std::nullopt : std::optional<std::string>(department)});
      ASSERT_TRUE(created) << created.error().message;
    }
    server = std::make_unique<testing::TestServer>(std::move(config));
    admin = testing::login(server->port(), "admin@example.org", "staff password 1");
    pat = testing::login(server->port(), "pat@example.org", "staff password 1");
    free_field = facility("Field", 0);
    court = facility("Court", 2500);
  }

  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& token = {}) {
    return testing::call(server->port(), method, path, body, token);
  }
  static json body_of(const HttpResponse& response) { return json::parse(response.body, nullptr, false); }

  std::int64_t facility(const std::string& name, std::int64_t price) {
    auto created = call("POST", "/api/v1/parks/facilities",
                        json{{"name", name},
                             {"kind", "field"},
                             {"capacity", 20},
                             {"hourly_price_cents", price},
                             {"time_zone", "America/New_York"},
                             {"opening_hours", week("08:00", "20:00")}}
                            .dump(),
                        pat);
    EXPECT_EQ(created.status, 201) << created.body;
    return body_of(created)["id"];
  }

  // A registered citizen; `verified`: the city verified their email (a priced hold needs
  // it) and parks' citizen_refs has learned so.
  std::pair<std::int64_t, std::string> citizen(const std::string& email, bool verified = true) {
    auto registered = call("POST", "/api/v1/auth/register",
                           json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump());
    EXPECT_EQ(registered.status, 201) << registered.body;
    std::int64_t id = body_of(registered)["id"];
    if (verified) verify(id);
    return {id, testing::login(server->port(), email, "a long enough password")};
  }
  void verify(std::int64_t citizen_id) {
    auto verified =
        call("PATCH", "/api/v1/auth/citizens/" + std::to_string(citizen_id), R"({"email_verified":true})", admin);
    EXPECT_EQ(verified.status, 200) << verified.body;
    EXPECT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  }

  HttpResponse book(const std::string& token, std::int64_t facility_id, const std::string& starts,
                    const std::string& ends) {
    return call("POST", "/api/v1/parks/bookings",
                json{{"facility_id", facility_id}, {"starts_at", starts}, {"ends_at", ends}}.dump(), token);
  }
  json booking(std::int64_t id, const std::string& token) {
    return body_of(call("GET", "/api/v1/parks/bookings/" + std::to_string(id), {}, token));
  }
  // The invoice revenue opened for a booking (or an enrollment) (null until it has).
  json invoice_of(std::int64_t id, const std::string& token, const std::string& type = "booking") {
    auto list = body_of(call("GET", "/api/v1/revenue/invoices", {}, token));
    for (const auto& item : list["items"])
      if (item["source"]["module"] == "parks" && item["source"]["type"] == type &&
          item["source"]["id"] == std::to_string(id))
        return item;
    return nullptr;
  }
  json enrollment(std::int64_t id, const std::string& token) {
    return body_of(call("GET", "/api/v1/parks/enrollments/" + std::to_string(id), {}, token));
  }
  HttpResponse enroll(std::int64_t program, const std::string& token) {
    return call("POST", "/api/v1/parks/programs/" + std::to_string(program) + "/enrollments", {}, token);
  }
  // A program priced 4,000 (the demo's yoga class) with `capacity` places, meeting first
  // `days` days from now.
  std::int64_t priced_program(std::int64_t capacity, int days = 10) {
    auto created = call("POST", "/api/v1/parks/programs",
                        json{{"name", "Morning yoga"},
                             {"schedule", "Saturdays 09:00-10:00"},
                             {"capacity", capacity},
                             {"price_cents", 4000},
                             {"starts_at", new_york(days, 9)}}
                            .dump(),
                        pat);
    EXPECT_EQ(created.status, 201) << created.body;
    return body_of(created)["id"];
  }
  HttpResponse pay(const std::string& token, std::int64_t invoice, std::int64_t amount, const std::string& card,
                   const std::string& key) {
    return testing::http_request(
        server->port(), "POST", "/api/v1/revenue/payments",
        json{{"invoice_id", invoice}, {"amount_cents", amount}, {"method", {{"type", "card"}, {"token", card}}}}.dump(),
        {"Authorization: Bearer " + token, "Idempotency-Key: " + key});
  }
  static void expect_problem(const HttpResponse& response, int status, const std::string& detail = {}) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_EQ(response.header("content-type"), "application/problem+json");
    if (!detail.empty()) {
      EXPECT_NE(response.body.find(detail), std::string::npos) << response.body;
    }
  }

  // DESIGN §7's invariants, read from the files once the bus is idle: no two active
  // bookings of a facility overlap, no priced booking (or enrollment) is confirmed without
  // a completed payment, every cancelled priced booking's (or enrollment's) invoice is
  // voided or refunded — or paid, when it was cancelled paid with the decision not to
  // refund.
  void check_invariants() {
    ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
    SQLite::Database parks((dir.path() / "parks.db").string(), SQLite::OPEN_READONLY);
    SQLite::Database revenue((dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(parks
                  .execAndGet("SELECT count(*) FROM bookings a JOIN bookings b ON a.facility_id = b.facility_id AND "
                              "a.id < b.id WHERE a.status <> 'cancelled' AND b.status <> 'cancelled' AND "
                              "a.starts_at < b.ends_at AND b.starts_at < a.ends_at")
                  .getInt(),
              0);
    SQLite::Statement confirmed(parks,
                                "SELECT id, payment_id FROM bookings WHERE status = 'confirmed' AND amount_cents > 0");
    while (confirmed.executeStep()) {
      ASSERT_FALSE(confirmed.getColumn(1).isNull()) << "booking " << confirmed.getColumn(0).getInt64();
      SQLite::Statement payment(revenue, "SELECT status FROM payments WHERE id = ?");
      payment.bind(1, confirmed.getColumn(1).getInt64());
      ASSERT_TRUE(payment.executeStep());
      EXPECT_EQ(payment.getColumn(0).getString(), "completed");
    }
    SQLite::Statement cancelled(
        parks, "SELECT id, coalesce(refund, '') FROM bookings WHERE status = 'cancelled' AND amount_cents > 0");
    while (cancelled.executeStep()) {
      auto kept = cancelled.getColumn(1).getString() == "none";
      SQLite::Statement invoice(revenue,
                                "SELECT status FROM invoices WHERE source_module = 'parks' AND source_type = 'booking' "
                                "AND source_id = ?");
      invoice.bind(1, std::to_string(cancelled.getColumn(0).getInt64()));
      ASSERT_TRUE(invoice.executeStep()) << "cancelled booking " << cancelled.getColumn(0).getInt64();
      auto status = invoice.getColumn(0).getString();
      if (kept)
        EXPECT_EQ(status, "paid");
      else
        EXPECT_TRUE(status == "voided" || status == "refunded") << status;
    }
    SQLite::Statement enrolled(parks,
                               "SELECT id, payment_id FROM enrollments WHERE status = 'enrolled' AND amount_cents > 0");
    while (enrolled.executeStep()) {
      ASSERT_FALSE(enrolled.getColumn(1).isNull()) << "enrollment " << enrolled.getColumn(0).getInt64();
      SQLite::Statement payment(revenue, "SELECT status FROM payments WHERE id = ?");
      payment.bind(1, enrolled.getColumn(1).getInt64());
      ASSERT_TRUE(payment.executeStep());
      EXPECT_EQ(payment.getColumn(0).getString(), "completed");
    }
    // A waitlisted enrollment never asked for money: only those that held a place.
    SQLite::Statement released(parks,
                               "SELECT id, coalesce(refund, '') FROM enrollments WHERE status = 'cancelled' AND "
                               "amount_cents > 0 AND (payment_id IS NOT NULL OR cancelled_by = 'system' OR id IN "
                               "(SELECT CAST(aggregate_id AS INTEGER) FROM outbox WHERE event_type = "
                               "'enrollment.requested'))");
    while (released.executeStep()) {
      SQLite::Statement invoice(revenue,
                                "SELECT status FROM invoices WHERE source_module = 'parks' AND source_type = "
                                "'enrollment' AND source_id = ?");
      invoice.bind(1, std::to_string(released.getColumn(0).getInt64()));
      ASSERT_TRUE(invoice.executeStep()) << "cancelled enrollment " << released.getColumn(0).getInt64();
      auto status = invoice.getColumn(0).getString();
      if (released.getColumn(1).getString() == "none")
        EXPECT_EQ(status, "paid");
      else
        EXPECT_TRUE(status == "voided" || status == "refunded") << status;
    }
  }

  testing::TempDir dir;
  std::unique_ptr<testing::TestServer> server;
  std::string admin, pat;
  std::int64_t free_field = 0, court = 0;
};

TEST_F(ParksHttp, FacilitiesArePublicAndStaffManageThem) {
  auto list = body_of(call("GET", "/api/v1/parks/facilities"));
  EXPECT_EQ(list["items"].size(), 2u);
  auto shown = body_of(call("GET", "/api/v1/parks/facilities/" + std::to_string(court)));
  EXPECT_EQ(shown["hourly_price_cents"], 2500);
  EXPECT_EQ(shown["opening_hours"]["sat"]["open"], "08:00");
  auto [maria, token] = citizen("maria@example.org");
  expect_problem(call("POST", "/api/v1/parks/facilities", R"({"name":"x"})", token), 403);
  auto patched =
      call("PATCH", "/api/v1/parks/facilities/" + std::to_string(court), R"({"hourly_price_cents":3000})", pat);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(body_of(patched)["hourly_price_cents"], 3000);
  auto bad = [&](json body, const std::string& detail) {
    expect_problem(call("POST", "/api/v1/parks/facilities", body.dump(), pat), 400, detail);
  };
  json good{{"name", "N"},
            {"kind", "k"},
            {"capacity", 1},
            {"hourly_price_cents", 0},
            {"time_zone", "America/New_York"},
            {"opening_hours", week("08:00", "20:00")}};
  auto with = [&](const std::string& key, json value) {
    auto copy = good;
    copy[key] = std::move(value);
    return copy;
  };
  bad(with("time_zone", "Mars/Olympus_Mons"), "time_zone");
  bad(with("time_zone", "EST+5"), "time_zone");
  bad(with("opening_hours", {{"funday", {{"open", "08:00"}, {"close", "09:00"}}}}), "unknown weekday");
  bad(with("opening_hours", {{"mon", {{"open", "20:00"}, {"close", "08:00"}}}}), "open before");
  bad(with("opening_hours", {{"mon", {{"open", "8am"}, {"close", "20:00"}}}}), "HH:MM");
  bad(with("hourly_price_cents", -1), "hourly_price_cents");
  bad(with("currency", "ABC"), "ISO 4217");
  auto missing = good;
  missing.erase("time_zone");
  bad(missing, "time_zone");
}

TEST_F(ParksHttp, AFreeBookingIsConfirmedAtOnceAndItsSlotIsTaken) {
  auto [maria, token] = citizen("maria@example.org");
  auto booked = book(token, free_field, new_york(7, 10), new_york(7, 12));
  ASSERT_EQ(booked.status, 201) << booked.body;
  EXPECT_EQ(body_of(booked)["status"], "confirmed");
  EXPECT_EQ(body_of(booked)["amount_cents"], 0);
  expect_problem(book(token, free_field, new_york(7, 11), new_york(7, 13)), 409, "booked");
  EXPECT_EQ(book(token, free_field, new_york(7, 12), new_york(7, 13)).status, 201);  // adjacent is fine
  // Another citizen neither sees nor cancels it; the owner does, and the slot is free again.
  auto [other, other_token] = citizen("other@example.org");
  auto path = "/api/v1/parks/bookings/" + std::to_string(body_of(booked)["id"].get<std::int64_t>());
  expect_problem(call("GET", path, {}, other_token), 404);
  expect_problem(call("DELETE", path, {}, other_token), 404);
  ASSERT_EQ(call("DELETE", path, {}, token).status, 200);
  EXPECT_EQ(book(other_token, free_field, new_york(7, 10), new_york(7, 12)).status, 201);
  EXPECT_EQ(body_of(call("GET", "/api/v1/parks/bookings", {}, token))["items"].size(), 2u);
  EXPECT_EQ(
      body_of(call("GET", "/api/v1/parks/bookings?facility_id=" + std::to_string(free_field), {}, pat))["items"].size(),
      3u);
  // By date: from is inclusive, to exclusive; a bad time is a 400 naming the parameter.
  auto window = "/api/v1/parks/bookings?from=" + new_york(7, 12) + "&to=" + new_york(7, 13);
  EXPECT_EQ(body_of(call("GET", window, {}, pat))["items"].size(), 1u);
  expect_problem(call("GET", "/api/v1/parks/bookings?from=yesterday", {}, pat), 400, "from");
  check_invariants();
}

TEST_F(ParksHttp, TwentyClientsForOneSlotGetOneBooking) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 20; ++i) tokens.push_back(citizen("c" + std::to_string(i) + "@example.org").second);
  std::vector<int> statuses(20);
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i)
    clients.emplace_back([&, i] { statuses[i] = book(tokens[i], court, new_york(9, 14), new_york(9, 16)).status; });
  for (auto& client : clients) client.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 201), 1);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 409), 19);
  check_invariants();
}

TEST_F(ParksHttp, APricedBookingIsConfirmedByItsPaymentAfterADecline) {
  auto [maria, token] = citizen("maria@example.org");
  auto booked = book(token, court, new_york(8, 9), new_york(8, 11));
  ASSERT_EQ(booked.status, 201) << booked.body;
  auto id = body_of(booked)["id"].get<std::int64_t>();
  EXPECT_EQ(body_of(booked)["status"], "pending_payment");
  EXPECT_EQ(body_of(booked)["amount_cents"], 5000);
  EXPECT_FALSE(body_of(booked)["hold_expires_at"].is_null());
  json invoice;
  ASSERT_TRUE(testing::wait_until([&] { return !(invoice = invoice_of(id, token)).is_null(); }));
  EXPECT_EQ(invoice["amount_cents"], 5000);
  EXPECT_EQ(pay(token, invoice["id"], 5000, "tok_declined", "k1").status, 402);
  EXPECT_EQ(booking(id, token)["status"], "pending_payment");  // still held
  ASSERT_EQ(pay(token, invoice["id"], 5000, "tok_ok", "k2").status, 201);
  EXPECT_TRUE(testing::wait_until([&] { return booking(id, token)["status"] == "confirmed"; }));
  auto confirmed = booking(id, token);
  EXPECT_TRUE(confirmed["hold_expires_at"].is_null());
  EXPECT_EQ(confirmed["invoice_id"], invoice["id"]);
  // Cancelling a paid booking refunds it.
  ASSERT_EQ(call("DELETE", "/api/v1/parks/bookings/" + std::to_string(id), {}, token).status, 200);
  EXPECT_TRUE(testing::wait_until([&] { return invoice_of(id, token)["status"] == "refunded"; }));
  check_invariants();
}

// One citizen cannot hold a facility's calendar with unpaid bookings: at most
// max_unpaid_per_citizen (3) at once; paying or cancelling frees a place.
TEST_F(ParksHttp, UnpaidHoldsPerCitizenAreCapped) {
  auto [maria, token] = citizen("maria@example.org");
  std::vector<std::int64_t> held;
  for (int hour : {9, 10, 11}) {
    auto booked = book(token, court, new_york(12, hour), new_york(12, hour + 1));
    ASSERT_EQ(booked.status, 201) << booked.body;
    held.push_back(body_of(booked)["id"]);
  }
  expect_problem(book(token, court, new_york(12, 12), new_york(12, 13)), 409, "unpaid bookings");
  EXPECT_EQ(book(token, free_field, new_york(12, 12), new_york(12, 13)).status, 201);  // free ones hold nothing
  auto [other, other_token] = citizen("other@example.org");
  EXPECT_EQ(book(other_token, court, new_york(12, 12), new_york(12, 13)).status, 201);  // per citizen
  ASSERT_EQ(call("DELETE", "/api/v1/parks/bookings/" + std::to_string(held[0]), {}, token).status, 200);
  EXPECT_EQ(book(token, court, new_york(12, 14), new_york(12, 15)).status, 201);
}

// Issue 21 §3.3: one fresh account filled a free field's calendar (free bookings are
// confirmed at once). At most max_active_bookings_per_kind (4) bookings not yet ended per
// citizen and facility kind; the court is a "field" too, so it counts with the free one.
TEST_F(ParksHttp, OneAccountCannotHoardAFreeFacility) {
  auto [maria, token] = citizen("maria@example.org");
  std::vector<std::int64_t> held;
  for (int day = 20; day < 24; ++day) {
    auto booked = book(token, free_field, new_york(day, 8), new_york(day, 16));
    ASSERT_EQ(booked.status, 201) << booked.body;
    held.push_back(body_of(booked)["id"]);
  }
  expect_problem(book(token, free_field, new_york(24, 8), new_york(24, 16)), 409, "have not ended");
  expect_problem(book(token, court, new_york(24, 8), new_york(24, 9)), 409, "have not ended");
  auto [other, other_token] = citizen("other@example.org");
  EXPECT_EQ(book(other_token, free_field, new_york(24, 8), new_york(24, 16)).status, 201);
  ASSERT_EQ(call("DELETE", "/api/v1/parks/bookings/" + std::to_string(held[0]), {}, token).status, 200);
  EXPECT_EQ(book(token, free_field, new_york(25, 8), new_york(25, 16)).status, 201);
  check_invariants();
}

// Issue 21 §3.1: cancelling a paid booking while in progress or after it ended refunded
// it in full. A citizen cannot cancel a started booking (409); parks staff can, deciding
// the refund explicitly (the body is required for a paid booking), and revenue does what
// was decided. Time passes by moving the booking into the past in parks.db.
TEST_F(ParksHttp, AStartedBookingIsCancelledOnlyByStaffWhoDecideTheRefund) {
  auto [maria, token] = citizen("maria@example.org");
  std::vector<std::int64_t> ids;
  for (int hour : {9, 11}) {
    auto booked = book(token, court, new_york(8, hour), new_york(8, hour + 1));
    ASSERT_EQ(booked.status, 201) << booked.body;
    auto id = body_of(booked)["id"].get<std::int64_t>();
    json invoice;
    ASSERT_TRUE(testing::wait_until([&] { return !(invoice = invoice_of(id, token)).is_null(); }));
    ASSERT_EQ(pay(token, invoice["id"], 2500, "tok_ok", "k" + std::to_string(id)).status, 201);
    ASSERT_TRUE(testing::wait_until([&] { return booking(id, token)["status"] == "confirmed"; }));
    ids.push_back(id);
  }
  {
    // One is under way (started an hour ago), the other ended yesterday.
    SQLite::Database file((dir.path() / "parks.db").string(), SQLite::OPEN_READWRITE);
    file.setBusyTimeout(5000);
    SQLite::Statement move(file, "UPDATE bookings SET starts_at = ?, ends_at = ? WHERE id = ?");
    for (auto [id, from, to] : {std::tuple{ids[0], -1, 1}, std::tuple{ids[1], -26, -25}}) {
      move.bind(1, utc::format(Clock::now() + std::chrono::hours(from)));
      move.bind(2, utc::format(Clock::now() + std::chrono::hours(to)));
      move.bind(3, id);
      ASSERT_EQ(move.exec(), 1);
      move.reset();
    }
  }
  auto path = [](std::int64_t id) { return "/api/v1/parks/bookings/" + std::to_string(id); };
  for (auto id : ids) expect_problem(call("DELETE", path(id), {}, token), 409, "no longer be cancelled");
  expect_problem(call("DELETE", path(ids[0]), R"({"refund":true,"reason":"mine"})", token), 400, "only parks staff");
  expect_problem(call("DELETE", path(ids[0]), {}, pat), 400, "refund");
  expect_problem(call("DELETE", path(ids[0]), R"({"refund":"yes","reason":"x"})", pat), 400, "refund");
  expect_problem(call("DELETE", path(ids[0]), R"({"refund":false,"reason":"x","why":1})", pat), 400, "unknown field");
  EXPECT_EQ(booking(ids[0], token)["status"], "confirmed");

  auto kept = call("DELETE", path(ids[0]), R"({"refund":false,"reason":"played the whole hour"})", pat);
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(body_of(kept)["cancelled_by"], "staff");
  EXPECT_EQ(body_of(kept)["refund"], "none");
  EXPECT_EQ(body_of(kept)["cancel_reason"], "played the whole hour");
  EXPECT_FALSE(body_of(kept)["cancelled_at"].is_null());
  auto refunded = call("DELETE", path(ids[1]), R"({"refund":true,"reason":"the lights failed"})", pat);
  ASSERT_EQ(refunded.status, 200) << refunded.body;
  EXPECT_EQ(body_of(refunded)["refund"], "full");
  EXPECT_TRUE(testing::wait_until([&] { return invoice_of(ids[1], token)["status"] == "refunded"; }));
  ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  EXPECT_EQ(invoice_of(ids[0], token)["status"], "paid");
  SQLite::Database ledger((dir.path() / "payment-simulator.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) FROM charges WHERE refunded = 1").getInt(), 1);
  // The audit on the row: who, when, the decision and why.
  SQLite::Database parks((dir.path() / "parks.db").string(), SQLite::OPEN_READONLY);
  SQLite::Statement audit(parks,
                          "SELECT cancelled_by, cancelled_by_id IS NOT NULL, cancelled_at IS NOT NULL, refund, "
                          "cancel_reason FROM bookings WHERE id = ?");
  audit.bind(1, ids[0]);
  ASSERT_TRUE(audit.executeStep());
  EXPECT_EQ(audit.getColumn(0).getString(), "staff");
  EXPECT_EQ(audit.getColumn(1).getInt(), 1);
  EXPECT_EQ(audit.getColumn(2).getInt(), 1);
  EXPECT_EQ(audit.getColumn(3).getString(), "none");
  check_invariants();
}

// Issue 26.3 on the numbers: a week of a facility open 12 h a day (84 h), three hours of
// confirmed bookings, one of them a no-show, and one cancelled by its citizen.
TEST_F(ParksHttp, TheUtilisationReportCountsAWeekOfBookingsNoShowsAndCancellations) {
  auto [maria, token] = citizen("maria@example.org");
  std::vector<std::int64_t> ids;
  for (auto [hour, hours] : {std::pair{9, 2}, std::pair{13, 1}, std::pair{15, 1}}) {
    auto booked = book(token, free_field, new_york(20, hour), new_york(20, hour + hours));
    ASSERT_EQ(booked.status, 201) << booked.body;
    ids.push_back(body_of(booked)["id"].get<std::int64_t>());
  }
  auto path = [](std::int64_t id) { return "/api/v1/parks/bookings/" + std::to_string(id); };
  expect_problem(call("POST", path(ids[0]) + "/no-show", {}, pat), 409, "has not started");
  ASSERT_EQ(call("DELETE", path(ids[2]), {}, token).status, 200);
  {
    // Into the week of Monday 2 March 2026 (New York is UTC-5 until 8 March). By hand, so
    // with the local day the report counts the booking on (parks 0008; the code never
    // moves a booking: each of these starts on the same day in New York as in UTC).
    SQLite::Database file((dir.path() / "parks.db").string(), SQLite::OPEN_READWRITE);
    file.setBusyTimeout(5000);
    SQLite::Statement move(
        file, "UPDATE bookings SET starts_at = ?1, ends_at = ?2, local_day = substr(?1, 1, 10) WHERE id = ?3");
    for (auto [id, from, to] : {std::tuple{ids[0], "2026-03-02T14:00:00.000Z", "2026-03-02T16:00:00.000Z"},
                                std::tuple{ids[1], "2026-03-03T15:00:00.000Z", "2026-03-03T16:00:00.000Z"},
                                std::tuple{ids[2], "2026-03-08T15:00:00.000Z", "2026-03-08T16:00:00.000Z"}}) {
      move.bind(1, from);
      move.bind(2, to);
      move.bind(3, id);
      ASSERT_EQ(move.exec(), 1);
      move.reset();
    }
  }
  expect_problem(call("POST", path(ids[0]) + "/no-show", {}, token), 403);
  auto marked = call("POST", path(ids[0]) + "/no-show", {}, pat);
  ASSERT_EQ(marked.status, 200) << marked.body;
  EXPECT_TRUE(body_of(marked)["no_show_at"].is_string());
  expect_problem(call("POST", path(ids[0]) + "/no-show", {}, pat), 409, "already");
  expect_problem(call("POST", path(ids[2]) + "/no-show", {}, pat), 409, "cancelled");

  const std::string report =
      "/api/v1/parks/reports/utilisation?from=2026-03-02&to=2026-03-08&facility_id=" + std::to_string(free_field);
  auto answered = call("GET", report, {}, pat);
  ASSERT_EQ(answered.status, 200) << answered.body;
  auto rows = body_of(answered)["rows"];
  ASSERT_EQ(rows.size(), 1u) << answered.body;
  EXPECT_EQ(rows[0]["week"], "2026-03-02");
  EXPECT_EQ(rows[0]["open_hours"], 84.0);
  EXPECT_EQ(rows[0]["booked_hours"], 3.0);
  EXPECT_NEAR(rows[0]["utilisation"].get<double>(), 3.0 / 84.0, 1e-9);
  EXPECT_EQ(rows[0]["bookings"], 2);
  EXPECT_EQ(rows[0]["no_shows"], 1);
  EXPECT_EQ(rows[0]["cancelled_by_citizen"], 1);
  EXPECT_EQ(rows[0]["expired"], 0);
  // Two days only: the Tuesday's hour, 24 open hours.
  auto tuesday = body_of(
      call("GET",
           "/api/v1/parks/reports/utilisation?from=2026-03-03&to=2026-03-04&facility_id=" + std::to_string(free_field),
           {}, pat));
  EXPECT_EQ(tuesday["totals"]["open_hours"], 24.0);
  EXPECT_EQ(tuesday["totals"]["booked_hours"], 1.0);
  EXPECT_EQ(tuesday["totals"]["no_shows"], 0);

  auto csv =
      testing::http_request(server->port(), "GET", report, {}, {"Authorization: Bearer " + pat, "Accept: text/csv"});
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body.substr(0, csv.body.find("\r\n")),
            "facility_id,facility,week,open_hours,booked_hours,utilisation,bookings,no_shows,cancelled_by_citizen,"
            "cancelled_by_staff,expired");
  EXPECT_NE(csv.body.find(",Field,2026-03-02,84.0,3.0,"), std::string::npos) << csv.body;
  expect_problem(call("GET", report, {}, token), 403);
  expect_problem(call("GET", "/api/v1/parks/reports/utilisation?facility_id=999999", {}, pat), 404);
  expect_problem(call("GET", "/api/v1/parks/reports/utilisation?to=2026-02-30", {}, pat), 400, "to");
}

// The refund policy end to end: with refund_cutoff_hours = 30 days, a paid booking eight
// days out is inside the no-refund window. Its citizen may still cancel it (the slot is
// freed) but revenue keeps the payment; an unpaid one is simply voided.
class ParksLongRefundCutoff : public ParksHttp {
 protected:
  std::int64_t refund_cutoff_hours() override { return 24 * 30; }
};

TEST_F(ParksLongRefundCutoff, ACitizenCancellingInsideTheCutoffIsNotRefunded) {
  auto [maria, token] = citizen("maria@example.org");
  auto booked = book(token, court, new_york(8, 9), new_york(8, 11));
  ASSERT_EQ(booked.status, 201) << booked.body;
  auto id = body_of(booked)["id"].get<std::int64_t>();
  json invoice;
  ASSERT_TRUE(testing::wait_until([&] { return !(invoice = invoice_of(id, token)).is_null(); }));
  ASSERT_EQ(pay(token, invoice["id"], 5000, "tok_ok", "k1").status, 201);
  ASSERT_TRUE(testing::wait_until([&] { return booking(id, token)["status"] == "confirmed"; }));
  auto cancelled = call("DELETE", "/api/v1/parks/bookings/" + std::to_string(id), {}, token);
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(body_of(cancelled)["refund"], "none");
  EXPECT_EQ(body_of(cancelled)["cancelled_by"], "citizen");
  auto [other, other_token] = citizen("other@example.org");
  EXPECT_EQ(book(other_token, court, new_york(8, 9), new_york(8, 11)).status, 201);  // the slot is free
  ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  EXPECT_EQ(invoice_of(id, token)["status"], "paid");
  auto shown =
      body_of(call("GET", "/api/v1/revenue/invoices/" + std::to_string(invoice["id"].get<std::int64_t>()), {}, token));
  ASSERT_EQ(shown["payments"].size(), 1u);
  EXPECT_EQ(shown["payments"][0]["status"], "completed");
  SQLite::Database ledger((dir.path() / "payment-simulator.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) FROM charges WHERE refunded = 1").getInt(), 0);

  auto unpaid = book(token, court, new_york(9, 9), new_york(9, 10));
  ASSERT_EQ(unpaid.status, 201) << unpaid.body;
  auto unpaid_id = body_of(unpaid)["id"].get<std::int64_t>();
  ASSERT_TRUE(testing::wait_until([&] { return !invoice_of(unpaid_id, token).is_null(); }));
  ASSERT_EQ(call("DELETE", "/api/v1/parks/bookings/" + std::to_string(unpaid_id), {}, token).status, 200);
  EXPECT_TRUE(testing::wait_until([&] { return invoice_of(unpaid_id, token)["status"] == "voided"; }));
  check_invariants();
}

// Issue 21 §3.4: a price parks accepted became an amount revenue refused; booking.requested
// was a dead letter and the booking held its slot with nothing to pay. Prices are checked
// against revenue's ceiling for the longest booking; and a booking revenue still cannot
// invoice (written here into parks.db with its event, as an older build could have) is
// answered with invoice.rejected, which releases it — no dead letter, no held slot.
TEST_F(ParksHttp, APriceRevenueCannotInvoiceIsRefusedAndABookingItRefusesIsReleased) {
  const std::int64_t ceiling = 1'000'000'000'000 / 8;  // revenue's ceiling over max_booking_hours
  auto court_path = "/api/v1/parks/facilities/" + std::to_string(court);
  expect_problem(call("PATCH", court_path, json{{"hourly_price_cents", ceiling + 1}}.dump(), pat), 400,
                 "what revenue can invoice");
  expect_problem(call("PATCH", court_path, R"({"hourly_price_cents":1000000000000})", pat), 400, "hourly_price_cents");
  EXPECT_EQ(call("PATCH", court_path, json{{"hourly_price_cents", ceiling}}.dump(), pat).status, 200);
  EXPECT_EQ(call("PATCH", court_path, R"({"hourly_price_cents":2500})", pat).status, 200);

  auto [maria, token] = citizen("maria@example.org");
  std::int64_t id = 0;
  {
    SQLite::Database file((dir.path() / "parks.db").string(), SQLite::OPEN_READWRITE);
    file.setBusyTimeout(5000);
    SQLite::Transaction transaction(file);
    SQLite::Statement insert(file,
                             "INSERT INTO bookings (facility_id, citizen_id, starts_at, ends_at, status, amount_cents, "
                             "currency, hold_expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, "
                             "'pending_payment', 2000000000000, 'USD', ?, ?, ?)");
    insert.bind(1, court);
    insert.bind(2, maria);
    insert.bind(3, new_york(8, 9));
    insert.bind(4, new_york(8, 11));
    insert.bind(5, utc::format(Clock::now() + std::chrono::minutes(10)));
    insert.bind(6, utc::now());
    insert.bind(7, utc::now());
    insert.exec();
    id = file.getLastInsertRowid();
    SQLite::Statement event(
        file,
        "INSERT INTO outbox (topic, event_type, aggregate_type, aggregate_id, event_version, "
        "occurred_at, correlation_id, causation_id, schema, data) VALUES ('gov.parks.booking', "
        "'booking.requested', 'booking', ?, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'test', '', 1, "
        "?)");
    event.bind(1, std::to_string(id));
    event.bind(2, json{{"snapshot",
                        {{"id", id},
                         {"facility_id", court},
                         {"citizen_id", maria},
                         {"starts_at", new_york(8, 9)},
                         {"ends_at", new_york(8, 11)},
                         {"status", "pending_payment"},
                         {"amount_cents", 2'000'000'000'000},
                         {"currency", "USD"},
                         {"refund_payment", true},
                         {"cancel_reason", nullptr}}}}
                      .dump());
    event.exec();
    transaction.commit();
  }
  ASSERT_TRUE(testing::wait_until([&] { return booking(id, token)["status"] == "cancelled"; }))
      << booking(id, token).dump();
  auto released = booking(id, token);
  EXPECT_EQ(released["cancelled_by"], "system");
  EXPECT_NE(released["cancel_reason"].get<std::string>().find("revenue cannot invoice it"), std::string::npos);
  ASSERT_TRUE(testing::wait_until([&] { return server->app().bus().caught_up(); }));
  EXPECT_TRUE(invoice_of(id, token).is_null());
  for (const char* file : {"revenue.db", "parks.db"}) {
    SQLite::Database db((dir.path() / file).string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT count(*) FROM dead_letters").getInt(), 0) << file;
  }
  EXPECT_EQ(book(token, court, new_york(8, 9), new_york(8, 11)).status, 201);  // the slot is free
}

class ParksShortHold : public ParksHttp {
 protected:
  std::int64_t hold_seconds() override { return 1; }
};

TEST_F(ParksShortHold, AnUnpaidHoldExpiresReleasesTheSlotAndVoidsTheInvoice) {
  auto [maria, token] = citizen("maria@example.org");
  auto booked = book(token, court, new_york(8, 15), new_york(8, 16));
  ASSERT_EQ(booked.status, 201) << booked.body;
  auto id = body_of(booked)["id"].get<std::int64_t>();
  auto deadline = utc::parse(body_of(booked)["hold_expires_at"].get<std::string>());
  ASSERT_TRUE(deadline);
  ASSERT_TRUE(testing::wait_until([&] { return booking(id, token)["status"] == "cancelled"; }));
  auto cancelled = booking(id, token);
  EXPECT_EQ(cancelled["cancel_reason"], "the payment hold expired");
  // On time: not before the deadline (the scheduler sleeps until it, not for a sweep).
  EXPECT_GE(cancelled["updated_at"].get<std::string>(), body_of(booked)["hold_expires_at"].get<std::string>());
  EXPECT_TRUE(testing::wait_until([&] { return invoice_of(id, token)["status"] == "voided"; }));
  expect_problem(pay(token, invoice_of(id, token)["id"], 2500, "tok_ok", "late"), 409, "voided");
  EXPECT_EQ(book(token, court, new_york(8, 15), new_york(8, 16)).status, 201);  // the slot is free
  check_invariants();
}

// A held place in a priced program expires like a booking's hold: released, its invoice
// voided, and the first on the waitlist offered the place with its own deadline.
TEST_F(ParksShortHold, AnUnpaidPlaceInAProgramIsReleasedToTheWaitlist) {
  auto program = priced_program(1);
  auto [maria, token] = citizen("maria@example.org");
  auto [li, li_token] = citizen("li@example.org");
  auto held = enroll(program, token);
  ASSERT_EQ(held.status, 201) << held.body;
  auto id = body_of(held)["id"].get<std::int64_t>();
  auto waiting = enroll(program, li_token);
  ASSERT_EQ(waiting.status, 201) << waiting.body;
  auto li_id = body_of(waiting)["id"].get<std::int64_t>();
  EXPECT_EQ(body_of(waiting)["status"], "waitlisted");
  ASSERT_TRUE(testing::wait_until([&] { return enrollment(id, token)["status"] == "cancelled"; }));
  EXPECT_EQ(enrollment(id, token)["cancel_reason"], "the payment hold expired");
  EXPECT_TRUE(testing::wait_until([&] { return invoice_of(id, token, "enrollment")["status"] == "voided"; }));
  // Li is offered the place, then lets it expire too: nobody is left waiting.
  EXPECT_TRUE(testing::wait_until([&] { return !invoice_of(li_id, li_token, "enrollment").is_null(); }));
  ASSERT_TRUE(testing::wait_until([&] { return enrollment(li_id, li_token)["status"] == "cancelled"; }));
  EXPECT_TRUE(testing::wait_until([&] { return invoice_of(li_id, li_token, "enrollment")["status"] == "voided"; }));
  auto shown = body_of(call("GET", "/api/v1/parks/programs/" + std::to_string(program)));
  EXPECT_EQ(shown["held"], 0);
  EXPECT_EQ(shown["waitlisted"], 0);
  check_invariants();
}

// The payment is still at the processor when the hold runs out: parks cancels, revenue
// voids the invoice; the charge then completes and revenue refunds it; the booking stays
// cancelled (DESIGN §7; issue 12's late payment).
TEST_F(ParksShortHold, APaymentCompletingAfterTheHoldExpiredIsRefunded) {
  auto [maria, token] = citizen("maria@example.org");
  // The scenario needs the 1 s hold to end while the 2 s tok_slow charge is at the
  // processor. On a loaded machine the invoice can appear after the hold ended (the charge
  // is refused: nothing to test) or the expiry can come after the charge (the booking is
  // paid in time): such an attempt is set aside, on a new slot, rather than judged by a
  // clock. The late payment's refund is asserted on the attempt that raced as meant.
  std::int64_t id = 0;
  json invoice;
  bool raced = false;
  for (int attempt = 0; attempt < 5 && !raced; ++attempt) {
    auto booked = book(token, court, new_york(8, 17 - attempt), new_york(8, 18 - attempt));
    ASSERT_EQ(booked.status, 201) << booked.body;
    id = body_of(booked)["id"].get<std::int64_t>();
    ASSERT_TRUE(testing::wait_until([&] { return !(invoice = invoice_of(id, token)).is_null(); }));
    auto paid = pay(token, invoice["id"], 2500, "tok_slow", "slow-" + std::to_string(attempt));
    if (paid.status == 409) continue;  // voided before the charge began
    ASSERT_EQ(paid.status, 201) << paid.body;
    ASSERT_TRUE(testing::wait_until([&] { return booking(id, token)["status"] != "pending_payment"; }));
    raced = booking(id, token)["status"] == "cancelled";
  }
  ASSERT_TRUE(raced) << "no attempt of five had the hold end during the charge";
  EXPECT_EQ(booking(id, token)["cancel_reason"], "the payment hold expired");
  auto payment_path = "/api/v1/revenue/invoices/" + std::to_string(invoice["id"].get<std::int64_t>());
  ASSERT_TRUE(testing::wait_until([&] {
    auto shown = body_of(call("GET", payment_path, {}, token));
    return shown["payments"].size() == 1 && shown["payments"][0]["status"] == "refunded";
  })) << call("GET", payment_path, {}, token).body;
  EXPECT_EQ(body_of(call("GET", payment_path, {}, token))["status"], "voided");
  EXPECT_EQ(booking(id, token)["status"], "cancelled");
  SQLite::Database ledger((dir.path() / "payment-simulator.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) FROM charges WHERE outcome = 'approved' AND refunded = 1").getInt(), 1);
  check_invariants();
}

TEST_F(ParksHttp, BookingsHonourTheFacilitysTimeZoneAcrossDaylightSavingTime) {
  auto [maria, token] = citizen("maria@example.org");
  auto sunday = next_spring_forward();  // 02:00 EST becomes 03:00 EDT
  auto saturday = sunday - date::days(1);
  // 08:00 local is 13:00Z on Saturday (EST) and 12:00Z on Sunday (EDT).
  EXPECT_EQ(at(saturday, 8).substr(11, 5), "13:00");
  EXPECT_EQ(at(sunday, 8).substr(11, 5), "12:00");
  EXPECT_EQ(book(token, free_field, at(saturday, 8), at(saturday, 10)).status, 201);
  EXPECT_EQ(book(token, free_field, at(sunday, 8), at(sunday, 10)).status, 201);
  // The same UTC hour a day apart: 12:00Z is 07:00 on Saturday (closed), 08:00 on Sunday.
  auto utc_noon_saturday = at(saturday, 7);
  EXPECT_EQ(utc_noon_saturday.substr(11, 5), "12:00");
  expect_problem(book(token, free_field, utc_noon_saturday, at(saturday, 8)), 422, "07:00-08:00");
  // The last hour: 19:00-20:00 local fits, 19:00-21:00 does not.
  EXPECT_EQ(book(token, free_field, at(sunday, 19), at(sunday, 20)).status, 201);
  expect_problem(book(token, free_field, at(saturday, 19), at(saturday, 21)), 422, "outside opening hours");
}

TEST_F(ParksHttp, AvailabilityShowsEveryOpeningHourFreeTakenOrPastInTheFacilitysZone) {
  auto [maria, token] = citizen("maria@example.org");
  auto booked = book(token, free_field, new_york(2, 10), new_york(2, 12));
  ASSERT_EQ(booked.status, 201) << booked.body;
  auto zone = date::locate_zone("America/New_York");
  auto today = date::floor<date::days>(zone->to_local(Clock::now()));
  const auto path = "/api/v1/parks/facilities/" + std::to_string(free_field) + "/availability";

  // Anyone may ask (no token); 08:00-20:00 is twelve one-hour slots a day.
  auto answer = call("GET", path + "?from=" + date::format("%F", today + date::days(1)) + "&days=3");
  ASSERT_EQ(answer.status, 200) << answer.body;
  auto days = body_of(answer);
  EXPECT_EQ(days["time_zone"], "America/New_York");
  ASSERT_EQ(days["days"].size(), 3u);
  EXPECT_EQ(days["days"][1]["date"], date::format("%F", today + date::days(2)));
  for (std::size_t d = 0; d < 3; ++d) {
    const auto& slots = days["days"][d]["slots"];
    ASSERT_EQ(slots.size(), 12u);
    EXPECT_EQ(slots[0]["local_start"], "08:00");
    EXPECT_EQ(slots[11]["local_start"], "19:00");
    for (std::size_t h = 0; h < 12; ++h) {
      bool booked_hour = d == 1 && (h == 2 || h == 3);  // 10:00 and 11:00 the day after tomorrow
      EXPECT_EQ(slots[h]["state"], booked_hour ? "taken" : "free") << d << " " << h;
    }
  }
  // A slot's start and end are what a booking sends.
  EXPECT_EQ(days["days"][1]["slots"][2]["start"], new_york(2, 10));
  EXPECT_EQ(days["days"][1]["slots"][3]["end"], new_york(2, 12));

  // Cancelled, the hours are free again.
  ASSERT_EQ(
      call("DELETE", "/api/v1/parks/bookings/" + std::to_string(body_of(booked)["id"].get<std::int64_t>()), {}, token)
          .status,
      200);
  days = body_of(call("GET", path + "?from=" + date::format("%F", today + date::days(2)) + "&days=1"));
  for (const auto& slot : days["days"][0]["slots"]) EXPECT_EQ(slot["state"], "free");

  // By default today in the zone, seven days; an hour that has begun is past.
  auto before = Clock::now();
  days = body_of(call("GET", path));
  auto after = Clock::now();
  ASSERT_EQ(days["days"].size(), 7u);
  EXPECT_EQ(days["from"], date::format("%F", today));
  for (const auto& slot : days["days"][0]["slots"]) {
    auto start = utc::parse(slot["start"].get<std::string>());
    ASSERT_TRUE(start);
    if (*start < before) {
      EXPECT_EQ(slot["state"], "past");
    } else if (*start > after) {
      EXPECT_EQ(slot["state"], "free");
    }
  }

  // A day the clocks skip an hour has 23 slots round the clock and no 02:00.
  auto created = call("POST", "/api/v1/parks/facilities",
                      json{{"name", "Rink"},
                           {"kind", "rink"},
                           {"capacity", 1},
                           {"hourly_price_cents", 0},
                           {"time_zone", "America/New_York"},
                           {"opening_hours", week("00:00", "24:00")}}
                          .dump(),
                      pat);
  ASSERT_EQ(created.status, 201) << created.body;
  auto rink = "/api/v1/parks/facilities/" + std::to_string(body_of(created)["id"].get<std::int64_t>());
  days = body_of(call("GET", rink + "/availability?from=" + date::format("%F", next_spring_forward()) + "&days=1"));
  const auto& slots = days["days"][0]["slots"];
  ASSERT_EQ(slots.size(), 23u);
  for (const auto& slot : slots) EXPECT_NE(slot["local_start"], "02:00");
  EXPECT_EQ(slots[2]["local_start"], "03:00");
  EXPECT_EQ(slots[2]["start"], at(next_spring_forward(), 3));

  // Bad input names the parameter; a closed or unknown facility is not found.
  for (const char* query : {"?days=0", "?days=15", "?days=x", "?days=7d"})
    expect_problem(call("GET", path + query), 400, "days");
  for (const char* query : {"?from=2026-02-30", "?from=tomorrow", "?from=2026-1-01"})
    expect_problem(call("GET", path + query), 400, "from");
  expect_problem(call("GET", "/api/v1/parks/facilities/999999/availability"), 404);
  ASSERT_EQ(call("PATCH", rink, R"({"is_active":false})", pat).status, 200);
  expect_problem(call("GET", rink + "/availability"), 404);
}

TEST_F(ParksHttp, BadBookingInputIsRefusedWithWhatIsWrong) {
  auto [maria, token] = citizen("maria@example.org");
  auto start = new_york(10, 10);
  expect_problem(book(token, free_field, new_york(10, 12), start), 400, "ends_at must be after starts_at");
  expect_problem(book(token, free_field, start, start), 400, "ends_at must be after starts_at");
  auto half_past = utc::format(*utc::parse(start) + std::chrono::minutes(30));
  expect_problem(book(token, free_field, start, half_past), 422, "whole hours");
  expect_problem(book(token, free_field, half_past, new_york(10, 12)), 422, "whole hours");
  // Half a second past the last hour (issue 21 §3.2): the fraction is refused, not floored.
  auto fraction = [](const std::string& time) { return time.substr(0, 19) + ".500Z"; };
  expect_problem(book(token, free_field, fraction(new_york(10, 19)), fraction(new_york(10, 20))), 422,
                 "fractions of a second");
  expect_problem(book(token, free_field, new_york(10, 19), fraction(new_york(10, 20))), 422, "fractions of a second");
  expect_problem(book(token, free_field, new_york(10, 6), new_york(10, 8)), 422, "outside opening hours");
  expect_problem(book(token, free_field, new_york(10, 8), new_york(10, 17)), 422, "at most 8 hours");
  expect_problem(book(token, free_field, new_york(-2, 10), new_york(-2, 11)), 400, "past");
  expect_problem(book(token, free_field, new_york(400, 10), new_york(400, 11)), 400, "days from now");
  expect_problem(book(token, 999, start, new_york(10, 11)), 422, "unknown facility_id");
  expect_problem(book(token, free_field, "tomorrow at ten", new_york(10, 11)), 400, "starts_at");
  expect_problem(book(token, free_field, start.substr(0, 19), new_york(10, 11)), 400, "starts_at");  // no offset
  expect_problem(book(token, free_field, "2027-02-30T10:00:00Z", new_york(10, 11)), 400, "starts_at");
  expect_problem(call("POST", "/api/v1/parks/bookings", R"({"facility_id":1,"starts_at":5})", token), 400);
  expect_problem(call("POST", "/api/v1/parks/bookings", R"({"facility_id":1,"room":2})", token), 400, "unknown field");
  expect_problem(book(pat, free_field, start, new_york(10, 11)), 403);  // staff do not book
  expect_problem(call("GET", "/api/v1/parks/bookings?page_size=10000", {}, token), 400, "page_size");
  EXPECT_EQ(body_of(call("GET", "/api/v1/parks/bookings", {}, token))["items"].size(), 0u);
}

TEST_F(ParksHttp, ProgramsNeverExceedCapacityAndTheWaitlistMovesUpInOrder) {
  auto created =
      call("POST", "/api/v1/parks/programs",
           json{{"name", "Yoga"}, {"schedule", "Saturdays 9-10"}, {"capacity", 5}, {"price_cents", 0}}.dump(), pat);
  ASSERT_EQ(created.status, 201) << created.body;
  auto program = body_of(created)["id"].get<std::int64_t>();
  std::vector<std::string> tokens;
  for (int i = 0; i < 20; ++i) tokens.push_back(citizen("y" + std::to_string(i) + "@example.org", false).second);
  std::vector<json> answers(20);
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i)
    clients.emplace_back([&, i] {
      answers[i] =
          body_of(call("POST", "/api/v1/parks/programs/" + std::to_string(program) + "/enrollments", {}, tokens[i]));
    });
  for (auto& client : clients) client.join();
  int enrolled = 0, waitlisted = 0;
  for (const auto& answer : answers) {
    if (answer["status"] == "enrolled") ++enrolled;
    if (answer["status"] == "waitlisted") ++waitlisted;
  }
  EXPECT_EQ(enrolled, 5);
  EXPECT_EQ(waitlisted, 15);
  auto shown = body_of(call("GET", "/api/v1/parks/programs/" + std::to_string(program)));
  EXPECT_EQ(shown["enrolled"], 5);
  EXPECT_EQ(shown["waitlisted"], 15);
  // The first on the waitlist takes a freed place.
  int first_enrolled = -1, first_waitlisted = -1;
  for (int i = 0; i < 20; ++i) {
    if (answers[i]["status"] == "enrolled" && first_enrolled < 0) first_enrolled = i;
    if (answers[i]["status"] == "waitlisted" && answers[i]["waitlist_position"] == 1) first_waitlisted = i;
  }
  ASSERT_GE(first_enrolled, 0);
  ASSERT_GE(first_waitlisted, 0);
  auto enrollment = [&](int i) {
    return "/api/v1/parks/enrollments/" + std::to_string(answers[i]["id"].get<std::int64_t>());
  };
  expect_problem(call("DELETE", enrollment(first_enrolled), {}, tokens[first_waitlisted]), 404);
  ASSERT_EQ(call("DELETE", enrollment(first_enrolled), {}, tokens[first_enrolled]).status, 200);
  EXPECT_EQ(body_of(call("GET", enrollment(first_waitlisted), {}, tokens[first_waitlisted]))["status"], "enrolled");
  expect_problem(
      call("POST", "/api/v1/parks/programs/" + std::to_string(program) + "/enrollments", {}, tokens[first_waitlisted]),
      409, "already enrolled");
}

// Issue 25: the portal lists a citizen's own enrollments and, for parks staff, a
// program's; by cursor, in id order.
TEST_F(ParksHttp, EnrollmentsAreListedOwnForACitizenAndByProgramForStaff) {
  std::vector<std::int64_t> programs;
  for (const char* name : {"Chess", "Pottery"}) {
    auto created =
        call("POST", "/api/v1/parks/programs",
             json{{"name", name}, {"schedule", "Tuesdays"}, {"capacity", 1}, {"price_cents", 0}}.dump(), pat);
    ASSERT_EQ(created.status, 201) << created.body;
    programs.push_back(body_of(created)["id"].get<std::int64_t>());
  }
  auto ana = citizen("ana@example.org", false).second, ben = citizen("ben@example.org", false).second;
  auto enrol = [&](std::int64_t program, const std::string& token) {
    auto answer = call("POST", "/api/v1/parks/programs/" + std::to_string(program) + "/enrollments", {}, token);
    EXPECT_EQ(answer.status, 201) << answer.body;
    return body_of(answer);
  };
  auto ana_chess = enrol(programs[0], ana), ana_pottery = enrol(programs[1], ana), ben_chess = enrol(programs[0], ben);
  EXPECT_EQ(ben_chess["status"], "waitlisted");

  auto mine = body_of(call("GET", "/api/v1/parks/enrollments", {}, ana));
  ASSERT_EQ(mine["items"].size(), 2u) << mine.dump();
  EXPECT_EQ(mine["items"][0]["id"], ana_chess["id"]);
  EXPECT_EQ(mine["items"][1]["id"], ana_pottery["id"]);
  auto bens = body_of(call("GET", "/api/v1/parks/enrollments?program_id=" + std::to_string(programs[1]), {}, ben));
  EXPECT_TRUE(bens["items"].empty());  // another citizen's places are not shown

  auto chess = "/api/v1/parks/enrollments?program_id=" + std::to_string(programs[0]);
  auto first = body_of(call("GET", chess + "&page_size=1", {}, pat));
  ASSERT_EQ(first["items"].size(), 1u);
  EXPECT_EQ(first["items"][0]["id"], ana_chess["id"]);
  ASSERT_TRUE(first["next_cursor"].is_string());
  auto second = body_of(call("GET", chess + "&page_size=1&cursor=" + first["next_cursor"].get<std::string>(), {}, pat));
  ASSERT_EQ(second["items"].size(), 1u);
  EXPECT_EQ(second["items"][0]["id"], ben_chess["id"]);
  EXPECT_EQ(second["items"][0]["waitlist_position"], 1);
  EXPECT_TRUE(second["next_cursor"].is_null());
  expect_problem(call("GET", "/api/v1/parks/enrollments?program_id=zero", {}, pat), 400, "program_id");
  // A cursor is the list's and its reader's: a citizen cannot page staff's list with it.
  EXPECT_NE(call("GET", chess + "&cursor=" + first["next_cursor"].get<std::string>(), {}, ana).status, 200);
}

// Issue 28 §3: a program priced 4,000 (the demo's yoga class) confirmed the place and
// opened no invoice. A priced place is now held pending_payment with a deadline, revenue
// opens its invoice, the payment enrolls it; held places count against capacity; a
// cancelled paid place is refunded by the booking's policy and offered to the first on
// the waitlist, held for that citizen's own payment.
TEST_F(ParksHttp, APricedProgramIsPaidForBeforeItsPlaceIsConfirmed) {
  expect_problem(call("POST", "/api/v1/parks/programs",
                      R"({"name":"Yoga","schedule":"Saturdays","capacity":5,"price_cents":4000})", pat),
                 400, "starts_at");
  auto program = priced_program(1);
  auto [maria, token] = citizen("maria@example.org");
  auto [li, li_token] = citizen("li@example.org");
  auto held = enroll(program, token);
  ASSERT_EQ(held.status, 201) << held.body;
  auto id = body_of(held)["id"].get<std::int64_t>();
  EXPECT_EQ(body_of(held)["status"], "pending_payment");
  EXPECT_EQ(body_of(held)["amount_cents"], 4000);
  EXPECT_FALSE(body_of(held)["hold_expires_at"].is_null());
  auto waiting = enroll(program, li_token);
  ASSERT_EQ(waiting.status, 201) << waiting.body;
  EXPECT_EQ(body_of(waiting)["status"], "waitlisted");  // the held place is taken
  auto li_id = body_of(waiting)["id"].get<std::int64_t>();
  auto shown = body_of(call("GET", "/api/v1/parks/programs/" + std::to_string(program)));
  EXPECT_EQ(shown["held"], 1);
  EXPECT_EQ(shown["enrolled"], 0);

  json invoice;
  ASSERT_TRUE(testing::wait_until([&] { return !(invoice = invoice_of(id, token, "enrollment")).is_null(); }));
  EXPECT_EQ(invoice["amount_cents"], 4000);
  EXPECT_EQ(pay(token, invoice["id"], 4000, "tok_declined", "e1").status, 402);
  EXPECT_EQ(enrollment(id, token)["status"], "pending_payment");  // still held
  ASSERT_EQ(pay(token, invoice["id"], 4000, "tok_ok", "e2").status, 201);
  ASSERT_TRUE(testing::wait_until([&] { return enrollment(id, token)["status"] == "enrolled"; }));
  EXPECT_EQ(enrollment(id, token)["invoice_id"], invoice["id"]);

  // Ten days before the start: refunded in full; the place is offered to Li, held.
  auto cancelled = call("DELETE", "/api/v1/parks/enrollments/" + std::to_string(id), {}, token);
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(body_of(cancelled)["refund"], "full");
  EXPECT_TRUE(testing::wait_until([&] { return invoice_of(id, token, "enrollment")["status"] == "refunded"; }));
  auto offered = enrollment(li_id, li_token);
  EXPECT_EQ(offered["status"], "pending_payment");
  EXPECT_FALSE(offered["hold_expires_at"].is_null());
  json li_invoice;
  ASSERT_TRUE(testing::wait_until([&] { return !(li_invoice = invoice_of(li_id, li_token, "enrollment")).is_null(); }));
  ASSERT_EQ(pay(li_token, li_invoice["id"], 4000, "tok_ok", "e3").status, 201);
  EXPECT_TRUE(testing::wait_until([&] { return enrollment(li_id, li_token)["status"] == "enrolled"; }));
  check_invariants();
}

// Issue 28 §4: the cap on unpaid holds was per account, and an account needs nothing but
// an address to register: four throwaway accounts held twelve priced slots for nothing,
// renewably. A priced hold needs an account whose email (or identity) the city verified;
// free facilities and programs need nothing.
TEST_F(ParksHttp, AnUnverifiedAccountHoldsNoPricedPlace) {
  auto [fresh, token] = citizen("fresh@example.org", false);
  auto program = priced_program(5);
  expect_problem(book(token, court, new_york(8, 9), new_york(8, 10)), 403, "verify your account's email");
  expect_problem(enroll(program, token), 403, "verify your account's email");
  EXPECT_EQ(book(token, free_field, new_york(8, 9), new_york(8, 10)).status, 201);
  auto free_program = call("POST", "/api/v1/parks/programs",
                           R"({"name":"Walk","schedule":"Sundays","capacity":5,"price_cents":0})", pat);
  ASSERT_EQ(free_program.status, 201) << free_program.body;
  EXPECT_EQ(enroll(body_of(free_program)["id"], token).status, 201);
  verify(fresh);
  EXPECT_EQ(book(token, court, new_york(8, 11), new_york(8, 12)).status, 201);
  EXPECT_EQ(enroll(program, token).status, 201);
}

// And at most max_unpaid_per_address (2 here) unpaid holds from one client address,
// whatever the accounts: the address the trusted proxy names in X-Forwarded-For. parks.db
// keeps a keyed digest of it, only while the hold is unpaid.
class ParksAddressCap : public ParksHttp {
 protected:
  void configure(config::Config& config) override {
    for (auto& module : config.modules)
      if (module.name == "parks") module.settings["max_unpaid_per_address"] = 2;
    config.server.http.trusted_proxies = {*http::parse_network("127.0.0.1/32")};
  }
  HttpResponse book_from(const std::string& address, const std::string& token, int hour) {
    return testing::http_request(
        server->port(), "POST", "/api/v1/parks/bookings",
        json{{"facility_id", court}, {"starts_at", new_york(8, hour)}, {"ends_at", new_york(8, hour + 1)}}.dump(),
        {"Authorization: Bearer " + token, "X-Forwarded-For: " + address});
  }
};

TEST_F(ParksAddressCap, ThrowawayAccountsFromOneAddressHoldTwoPricedSlotsAtMost) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 4; ++i) tokens.push_back(citizen("throwaway" + std::to_string(i) + "@example.org").second);
  const std::string address = "198.51.100.4";
  auto first = book_from(address, tokens[0], 9);
  ASSERT_EQ(first.status, 201) << first.body;
  ASSERT_EQ(book_from(address, tokens[1], 10).status, 201);
  expect_problem(book_from(address, tokens[2], 11), 409, "network address");
  auto program = priced_program(5);
  expect_problem(testing::http_request(server->port(), "POST",
                                       "/api/v1/parks/programs/" + std::to_string(program) + "/enrollments", {},
                                       {"Authorization: Bearer " + tokens[3], "X-Forwarded-For: " + address}),
                 409, "network address");
  EXPECT_EQ(book_from("198.51.100.5", tokens[2], 11).status, 201);  // another client
  // Paid, a hold no longer counts: the address has room again.
  auto id = body_of(first)["id"].get<std::int64_t>();
  json invoice;
  ASSERT_TRUE(testing::wait_until([&] { return !(invoice = invoice_of(id, tokens[0])).is_null(); }));
  ASSERT_EQ(pay(tokens[0], invoice["id"], 2500, "tok_ok", "a1").status, 201);
  ASSERT_TRUE(testing::wait_until([&] { return booking(id, tokens[0])["status"] == "confirmed"; }));
  EXPECT_EQ(book_from(address, tokens[3], 12).status, 201);
  SQLite::Database parks((dir.path() / "parks.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(parks.execAndGet("SELECT count(*) FROM bookings WHERE client_digest LIKE '%198.51%'").getInt(), 0);
  EXPECT_EQ(parks.execAndGet("SELECT count(*) FROM bookings WHERE status = 'pending_payment' AND client_digest IS NULL")
                .getInt(),
            0);
  EXPECT_EQ(
      parks.execAndGet("SELECT count(*) FROM bookings WHERE status <> 'pending_payment' AND client_digest IS NOT NULL")
          .getInt(),
      0);
  check_invariants();
}

}  // namespace
}  // namespace townhall
