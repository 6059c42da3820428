// Cancelling bookings and enrollments: who may, and the refund policy.
#include "fixture.hpp"

namespace townhall::parks {
namespace {

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
        .exec("UPDATE programs SET starts_at = '" +
              utc::format(std::chrono::system_clock::now() - std::chrono::hours(1)) +
              "' WHERE id = " + std::to_string(soon));
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

}  // namespace
}  // namespace townhall::parks
