// Bookings: the invariants parks.db holds whatever code writes it (overlap, payment before
// confirmation, capacity), the payment step of the saga (once, and never for a booking
// cancelled meanwhile: revenue refunds that payment), caps, and revenue's price ceiling.
#include "fixture.hpp"

namespace townhall::parks {
namespace {

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

}  // namespace
}  // namespace townhall::parks
