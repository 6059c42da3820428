// The revenue service without sockets: invoices exactly once per source event (also when
// an event is applied again, as a dead-letter replay would), events it can never invoice,
// a retry that finds its payment being charged, a provider that cannot be reached, and
// the national id when auth cannot answer. Auth and the card processor are reached only
// through their contracts (auth::Api, PaymentProvider), played here by scripted ones; the
// real ones are exercised by tests/integration/revenue_http_test.cpp.
#include "service.hpp"

#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "coro.hpp"
#include "fake_auth.hpp"
#include "module_harness.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"
#include "townhall/revenue/module.hpp"

namespace townhall::revenue {
namespace {

using json = nlohmann::json;
using testing::run_awaitable;

// A card processor that approves, or fails every call while `failure` is set; a charge
// can be held until released. It records the keys it is called with.
class ScriptedProvider final : public PaymentProvider {
 public:
  std::atomic<int> charges{0}, settles{0};
  std::atomic<bool> charging{false};
  std::optional<Errc> failure;
  std::atomic<int> failing_refunds{0};  // the next this many refunds fail (unavailable)
  std::shared_ptr<Latch> hold;
  struct RefundCall {
    std::string charge_key, refund_key;
  };

  boost::asio::awaitable<Result<ProviderAnswer>> charge(Charge charge, std::chrono::steady_clock::time_point) override {
    charging = true;
    if (hold) co_await hold->wait();
    if (failure) co_return make_error(*failure, "scripted failure");
    ++charges;
    std::lock_guard lock(mutex_);
    charged_.insert(charge.key);
    co_return ProviderAnswer{ProviderAnswer::Status::approved, "ref", ""};
  }
  boost::asio::awaitable<Result<ProviderAnswer>> settle(std::string charge_key) override {
    ++settles;
    if (failure) co_return make_error(*failure, "scripted failure");
    std::lock_guard lock(mutex_);
    if (charged_.contains(charge_key)) co_return ProviderAnswer{ProviderAnswer::Status::approved, "ref", ""};
    co_return ProviderAnswer{ProviderAnswer::Status::declined, "", "closed"};
  }
  boost::asio::awaitable<Result<ProviderAnswer>> refund(std::string charge_key, std::string refund_key) override {
    {
      std::lock_guard lock(mutex_);
      refund_calls_.push_back({charge_key, refund_key});
    }
    if (failing_refunds > 0) {
      --failing_refunds;
      co_return make_error(Errc::unavailable, "scripted failure");
    }
    if (failure) co_return make_error(*failure, "scripted failure");
    co_return ProviderAnswer{ProviderAnswer::Status::approved, "ref", ""};
  }
  std::vector<std::string> charged() {
    std::lock_guard lock(mutex_);
    return {charged_.begin(), charged_.end()};
  }
  std::vector<RefundCall> refund_calls() {
    std::lock_guard lock(mutex_);
    return refund_calls_;
  }

 private:
  std::mutex mutex_;
  std::set<std::string> charged_;
  std::vector<RefundCall> refund_calls_;
};

std::shared_ptr<const Principal> citizen(std::int64_t id) {
  return testing::citizen_principal(id, {"revenue:pay", "revenue:apply"});
}
std::shared_ptr<const Principal> clerk() {
  return testing::employee_principal(900, {"revenue:*", "citizens:sensitive"});
}

CallContext as(std::shared_ptr<const Principal> principal) {
  auto context = testing::as(std::move(principal));
  context.correlation_id = "test";
  return context;
}

bus::Event submitted(std::int64_t application, std::int64_t citizen_id, std::int64_t fee, std::string currency) {
  bus::Event event;
  event.event_id = "permits:" + std::to_string(application);
  event.event_type = permits::events::kApplicationSubmitted;
  event.topic = permits::events::kApplicationTopic;
  event.event_version = 1;
  // As permits writes it: its contract's encoder.
  event.data = permits::events::application_data({application, citizen_id, "renovation", "BLD", "1 Main St",
                                                  fee > 0 ? "fee_due" : "under_review", fee, std::move(currency),
                                                  std::nullopt, "2026-12-05T10:00:00Z", "2026-12-05T10:00:00Z"});
  return event;
}

bus::Event booking(const std::string& type, std::int64_t id, std::int64_t citizen_id, std::int64_t amount) {
  bus::Event event;
  event.event_id = "parks:" + type + ":" + std::to_string(id);
  event.event_type = type;
  event.topic = "gov.parks.booking";
  event.event_version = 1;
  event.data = parks::events::event_data(
      parks::events::booking_snapshot({id, 1, citizen_id, "2026-12-24T10:00:00Z", "2026-12-24T11:00:00Z",
                                       "pending_payment", amount, "USD", true, std::nullopt}));
  return event;
}

class RevenueServiceTest : public ::testing::Test, protected testing::ModuleHarness {
 protected:
  RevenueServiceTest() : ModuleHarness("revenue", table_manifest()) {}
  void SetUp() override {
    testing::migrate_module(database, "revenue");
    auth.national_id = "NID-1";
    Settings settings;
    settings.provider_timeout = std::chrono::milliseconds(2000);
    service = std::make_unique<RevenueService>(settings, dependencies(), auth, provider);
    service->start();
  }
  void TearDown() override {
    service->stop();
    writer.stop();
  }

  // permits' application events as the bus runs revenue's handler (ModuleHarness::handle).
  bus::Outcome apply(const bus::Event& event) {
    return handle(std::bind_front(&RevenueService::apply_application_event, service.get()), event);
  }
  // A parks event (townhall/parks/events.hpp) as the bus runs its handler.
  bus::Outcome apply_parks(std::string_view topic, std::string_view type, const json& snapshot) {
    bus::Event event;
    event.event_id = "parks:" + std::to_string(++parks_events_);
    event.topic = std::string(topic);
    event.event_type = std::string(type);
    event.event_version = 1;
    event.data = {{"snapshot", snapshot}};
    return apply_parks(event);
  }
  bus::Outcome apply_parks(const bus::Event& event) {
    return handle(std::bind_front(&RevenueService::apply_parks_event, service.get()), event);
  }
  std::string text(const std::string& sql) {
    auto reader = database.open(db::Role::reader);
    return reader->sql().execAndGet(sql).getString();
  }
  std::int64_t open_invoice(std::int64_t application = 7) {
    EXPECT_EQ(apply(submitted(application, 1, 5000, "USD")), bus::Outcome::applied);
    auto list = service->list_invoices(as(citizen(1)), {}, {});
    return list->items.front().id;
  }
  Result<RevenueService::PaymentOutcome> pay(std::int64_t invoice, const std::string& key) {
    return run_awaitable(service->pay(as(citizen(1)), PaymentRequest{invoice, 5000, std::nullopt, "card", "tok"}, key));
  }

  ScriptedProvider provider;
  std::unique_ptr<RevenueService> service;
  int parks_events_ = 0;
};

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
  auto record = run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2025, 100, 10}));
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

// Migration 0002 on a file the old code wrote: a license made active by its approval
// whose fee is still open waits for it (approved_unpaid, due in 30 days, its renewal
// bought meanwhile voided); a paid one stays active and gets an expiry if it had none.
TEST(RevenueMigration, LicensesActiveWithTheirFeeUnpaidWaitForIt) {
  testing::TempDir dir;
  db::ModuleDb database{"revenue", dir.path() / "revenue.db", table_manifest()};
  testing::migrate_module(database, "revenue", 2);
  auto owner = database.open(db::Role::owner);
  owner->sql().exec(
      "INSERT INTO invoices (id, citizen_id, source_module, source_type, source_id, description, amount_cents, "
      "currency, status, created_at, updated_at, paid_at) VALUES "
      "(1, 1, 'revenue', 'business_license', '1.1', 'fee', 100, 'USD', 'open', 'x', 'x', NULL), "
      "(2, 1, 'revenue', 'business_license', '1.2', 'renewal', 100, 'USD', 'open', 'x', 'x', NULL), "
      "(3, 1, 'revenue', 'business_license', '2.1', 'fee', 100, 'USD', 'paid', 'x', 'x', "
      "'2026-01-01T00:00:00.000Z'), "
      "(4, 1, 'revenue', 'business_license', '3.1', 'fee', 100, 'USD', 'paid', 'x', 'x', "
      "'2026-01-01T00:00:00.000Z');"
      "INSERT INTO business_licenses (id, citizen_id, business_name, activity, address, status, term, expires_at, "
      "renewal_invoice_id, created_at, updated_at) VALUES "
      "(1, 1, 'Unpaid', 'a', 'b', 'active', 1, '2027-01-01T00:00:00.000Z', 2, 'x', 'x'), "
      "(2, 1, 'Paid', 'a', 'b', 'active', 1, '2027-01-01T00:00:00.000Z', NULL, 'x', 'x'), "
      "(3, 1, 'Demo', 'a', 'b', 'active', 1, NULL, NULL, 'x', 'x'), "
      "(4, 1, 'Waiting', 'a', 'b', 'applied', 0, NULL, NULL, 'x', 'x')");
  testing::migrate_module(database, "revenue");
  auto text = [&](const std::string& sql) { return owner->sql().execAndGet(sql).getString(); };
  EXPECT_EQ(text("SELECT status || ' ' || term FROM business_licenses WHERE id = 1"), "approved_unpaid 0");
  EXPECT_EQ(text("SELECT coalesce(expires_at, 'none') || ' ' || fee_invoice_id || ' ' || "
                 "coalesce(renewal_invoice_id, 'none') FROM business_licenses WHERE id = 1"),
            "none 1 none");
  EXPECT_GT(text("SELECT fee_due_at FROM business_licenses WHERE id = 1"), utc::now());
  EXPECT_EQ(text("SELECT status FROM invoices WHERE id = 2"), "voided");
  EXPECT_EQ(text("SELECT status || ' ' || expires_at || ' ' || fee_invoice_id FROM business_licenses WHERE id = 2"),
            "active 2027-01-01T00:00:00.000Z 3");
  EXPECT_EQ(text("SELECT status || ' ' || expires_at FROM business_licenses WHERE id = 3"),
            "active 2027-01-01T00:00:00.000Z");
  EXPECT_EQ(text("SELECT status || ' ' || coalesce(fee_invoice_id, 'none') FROM business_licenses WHERE id = 4"),
            "applied none");
  // The file itself now refuses an active license without an expiry.
  EXPECT_THROW(owner->sql().exec("UPDATE business_licenses SET expires_at = NULL WHERE id = 2"), std::exception);
}

// An installation upgraded while a payment was pending: revenue migration 0003 and the
// simulator's ledger both name the old charge 'payment-<id>', so it is still settled with
// that charge (issue 27 §1), and the ledger keeps it once.
TEST(RevenueMigration, APaymentPendingAcrossTheUpgradeIsSettledWithItsOldCharge) {
  testing::ModuleHarness h("revenue", table_manifest(), 1);
  auto& database = h.database;
  {
    testing::migrate_module(database, "revenue", 3);
    auto owner = database.open(db::Role::owner);
    owner->sql().exec(
        "INSERT INTO invoices (id, citizen_id, source_module, source_type, source_id, description, amount_cents, "
        "currency, status, created_at, updated_at) VALUES (1, 1, 'permits', 'application', '7', 'fee', 5000, 'USD', "
        "'open', 'x', 'x');"
        "INSERT INTO payments (id, invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency, "
        "method_type, status, created_at, updated_at) VALUES (1, 1, 1, 'k', 'd', 5000, 'USD', 'card', 'pending', "
        "'x', 'x')");
  }
  const auto ledger_file = h.dir.path() / "payment-simulator.db";
  {
    SQLite::Database ledger(ledger_file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ledger.exec(
        "CREATE TABLE charges (payment_id INTEGER PRIMARY KEY, outcome TEXT NOT NULL, amount_cents INTEGER NOT NULL, "
        "currency TEXT NOT NULL, reason TEXT NOT NULL, refunded INTEGER NOT NULL DEFAULT 0, at TEXT NOT NULL "
        "DEFAULT 'x');"
        "INSERT INTO charges (payment_id, outcome, amount_cents, currency, reason) "
        "VALUES (1, 'approved', 5000, 'USD', '')");
  }
  testing::migrate_module(database, "revenue");
  auto provider = make_simulated_provider(ledger_file);
  auto service = std::make_unique<RevenueService>(Settings{}, h.dependencies(), h.auth, *provider);
  service->start();  // settles what the last run left pending
  EXPECT_EQ(h.count("SELECT status = 'completed' AND processor_key = 'payment-1' FROM payments"), 1);
  EXPECT_EQ(h.count("SELECT status = 'paid' FROM invoices"), 1);
  service->stop();
  h.writer.stop();
  provider.reset();
  SQLite::Database ledger(ledger_file.string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) || ' ' || charge_key FROM charges").getString(), "1 payment-1");
}

}  // namespace
}  // namespace townhall::revenue
