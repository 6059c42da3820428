// The notify module without sockets: other modules' events (written with their own
// contracts' encoders) become one notice per citizen in the inbox and, for a verified
// address that wants it, one email in the delivery outbox; the inbox is the citizen's own.
// Sending over SMTP is tested against a real server in tests/integration/notify_smtp_test.cpp.
#include "service.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>

#include "coro.hpp"
#include "fake_auth.hpp"
#include "module_harness.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/auth/citizen_refs.hpp"
#include "townhall/auth/events.hpp"
#include "townhall/notify/module.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::notify {
namespace {

using json = nlohmann::json;

CallContext as_citizen(std::int64_t id) { return testing::as(testing::citizen_principal(id)); }
CallContext as_staff() { return testing::as(testing::employee_principal(900, {"*"})); }

int next_event = 1;

bus::Event event(std::string_view topic, std::string_view type, json data) {
  bus::Event e;
  e.event_id = "test:" + std::to_string(next_event++);
  e.topic = topic;
  e.event_type = type;
  e.event_version = 1;
  e.occurred_at = utc::now();
  e.data = std::move(data);
  return e;
}

bus::Event application_decided(std::int64_t citizen, bool approved) {
  permits::events::ApplicationSnapshot a{
      7,          citizen,     "fence",
      "BLD",      "1 Main St", approved ? "approved" : "rejected",
      0,          "USD",       approved ? std::nullopt : std::optional<std::string>("too tall"),
      utc::now(), utc::now()};
  return event(permits::events::kApplicationTopic,
               approved ? permits::events::kApplicationApproved : permits::events::kApplicationRejected,
               permits::events::application_data(a));
}

bus::Event payment(std::string_view type, std::int64_t citizen, std::int64_t id) {
  revenue::events::PaymentSnapshot p;
  p.id = id;
  p.invoice_id = 40;
  p.citizen_id = citizen;
  p.amount_cents = 2550;
  p.currency = "USD";
  p.method_type = "card";
  p.status = "completed";
  p.source_module = "parks";
  p.source_type = "booking";
  p.source_id = "3";
  p.created_at = utc::now();
  if (type == revenue::events::kPaymentFailed) p.failure_reason = "card declined";
  return event(revenue::events::kPaymentTopic, type, revenue::events::event_data(revenue::events::payment_json(p)));
}

bus::Event invoice_created(std::int64_t citizen) {
  return event(revenue::events::kInvoiceTopic, revenue::events::kInvoiceCreated,
               revenue::events::event_data({{"id", 40},
                                            {"citizen_id", citizen},
                                            {"source", {{"module", "permits"}, {"type", "application"}, {"id", "7"}}},
                                            {"description", "Permit fee: deck (application 7)"},
                                            {"amount_cents", 2500},
                                            {"balance_cents", 2500},
                                            {"currency", "EUR"},
                                            {"status", "open"},
                                            {"created_at", utc::now()},
                                            {"updated_at", utc::now()},
                                            {"paid_at", nullptr},
                                            {"closed_at", nullptr}}));
}

// A tax bill's instalment as revenue's overdue job announces it.
bus::Event invoice_overdue(std::int64_t citizen) {
  return event(revenue::events::kInvoiceTopic, revenue::events::kInvoiceOverdue,
               revenue::events::event_data({{"id", 41},
                                            {"citizen_id", citizen},
                                            {"source", {{"module", "revenue"}, {"type", "tax_record"}, {"id", "12.2"}}},
                                            {"description", "Property tax 2026, instalment 2 of 4 (tax record 12)"},
                                            {"amount_cents", 78125},
                                            {"balance_cents", 78125},
                                            {"currency", "USD"},
                                            {"status", "overdue"},
                                            {"due_date", "2026-11-30"},
                                            {"created_at", utc::now()},
                                            {"updated_at", utc::now()},
                                            {"paid_at", nullptr},
                                            {"closed_at", nullptr}}));
}

bus::Event booking(std::string_view type, std::int64_t citizen, std::optional<std::string> reason = std::nullopt) {
  parks::events::BookingSnapshot b{
      3, 1, citizen, "2026-12-24T10:00:00Z", "2026-12-24T11:00:00Z", "confirmed", 2500, "USD", true, reason};
  return event(parks::events::kBookingTopic, type, {{"snapshot", parks::events::booking_snapshot(b)}});
}

// enrollment.promoted of enrollment 8 in "Morning yoga": held until `hold` when priced.
bus::Event promotion(std::int64_t citizen, std::optional<std::string> hold) {
  parks::events::EnrollmentSnapshot e{8,     2,   citizen, hold ? "pending_payment" : "enrolled", hold ? 4000 : 0,
                                      "USD", true};
  return event(parks::events::kEnrollmentTopic, parks::events::kEnrollmentPromoted,
               parks::events::event_data(parks::events::promotion_snapshot({e, "Morning yoga", hold})));
}

bus::Event license(std::string_view type, std::int64_t citizen, std::int64_t term, std::string expires_at) {
  return event(revenue::events::kLicenseTopic, type,
               revenue::events::event_data({{"id", 5},
                                            {"citizen_id", citizen},
                                            {"business_name", "Corner Cafe"},
                                            {"activity", "food"},
                                            {"address", "2 Main St"},
                                            {"status", "active"},
                                            {"term", term},
                                            {"expires_at", expires_at},
                                            {"fee_invoice_id", 41},
                                            {"fee_due_at", nullptr},
                                            {"renewal_invoice_id", nullptr},
                                            {"decision_reason", nullptr},
                                            {"created_at", utc::now()},
                                            {"updated_at", utc::now()}}));
}

class NotifyServiceTest : public ::testing::Test, protected testing::ModuleHarness {
 protected:
  NotifyServiceTest() : ModuleHarness("notify", table_manifest()) {}
  virtual Settings settings() {
    Settings s;
    s.smtp.enabled = true;
    s.smtp.host = "127.0.0.1";
    s.smtp.port = 1;  // nothing listens: the sender's attempts fail and are retried later
    s.smtp.security = "none";
    s.smtp.from = "Town Hall <no-reply@town.example>";
    s.retry_initial = std::chrono::hours(1);
    return s;
  }

  void SetUp() override {
    testing::migrate_module(database, "notify");
    service = std::make_unique<NotifyService>(settings(), dependencies(), auth);
    service->start();
    set_citizen(1, "maria@example.org", true);
    set_citizen(2, "li@example.org", false);  // email not verified
    set_citizen(3, "sam@example.org", true);
  }
  void TearDown() override { service->stop(); }

  void set_citizen(std::int64_t id, std::string email, bool verified) {
    auto citizen = testing::test_citizen(id);
    citizen.email = std::move(email);
    citizen.email_verified = verified;
    writer.call([&] { NotifyService::citizen_table().upsert(*database.open(db::Role::sync), citizen); });
  }

  bus::Outcome apply(const bus::Event& e) {
    return handle(std::bind_front(&NotifyService::apply_event, service.get()), e);
  }

  std::vector<std::string> kinds_of(std::int64_t citizen) {
    auto page = service->inbox(as_citizen(citizen), {0, 100, false});
    EXPECT_TRUE(page);
    std::vector<std::string> out;
    for (const auto& n : page->items) out.insert(out.begin(), n.kind);  // oldest first
    return out;
  }

  std::unique_ptr<NotifyService> service;
};

TEST_F(NotifyServiceTest, EachEventTheCitizenNeedsBecomesOneNotice) {
  EXPECT_EQ(apply(application_decided(1, true)), bus::Outcome::applied);
  EXPECT_EQ(apply(application_decided(1, false)), bus::Outcome::applied);
  permits::events::PermitSnapshot permit{9, 7, 1, "fence", "BLD", "active", utc::now(), std::nullopt, std::nullopt};
  EXPECT_EQ(
      apply(event(permits::events::kPermitTopic, permits::events::kPermitIssued, permits::events::permit_data(permit))),
      bus::Outcome::applied);
  EXPECT_EQ(apply(invoice_created(1)), bus::Outcome::applied);
  EXPECT_EQ(apply(payment(revenue::events::kPaymentCompleted, 1, 1)), bus::Outcome::applied);
  EXPECT_EQ(apply(payment(revenue::events::kPaymentFailed, 1, 2)), bus::Outcome::applied);
  EXPECT_EQ(apply(payment(revenue::events::kPaymentRefunded, 1, 3)), bus::Outcome::applied);
  EXPECT_EQ(apply(booking(parks::events::kBookingConfirmed, 1)), bus::Outcome::applied);
  EXPECT_EQ(apply(booking(parks::events::kBookingCancelled, 1, "cancelled by the citizen")), bus::Outcome::applied);
  EXPECT_EQ(apply(booking(parks::events::kBookingCancelled, 1, std::string(parks::events::kHoldExpiredReason))),
            bus::Outcome::applied);
  EXPECT_EQ(apply(license(revenue::events::kLicenseExpired, 1, 1, utc::now())), bus::Outcome::applied);
  EXPECT_EQ(apply(event(revenue::events::kTaxRecordTopic, revenue::events::kTaxRecordOpened,
                        revenue::events::event_data(
                            revenue::events::tax_record_snapshot({12, 1, 2026, 25000000, 312500, "USD", utc::now()})))),
            bus::Outcome::applied);
  EXPECT_EQ(apply(promotion(1, "2026-12-24T10:15:00.000Z")), bus::Outcome::applied);
  // Steps nobody needs to hear of make none.
  EXPECT_EQ(apply(booking(parks::events::kBookingRequested, 1)), bus::Outcome::applied);
  EXPECT_EQ(apply(payment("payment.pending", 1, 4)), bus::Outcome::applied);
  EXPECT_EQ(kinds_of(1),
            (std::vector<std::string>{"application_decided", "application_decided", "permit_issued", "invoice_opened",
                                      "payment_completed", "payment_failed", "payment_refunded", "booking_confirmed",
                                      "booking_cancelled", "booking_expired", "license_expired", "tax_record_opened",
                                      "enrollment_promoted"}));
  auto page = service->inbox(as_citizen(1), {0, 100, false});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->items.front().title, "A place in Morning yoga is yours");
  EXPECT_NE(page->items.front().body.find("held for you until 2026-12-24 10:15 UTC"), std::string::npos)
      << page->items.front().body;
  EXPECT_NE(page->items.front().body.find("40.00 USD"), std::string::npos);
  const auto& failed = page->items[7];
  EXPECT_EQ(failed.title, "Payment failed: 25.50 USD");
  EXPECT_NE(failed.body.find("card declined"), std::string::npos);
  const auto& rejected = page->items[page->items.size() - 2];
  EXPECT_NE(rejected.title.find("rejected"), std::string::npos);
  EXPECT_NE(rejected.body.find("too tall"), std::string::npos);
  EXPECT_EQ(page->items[1].title, "Your 2026 tax record: 3125.00 USD due");
  EXPECT_TRUE(kinds_of(2).empty());
}

// Issue 25: a waitlisted citizen given a place in a free program is told they are enrolled.
TEST_F(NotifyServiceTest, APromotionFromTheWaitlistTellsItsCitizen) {
  EXPECT_EQ(apply(promotion(3, std::nullopt)), bus::Outcome::applied);
  auto page = service->inbox(as_citizen(3), {0, 100, false});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].kind, "enrollment_promoted");
  EXPECT_EQ(page->items[0].body, "Enrollment 8: a place in Morning yoga came free: you are enrolled.");
  // The place's own events are revenue's business, not the citizen's inbox.
  EXPECT_EQ(apply(event(
                parks::events::kEnrollmentTopic, parks::events::kEnrollmentConfirmed,
                parks::events::event_data(parks::events::enrollment_snapshot({8, 2, 3, "enrolled", 0, "USD", true})))),
            bus::Outcome::applied);
  EXPECT_EQ(kinds_of(3), std::vector<std::string>{"enrollment_promoted"});
}

// Issue 26 §1: an overdue tax instalment reaches its citizen once, with the day it was due
// by; the kind has its email preference like every other.
TEST_F(NotifyServiceTest, AnOverdueInvoiceBecomesOneNoticeNamingItsDueDate) {
  auto overdue = invoice_overdue(1);
  EXPECT_EQ(apply(overdue), bus::Outcome::applied);
  EXPECT_EQ(apply(overdue), bus::Outcome::stale);  // redelivered: nothing more
  EXPECT_EQ(kinds_of(1), (std::vector<std::string>{"invoice_overdue"}));
  auto page = service->inbox(as_citizen(1), {0, 100, false});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->items.front().title, "Invoice overdue: 781.25 USD");
  EXPECT_NE(page->items.front().body.find("was due by 2026-11-30"), std::string::npos) << page->items.front().body;
  EXPECT_NE(page->items.front().body.find("instalment 2 of 4"), std::string::npos);
  EXPECT_TRUE(is_kind("invoice_overdue"));
  ASSERT_TRUE(testing::run_awaitable(service->set_preferences(as_citizen(1), {{"invoice_overdue", false}})));
  // Without a due date the payload is not revenue's contract: a dead letter, not a guess.
  auto broken = invoice_overdue(1);
  broken.data["snapshot"].erase("due_date");
  EXPECT_THROW(apply(broken), bus::PermanentError);
}

TEST_F(NotifyServiceTest, ARedeliveredEventAddsNoNoticeAndNoEmail) {
  auto approved = application_decided(1, true);
  EXPECT_EQ(apply(approved), bus::Outcome::applied);
  EXPECT_EQ(apply(approved), bus::Outcome::stale);
  EXPECT_EQ(count("SELECT count(*) FROM notifications"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM deliveries"), 1);
}

// A source restored from an older backup numbers its new events again: the same id with
// another time is another event, and gets its notice.
TEST_F(NotifyServiceTest, AnEventIdReusedAfterASourceRestoreIsAnotherEvent) {
  auto approved = application_decided(1, true);
  approved.occurred_at = "2026-12-01T10:00:00.000Z";
  EXPECT_EQ(apply(approved), bus::Outcome::applied);
  auto reused = application_decided(1, false);
  reused.event_id = approved.event_id;
  reused.occurred_at = "2026-12-02T09:00:00.000Z";
  EXPECT_EQ(apply(reused), bus::Outcome::applied);
  EXPECT_EQ(apply(reused), bus::Outcome::stale);
  EXPECT_EQ(count("SELECT count(*) FROM notifications"), 2);
  EXPECT_EQ(count("SELECT count(DISTINCT message_id) FROM deliveries"), 2);
}

TEST_F(NotifyServiceTest, EmailGoesOnlyToAVerifiedAddressThatWantsIt) {
  ASSERT_TRUE(testing::run_awaitable(service->set_preferences(as_citizen(3), {{"invoice_opened", false}})));
  for (std::int64_t citizen : {1, 2, 3}) apply(invoice_created(citizen));
  apply(payment(revenue::events::kPaymentCompleted, 3, 9));   // sam wants this kind
  EXPECT_EQ(count("SELECT count(*) FROM notifications"), 4);  // the inbox gets every one
  EXPECT_EQ(count("SELECT count(*) FROM deliveries"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM deliveries WHERE to_address = 'maria@example.org'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM deliveries WHERE to_address = 'sam@example.org'"), 1);
  auto reader = database.open(db::Role::reader);
  auto message_id = reader->sql().execAndGet("SELECT message_id FROM deliveries ORDER BY id LIMIT 1").getString();
  EXPECT_EQ(message_id.back(), '>');
  EXPECT_NE(message_id.find("@town.example>"), std::string::npos);
  // A closed account is mailed nothing, though its inbox is kept.
  auto closed = testing::test_citizen(1, 2);
  closed.email = "maria@example.org";
  closed.email_verified = true;
  closed.is_active = false;
  writer.call([&] { NotifyService::citizen_table().upsert(*database.open(db::Role::sync), closed); });
  apply(payment(revenue::events::kPaymentCompleted, 1, 10));
  EXPECT_EQ(count("SELECT count(*) FROM deliveries"), 2);
}

TEST_F(NotifyServiceTest, TheMessageIdIsTheSameForEveryAttemptOfOneNotice) {
  auto first = message_id_for("revenue:12", "1", "invoice_opened", "Town Hall <no-reply@town.example>");
  EXPECT_EQ(first, message_id_for("revenue:12", "1", "invoice_opened", "Town Hall <no-reply@town.example>"));
  EXPECT_EQ(first, "<notify.revenue-12.invoice_opened.1@town.example>");
  EXPECT_NE(first, message_id_for("revenue:12", "2", "invoice_opened", "no-reply@town.example"));
  EXPECT_NE(first, message_id_for("revenue:13", "1", "invoice_opened", "no-reply@town.example"));
  // Nothing from an event id leaves the angle brackets.
  EXPECT_EQ(message_id_for("a>b\r\n<c", "1", "k", "x@y"), "<notify.a-b---c.k.1@y>");
}

bus::Event reset_requested(const std::string& reference, std::string kind = "employee") {
  auth::events::PasswordResetRequested r{reference,          std::move(kind), 7,
                                         "rita@example.org", "Rita",          "2026-12-05T12:30:00.000Z"};
  return event(auth::events::kPasswordResetTopic, auth::events::kPasswordResetRequested,
               auth::events::password_reset_data(r));
}

// A password reset email is stored without its token (auth hands it over when it is
// sent) and in no inbox; one auth no longer honours is given up, not retried.
TEST_F(NotifyServiceTest, AResetEmailKeepsNoTokenAndIsDroppedWhenAuthNoLongerHonoursIt) {
  auto requested = reset_requested("ref-1");
  EXPECT_EQ(handle(std::bind_front(&NotifyService::apply_password_reset, service.get()), requested),
            bus::Outcome::applied);
  EXPECT_EQ(handle(std::bind_front(&NotifyService::apply_password_reset, service.get()), requested),
            bus::Outcome::applied);  // a replay adds none
  EXPECT_EQ(count("SELECT count(*) FROM deliveries WHERE secret_ref = 'ref-1' AND notification_id IS NULL AND "
                  "to_address = 'rita@example.org' AND instr(body, '{token}') > 0"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM notifications"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM deliveries WHERE message_id LIKE '<notify.%.password_reset.employee-7@%>'"), 1);
  // A payload that lacks a field or names another account kind is dead-lettered.
  auto lacking = reset_requested("ref-2");
  lacking.data.erase("email");
  EXPECT_THROW(handle(std::bind_front(&NotifyService::apply_password_reset, service.get()), lacking),
               bus::PermanentError);
  EXPECT_THROW(
      handle(std::bind_front(&NotifyService::apply_password_reset, service.get()), reset_requested("ref-3", "robot")),
      bus::PermanentError);

  // auth answers not_found (used, replaced, expired): failed at once, no SMTP attempt.
  service->run_due();
  EXPECT_EQ(count("SELECT count(*) FROM deliveries WHERE secret_ref = 'ref-1' AND status = 'failed' AND attempts = 1 "
                  "AND last_error LIKE 'auth:%'"),
            1);
  // A token auth still honours is fetched and the SMTP server tried (nothing listens
  // here: retried later); the stored body still has no token.
  auth.reset_mails["ref-4"] = {"the-token-itself", "rita@example.org", "2026-12-05T12:30:00.000Z"};
  handle(std::bind_front(&NotifyService::apply_password_reset, service.get()), reset_requested("ref-4"));
  service->run_due();
  EXPECT_EQ(count("SELECT count(*) FROM deliveries WHERE secret_ref = 'ref-4' AND status = 'pending' AND attempts = 1 "
                  "AND last_error NOT LIKE 'auth:%'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM deliveries WHERE instr(body, 'the-token-itself') > 0"), 0);
}

TEST_F(NotifyServiceTest, TheInboxIsTheCitizensOwnPagedByCursor) {
  for (int i = 0; i < 25; ++i) apply(payment(revenue::events::kPaymentCompleted, 1, 100 + i));
  apply(invoice_created(3));
  auto first = service->inbox(as_citizen(1), {0, 20, false});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->items.size(), 20u);
  EXPECT_EQ(first->unread, 25);
  ASSERT_TRUE(first->next_cursor);
  auto second = service->inbox(as_citizen(1), {*first->next_cursor, 20, false});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->items.size(), 5u);
  EXPECT_FALSE(second->next_cursor);
  EXPECT_GT(first->items.back().id, second->items.front().id);  // newest first, no overlap
  // Reading: one's own only; another citizen's id is as absent as none.
  auto newest = first->items.front().id;
  auto read = testing::run_awaitable(service->mark_read(as_citizen(1), newest));
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_TRUE(read->read_at);
  auto again = testing::run_awaitable(service->mark_read(as_citizen(1), newest));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->read_at, read->read_at);  // the first reading's time stays
  EXPECT_EQ(testing::run_awaitable(service->mark_read(as_citizen(3), newest)).error().code, Errc::not_found);
  EXPECT_EQ(testing::run_awaitable(service->mark_read(as_citizen(1), 999999)).error().code, Errc::not_found);
  auto unread = service->inbox(as_citizen(1), {0, 100, true});
  ASSERT_TRUE(unread);
  EXPECT_EQ(unread->items.size(), 24u);
  EXPECT_EQ(unread->unread, 24);
  EXPECT_EQ(service->inbox(as_citizen(3), {0, 100, false})->items.size(), 1u);
  // Staff have no inbox here, and cannot read a citizen's.
  EXPECT_EQ(service->inbox(as_staff(), {0, 20, false}).error().code, Errc::forbidden);
  EXPECT_EQ(testing::run_awaitable(service->mark_read(as_staff(), newest)).error().code, Errc::forbidden);
  EXPECT_EQ(service->inbox(CallContext{}, {0, 20, false}).error().code, Errc::unauthorized);
}

TEST_F(NotifyServiceTest, PreferencesNameEveryKindAndRefuseUnknownOnes) {
  auto shown = service->preferences(as_citizen(1));
  ASSERT_TRUE(shown);
  EXPECT_EQ(shown->email.size(), kKinds.size());
  EXPECT_TRUE(shown->email_delivery);
  for (const auto& [kind, on] : shown->email) EXPECT_TRUE(on) << kind;
  auto changed = testing::run_awaitable(service->set_preferences(as_citizen(1), {{"payment_failed", false}}));
  ASSERT_TRUE(changed);
  EXPECT_FALSE(changed->email.at("payment_failed"));
  EXPECT_TRUE(changed->email.at("payment_completed"));
  EXPECT_TRUE(service->preferences(as_citizen(3))->email.at("payment_failed"));  // another citizen's are apart
  auto refused = testing::run_awaitable(service->set_preferences(as_citizen(1), {{"gossip", true}}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("gossip"), std::string::npos);
}

TEST_F(NotifyServiceTest, APayloadItsContractCannotReadIsAPermanentError) {
  auto missing = payment(revenue::events::kPaymentCompleted, 1, 1);
  missing.data["snapshot"].erase("citizen_id");
  EXPECT_THROW(apply(missing), bus::PermanentError);
  auto newer = application_decided(1, true);
  newer.data[bus::kSchemaVersionField] = permits::events::kSchemaVersion + 1;
  EXPECT_THROW(apply(newer), bus::PermanentError);
  auto mistyped = booking(parks::events::kBookingConfirmed, 1);
  mistyped.data["snapshot"]["citizen_id"] = "one";
  EXPECT_THROW(apply(mistyped), bus::PermanentError);
  EXPECT_EQ(count("SELECT count(*) FROM notifications"), 0);
}

TEST_F(NotifyServiceTest, ALicenseExpiringWithinTheNoticePeriodIsRemindedOncePerTerm) {
  auto soon = utc::format(std::chrono::system_clock::now() + std::chrono::hours(24 * 10));
  auto later = utc::format(std::chrono::system_clock::now() + std::chrono::hours(24 * 375));
  apply(license(revenue::events::kLicenseActivated, 1, 1, soon));
  service->run_due();  // due now: 10 days left of a 30-day notice (the sender may be first)
  EXPECT_EQ(count("SELECT count(*) FROM license_reminders"), 0);
  EXPECT_EQ(kinds_of(1), (std::vector<std::string>{"license_expiring"}));
  service->run_due();
  EXPECT_EQ(kinds_of(1).size(), 1u);  // once
  // Renewed: the next term's reminder waits for its own notice period.
  apply(license(revenue::events::kLicenseRenewed, 1, 2, later));
  service->run_due();
  EXPECT_EQ(count("SELECT count(*) FROM license_reminders WHERE term = 2"), 1);
  EXPECT_EQ(kinds_of(1).size(), 1u);
  // Expired (or lapsed, or rejected): no reminder is left to send.
  apply(license(revenue::events::kLicenseExpired, 1, 2, later));
  EXPECT_EQ(count("SELECT count(*) FROM license_reminders"), 0);
  EXPECT_EQ(kinds_of(1), (std::vector<std::string>{"license_expiring", "license_expired"}));
}

TEST(NotifySettings, AreReadStrictlyNamingTheKey) {
  auto message = [](const json& section) {
    try {
      parse_settings(section);
    } catch (const std::exception& error) {
      return std::string(error.what());
    }
    return std::string();
  };
  EXPECT_FALSE(parse_settings(nullptr).smtp.enabled);
  EXPECT_NE(message({{"smtp", {{"prot", 25}}}}).find("modules.notify.settings.smtp.prot: unknown setting"),
            std::string::npos);
  EXPECT_NE(message({{"smtp", {{"port", 70000}}}}).find("smtp.port"), std::string::npos);
  EXPECT_NE(message({{"smtp", {{"security", "ssl"}}}}).find("\"starttls\""), std::string::npos);
  EXPECT_NE(message({{"smtp", {{"from", "nobody"}}}}).find("smtp.from"), std::string::npos);
  EXPECT_NE(message({{"smtp", {{"password_file", "pw"}}}}).find("needs a username"), std::string::npos);
  EXPECT_NE(message({{"max_attempts", 0}}).find("max_attempts"), std::string::npos);
  EXPECT_NE(message({{"retry_initial_ms", 5000}, {"retry_max_ms", 100}}).find("retry_max_ms"), std::string::npos);
  EXPECT_NE(message({{"smtp", {{"host", "a\nb"}}}}).find("control characters"), std::string::npos);
  auto parsed = parse_settings({{"smtp", {{"enabled", true}, {"host", "mail.example"}, {"port", 587}}}});
  EXPECT_TRUE(parsed.smtp.enabled);
  EXPECT_EQ(parsed.smtp.port, 587);
  EXPECT_EQ(envelope_address("Town Hall <no-reply@town.example>"), "no-reply@town.example");
}

TEST(NotifyNotices, MoneyIsWrittenAsPeopleReadIt) {
  EXPECT_EQ(money_text(2550, "USD"), "25.50 USD");
  EXPECT_EQ(money_text(5, "EUR"), "0.05 EUR");
  EXPECT_EQ(money_text(-120, "EUR"), "-1.20 EUR");
  EXPECT_EQ(money_text(std::numeric_limits<std::int64_t>::min(), "X"), "-92233720368547758.08 X");
}

}  // namespace
}  // namespace townhall::notify
