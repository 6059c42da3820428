// The parks service without sockets: the invariants parks.db holds whatever code writes
// it (overlap, payment before confirmation, capacity), the payment step of the saga
// (once, and never for a booking cancelled meanwhile — revenue refunds that payment), and
// opening hours in a zone with daylight saving time.
#include "service.hpp"

#include <SQLiteCpp/Transaction.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "client_digest.hpp"
#include "coro.hpp"
#include "fake_auth.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/auth/citizen_refs.hpp"
#include "townhall/parks/module.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {
namespace {

using json = nlohmann::json;

CallContext citizen(std::int64_t id) {
  auto p = std::make_shared<Principal>();
  p->id = id;
  p->kind = Principal::Kind::citizen;
  p->permissions = {"parks:book"};
  CallContext context;
  context.principal = std::move(p);
  return context;
}

CallContext staff() {
  auto p = std::make_shared<Principal>();
  p->id = 900;
  p->kind = Principal::Kind::employee;
  p->permissions = {"parks:read", "parks:manage"};
  CallContext context;
  context.principal = std::move(p);
  return context;
}

bus::Event paid(std::int64_t booking, std::int64_t payment, const std::string& source_type = "booking") {
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

class ParksServiceTest : public ::testing::Test {
 protected:
  virtual Settings settings() { return {}; }

  void SetUp() override {
    testing::migrate_module(database, "parks");
    service =
        std::make_unique<ParksService>(settings(), ParksService::Dependencies{database, writer, readers, [] {}, auth});
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
      auth::Citizen citizen;
      citizen.id = id;
      citizen.name = "Citizen " + std::to_string(id);
      citizen.email = "c" + std::to_string(id) + "@example.org";
      citizen.event_version = version;
      citizen.email_verified = email_verified;
      citizen.identity_verified = identity_verified;
      ParksService::citizen_table().upsert(*database.open(db::Role::sync), citizen);
    });
  }
  std::chrono::system_clock::time_point hour(int from_now) {
    return std::chrono::floor<std::chrono::hours>(std::chrono::system_clock::now()) + std::chrono::hours(from_now);
  }
  // On the module's writer, as the bus runs handlers: the service's own background jobs
  // write there too, so a connection of the test's would meet a locked file.
  bus::Outcome apply(const bus::Event& event) {
    bus::Outcome outcome{};
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      outcome = service->apply_payment_event(event, *connection);
      transaction.commit();
    });
    return outcome;
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
    bus::Outcome outcome{};
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      outcome = service->apply_invoice_event(event, *connection);
      transaction.commit();
    });
    return outcome;
  }
  store::Enrollment enrollment(std::int64_t id) {
    return *service->get_enrollment(CallContext::as_service("parks", "test"), id);
  }

  testing::TempDir dir;
  db::ModuleDb database{"parks", dir.path() / "parks.db", table_manifest()};
  db::Writer writer{"parks"};
  db::ReaderPool readers{database, 2};
  testing::FakeAuth auth;
  std::unique_ptr<ParksService> service;
  std::int64_t facility = 0;
};

// Code that forgot the checks still cannot break the invariants: the file refuses.
TEST_F(ParksServiceTest, TheFileRefusesOverlapsUnpaidConfirmationsAndOverbooking) {
  auto booked = testing::run_awaitable(service->book(citizen(1), facility, hour(5), hour(7)));
  ASSERT_TRUE(booked) << booked.error().message;
  // On the writer, beside the service's own jobs, as any code of the module would write.
  writer.call([&] {
    auto connection = database.open(db::Role::service);
    store::Booking overlapping = *booked;
    overlapping.starts_at = utc::format(hour(6));
    overlapping.ends_at = utc::format(hour(8));
    EXPECT_THROW(store::insert_booking(*connection, overlapping), SQLite::Exception);
    auto confirmed = *booked;
    confirmed.status = "confirmed";  // priced, no payment
    EXPECT_THROW(store::update_booking(*connection, confirmed), SQLite::Exception);

    store::Program program{0, std::nullopt, "Yoga", "Saturdays", 1, 0, "USD", true, utc::now(), utc::now(), 0, 0, {}};
    store::insert_program(*connection, program);
    auto place = [&](std::int64_t citizen_id, const std::string& status) {
      store::Enrollment enrollment;
      enrollment.program_id = program.id;
      enrollment.citizen_id = citizen_id;
      enrollment.status = status;
      enrollment.currency = "USD";
      enrollment.created_at = enrollment.updated_at = utc::now();
      return enrollment;
    };
    auto first = place(1, "pending_payment");  // a held place is taken too
    store::insert_enrollment(*connection, first);
    auto second = place(2, "enrolled");
    EXPECT_THROW(store::insert_enrollment(*connection, second), SQLite::Exception);
    // A priced enrollment is enrolled only with a payment, and a paid one is cancelled
    // only with a recorded refund decision.
    auto priced = place(3, "enrolled");
    store::Program paid_program = program;
    paid_program.capacity = 5;
    paid_program.price_cents = 4000;
    store::insert_program(*connection, paid_program);
    priced.program_id = paid_program.id;
    priced.amount_cents = 4000;
    EXPECT_THROW(store::insert_enrollment(*connection, priced), SQLite::Exception);
    priced.status = "pending_payment";
    store::insert_enrollment(*connection, priced);
    priced.status = "enrolled";
    EXPECT_THROW(store::update_enrollment(*connection, priced), SQLite::Exception);
    priced.payment_id = 5;
    store::update_enrollment(*connection, priced);
    priced.status = "cancelled";
    EXPECT_THROW(store::update_enrollment(*connection, priced), SQLite::Exception);
  });
}

TEST_F(ParksServiceTest, APaymentConfirmsItsBookingOnceAndNeverACancelledOne) {
  auto pending = testing::run_awaitable(service->book(citizen(1), facility, hour(5), hour(6)));
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->status, "pending_payment");
  EXPECT_EQ(apply(paid(pending->id, 7)), bus::Outcome::applied);
  EXPECT_EQ(status(pending->id), "confirmed");
  EXPECT_EQ(apply(paid(pending->id, 7)), bus::Outcome::stale);  // a duplicate changes nothing

  // The hold ran out (or the citizen cancelled) before the payment arrived: the booking
  // stays cancelled; revenue, seeing booking.cancelled for a paid invoice, refunds it.
  auto late = testing::run_awaitable(service->book(citizen(1), facility, hour(8), hour(9)));
  ASSERT_TRUE(late);
  ASSERT_TRUE(testing::run_awaitable(service->cancel_booking(citizen(1), late->id)));
  EXPECT_EQ(apply(paid(late->id, 8)), bus::Outcome::stale);
  EXPECT_EQ(status(late->id), "cancelled");
  auto reader = database.open(db::Role::reader);
  EXPECT_EQ(reader->sql().execAndGet("SELECT count(*) FROM outbox WHERE event_type = 'booking.confirmed'").getInt(), 1);
  EXPECT_THROW(apply(paid(999, 9)), bus::PermanentError);
  // revenue's contract is decoded strictly, as permits does: no retry makes it whole.
  auto no_id = paid(late->id, 10);
  no_id.data["snapshot"].erase("id");
  EXPECT_THROW(apply(no_id), bus::PermanentError);
  auto newer = paid(late->id, 11);
  newer.data[bus::kSchemaVersionField] = revenue::events::kSchemaVersion + 1;
  EXPECT_THROW(apply(newer), bus::PermanentError);
}

TEST(ParksHours, OpeningHoursFollowTheZonesDaylightSavingTime) {
  auto hours = parse_opening_hours(json{{"sun", {{"open", "08:00"}, {"close", "20:00"}}}}, "opening_hours");
  ASSERT_TRUE(hours);
  auto zone = date::locate_zone("America/New_York");
  // 2030-03-10 is the second Sunday of March: 08:00 EDT is 12:00Z; a week earlier 13:00Z.
  auto dst = zone->to_sys(date::local_days{date::year{2030} / 3 / 10} + std::chrono::hours(8));
  auto standard = zone->to_sys(date::local_days{date::year{2030} / 3 / 3} + std::chrono::hours(8));
  EXPECT_EQ(utc::format(dst), "2030-03-10T12:00:00.000Z");
  EXPECT_EQ(utc::format(standard), "2030-03-03T13:00:00.000Z");
  EXPECT_TRUE(check_slot("America/New_York", *hours, dst, dst + std::chrono::hours(2)));
  EXPECT_TRUE(check_slot("America/New_York", *hours, standard, standard + std::chrono::hours(2)));
  auto early = check_slot("America/New_York", *hours, standard - std::chrono::hours(1), standard);
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().message.find("07:00-08:00"), std::string::npos) << early.error().message;
  EXPECT_FALSE(check_slot("America/New_York", *hours, dst + std::chrono::days(1),
                          dst + std::chrono::days(1) + std::chrono::hours(1)));
  EXPECT_FALSE(parse_opening_hours(json{{"sun", {{"open", "08:15"}, {"close", "20:00"}}}}, "h"));
  EXPECT_FALSE(parse_opening_hours(json{{"sun", {{"open", "08:00"}, {"close", "24:30"}}}}, "h"));
  EXPECT_TRUE(known_time_zone("Europe/Berlin"));
  EXPECT_FALSE(known_time_zone("../../etc/passwd"));
}

// Issue 21 §3.2: a start half a second past the hour was floored to its second, passed
// the whole-hour check and was stored with its fraction; its one paid hour then reached
// into the next hour and, at the last hour, past closing.
TEST(ParksHours, AFractionOfASecondPastTheHourIsNoWholeHour) {
  auto hours = parse_opening_hours(json{{"sun", {{"open", "08:00"}, {"close", "20:00"}}}}, "opening_hours");
  ASSERT_TRUE(hours);
  auto last_hour = date::sys_days{date::year{2030} / 3 / 3} + std::chrono::hours(19);  // 19:00-20:00 UTC, a Sunday
  ASSERT_TRUE(check_slot("UTC", *hours, last_hour, last_hour + std::chrono::hours(1)));
  for (auto fraction : {std::chrono::system_clock::duration(std::chrono::milliseconds(500)),
                        std::chrono::system_clock::duration(std::chrono::microseconds(1))}) {
    auto late = check_slot("UTC", *hours, last_hour + fraction, last_hour + std::chrono::hours(1) + fraction);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().code, Errc::unprocessable);
    EXPECT_NE(late.error().message.find("fractions of a second"), std::string::npos) << late.error().message;
    EXPECT_FALSE(check_slot("UTC", *hours, last_hour, last_hour + std::chrono::hours(1) + fraction));
  }
}

TEST_F(ParksServiceTest, ABookingWithAFractionOfASecondIsRefusedAndNothingIsStored) {
  auto booked = testing::run_awaitable(service->book(citizen(1), facility, hour(5) + std::chrono::milliseconds(500),
                                                     hour(6) + std::chrono::milliseconds(500)));
  ASSERT_FALSE(booked);
  EXPECT_EQ(booked.error().code, Errc::unprocessable);
  auto reader = database.open(db::Role::reader);
  EXPECT_EQ(reader->sql().execAndGet("SELECT count(*) FROM bookings").getInt(), 0);
}

// Issue 21 §3.3: free bookings are confirmed at once, so one account could block a free
// field for the whole horizon. At most max_active_per_kind (4) bookings not yet ended per
// citizen and facility kind, free and priced alike; ended and cancelled ones do not count.
TEST_F(ParksServiceTest, BookingsNotYetEndedAreCappedPerCitizenAndFacilityKind) {
  json week = json::object();
  for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
    week[day] = {{"open", "00:00"}, {"close", "24:00"}};
  store::Facility field{0, "Field", "field", 22, 0, "USD", "UTC", week.dump(), true, 1, utc::now(), utc::now()};
  store::Facility pitch{0, "Pitch", "field", 22, 500, "USD", "UTC", week.dump(), true, 1, utc::now(), utc::now()};
  writer.call([&] {
    auto connection = database.open(db::Role::service);
    store::insert_facility(*connection, field);
    store::insert_facility(*connection, pitch);
    // Four bookings of citizen 1 that ended yesterday count for nothing.
    for (int h = 0; h < 4; ++h) {
      store::Booking past;
      past.facility_id = field.id;
      past.citizen_id = 1;
      past.starts_at = utc::format(hour(-30 + h));
      past.ends_at = utc::format(hour(-29 + h));
      past.status = "confirmed";
      past.currency = "USD";
      past.created_at = past.updated_at = utc::now();
      store::insert_booking(*connection, past);
    }
  });
  std::vector<std::int64_t> held;
  for (int h = 5; h < 8; ++h) {
    auto booked = testing::run_awaitable(service->book(citizen(1), field.id, hour(h), hour(h + 1)));
    ASSERT_TRUE(booked) << booked.error().message;
    EXPECT_EQ(booked->status, "confirmed");
    held.push_back(booked->id);
  }
  // A priced one of the same kind is the fourth.
  ASSERT_TRUE(testing::run_awaitable(service->book(citizen(1), pitch.id, hour(5), hour(6))));
  auto fifth = testing::run_awaitable(service->book(citizen(1), field.id, hour(9), hour(10)));
  ASSERT_FALSE(fifth);
  EXPECT_EQ(fifth.error().code, Errc::conflict);
  EXPECT_NE(fifth.error().message.find("field facilities"), std::string::npos) << fifth.error().message;
  EXPECT_FALSE(testing::run_awaitable(service->book(citizen(1), pitch.id, hour(9), hour(10))));
  // Another kind, and another citizen, are counted apart.
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(1), facility, hour(9), hour(10))));
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(2), field.id, hour(9), hour(10))));
  // Cancelling one frees a place.
  ASSERT_TRUE(testing::run_awaitable(service->cancel_booking(citizen(1), held[0])));
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(1), field.id, hour(10), hour(11))));
}

// Issue 21 §3.1: a paid booking was refunded in full when cancelled while in progress or
// after it ended. A citizen cannot cancel a started or past booking (409); staff can, with
// an explicit refund decision and reason, recorded on the booking, and the decision is
// what booking.cancelled tells revenue.
TEST_F(ParksServiceTest, AStartedOrPastBookingIsCancelledOnlyByStaffWithARecordedRefundDecision) {
  auto in_progress = paid_booking(1, -1, 1);
  auto ended = paid_booking(1, -5, -3);
  for (auto id : {in_progress, ended}) {
    auto refused = testing::run_awaitable(service->cancel_booking(citizen(1), id));
    ASSERT_FALSE(refused) << id;
    EXPECT_EQ(refused.error().code, Errc::conflict);
    EXPECT_NE(refused.error().message.find("no longer be cancelled"), std::string::npos) << refused.error().message;
    EXPECT_EQ(status(id), "confirmed");
    EXPECT_TRUE(cancelled_event(id).is_null());
  }
  // A citizen decides no refund, even before the start.
  auto upcoming = paid_booking(1, 48, 49);
  auto decided = testing::run_awaitable(service->cancel_booking(citizen(1), upcoming, {true, "please"}));
  ASSERT_FALSE(decided);
  EXPECT_EQ(decided.error().code, Errc::invalid_argument);
  // Staff must decide: without a decision and a reason, nothing happens.
  auto undecided = testing::run_awaitable(service->cancel_booking(staff(), in_progress));
  ASSERT_FALSE(undecided);
  EXPECT_EQ(undecided.error().code, Errc::invalid_argument);
  EXPECT_FALSE(testing::run_awaitable(service->cancel_booking(staff(), in_progress, {false, std::nullopt})));
  EXPECT_EQ(status(in_progress), "confirmed");

  auto kept = testing::run_awaitable(service->cancel_booking(staff(), in_progress, {false, "the court flooded"}));
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ(kept->status, "cancelled");
  EXPECT_EQ(kept->cancelled_by, "staff");
  EXPECT_EQ(kept->cancelled_by_id, 900);
  EXPECT_TRUE(kept->cancelled_at);
  EXPECT_EQ(kept->refund, "none");
  EXPECT_EQ(kept->cancel_reason, "the court flooded");
  EXPECT_EQ(read(in_progress).refund, "none");  // on the row
  EXPECT_EQ(cancelled_event(in_progress)["refund_payment"], false);

  auto refunded = testing::run_awaitable(service->cancel_booking(staff(), ended, {true, "the lights failed"}));
  ASSERT_TRUE(refunded) << refunded.error().message;
  EXPECT_EQ(refunded->refund, "full");
  EXPECT_EQ(cancelled_event(ended)["refund_payment"], true);

  // The file refuses a paid booking cancelled without a recorded decision.
  auto another = paid_booking(2, 60, 61);
  writer.call([&] {
    auto connection = database.open(db::Role::service);
    auto row = *store::find_booking(*connection, another, store::Scope::everything());
    row.status = "cancelled";
    EXPECT_THROW(store::update_booking(*connection, row), SQLite::Exception);
  });
}

// The refund policy for citizens: a paid booking cancelled at least refund_cutoff (24 h)
// before its start is refunded in full; later, until the start, it is cancelled (the slot
// freed) without a refund. An unpaid one refunds any payment that still completes.
TEST_F(ParksServiceTest, ACitizenIsRefundedUntilTheCutoffAndNotAfter) {
  auto early = paid_booking(1, 30, 31);
  auto cancelled = testing::run_awaitable(service->cancel_booking(citizen(1), early));
  ASSERT_TRUE(cancelled) << cancelled.error().message;
  EXPECT_EQ(cancelled->refund, "full");
  EXPECT_EQ(cancelled->cancelled_by, "citizen");
  EXPECT_EQ(cancelled->cancelled_by_id, 1);
  EXPECT_EQ(cancelled_event(early)["refund_payment"], true);

  auto late = paid_booking(1, 5, 6);
  cancelled = testing::run_awaitable(service->cancel_booking(citizen(1), late));
  ASSERT_TRUE(cancelled) << cancelled.error().message;
  EXPECT_EQ(cancelled->status, "cancelled");
  EXPECT_EQ(cancelled->refund, "none");
  EXPECT_NE(cancelled->cancel_reason->find("no refund"), std::string::npos) << *cancelled->cancel_reason;
  EXPECT_EQ(cancelled_event(late)["refund_payment"], false);
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(2), facility, hour(5), hour(6))));  // the slot is free

  auto unpaid = testing::run_awaitable(service->book(citizen(1), facility, hour(7), hour(8)));
  ASSERT_TRUE(unpaid);
  cancelled = testing::run_awaitable(service->cancel_booking(citizen(1), unpaid->id));
  ASSERT_TRUE(cancelled);
  EXPECT_FALSE(cancelled->refund);
  EXPECT_EQ(cancelled_event(unpaid->id)["refund_payment"], true);
}

CallContext staff_with_correlation() {
  auto context = staff();
  context.correlation_id = "test";
  return context;
}

FacilityInput priced_at(std::int64_t cents) {
  FacilityInput input;
  input.name = "Hall";
  input.kind = "hall";
  input.capacity = 10;
  input.hourly_price_cents = cents;
  input.time_zone = "UTC";
  input.opening_hours = *parse_opening_hours(json{{"mon", {{"open", "08:00"}, {"close", "20:00"}}}}, "h");
  return input;
}

// Issue 21 §3.4: parks accepted an hourly price up to 10^12 and multiplied it by up to 8
// hours; revenue refused the amount, booking.requested became a dead letter and the
// booking held its slot with no invoice to pay. The price is now checked against
// revenue's ceiling (townhall/revenue/invoicing.hpp) for the longest booking, and a
// booking's amount when it is made.
TEST_F(ParksServiceTest, APriceIsCheckedAgainstRevenuesCeilingWhenSetAndWhenBooked) {
  const auto ceiling = revenue::kMaxInvoiceCents / 8;  // max_booking_hours = 8
  auto refused = testing::run_awaitable(service->create_facility(staff_with_correlation(), priced_at(ceiling + 1)));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("hourly_price_cents"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(
      testing::run_awaitable(service->create_facility(staff_with_correlation(), priced_at(1'000'000'000'000))));
  auto hall = testing::run_awaitable(service->create_facility(staff_with_correlation(), priced_at(ceiling)));
  ASSERT_TRUE(hall) << hall.error().message;
  FacilityInput raise;
  raise.hourly_price_cents = ceiling + 1;
  EXPECT_FALSE(testing::run_awaitable(service->update_facility(staff_with_correlation(), hall->id, raise)));

  // A price stored before the check (or before max_booking_hours grew): the booking that
  // would cost more than revenue invoices is refused, nothing is held.
  writer.call([&] {
    database.open(db::Role::service)
        ->sql()
        .exec("UPDATE facilities SET hourly_price_cents = 1000000000000 WHERE id = " + std::to_string(facility));
  });
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(1), facility, hour(5), hour(6))));  // 10^12: the ceiling
  auto too_much = testing::run_awaitable(service->book(citizen(1), facility, hour(7), hour(9)));
  ASSERT_FALSE(too_much);
  EXPECT_EQ(too_much.error().code, Errc::unprocessable);
  EXPECT_NE(too_much.error().message.find("more than revenue can invoice"), std::string::npos);
  auto reader = database.open(db::Role::reader);
  EXPECT_EQ(reader->sql().execAndGet("SELECT count(*) FROM bookings").getInt(), 1);
}

bus::Event invoice_rejected(const std::string& module, const std::string& source_id,
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

// The defensive half: should revenue still refuse a booking's invoice, its invoice.rejected
// releases the booking at once (cancelled by the system, its slot freed), once.
TEST_F(ParksServiceTest, ABookingWhoseInvoiceRevenueRefusesIsReleased) {
  auto held = testing::run_awaitable(service->book(citizen(1), facility, hour(5), hour(6)));
  ASSERT_TRUE(held);
  EXPECT_EQ(apply_invoice(invoice_rejected("permits", std::to_string(held->id))), bus::Outcome::applied);
  EXPECT_EQ(status(held->id), "pending_payment");  // another module's invoice
  EXPECT_EQ(apply_invoice(invoice_rejected("parks", std::to_string(held->id))), bus::Outcome::applied);
  auto released = read(held->id);
  EXPECT_EQ(released.status, "cancelled");
  EXPECT_EQ(released.cancelled_by, "system");
  EXPECT_NE(released.cancel_reason->find("revenue cannot invoice it"), std::string::npos);
  EXPECT_EQ(cancelled_event(held->id)["refund_payment"], true);
  EXPECT_EQ(apply_invoice(invoice_rejected("parks", std::to_string(held->id))), bus::Outcome::stale);
  EXPECT_THROW(apply_invoice(invoice_rejected("parks", "999")), bus::PermanentError);
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(2), facility, hour(5), hour(6))));  // the slot is free
}

// A program priced 4,000 (the demo's yoga class) by parks staff, `capacity` places, first
// meeting `starts_in` hours from now.
std::int64_t priced_program(ParksService& service, std::int64_t capacity, int starts_in) {
  NewProgram input;
  input.name = "Yoga";
  input.schedule = "Saturdays 09:00-10:00";
  input.capacity = capacity;
  input.price_cents = 4000;
  input.starts_at =
      std::chrono::floor<std::chrono::hours>(std::chrono::system_clock::now()) + std::chrono::hours(starts_in);
  auto program = testing::run_awaitable(service.create_program(staff_with_correlation(), input));
  EXPECT_TRUE(program) << program.error().message;
  return program ? program->id : 0;
}

// Issue 28 §3: enrolling in a priced program confirmed the place and opened no invoice.
// A priced place is held pending_payment with a deadline (enrollment.requested: revenue
// opens the invoice) and counts against capacity; payment.completed enrolls it; released
// (declined by its citizen, refused by revenue, expired), it is offered to the first on
// the waitlist, held with its own deadline.
TEST_F(ParksServiceTest, APricedPlaceIsHeldUntilPaidAndAReleasedOneGoesToTheWaitlist) {
  NewProgram undated;
  undated.name = "Yoga";
  undated.schedule = "Saturdays";
  undated.price_cents = 4000;
  auto refused = testing::run_awaitable(service->create_program(staff_with_correlation(), undated));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("starts_at"), std::string::npos) << refused.error().message;

  auto program = priced_program(*service, 1, 72);
  auto held = testing::run_awaitable(service->enroll(citizen(1), program));
  ASSERT_TRUE(held) << held.error().message;
  EXPECT_EQ(held->status, "pending_payment");
  EXPECT_EQ(held->amount_cents, 4000);
  ASSERT_TRUE(held->hold_expires_at);
  auto requested = last_event("enrollment.requested", held->id);
  ASSERT_FALSE(requested.is_null());
  EXPECT_EQ(requested["amount_cents"], 4000);
  EXPECT_EQ(requested["citizen_id"], 1);
  EXPECT_EQ(requested["program_id"], program);
  // The held place is taken: the next citizen waits.
  auto waiting = testing::run_awaitable(service->enroll(citizen(2), program));
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting->status, "waitlisted");
  EXPECT_EQ(service->get_program(program)->held, 1);

  EXPECT_EQ(apply(paid(held->id, 7, "enrollment")), bus::Outcome::applied);
  auto enrolled = enrollment(held->id);
  EXPECT_EQ(enrolled.status, "enrolled");
  EXPECT_EQ(enrolled.payment_id, 7);
  EXPECT_FALSE(enrolled.hold_expires_at);
  EXPECT_FALSE(last_event("enrollment.confirmed", held->id).is_null());
  EXPECT_EQ(apply(paid(held->id, 7, "enrollment")), bus::Outcome::stale);  // a duplicate changes nothing

  // Cancelled 72 hours before the start: refunded, and the place is offered onward.
  auto cancelled = testing::run_awaitable(service->cancel_enrollment(citizen(1), held->id));
  ASSERT_TRUE(cancelled) << cancelled.error().message;
  EXPECT_EQ(cancelled->refund, "full");
  EXPECT_EQ(last_event("enrollment.cancelled", held->id)["refund_payment"], true);
  auto offered = enrollment(waiting->id);
  EXPECT_EQ(offered.status, "pending_payment");
  ASSERT_TRUE(offered.hold_expires_at);
  EXPECT_EQ(last_event("enrollment.requested", waiting->id)["amount_cents"], 4000);

  // Revenue refuses the offered place's invoice: released, the next waiting citizen is offered it.
  auto third = testing::run_awaitable(service->enroll(citizen(3), program));
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, "waitlisted");
  EXPECT_EQ(apply_invoice(invoice_rejected("parks", std::to_string(waiting->id), "enrollment")), bus::Outcome::applied);
  EXPECT_EQ(enrollment(waiting->id).status, "cancelled");
  EXPECT_EQ(enrollment(waiting->id).cancelled_by, "system");
  EXPECT_EQ(enrollment(third->id).status, "pending_payment");
  EXPECT_EQ(apply_invoice(invoice_rejected("parks", std::to_string(waiting->id), "enrollment")), bus::Outcome::stale);

  // The third lets the hold run out: released by the scheduler, to the fourth.
  auto fourth = testing::run_awaitable(service->enroll(citizen(4), program));
  ASSERT_TRUE(fourth);
  writer.call([&] {
    database.open(db::Role::service)
        ->sql()
        .exec("UPDATE enrollments SET hold_expires_at = '2000-01-01T00:00:00.000Z' WHERE id = " +
              std::to_string(third->id));
  });
  auto expired = testing::run_awaitable(service->expire_holds());
  ASSERT_TRUE(expired);
  EXPECT_EQ(*expired, 1);
  EXPECT_EQ(enrollment(third->id).status, "cancelled");
  EXPECT_EQ(enrollment(third->id).cancel_reason, "the payment hold expired");
  EXPECT_EQ(enrollment(fourth->id).status, "pending_payment");

  // The fourth declines (cancels the held place): nobody waits, the place is free.
  ASSERT_TRUE(testing::run_awaitable(service->cancel_enrollment(citizen(4), fourth->id)));
  EXPECT_EQ(service->get_program(program)->held, 0);
  EXPECT_EQ(testing::run_awaitable(service->enroll(citizen(5), program))->status, "pending_payment");
}

// A paid enrollment follows the booking's refund policy, counted from the program's
// start: its citizen is refunded until refund_cutoff (24 h) before it, not after, and
// cannot cancel once it has started; staff decide explicitly.
TEST_F(ParksServiceTest, APaidEnrollmentFollowsTheBookingsRefundPolicy) {
  auto soon = priced_program(*service, 5, 5);
  auto late = testing::run_awaitable(service->enroll(citizen(1), soon));
  ASSERT_TRUE(late);
  ASSERT_EQ(apply(paid(late->id, 11, "enrollment")), bus::Outcome::applied);
  auto kept = testing::run_awaitable(service->cancel_enrollment(citizen(1), late->id));
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ(kept->refund, "none");
  EXPECT_NE(kept->cancel_reason->find("no refund"), std::string::npos);
  EXPECT_EQ(last_event("enrollment.cancelled", late->id)["refund_payment"], false);

  auto other = testing::run_awaitable(service->enroll(citizen(2), soon));
  ASSERT_TRUE(other);
  ASSERT_EQ(apply(paid(other->id, 12, "enrollment")), bus::Outcome::applied);
  writer.call([&] {  // the program began an hour ago
    database.open(db::Role::service)
        ->sql()
        .exec("UPDATE programs SET starts_at = '" + utc::format(hour(-1)) + "' WHERE id = " + std::to_string(soon));
  });
  auto started = testing::run_awaitable(service->cancel_enrollment(citizen(2), other->id));
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Errc::conflict);
  EXPECT_NE(started.error().message.find("no longer be cancelled"), std::string::npos) << started.error().message;
  auto undecided = testing::run_awaitable(service->cancel_enrollment(staff(), other->id));
  ASSERT_FALSE(undecided);
  EXPECT_EQ(undecided.error().code, Errc::invalid_argument);
  auto refunded = testing::run_awaitable(service->cancel_enrollment(staff(), other->id, {true, "the teacher is ill"}));
  ASSERT_TRUE(refunded) << refunded.error().message;
  EXPECT_EQ(refunded->refund, "full");
  EXPECT_EQ(refunded->cancelled_by, "staff");
  EXPECT_EQ(last_event("enrollment.cancelled", other->id)["refund_payment"], true);
}

// Issue 28 §4: the cap on unpaid holds was per account, and an account needs nothing but
// an email address: four throwaway accounts held twelve priced slots for nothing,
// renewably. A priced hold (booking or enrollment) now needs a citizen whose email or
// identity is verified (citizen_refs keeps both flags), and unpaid holds are capped per
// client address too (its keyed digest is stored on the hold, erased once it ends).
TEST_F(ParksServiceTest, APricedHoldNeedsAVerifiedEmailOrIdentity) {
  auto program = priced_program(*service, 5, 72);
  set_citizen(20, 1, false, false);
  auto refused = testing::run_awaitable(service->book(citizen(20), facility, hour(5), hour(6)));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::forbidden);
  EXPECT_NE(refused.error().message.find("verify your account's email"), std::string::npos) << refused.error().message;
  auto enrollment_refused = testing::run_awaitable(service->enroll(citizen(20), program));
  ASSERT_FALSE(enrollment_refused);
  EXPECT_EQ(enrollment_refused.error().code, Errc::forbidden);
  // Not in the cache at all: the same.
  EXPECT_EQ(testing::run_awaitable(service->book(citizen(21), facility, hour(5), hour(6))).error().code,
            Errc::forbidden);
  auto reader = database.open(db::Role::reader);
  EXPECT_EQ(reader->sql().execAndGet("SELECT count(*) FROM bookings").getInt(), 0);
  EXPECT_EQ(reader->sql().execAndGet("SELECT count(*) FROM enrollments").getInt(), 0);

  set_citizen(20, 2, false, true);  // an identity verified at the counter will do
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(20), facility, hour(5), hour(6))));
  set_citizen(21, 1, true, false);
  EXPECT_TRUE(testing::run_awaitable(service->enroll(citizen(21), program)));
}

class ParksAddressCapTest : public ParksServiceTest {
 protected:
  Settings settings() override {
    Settings out;
    out.max_unpaid_per_address = 2;
    return out;
  }
};

TEST_F(ParksAddressCapTest, UnpaidHoldsAreCappedPerClientAddress) {
  auto program = priced_program(*service, 5, 72);
  const std::string address = "203.0.113.7";
  auto first = testing::run_awaitable(service->book(citizen(1), facility, hour(5), hour(6), address));
  ASSERT_TRUE(first) << first.error().message;
  auto second = testing::run_awaitable(service->enroll(citizen(2), program, address));
  ASSERT_TRUE(second) << second.error().message;
  auto third = testing::run_awaitable(service->book(citizen(3), facility, hour(7), hour(8), address));
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, Errc::conflict);
  EXPECT_NE(third.error().message.find("network address"), std::string::npos) << third.error().message;
  EXPECT_FALSE(testing::run_awaitable(service->enroll(citizen(3), program, address)));
  // Another address is counted apart; an IPv6 client by its /64.
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(3), facility, hour(7), hour(8), "203.0.113.8")));
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(4), facility, hour(9), hour(10), "2001:db8:1:2::1")));
  EXPECT_TRUE(testing::run_awaitable(service->enroll(citizen(4), program, "2001:db8:1:2::ffff")));
  EXPECT_FALSE(testing::run_awaitable(service->book(citizen(5), facility, hour(11), hour(12), "2001:db8:1:2:3::9")));
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(5), facility, hour(11), hour(12), "2001:db8:1:3::9")));

  // The file keeps a digest, never the address, and only while the hold is unpaid: paid
  // or cancelled, it is erased and the address has room again.
  ASSERT_TRUE(first->client_digest);
  EXPECT_EQ(first->client_digest->find("203.0.113"), std::string::npos);
  EXPECT_EQ(first->client_digest->size(), 32u);
  EXPECT_EQ(apply(paid(first->id, 30)), bus::Outcome::applied);
  EXPECT_FALSE(read(first->id).client_digest);
  ASSERT_TRUE(testing::run_awaitable(service->cancel_enrollment(citizen(2), second->id)));
  EXPECT_FALSE(enrollment(second->id).client_digest);
  EXPECT_TRUE(testing::run_awaitable(service->book(citizen(6), facility, hour(13), hour(14), address)));
  EXPECT_TRUE(testing::run_awaitable(service->enroll(citizen(7), program, address)));
  EXPECT_FALSE(testing::run_awaitable(service->enroll(citizen(8), program, address)));
}

TEST(ParksClientDigest, OneClientOneDigestUnderOneKey) {
  auto key = new_client_digest_key();
  EXPECT_EQ(key.size(), kClientDigestKeyBytes);
  EXPECT_EQ(client_digest(key, "203.0.113.7"), client_digest(key, "203.0.113.7"));
  EXPECT_EQ(client_digest(key, "203.0.113.7"), client_digest(key, "::ffff:203.0.113.7"));  // IPv4-mapped
  EXPECT_NE(client_digest(key, "203.0.113.7"), client_digest(key, "203.0.113.8"));
  EXPECT_EQ(client_digest(key, "2001:db8:1:2::1"), client_digest(key, "2001:db8:1:2:ffff::1"));  // one /64
  EXPECT_NE(client_digest(key, "2001:db8:1:2::1"), client_digest(key, "2001:db8:1:3::1"));
  EXPECT_NE(client_digest(key, "203.0.113.7"), client_digest(new_client_digest_key(), "203.0.113.7"));
}

}  // namespace
}  // namespace townhall::parks
