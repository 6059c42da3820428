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
  // A citizen revenue knows (its citizen_refs), as auth's events would have written it.
  void add_citizen(std::int64_t id) {
    writer.call([&] {
      auto sync = database.open(db::Role::sync);
      SQLite::Statement insert(sync->sql(),
                               "INSERT INTO citizen_refs (citizen_id, name, event_version, last_synced_at) "
                               "VALUES (?, 'Citizen', 1, 'x')");
      insert.bind(1, id);
      insert.exec();
    });
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

// Issue 26 §1. A tax record with a due date is billed in instalments: amounts summing to
// the tax due exactly (the remainder's cents on the first), monthly due dates that keep
// to each month's end, each invoice linked to the record and announced.
TEST_F(RevenueServiceTest, ATaxRecordWithADueDateIsBilledInInstalmentsSummingToItsTaxDue) {
  add_citizen(1);
  auto record = run_awaitable(
      service->record_tax(as(clerk()), NewTaxRecord{1, 2026, 1000000, 100001, BillTerms{"2031-01-31", 4}}));
  ASSERT_TRUE(record) << record.error().message;
  ASSERT_EQ(record->invoices.size(), 4u);
  std::vector<std::int64_t> amounts;
  std::vector<std::string> due_dates, sources;
  for (const auto& invoice : record->invoices) {
    amounts.push_back(invoice.amount_cents);
    due_dates.push_back(*invoice.due_date);
    sources.push_back(invoice.source_id);
    EXPECT_EQ(invoice.tax_record_id, record->id);
    EXPECT_EQ(invoice.citizen_id, 1);
  }
  EXPECT_EQ(amounts, (std::vector<std::int64_t>{25001, 25000, 25000, 25000}));
  EXPECT_EQ(due_dates, (std::vector<std::string>{"2031-01-31", "2031-02-28", "2031-03-31", "2031-04-30"}));
  const auto id = std::to_string(record->id);
  EXPECT_EQ(sources, (std::vector<std::string>{id + ".1", id + ".2", id + ".3", id + ".4"}));
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'invoice.created'"), 4);
  EXPECT_EQ(count("SELECT sum(amount_cents) FROM invoices WHERE tax_record_id = " + id), 100001);
  auto read = run_awaitable(service->get_tax_record(as(citizen(1)), record->id, false));
  ASSERT_TRUE(read);
  EXPECT_EQ(read->record.invoices.size(), 4u);
  // Without a due date nothing is billed; a record with nothing due opens no invoice.
  auto unbilled = run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2027, 1, 500, std::nullopt}));
  ASSERT_TRUE(unbilled);
  EXPECT_TRUE(unbilled->invoices.empty());
  auto nothing =
      run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2028, 1, 0, BillTerms{"2031-01-01", 2}}));
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->invoices.empty());
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 4);
}

TEST_F(RevenueServiceTest, BadBillTermsAreRefusedAndRecordNothing) {
  add_citizen(1);
  auto refused = [&](BillTerms terms, std::int64_t tax_due = 1000) {
    auto record = run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2026, 1, tax_due, std::move(terms)}));
    EXPECT_FALSE(record);
    return record ? Errc::internal : record.error().code;
  };
  EXPECT_EQ(refused({"2031-01-01", 0}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2031-01-01", -2}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2031-01-01", 13}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2020-06-01", 1}), Errc::invalid_argument);  // past
  EXPECT_EQ(refused({"2031-02-29", 1}), Errc::invalid_argument);  // no such day
  EXPECT_EQ(refused({"2031-1-01", 1}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2031-01-01T00:00:00Z", 1}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2045-01-01", 1}), Errc::invalid_argument);    // beyond ten years
  EXPECT_EQ(refused({"2031-01-01", 12}, 11), Errc::unprocessable);  // 11 cents in 12 instalments
  EXPECT_EQ(count("SELECT count(*) FROM tax_records"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM outbox"), 0);
  auto today =
      run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2026, 1, 11, BillTerms{utc_today(), 11}}));
  ASSERT_TRUE(today) << today.error().message;  // due today is not past; one cent each
  EXPECT_EQ(today->invoices.size(), 11u);
}

// The yearly run: each named record billed once, whatever runs again; unknown ids and
// records with nothing due reported, not billed.
TEST_F(RevenueServiceTest, TheYearlyRunBillsEachRecordOnce) {
  for (std::int64_t c : {1, 2, 3}) add_citizen(c);
  std::vector<std::int64_t> records;
  for (auto [c, due] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 900}, {2, 1200}, {3, 0}}) {
    auto record = run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{c, 2026, 1, due, std::nullopt}));
    ASSERT_TRUE(record);
    records.push_back(record->id);
  }
  TaxBillRun run{2026, {}, {1, 2, 3, 77, 2}, BillTerms{"2031-03-15", 3}};
  auto first = run_awaitable(service->bill_taxes(as(clerk()), run));
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->billed.size(), 2u);
  EXPECT_EQ(first->billed[0].id, records[0]);
  EXPECT_EQ(first->billed[1].invoices.size(), 3u);
  EXPECT_EQ(first->nothing_due, (std::vector<std::int64_t>{records[2]}));
  EXPECT_EQ(first->not_found, (std::vector<std::int64_t>{77}));
  auto again = run_awaitable(service->bill_taxes(as(clerk()), run));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->billed.empty());
  EXPECT_EQ(again->already_billed, (std::vector<std::int64_t>{records[0], records[1]}));
  TaxBillRun by_record{2026, {records[1], records[0]}, {}, BillTerms{"2031-03-15", 1}};
  EXPECT_EQ(run_awaitable(service->bill_taxes(as(clerk()), by_record))->already_billed.size(), 2u);
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 6);
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'invoice.created'"), 6);

  TaxBillRun neither{2026, {}, {}, BillTerms{"2031-03-15", 1}};
  EXPECT_EQ(run_awaitable(service->bill_taxes(as(clerk()), neither)).error().code, Errc::invalid_argument);
  TaxBillRun too_many{2026, {}, std::vector<std::int64_t>(kMaxTaxBillRun + 1, 1), BillTerms{"2031-03-15", 1}};
  EXPECT_EQ(run_awaitable(service->bill_taxes(as(clerk()), too_many)).error().code, Errc::invalid_argument);
  EXPECT_EQ(run_awaitable(service->bill_taxes(as(citizen(1)), run)).error().code, Errc::forbidden);
}

// The overdue job: an open invoice past its due date is marked once (invoice.overdue),
// shows as overdue, and is paid by the ordinary payment path; one being charged right
// then is left to its payment.
TEST_F(RevenueServiceTest, AnOverdueInvoiceIsMarkedOnceAndStaysPayable) {
  add_citizen(1);
  auto record =
      run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2026, 1, 10000, BillTerms{utc_today(), 2}}));
  ASSERT_TRUE(record) << record.error().message;
  auto mark = [&](const std::string& today) {
    std::int64_t marked = 0;
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      marked = mark_overdue_invoices(*connection, today, "test");
      transaction.commit();
    });
    return marked;
  };
  EXPECT_EQ(run_awaitable(service->mark_overdue(CallContext::as_service("revenue", "test"))).value(), 0);  // due today
  EXPECT_EQ(mark("2031-12-31"), 2);
  EXPECT_EQ(mark("2031-12-31"), 0);  // once
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'invoice.overdue'"), 2);
  EXPECT_EQ(text("SELECT json_extract(data, '$.snapshot.status') FROM outbox WHERE event_type = 'invoice.overdue'"),
            "overdue");
  auto first = service->get_invoice(as(citizen(1)), record->invoices[0].id);
  ASSERT_TRUE(first);
  EXPECT_EQ(shown_status(*first), "overdue");
  EXPECT_EQ(invoice_json(*first)["balance_cents"], 5000);
  store::InvoiceFilter overdue{"overdue", std::nullopt};
  EXPECT_EQ(service->list_invoices(as(citizen(1)), overdue, {})->items.size(), 2u);
  auto paid = run_awaitable(
      service->pay(as(citizen(1)), PaymentRequest{first->id, 5000, std::nullopt, "card", "tok"}, "tax-1"));
  ASSERT_TRUE(paid) << paid.error().message;
  EXPECT_EQ(paid->payment.status, "completed");
  EXPECT_EQ(shown_status(*service->get_invoice(as(citizen(1)), first->id)), "paid");
  EXPECT_EQ(service->list_invoices(as(citizen(1)), overdue, {})->items.size(), 1u);
  EXPECT_EQ(run_awaitable(service->mark_overdue(as(citizen(1)))).error().code, Errc::forbidden);
}

// Receipts: the payer's and revenue staff's; another citizen's payment does not exist
// for them; a payment that never completed has none.
TEST_F(RevenueServiceTest, AReceiptIsForACompletedPaymentOfItsPayerOrStaff) {
  auto invoice = open_invoice();
  auto paid = pay(invoice, "k");
  ASSERT_TRUE(paid);
  auto receipt = service->receipt(as(citizen(1)), paid->payment.id);
  ASSERT_TRUE(receipt) << receipt.error().message;
  EXPECT_EQ(receipt->invoice.id, invoice);
  EXPECT_EQ(receipt_json(*receipt)["receipt_number"], "R-" + std::to_string(paid->payment.id));
  EXPECT_TRUE(service->receipt(as(clerk()), paid->payment.id));
  EXPECT_EQ(service->receipt(as(citizen(2)), paid->payment.id).error().code, Errc::not_found);
  EXPECT_EQ(service->receipt(as(citizen(2)), 999).error().code, Errc::not_found);
  EXPECT_EQ(service->receipt(as(testing::employee_principal(5, {"permits:review"})), paid->payment.id).error().code,
            Errc::forbidden);
  auto second = open_invoice(8);
  provider.failure = Errc::unavailable;
  auto pending = pay(second, "k2");
  ASSERT_TRUE(pending);
  EXPECT_EQ(service->receipt(as(citizen(1)), pending->payment.id).error().code, Errc::conflict);
  provider.failure.reset();
}

// The report's arithmetic: payments by the month they completed, refunds by theirs, per
// source and currency; the outstanding balance counts open and overdue invoices.
TEST_F(RevenueServiceTest, TheRevenueReportNetsRefundsByMonthAndSource) {
  writer.call([&] {
    auto owner = database.open(db::Role::owner);
    owner->sql().exec(R"(
      INSERT INTO invoices (id, citizen_id, source_module, source_type, source_id, description, amount_cents, currency,
                            status, created_at, updated_at, overdue_at, due_date) VALUES
        (1, 1, 'permits', 'application', '1', 'fee', 5000, 'USD', 'paid', 'x', 'x', NULL, NULL),
        (2, 1, 'parks', 'booking', '2', 'court', 2500, 'USD', 'refunded', 'x', 'x', NULL, NULL),
        (3, 1, 'revenue', 'tax_record', '1.1', 'tax', 700, 'EUR', 'paid', 'x', 'x', NULL, '2026-01-01'),
        (4, 1, 'revenue', 'tax_record', '1.2', 'tax', 300, 'USD', 'open', 'x', 'x', 'x', '2026-02-01'),
        (5, 1, 'revenue', 'business_license', '1.1', 'fee', 10000, 'USD', 'open', 'x', 'x', NULL, NULL);
      INSERT INTO payments (invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency,
                            method_type, status, created_at, updated_at, completed_at, refunded_at, processor_key,
                            refund_key) VALUES
        (1, 1, 'a', 'd', 5000, 'USD', 'card', 'completed', 'x', 'x', '2026-03-31T23:59:59.999Z', NULL,
         'key-aaaaaaaaaaaaaaaa', NULL),
        (2, 1, 'b', 'd', 2500, 'USD', 'card', 'refunded', 'x', 'x', '2026-03-10T10:00:00.000Z',
         '2026-04-02T10:00:00.000Z', 'key-bbbbbbbbbbbbbbbb', 'refund-bbbbbbbbbbbbb'),
        (3, 1, 'c', 'd', 700, 'EUR', 'card', 'completed', 'x', 'x', '2026-04-01T00:00:00.000Z', NULL,
         'key-cccccccccccccccc', NULL),
        (4, 1, 'e', 'd', 300, 'USD', 'card', 'failed', 'x', 'x', NULL, NULL, 'key-eeeeeeeeeeeeeeee', NULL);
    )");
  });
  auto report = service->revenue_report(as(clerk()), "2026-03-01T00:00:00.000Z", "2026-05-01T00:00:00.000Z");
  ASSERT_TRUE(report) << report.error().message;
  std::vector<std::string> rows;
  for (const auto& r : report->months)
    rows.push_back(r.month + " " + r.source + " " + r.currency + " " + std::to_string(r.payments) + "/" +
                   std::to_string(r.paid_cents) + " -" + std::to_string(r.refunds) + "/" +
                   std::to_string(r.refunded_cents));
  EXPECT_EQ(rows, (std::vector<std::string>{"2026-03 booking USD 1/2500 -0/0", "2026-03 permit_fee USD 1/5000 -0/0",
                                            "2026-04 booking USD 0/0 -1/2500", "2026-04 property_tax EUR 1/700 -0/0"}));
  ASSERT_EQ(report->outstanding.size(), 1u);
  EXPECT_EQ(report->outstanding[0].currency, "USD");
  EXPECT_EQ(report->outstanding[0].invoices, 2);
  EXPECT_EQ(report->outstanding[0].amount_cents, 10300);
  EXPECT_EQ(report->outstanding[0].overdue_invoices, 1);
  EXPECT_EQ(report->outstanding[0].overdue_cents, 300);
  // April alone: the refund and the euro payment.
  auto april = service->revenue_report(as(clerk()), "2026-04-01T00:00:00.000Z", "2026-05-01T00:00:00.000Z");
  EXPECT_EQ(april->months.size(), 2u);
  EXPECT_EQ(service->revenue_report(as(citizen(1)), "a", "b").error().code, Errc::forbidden);
  EXPECT_EQ(service->revenue_report(as(testing::employee_principal(5, {"permits:review"})), "a", "b").error().code,
            Errc::forbidden);
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
