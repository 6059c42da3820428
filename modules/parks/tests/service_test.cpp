// The parks service without sockets: the invariants parks.db holds whatever code writes
// it (overlap, payment before confirmation, capacity), the payment step of the saga
// (once, and never for a booking cancelled meanwhile — revenue refunds that payment), and
// opening hours in a zone with daylight saving time.
#include "service.hpp"

#include <SQLiteCpp/Transaction.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "coro.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/parks/module.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {
namespace {

using json = nlohmann::json;

class NoAuth final : public auth::Api {
 public:
  boost::asio::awaitable<Result<std::shared_ptr<const Principal>>> authenticate(CallContext, std::string) override {
    co_return make_error(Errc::unauthorized, "no");
  }
  boost::asio::awaitable<Result<auth::Citizen>> get_citizen(CallContext, std::int64_t) override {
    co_return make_error(Errc::not_found, "no");
  }
  boost::asio::awaitable<Result<std::optional<std::string>>> get_sensitive(CallContext, std::int64_t,
                                                                           std::string) override {
    co_return make_error(Errc::forbidden, "no");
  }
  boost::asio::awaitable<Result<std::vector<auth::CitizenVersion>>> citizen_versions(CallContext, std::int64_t, int,
                                                                                     auth::CitizenFields) override {
    co_return std::vector<auth::CitizenVersion>{};
  }
  boost::asio::awaitable<Result<consistency::Digest>> citizen_digest(CallContext, std::int64_t, std::int64_t,
                                                                     auth::CitizenFields) override {
    co_return consistency::Digest{};
  }
  boost::asio::awaitable<Result<auth::CitizenChanges>> citizens_since(CallContext, std::int64_t seq, int) override {
    co_return auth::CitizenChanges{{}, seq};
  }
  boost::asio::awaitable<Result<std::vector<auth::DepartmentRef>>> departments(CallContext) override {
    co_return std::vector<auth::DepartmentRef>{};
  }
};

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

bus::Event paid(std::int64_t booking, std::int64_t payment) {
  bus::Event event;
  event.event_id = "revenue:" + std::to_string(payment);
  event.event_type = "payment.completed";
  event.event_version = 2;
  event.data = {{"snapshot",
                 {{"id", payment},
                  {"invoice_id", 40 + payment},
                  {"source_module", "parks"},
                  {"source_type", "booking"},
                  {"source_id", std::to_string(booking)}}}};
  return event;
}

class ParksServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::migrate_module(database, "parks");
    service =
        std::make_unique<ParksService>(Settings{}, ParksService::Dependencies{database, writer, readers, [] {}, auth});
    service->start();
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
  json cancelled_event(std::int64_t booking) {
    auto reader = database.open(db::Role::reader);
    SQLite::Statement query(reader->sql(),
                            "SELECT data FROM outbox WHERE event_type = 'booking.cancelled' AND aggregate_id = ? "
                            "ORDER BY id DESC LIMIT 1");
    query.bind(1, std::to_string(booking));
    if (!query.executeStep()) return nullptr;
    return json::parse(query.getColumn(0).getString())["snapshot"];
  }

  testing::TempDir dir;
  db::ModuleDb database{"parks", dir.path() / "parks.db", table_manifest()};
  db::Writer writer{"parks"};
  db::ReaderPool readers{database, 2};
  NoAuth auth;
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

    store::Program program{0, std::nullopt, "Yoga", "Saturdays", 1, 0, "USD", true, utc::now(), utc::now(), 0, 0};
    store::insert_program(*connection, program);
    store::Enrollment first{0, program.id, 1, "enrolled", utc::now(), utc::now(), 0};
    store::insert_enrollment(*connection, first);
    store::Enrollment second{0, program.id, 2, "enrolled", utc::now(), utc::now(), 0};
    EXPECT_THROW(store::insert_enrollment(*connection, second), SQLite::Exception);
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

bus::Event invoice_rejected(const std::string& module, const std::string& source_id) {
  bus::Event event;
  event.event_id = "revenue:" + source_id;
  event.event_type = std::string(revenue::events::kInvoiceRejected);
  event.topic = std::string(revenue::events::kInvoiceTopic);
  event.event_version = 1;
  event.data = {{"snapshot", revenue::events::invoice_rejection_snapshot(
                                 {module, "booking", source_id, 1, 2'000'000'000'000, "USD", "too much"})}};
  return event;
}

// The defensive half: should revenue still refuse a booking's invoice, its invoice.rejected
// releases the booking at once (cancelled by the system, its slot freed), once.
TEST_F(ParksServiceTest, ABookingWhoseInvoiceRevenueRefusesIsReleased) {
  auto held = testing::run_awaitable(service->book(citizen(1), facility, hour(5), hour(6)));
  ASSERT_TRUE(held);
  auto apply_invoice = [&](const bus::Event& event) {
    bus::Outcome outcome{};
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      outcome = service->apply_invoice_event(event, *connection);
      transaction.commit();
    });
    return outcome;
  };
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

}  // namespace
}  // namespace townhall::parks
