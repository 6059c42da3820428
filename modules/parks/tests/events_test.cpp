// parks' event contract (townhall/parks/events.hpp): its decoders refuse every payload
// they cannot read whole, and still read what parks wrote before payloads had a version.
#include "townhall/parks/events.hpp"

#include <gtest/gtest.h>

#include "contract_checks.hpp"

namespace townhall::parks {
namespace {

using nlohmann::json;
using testing::contract_event;
using testing::strictness_gaps;

const events::BookingSnapshot kBooking{3,    1,     7,     "2026-12-24T10:00:00Z", "2026-12-24T11:00:00Z", "cancelled",
                                       2500, "USD", false, "changed plans"};

TEST(ParksEvents, ABookingPayloadIsReadWholeOrRefused) {
  auto good = contract_event(events::kBookingTopic, events::kBookingCancelled,
                             events::event_data(events::booking_snapshot(kBooking)));
  EXPECT_EQ(strictness_gaps(good, events::booking_of), std::vector<std::string>{});
  auto read = events::booking_of(good);
  EXPECT_EQ(read.citizen_id, 7);
  EXPECT_FALSE(read.refund_payment);
  EXPECT_EQ(read.cancel_reason, "changed plans");
  auto place = events::priced_place(good);
  EXPECT_EQ(place.step, events::PricedPlace::Step::cancelled);
  EXPECT_EQ(place.source_type, events::kBookingSource);
}

// A payload without a schema_version was written before versions: one written before
// refund_payment existed refunds, as every cancellation did then. A versioned one without
// it is refused (the strictness check above).
TEST(ParksEvents, ABookingFromBeforeRefundPaymentRefunds) {
  auto snapshot = events::booking_snapshot(kBooking);
  snapshot.erase("refund_payment");
  auto old = contract_event(events::kBookingTopic, events::kBookingCancelled, {{"snapshot", snapshot}});
  EXPECT_TRUE(events::booking_of(old).refund_payment);
}

TEST(ParksEvents, AnEnrollmentPayloadIsReadWholeOrRefused) {
  auto good =
      contract_event(events::kEnrollmentTopic, events::kEnrollmentRequested,
                     events::event_data(events::enrollment_snapshot({4, 2, 7, "pending_payment", 4000, "USD", true})));
  EXPECT_EQ(strictness_gaps(good, events::enrollment_of), std::vector<std::string>{});
  auto place = events::priced_place(good);
  EXPECT_EQ(place.step, events::PricedPlace::Step::requested);
  EXPECT_EQ(place.amount_cents, 4000);
  EXPECT_EQ(place.description, "Program enrollment 4 (program 2)");
}

TEST(ParksEvents, APromotionPayloadIsReadWholeOrRefused) {
  auto good = contract_event(
      events::kEnrollmentTopic, events::kEnrollmentPromoted,
      events::event_data(events::promotion_snapshot(
          {{4, 2, 7, "pending_payment", 4000, "USD", true}, "Morning yoga", "2026-12-24T10:15:00.000Z"})));
  EXPECT_EQ(strictness_gaps(good, events::promotion_of), std::vector<std::string>{});
  auto read = events::promotion_of(good);
  EXPECT_EQ(read.enrollment.citizen_id, 7);
  EXPECT_EQ(read.program_name, "Morning yoga");
  EXPECT_EQ(read.hold_expires_at, "2026-12-24T10:15:00.000Z");
  // Revenue has nothing to do with it (the place's own enrollment.requested opens the invoice).
  EXPECT_EQ(events::priced_place(good).step, events::PricedPlace::Step::other);
}

}  // namespace
}  // namespace townhall::parks
