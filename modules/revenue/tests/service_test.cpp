// The revenue service without sockets: invoices exactly once per source event (also when
// an event is applied again, as a dead-letter replay would), events it can never invoice,
// a retry that finds its payment being charged, a provider that cannot be reached, and
// the national id when auth cannot answer. Auth and the card processor are reached only
// through their contracts (auth::Api, PaymentProvider), played here by scripted ones; the
// real ones are exercised by tests/integration/revenue_http_test.cpp.
#include "fixture.hpp"

namespace townhall::revenue {
namespace {

using json = nlohmann::json;
using testing::run_awaitable;

TEST_F(RevenueServiceTest, AnEventAppliedAgainOpensNoSecondInvoice) {
  EXPECT_EQ(apply(submitted(7, 1, 5000, "USD")), bus::Outcome::applied);
  // A replayed dead letter bypasses the bus's processed ranges: the file itself refuses.
  EXPECT_EQ(apply(submitted(7, 1, 5000, "USD")), bus::Outcome::stale);
  EXPECT_EQ(apply(submitted(8, 1, 0, "USD")), bus::Outcome::applied);  // no fee, no invoice
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'invoice.created'"), 1);
}

TEST_F(RevenueServiceTest, AnEventNoInvoiceCanHoldIsADeadLetterAtOnce) {
  EXPECT_THROW(apply(submitted(9, 1, 5000, "ZZZ")), bus::PermanentError);
  EXPECT_THROW(apply(submitted(9, 1, 9'000'000'000'000'000, "USD")), bus::PermanentError);
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 0);
}

// The retry arrives while the first request's charge is at the provider: it waits for
// that outcome. (Claiming the payment only after its commit would let the retry settle
// it — closing it at the provider — and the customer's payment would fail.)
TEST_F(RevenueServiceTest, ARetryDuringTheChargeWaitsForItsOutcome) {
  auto invoice = open_invoice();
  provider.hold = std::make_shared<Latch>();
  auto first = std::async(std::launch::async, [&] { return pay(invoice, "k"); });
  ASSERT_TRUE(testing::wait_until([&] { return provider.charging.load(); }));
  auto retry = std::async(std::launch::async, [&] { return pay(invoice, "k"); });
  EXPECT_TRUE(testing::wait_until([&] { return service->retries_waited() == 1; }));
  provider.hold->set();
  auto a = first.get(), b = retry.get();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->payment.id, b->payment.id);
  EXPECT_EQ(b->payment.status, "completed");
  EXPECT_TRUE(b->replayed);
  EXPECT_EQ(provider.charges, 1);
  EXPECT_EQ(provider.settles, 0);
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'payment.completed'"), 1);
}

// A provider that cannot be reached leaves the payment pending (no outcome is invented);
// the reconciler settles it once the provider answers again.
TEST_F(RevenueServiceTest, AnUnreachableProviderLeavesThePaymentPendingUntilReconciled) {
  auto invoice = open_invoice();
  provider.failure = Errc::unavailable;
  auto paid = pay(invoice, "k");
  ASSERT_TRUE(paid);
  EXPECT_EQ(paid->payment.status, "pending");
  EXPECT_EQ(run_awaitable(service->reconcile()), 0u);  // still unreachable
  provider.failure.reset();
  EXPECT_EQ(run_awaitable(service->reconcile()), 1u);
  EXPECT_EQ(count("SELECT count(*) FROM payments WHERE status = 'failed'"), 1);  // never charged: closed
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'payment.failed'"), 1);
  // The invoice is open again for a new attempt.
  auto again = pay(invoice, "k2");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->payment.status, "completed");
}

TEST_F(RevenueServiceTest, TheNationalIdHasNoFallbackWhenAuthCannotAnswer) {
  writer.call([&] {  // on the writer, beside the service's own jobs
    database.open(db::Role::sync)
        ->sql()
        .exec("INSERT INTO citizen_refs (citizen_id, name, event_version, last_synced_at) VALUES (1, 'Maria', 1, 'x')");
  });
  auto record = run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2025, 100, 10, std::nullopt}));
  ASSERT_TRUE(record) << record.error().message;
  // Announced (notify tells the citizen), without the national id.
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'tax_record.opened' AND aggregate_id = '" +
                  std::to_string(record->id) + "' AND instr(data, 'NID') = 0 AND instr(data, 'national') = 0"),
            1);
  auto read = run_awaitable(service->get_tax_record(as(clerk()), record->id, true));
  ASSERT_TRUE(read);
  EXPECT_EQ(read->national_id, "NID-1");
  for (auto failure : {Errc::unavailable, Errc::deadline_exceeded}) {
    auth.failure = failure;
    auto refused = run_awaitable(service->get_tax_record(as(clerk()), record->id, true));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unavailable);
  }
  auth.failure = Errc::forbidden;
  EXPECT_EQ(run_awaitable(service->get_tax_record(as(clerk()), record->id, true)).error().code, Errc::forbidden);
  // Without the national id the record reads as usual while auth is down.
  EXPECT_TRUE(run_awaitable(service->get_tax_record(as(clerk()), record->id, false)));
  EXPECT_EQ(auth.sensitive_reads.size(), 1u);
}

// Issue 28 §3: an enrollment in a priced program is invoiced as a booking is — opened on
// enrollment.requested, voided on enrollment.cancelled, refused with invoice.rejected
// naming the enrollment — by the same code reading parks' contract.
TEST_F(RevenueServiceTest, AnEnrollmentIsInvoicedAndVoidedLikeABooking) {
  namespace pe = parks::events;
  auto enrollment = [](std::int64_t id, std::int64_t amount) {
    return pe::enrollment_snapshot({id, 2, 1, "pending_payment", amount, "USD", true});
  };
  EXPECT_EQ(apply_parks(pe::kEnrollmentTopic, pe::kEnrollmentRequested, enrollment(3, 4000)), bus::Outcome::applied);
  EXPECT_EQ(count("SELECT count(*) FROM invoices WHERE source_module = 'parks' AND source_type = 'enrollment' AND "
                  "source_id = '3' AND amount_cents = 4000 AND status = 'open'"),
            1);
  EXPECT_EQ(apply_parks(pe::kEnrollmentTopic, pe::kEnrollmentConfirmed, enrollment(3, 4000)), bus::Outcome::applied);
  EXPECT_EQ(apply_parks(pe::kEnrollmentTopic, pe::kEnrollmentCancelled, enrollment(3, 4000)), bus::Outcome::applied);
  EXPECT_EQ(count("SELECT count(*) FROM invoices WHERE source_type = 'enrollment' AND status = 'voided'"), 1);
  // A booking with the same id is another invoice.
  EXPECT_EQ(apply_parks(pe::kBookingTopic, pe::kBookingRequested,
                        pe::booking_snapshot({3, 1, 1, "", "", "pending_payment", 2500, "USD", true, std::nullopt})),
            bus::Outcome::applied);
  EXPECT_EQ(count("SELECT count(*) FROM invoices WHERE source_type = 'booking' AND source_id = '3'"), 1);
  EXPECT_EQ(apply_parks(pe::kEnrollmentTopic, pe::kEnrollmentRequested, enrollment(4, kMaxInvoiceCents + 1)),
            bus::Outcome::applied);
  auto reader = database.open(db::Role::reader);
  auto rejected = reader->sql().execAndGet("SELECT data FROM outbox WHERE event_type = 'invoice.rejected'").getString();
  bus::Event event;
  event.event_type = std::string(events::kInvoiceRejected);
  event.data = json::parse(rejected);
  auto rejection = events::invoice_rejection_of(event);
  EXPECT_EQ(rejection.source_type, "enrollment");
  EXPECT_EQ(rejection.source_id, "4");
}

// Issue 27 §4: the demo's business license is what README says — approved, its fee
// invoice open and due in license_fee_due_days — and once paid it is active for a term
// and expires (it was inserted active without its expiry, and never expired).
TEST_F(RevenueServiceTest, TheDemoLicenseWaitsForItsOpenFeeAndExpiresATermAfterPayment) {
  auth::Citizen maria;
  maria.id = 1;
  maria.email = "maria@demo.townhall";
  maria.name = "Maria Garcia";
  auth.add(maria);
  service->seed_demo();
  service->seed_demo();  // a second start seeds nothing
  auto licenses = service->list_licenses(as(citizen(1)), {});
  ASSERT_TRUE(licenses);
  ASSERT_EQ(licenses->items.size(), 1u);
  auto license = licenses->items.front();
  EXPECT_EQ(license.status, "approved_unpaid");
  EXPECT_FALSE(license.expires_at);
  ASSERT_TRUE(license.fee_due_at && license.fee_invoice_id);
  auto days_from_now = [](const std::string& at) {
    return std::chrono::duration<double, std::ratio<86400>>(*utc::parse(at) - std::chrono::system_clock::now()).count();
  };
  EXPECT_NEAR(days_from_now(*license.fee_due_at), 30, 0.01);
  auto invoice = service->get_invoice(as(citizen(1)), *license.fee_invoice_id);
  ASSERT_TRUE(invoice);
  EXPECT_EQ(invoice->status, "open");
  EXPECT_EQ(invoice->amount_cents, 10000);
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 1);

  auto paid = run_awaitable(service->pay(
      as(citizen(1)), PaymentRequest{*license.fee_invoice_id, 10000, std::nullopt, "card", "tok"}, "demo-fee"));
  ASSERT_TRUE(paid) << paid.error().message;
  auto active = *service->get_license(as(citizen(1)), license.id);
  EXPECT_EQ(active.status, "active");
  ASSERT_TRUE(active.expires_at);
  EXPECT_NEAR(days_from_now(*active.expires_at), 365, 0.01);
  writer.call([&] {
    database.open(db::Role::service)
        ->sql()
        .exec("UPDATE business_licenses SET expires_at = '2020-01-01T00:00:00.000Z'");
  });
  auto swept = run_awaitable(service->expire_licenses(CallContext::as_service("revenue", "test")));
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->expired, 1);
  EXPECT_EQ(service->get_license(as(citizen(1)), license.id)->status, "expired");
}

// insert_license writes every column it is given (it dropped expires_at).
TEST_F(RevenueServiceTest, AnInsertedLicenseKeepsEveryColumn) {
  store::BusinessLicense license;
  license.citizen_id = 1;
  license.business_name = "Bakery";
  license.activity = "bread";
  license.address = "1 Main St";
  license.status = "active";
  license.term = 2;
  license.expires_at = "2030-01-01T00:00:00.000Z";
  license.fee_invoice_id = 7;
  license.fee_due_at = "2029-01-01T00:00:00.000Z";
  license.renewal_invoice_id = 8;
  license.decided_by = 900;
  license.decision_reason = "fine";
  license.event_version = 3;
  license.created_at = "2029-01-01T00:00:00.000Z";
  license.updated_at = "2029-02-01T00:00:00.000Z";
  std::optional<store::BusinessLicense> stored;
  writer.call([&] {
    auto connection = database.open(db::Role::service);
    store::insert_license(*connection, license);
    stored = store::find_license(*connection, license.id, store::Scope::everything());
  });
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, "active");
  EXPECT_EQ(stored->term, 2);
  EXPECT_EQ(stored->expires_at, license.expires_at);
  EXPECT_EQ(stored->fee_invoice_id, license.fee_invoice_id);
  EXPECT_EQ(stored->fee_due_at, license.fee_due_at);
  EXPECT_EQ(stored->renewal_invoice_id, license.renewal_invoice_id);
  EXPECT_EQ(stored->decided_by, license.decided_by);
  EXPECT_EQ(stored->decision_reason, license.decision_reason);
  EXPECT_EQ(stored->event_version, 3);
  EXPECT_EQ(stored->updated_at, license.updated_at);
}

// Issue 27 §1: the processor hears each payment by a random key stored with it, never
// by its row id (a revenue.db restored from a backup hands row ids out again, and the
// processor's records are not restored); a refund names the charge by that key, with a
// refund key of its own written with refund_pending, so a retried refund repeats it.
TEST_F(RevenueServiceTest, TheProcessorHearsRandomKeysAndARetriedRefundRepeatsItsKey) {
  ASSERT_EQ(apply_parks(booking("booking.requested", 5, 1, 2500)), bus::Outcome::applied);
  auto invoice = service->list_invoices(as(citizen(1)), {}, {})->items.front().id;
  auto paid = run_awaitable(
      service->pay(as(citizen(1)), PaymentRequest{invoice, 2500, std::nullopt, "card", "tok"}, "booking-key"));
  ASSERT_TRUE(paid) << paid.error().message;
  ASSERT_EQ(paid->payment.status, "completed");
  const auto key = paid->payment.processor_key;
  auto is_random_key = [](const std::string& k) {
    return k.size() == 32 && k.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  EXPECT_TRUE(is_random_key(key)) << key;
  EXPECT_EQ(text("SELECT processor_key FROM payments"), key);
  EXPECT_EQ(provider.charged(), std::vector<std::string>{key});

  provider.failing_refunds = 1;
  ASSERT_EQ(apply_parks(booking("booking.cancelled", 5, 1, 2500)), bus::Outcome::applied);  // wakes the reconciler
  ASSERT_TRUE(testing::wait_until([&] { return !provider.refund_calls().empty(); }));
  ASSERT_TRUE(testing::wait_until([&] {
    run_awaitable(service->reconcile());
    return count("SELECT count(*) FROM payments WHERE status = 'refunded'") == 1;
  }));
  const auto refund_key = text("SELECT refund_key FROM payments");
  EXPECT_TRUE(is_random_key(refund_key)) << refund_key;
  EXPECT_NE(refund_key, key);
  auto calls = provider.refund_calls();
  EXPECT_GE(calls.size(), 2u);  // the failed one and its retry
  for (const auto& call : calls) {
    EXPECT_EQ(call.charge_key, key);
    EXPECT_EQ(call.refund_key, refund_key);
  }
  // Two payments never share a key.
  ASSERT_EQ(apply_parks(booking("booking.requested", 6, 1, 2500)), bus::Outcome::applied);
  auto second = service->list_invoices(as(citizen(1)), {}, {})->items.front().id;
  auto again = run_awaitable(
      service->pay(as(citizen(1)), PaymentRequest{second, 2500, std::nullopt, "card", "tok"}, "booking-key-2"));
  ASSERT_TRUE(again);
  EXPECT_NE(again->payment.processor_key, key);
  EXPECT_TRUE(is_random_key(again->payment.processor_key));
}

// Issue 21 §3.6: the fee being charged when its due date passes is left to the charge's
// outcome (lapsing it would void the invoice under a payment the citizen made in time and
// refund it); the payment activates the license, with an expiry a term ahead.
TEST_F(RevenueServiceTest, AFeeBeingChargedWhenItFallsDueActivatesTheLicenseInsteadOfLapsingIt) {
  auto applied = run_awaitable(service->apply_for_license(as(citizen(1)), NewLicense{"Bakery", "bread", "1 Main St"}));
  ASSERT_TRUE(applied) << applied.error().message;
  auto approved = run_awaitable(service->decide_license(as(clerk()), applied->id, Decision::approve, std::nullopt));
  ASSERT_TRUE(approved) << approved.error().message;
  EXPECT_EQ(approved->status, "approved_unpaid");
  ASSERT_TRUE(approved->fee_invoice_id && approved->fee_due_at);
  EXPECT_FALSE(approved->expires_at);
  provider.hold = std::make_shared<Latch>();
  auto paying = std::async(std::launch::async, [&] {
    return run_awaitable(service->pay(
        as(citizen(1)), PaymentRequest{*approved->fee_invoice_id, 10000, std::nullopt, "card", "tok"}, "fee"));
  });
  ASSERT_TRUE(testing::wait_until([&] { return provider.charging.load(); }));
  writer.call([&] {
    database.open(db::Role::service)
        ->sql()
        .exec("UPDATE business_licenses SET fee_due_at = '2020-01-01T00:00:00.000Z'");
  });
  auto job = [&] { return run_awaitable(service->expire_licenses(CallContext::as_service("revenue", "test"))); };
  auto during = job();
  ASSERT_TRUE(during) << during.error().message;
  EXPECT_EQ(during->lapsed, 0);
  provider.hold->set();
  auto paid = paying.get();
  ASSERT_TRUE(paid) << paid.error().message;
  EXPECT_EQ(paid->payment.status, "completed");
  auto license = service->get_license(as(clerk()), applied->id);
  ASSERT_TRUE(license);
  EXPECT_EQ(license->status, "active");
  EXPECT_EQ(license->term, 1);
  EXPECT_TRUE(license->expires_at);
  EXPECT_EQ(job()->lapsed, 0);
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'license.activated'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'license.lapsed'"), 0);
}

}  // namespace
}  // namespace townhall::revenue
