// The revenue service without sockets: invoices exactly once per source event (also when
// an event is applied again, as a dead-letter replay would), events it can never invoice,
// a retry that finds its payment being charged, a provider that cannot be reached, and
// the national id when auth cannot answer. Auth and the card processor are reached only
// through their contracts (auth::Api, PaymentProvider), played here by scripted ones; the
// real ones are exercised by tests/integration/revenue_http_test.cpp.
#include "service.hpp"

#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "coro.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"
#include "townhall/revenue/module.hpp"

namespace townhall::revenue {
namespace {

using json = nlohmann::json;
using testing::run_awaitable;

class ScriptedAuth final : public auth::Api {
 public:
  std::optional<Errc> failure;
  std::vector<std::int64_t> sensitive_reads;

  boost::asio::awaitable<Result<std::shared_ptr<const Principal>>> authenticate(CallContext, std::string) override {
    co_return make_error(Errc::unauthorized, "no sessions here");
  }
  boost::asio::awaitable<Result<auth::Citizen>> get_citizen(CallContext, std::int64_t) override {
    co_return make_error(Errc::not_found, "no such citizen");
  }
  boost::asio::awaitable<Result<std::optional<std::string>>> get_sensitive(CallContext, std::int64_t id,
                                                                           std::string) override {
    if (failure) co_return make_error(*failure, "scripted failure");
    sensitive_reads.push_back(id);
    co_return std::optional<std::string>("NID-1");
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

// A card processor that approves, or fails every call while `failure` is set; a charge
// can be held until released.
class ScriptedProvider final : public PaymentProvider {
 public:
  std::atomic<int> charges{0}, settles{0};
  std::atomic<bool> charging{false};
  std::optional<Errc> failure;
  std::shared_ptr<Latch> hold;

  boost::asio::awaitable<Result<ProviderAnswer>> charge(Charge charge, std::chrono::steady_clock::time_point) override {
    charging = true;
    if (hold) co_await hold->wait();
    if (failure) co_return make_error(*failure, "scripted failure");
    ++charges;
    std::lock_guard lock(mutex_);
    charged_.insert(charge.payment_id);
    co_return ProviderAnswer{ProviderAnswer::Status::approved, "ref", ""};
  }
  boost::asio::awaitable<Result<ProviderAnswer>> settle(std::int64_t payment_id) override {
    ++settles;
    if (failure) co_return make_error(*failure, "scripted failure");
    std::lock_guard lock(mutex_);
    if (charged_.contains(payment_id)) co_return ProviderAnswer{ProviderAnswer::Status::approved, "ref", ""};
    co_return ProviderAnswer{ProviderAnswer::Status::declined, "", "closed"};
  }
  boost::asio::awaitable<Result<ProviderAnswer>> refund(std::int64_t) override {
    co_return ProviderAnswer{ProviderAnswer::Status::approved, "ref", ""};
  }

 private:
  std::mutex mutex_;
  std::set<std::int64_t> charged_;
};

std::shared_ptr<const Principal> citizen(std::int64_t id) {
  auto p = std::make_shared<Principal>();
  p->id = id;
  p->kind = Principal::Kind::citizen;
  p->permissions = {"revenue:pay", "revenue:apply"};
  return p;
}

std::shared_ptr<const Principal> clerk() {
  auto p = std::make_shared<Principal>();
  p->id = 900;
  p->kind = Principal::Kind::employee;
  p->permissions = {"revenue:*", "citizens:sensitive"};
  return p;
}

CallContext as(std::shared_ptr<const Principal> principal) {
  CallContext context;
  context.principal = std::move(principal);
  context.correlation_id = "test";
  return context;
}

bus::Event submitted(std::int64_t application, std::int64_t citizen_id, std::int64_t fee, std::string currency) {
  bus::Event event;
  event.event_id = "permits:" + std::to_string(application);
  event.event_type = "application.submitted";
  event.topic = "gov.permits.application";
  event.event_version = 1;
  event.data = {{"snapshot",
                 {{"id", application},
                  {"citizen_id", citizen_id},
                  {"permit_type", "renovation"},
                  {"fee_cents", fee},
                  {"currency", currency}}}};
  return event;
}

class RevenueServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::migrate_module(database, "revenue");
    Settings settings;
    settings.provider_timeout = std::chrono::milliseconds(2000);
    service = std::make_unique<RevenueService>(
        settings, RevenueService::Dependencies{database, writer, readers, [] {}, auth, provider});
    service->start();
  }
  void TearDown() override {
    service->stop();
    writer.stop();
  }

  // A handler as the bus runs it: on a service connection, in a transaction.
  // On the module's writer, as the bus runs handlers: the service's own background jobs
  // write there too, so a connection of the test's would meet a locked file.
  bus::Outcome apply(const bus::Event& event) {
    bus::Outcome outcome{};
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      outcome = service->apply_application_event(event, *connection);
      transaction.commit();
    });
    return outcome;
  }
  // A parks event (townhall/parks/events.hpp) as the bus runs its handler.
  bus::Outcome apply_parks(std::string_view topic, std::string_view type, const json& snapshot) {
    bus::Event event;
    event.event_id = "parks:" + std::to_string(++parks_events_);
    event.topic = std::string(topic);
    event.event_type = std::string(type);
    event.event_version = 1;
    event.data = {{"snapshot", snapshot}};
    bus::Outcome outcome{};
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      outcome = service->apply_parks_event(event, *connection);
      transaction.commit();
    });
    return outcome;
  }
  int count(const std::string& sql) {
    auto reader = database.open(db::Role::reader);
    return reader->sql().execAndGet(sql).getInt();
  }
  std::int64_t open_invoice(std::int64_t application = 7) {
    EXPECT_EQ(apply(submitted(application, 1, 5000, "USD")), bus::Outcome::applied);
    auto list = service->list_invoices(as(citizen(1)), {}, {});
    return list->items.front().id;
  }
  Result<RevenueService::PaymentOutcome> pay(std::int64_t invoice, const std::string& key) {
    return run_awaitable(service->pay(as(citizen(1)), PaymentRequest{invoice, 5000, std::nullopt, "card", "tok"}, key));
  }

  testing::TempDir dir;
  db::ModuleDb database{"revenue", dir.path() / "revenue.db", table_manifest()};
  db::Writer writer{"revenue"};
  db::ReaderPool readers{database, 2};
  ScriptedAuth auth;
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
                        pe::booking_snapshot({3, 1, 1, "", "", "pending_payment", 2500, "USD", true})),
            bus::Outcome::applied);
  EXPECT_EQ(count("SELECT count(*) FROM invoices WHERE source_type = 'booking' AND source_id = '3'"), 1);
  EXPECT_EQ(apply_parks(pe::kEnrollmentTopic, pe::kEnrollmentRequested, enrollment(4, kMaxInvoiceCents + 1)),
            bus::Outcome::applied);
  auto reader = database.open(db::Role::reader);
  auto rejected = reader->sql().execAndGet("SELECT data FROM outbox WHERE event_type = 'invoice.rejected'").getString();
  auto rejection = events::invoice_rejection_from_snapshot(json::parse(rejected)["snapshot"]);
  EXPECT_EQ(rejection.source_type, "enrollment");
  EXPECT_EQ(rejection.source_id, "4");
}

}  // namespace
}  // namespace townhall::revenue
