// Holds on priced places: held until paid, released to the waitlist, who may hold one and
// how many per citizen and per client address.
#include "fixture.hpp"

namespace townhall::parks {
namespace {

// Issue 28 §3: enrolling in a priced program confirmed the place and opened no invoice.
// A priced place is held pending_payment with a deadline (enrollment.requested: revenue
// opens the invoice) and counts against capacity; payment.completed enrolls it; released
// (declined by its citizen, refused by revenue, expired), it is offered to the first on
// the waitlist, held with its own deadline.
TEST_F(ParksServiceTest, APricedPlaceIsHeldUntilPaidAndAReleasedOneGoesToTheWaitlist) {
  auto refused = create_program(*service, new_program("Yoga", "Saturdays", 1, 4000));  // no first meeting
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
  // Its citizen is told (notify reads enrollment.promoted): the program and the deadline.
  auto promoted = last_event("enrollment.promoted", waiting->id);
  ASSERT_FALSE(promoted.is_null());
  EXPECT_EQ(promoted["status"], "pending_payment");
  EXPECT_EQ(promoted["citizen_id"], 2);
  EXPECT_EQ(promoted["program_name"], "Yoga");
  EXPECT_EQ(promoted["hold_expires_at"], *offered.hold_expires_at);
  EXPECT_TRUE(last_event("enrollment.promoted", held->id).is_null());  // enrolled directly: no promotion

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

// Issue 25: a waitlisted citizen was never told a place came free. A promotion from the
// waitlist of a free program enrolls at once (enrollment.confirmed, which revenue reads)
// and says so in enrollment.promoted (which notify turns into an inbox notice).
TEST_F(ParksServiceTest, APromotionFromTheWaitlistIsAnnounced) {
  auto program = create_program(*service, new_program("Chess club", "Tuesdays", 1, 0));
  ASSERT_TRUE(program) << program.error().message;
  auto first = testing::run_awaitable(service->enroll(citizen(1), program->id));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, "enrolled");
  auto waiting = testing::run_awaitable(service->enroll(citizen(2), program->id));
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting->status, "waitlisted");
  EXPECT_EQ(waiting->waitlist_position, 1);
  EXPECT_TRUE(last_event("enrollment.promoted", waiting->id).is_null());

  ASSERT_TRUE(testing::run_awaitable(service->cancel_enrollment(citizen(1), first->id)));
  EXPECT_EQ(enrollment(waiting->id).status, "enrolled");
  EXPECT_FALSE(last_event("enrollment.confirmed", waiting->id).is_null());
  auto promoted = last_event("enrollment.promoted", waiting->id);
  ASSERT_FALSE(promoted.is_null());
  EXPECT_EQ(promoted["status"], "enrolled");
  EXPECT_EQ(promoted["program_name"], "Chess club");
  EXPECT_TRUE(promoted["hold_expires_at"].is_null());
  EXPECT_TRUE(last_event("enrollment.promoted", first->id).is_null());
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
