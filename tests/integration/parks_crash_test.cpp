// kill -9 of the real server in the middle of the booking saga: a hold that was running
// still expires at its deadline after the restart (the scheduler reads deadlines from
// the file), and a payment made just before the kill confirms its booking exactly once.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/app/application.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::ChildProcess;

class ParksCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    auto document = json::parse(app::default_registry());
    document["server"]["rate_limit"]["enabled"] = false;
    document["modules"]["auth"]["settings"]["password_hash"] = {{"passes", 1}, {"memory_kib", 8192}};
    document["modules"]["parks"]["settings"]["hold_seconds"] = 3;
    registry = config_dir.path() / "registry.json";
    std::ofstream(registry) << document.dump(2);
    ChildProcess init({TOWNHALL_BINARY, "migrate", "--init", "--config", registry.string(), "--data-dir", data()});
    ASSERT_EQ(init.wait_exit(), 0) << init.output();
    ChildProcess setup({TOWNHALL_BINARY, "admin", "create-user", "--config", registry.string(), "--data-dir", data(),
                        "--email", "pat@example.org", "--password", "staff password 1", "--name", "Pat", "--role",
                        "parks_staff", "--department", "PRK"});
    ASSERT_EQ(setup.wait_exit(), 0) << setup.output();
    // The administrator verifies the citizen's email (a priced booking needs it).
    ChildProcess admin({TOWNHALL_BINARY, "admin", "create-user", "--config", registry.string(), "--data-dir", data(),
                        "--email", "admin@example.org", "--password", "staff password 1", "--name", "Admin", "--role",
                        "admin"});
    ASSERT_EQ(admin.wait_exit(), 0) << admin.output();
  }

  std::string data() const { return data_dir.path().string(); }
  std::unique_ptr<ChildProcess> serve() {
    auto child = std::make_unique<ChildProcess>(std::vector<std::string>{
        TOWNHALL_BINARY, "serve", "--config", registry.string(), "--port", "0", "--data-dir", data()});
    port = testing::wait_for_port(*child);
    return child;
  }
  // A citizen, a priced facility open around the clock, and a one-hour booking of it.
  void book(std::string& token, std::int64_t& booking, std::string& hold_expires_at) {
    auto registered =
        testing::call(port, "POST", "/api/v1/auth/register",
                      R"({"email":"maria@example.org","password":"a long enough password","name":"Maria"})");
    ASSERT_EQ(registered.status, 201) << registered.body;
    token = testing::login(port, "maria@example.org", "a long enough password");
    auto admin = testing::login(port, "admin@example.org", "staff password 1");
    ASSERT_EQ(testing::call(port, "PATCH", "/api/v1/auth/citizens/" + json::parse(registered.body)["id"].dump(),
                            R"({"email_verified":true})", admin)
                  .status,
              200);
    auto staff = testing::login(port, "pat@example.org", "staff password 1");
    json all_day = json::object();
    for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
      all_day[day] = {{"open", "00:00"}, {"close", "24:00"}};
    auto facility = testing::call(port, "POST", "/api/v1/parks/facilities",
                                  json{{"name", "Court"},
                                       {"kind", "court"},
                                       {"capacity", 4},
                                       {"hourly_price_cents", 2500},
                                       {"time_zone", "UTC"},
                                       {"opening_hours", all_day}}
                                      .dump(),
                                  staff);
    ASSERT_EQ(facility.status, 201) << facility.body;
    auto day = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()) + std::chrono::days(2);
    testing::HttpResponse booked;
    // 403 until parks has learned of the verification (auth's event).
    ASSERT_TRUE(testing::wait_until([&] {
      booked = testing::call(port, "POST", "/api/v1/parks/bookings",
                             json{{"facility_id", json::parse(facility.body)["id"]},
                                  {"starts_at", utc::format(day + std::chrono::hours(10))},
                                  {"ends_at", utc::format(day + std::chrono::hours(11))}}
                                 .dump(),
                             token);
      return booked.status != 403;
    }));
    ASSERT_EQ(booked.status, 201) << booked.body;
    booking = json::parse(booked.body)["id"];
    hold_expires_at = json::parse(booked.body)["hold_expires_at"];
  }
  // A priced booking, its invoice paid, then kill -9 as soon as revenue answers: parks
  // may or may not have taken the payment (the saga's hop) before the kill.
  void book_pay_and_kill(std::string& token, std::int64_t& booking, std::string& hold_expires_at) {
    auto server = serve();
    ASSERT_NE(port, 0) << server->output();
    book(token, booking, hold_expires_at);
    json invoice;
    ASSERT_TRUE(testing::wait_until([&] {
      auto list = json::parse(testing::call(port, "GET", "/api/v1/revenue/invoices", {}, token).body);
      if (list["items"].size() != 1) return false;
      invoice = list["items"][0];
      return true;
    }));
    auto paid = testing::http_request(
        port, "POST", "/api/v1/revenue/payments",
        json{{"invoice_id", invoice["id"]}, {"amount_cents", 2500}, {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
            .dump(),
        {"Authorization: Bearer " + token, "Idempotency-Key: crash"});
    ASSERT_EQ(paid.status, 201) << paid.body;
    server->signal(SIGKILL);
    ASSERT_EQ(server->wait_exit(), 128 + SIGKILL);
  }
  // Once the server has stopped: one booking.confirmed, one completed payment.
  void expect_confirmed_once() {
    SQLite::Database parks((data_dir.path() / "parks.db").string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(parks.execAndGet("SELECT count(*) FROM outbox WHERE event_type = 'booking.confirmed'").getInt(), 1);
    SQLite::Database revenue((data_dir.path() / "revenue.db").string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(revenue.execAndGet("SELECT count(*) FROM payments WHERE status = 'completed'").getInt(), 1);
  }

  json booking_of(std::int64_t id, const std::string& token) {
    return json::parse(testing::call(port, "GET", "/api/v1/parks/bookings/" + std::to_string(id), {}, token).body);
  }

  testing::TempDir config_dir, data_dir;
  std::filesystem::path registry;
  unsigned short port = 0;
};

TEST_F(ParksCrash, AHoldRunningAtAKillStillExpiresAtItsDeadline) {
  std::string token, deadline;
  std::int64_t booking = 0;
  {
    auto server = serve();
    ASSERT_NE(port, 0) << server->output();
    book(token, booking, deadline);
    server->signal(SIGKILL);
    ASSERT_EQ(server->wait_exit(), 128 + SIGKILL);
  }
  auto server = serve();
  ASSERT_NE(port, 0) << server->output();
  // On time: at start (a deadline passed while down) or when the restarted scheduler wakes
  // at it. The loop's only other wake-up is its one-minute backstop, which cannot answer
  // within this deadline: a restart that forgot the hold fails here, on behaviour, not on a
  // measured delay.
  ASSERT_TRUE(testing::wait_until([&] { return booking_of(booking, token)["status"] == "cancelled"; },
                                  std::chrono::seconds(30)));
  auto cancelled_at = utc::parse(booking_of(booking, token)["updated_at"].get<std::string>());
  auto due = utc::parse(deadline);
  ASSERT_TRUE(cancelled_at && due);
  EXPECT_GE(*cancelled_at, *due);
  EXPECT_EQ(booking_of(booking, token)["cancel_reason"], "the payment hold expired");
  server->signal(SIGTERM);
  EXPECT_EQ(server->wait_exit(), 0);
}

TEST_F(ParksCrash, APaymentBeforeAKillConfirmsItsBookingOnce) {
  std::string token, deadline;
  std::int64_t booking = 0;
  book_pay_and_kill(token, booking, deadline);
  auto server = serve();
  ASSERT_NE(port, 0) << server->output();
  ASSERT_TRUE(testing::wait_until([&] { return booking_of(booking, token)["status"] == "confirmed"; },
                                  std::chrono::seconds(10)));  // a restart, as above
  server->signal(SIGTERM);
  ASSERT_EQ(server->wait_exit(), 0);
  expect_confirmed_once();
}

// The same, but the hold ends while the server is down (a crash, then a restart later than
// the hold): the payment revenue committed in time reaches parks before its hold-expiry
// job runs, so the booking is confirmed, never cancelled and refunded. (Found by
// `make test-stress`: a slow restart expired the hold first.)
TEST_F(ParksCrash, APaymentBeforeAKillConfirmsItsBookingWhenTheHoldEndsWhileDown) {
  std::string token, deadline;
  std::int64_t booking = 0;
  book_pay_and_kill(token, booking, deadline);
  auto due = utc::parse(deadline);
  ASSERT_TRUE(due);
  // Down past the hold's end (a condition on the clock, not a guess at a duration).
  ASSERT_TRUE(testing::wait_until([&] { return std::chrono::system_clock::now() > *due + std::chrono::seconds(1); },
                                  std::chrono::seconds(30)));
  auto server = serve();
  ASSERT_NE(port, 0) << server->output();
  ASSERT_TRUE(testing::wait_until([&] { return booking_of(booking, token)["status"] == "confirmed"; },
                                  std::chrono::seconds(20)))
      << booking_of(booking, token).dump();
  server->signal(SIGTERM);
  ASSERT_EQ(server->wait_exit(), 0);
  expect_confirmed_once();
  SQLite::Database parks((data_dir.path() / "parks.db").string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(parks.execAndGet("SELECT count(*) FROM outbox WHERE event_type = 'booking.cancelled'").getInt(), 0);
}

}  // namespace
}  // namespace townhall
