#pragma once

// What the parks service tests share: principals, revenue's events, and a fixture with the
// service on a temp parks.db with one court. Not in an anonymous namespace: tests of one
// suite in several files must share one fixture class.
#include <SQLiteCpp/Statement.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "client_digest.hpp"
#include "coro.hpp"
#include "fake_auth.hpp"
#include "module_harness.hpp"
#include "server_fixture.hpp"
#include "service.hpp"
#include "support.hpp"
#include "townhall/auth/citizen_refs.hpp"
#include "townhall/parks/module.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {

using json = nlohmann::json;

inline CallContext citizen(std::int64_t id) { return testing::as(testing::citizen_principal(id, {"parks:book"})); }
inline CallContext staff() { return testing::as(testing::employee_principal(900, {"parks:read", "parks:manage"})); }

inline bus::Event paid(std::int64_t booking, std::int64_t payment, const std::string& source_type = "booking") {
  revenue::events::PaymentSnapshot snapshot;
  snapshot.id = payment;
  snapshot.invoice_id = 40 + payment;
  snapshot.citizen_id = 1;
  snapshot.amount_cents = 2500;
  snapshot.currency = "EUR";
  snapshot.method_type = "card";
  snapshot.status = "completed";
  snapshot.source_module = "parks";
  snapshot.source_type = source_type;
  snapshot.source_id = std::to_string(booking);
  snapshot.created_at = "2026-12-05T10:00:00Z";
  snapshot.completed_at = "2026-12-05T10:00:01Z";
  bus::Event event;
  event.event_id = "revenue:" + std::to_string(payment);
  event.topic = revenue::events::kPaymentTopic;
  event.event_type = revenue::events::kPaymentCompleted;
  event.event_version = 2;
  event.data = revenue::events::event_data(revenue::events::payment_json(snapshot));
  return event;
}

class ParksServiceTest : public ::testing::Test, protected testing::ModuleHarness {
 protected:
  ParksServiceTest() : ModuleHarness("parks", table_manifest()) {}
  virtual Settings settings() { return {}; }

  void SetUp() override {
    testing::migrate_module(database, "parks");
    service = std::make_unique<ParksService>(settings(), dependencies(), auth);
    service->start();
    // Citizens 1 to 9 have a verified email (a priced hold needs one), as citizen_refs
    // learns from auth's events.
    for (std::int64_t id = 1; id < 10; ++id) set_citizen(id, 1, true, false);
    json week = json::object();
    for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
      week[day] = {{"open", "00:00"}, {"close", "24:00"}};
    store::Facility court{0, "Court", "court", 4, 1000, "USD", "UTC", week.dump(), true, 1, utc::now(), utc::now()};
    writer.call([&] { store::insert_facility(*database.open(db::Role::service), court); });
    facility = court.id;
  }
  void TearDown() override {
    service->stop();
    writer.stop();
  }

  // citizen_refs' row of citizen `id` at `version`, as auth's events write it.
  void set_citizen(std::int64_t id, std::int64_t version, bool email_verified, bool identity_verified) {
    writer.call([&] {
      auto citizen = testing::test_citizen(id, version);
      citizen.email_verified = email_verified;
      citizen.identity_verified = identity_verified;
      ParksService::citizen_table().upsert(*database.open(db::Role::sync), citizen);
    });
  }
  // Slot times in whole hours, whatever the time of day the suite runs at. hour(n) for
  // n >= 0 counts from a base fixed when the test starts, chosen so that hour(0)..hour(14)
  // fall on one UTC day (a booking may not cross midnight) and hour(8) is within a day of
  // now (the refund cutoff): the next hour, or the next midnight when fewer than 15 hours
  // of the day are left. A negative n is that many hours before this hour (the past).
  std::chrono::system_clock::time_point hour(int n) const {
    if (n < 0) return std::chrono::floor<std::chrono::hours>(started_at_) + std::chrono::hours(n);
    return slot_base_ + std::chrono::hours(n);
  }
  static std::chrono::system_clock::time_point slot_base(std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    auto next_hour = floor<hours>(now) + hours(1);
    auto day = floor<days>(next_hour);
    return next_hour - day > hours(9) ? day + days(1) : next_hour;
  }
  const std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();
  const std::chrono::system_clock::time_point slot_base_ = slot_base(started_at_);
  // A payment event as the bus runs parks' handler (ModuleHarness::handle).
  bus::Outcome apply(const bus::Event& event) {
    return handle(std::bind_front(&ParksService::apply_payment_event, service.get()), event);
  }
  std::string status(std::int64_t booking) {
    return service->get_booking(CallContext::as_service("parks", "test"), booking)->status;
  }
  store::Booking read(std::int64_t booking) {
    return *service->get_booking(CallContext::as_service("parks", "test"), booking);
  }
  // A priced booking of the court from `from` to `to` hours from now, paid (payment id
  // 100 + its id) and confirmed — inserted directly when it starts in the past.
  std::int64_t paid_booking(std::int64_t citizen_id, int from, int to) {
    store::Booking booking;
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      booking.facility_id = facility;
      booking.citizen_id = citizen_id;
      booking.starts_at = utc::format(hour(from));
      booking.ends_at = utc::format(hour(to));
      booking.status = "pending_payment";
      booking.amount_cents = 1000 * (to - from);
      booking.currency = "USD";
      booking.hold_expires_at = utc::format(std::chrono::system_clock::now() + std::chrono::hours(1));
      booking.created_at = booking.updated_at = utc::now();
      store::insert_booking(*connection, booking);
    });
    EXPECT_EQ(apply(paid(booking.id, 100 + booking.id)), bus::Outcome::applied);
    EXPECT_EQ(status(booking.id), "confirmed");
    return booking.id;
  }
  // The contract fields of the last booking.cancelled of `booking` (null when none).
  json cancelled_event(std::int64_t booking) { return last_event("booking.cancelled", booking); }
  // The snapshot of the last event of `type` about aggregate `id` (null when none).
  json last_event(const std::string& type, std::int64_t id) {
    auto reader = database.open(db::Role::reader);
    SQLite::Statement query(
        reader->sql(), "SELECT data FROM outbox WHERE event_type = ? AND aggregate_id = ? ORDER BY id DESC LIMIT 1");
    query.bind(1, type);
    query.bind(2, std::to_string(id));
    if (!query.executeStep()) return nullptr;
    return json::parse(query.getColumn(0).getString())["snapshot"];
  }
  bus::Outcome apply_invoice(const bus::Event& event) {
    return handle(std::bind_front(&ParksService::apply_invoice_event, service.get()), event);
  }
  store::Enrollment enrollment(std::int64_t id) {
    return *service->get_enrollment(CallContext::as_service("parks", "test"), id);
  }

  std::unique_ptr<ParksService> service;
  std::int64_t facility = 0;
};

inline CallContext staff_with_correlation() {
  auto context = staff();
  context.correlation_id = "test";
  return context;
}

inline bus::Event invoice_rejected(const std::string& module, const std::string& source_id,
                                   const std::string& source_type = "booking") {
  bus::Event event;
  event.event_id = "revenue:" + source_id;
  event.event_type = std::string(revenue::events::kInvoiceRejected);
  event.topic = std::string(revenue::events::kInvoiceTopic);
  event.event_version = 1;
  event.data = {{"snapshot", revenue::events::invoice_rejection_snapshot(
                                 {module, source_type, source_id, 1, 2'000'000'000'000, "USD", "too much"})}};
  return event;
}

// A program `name` meeting on `schedule`, `capacity` places at `price_cents`, with no first
// meeting (a priced one needs it: set starts_at).
inline NewProgram new_program(std::string name, std::string schedule, std::int64_t capacity, std::int64_t price_cents) {
  NewProgram input;
  input.name = std::move(name);
  input.schedule = std::move(schedule);
  input.capacity = capacity;
  input.price_cents = price_cents;
  return input;
}

// Parks staff create `input`.
inline Result<store::Program> create_program(ParksService& service, const NewProgram& input) {
  return testing::run_awaitable(service.create_program(staff_with_correlation(), input));
}

// A program priced 4,000 (the demo's yoga class) by parks staff, `capacity` places, first
// meeting `starts_in` hours from now.
inline std::int64_t priced_program(ParksService& service, std::int64_t capacity, int starts_in) {
  auto input = new_program("Yoga", "Saturdays 09:00-10:00", capacity, 4000);
  input.starts_at =
      std::chrono::floor<std::chrono::hours>(std::chrono::system_clock::now()) + std::chrono::hours(starts_in);
  auto program = create_program(service, input);
  EXPECT_TRUE(program) << program.error().message;
  return program ? program->id : 0;
}

}  // namespace townhall::parks
