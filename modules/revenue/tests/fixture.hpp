// What the revenue service tests share: a scripted card processor, the service on a temp
// revenue.db with FakeAuth, and the events other modules send. Not in an anonymous
// namespace: the suite's tests live in several files (service_test.cpp, tax_bills_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "coro.hpp"
#include "fake_auth.hpp"
#include "module_harness.hpp"
#include "server_fixture.hpp"
#include "service.hpp"
#include "support.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"
#include "townhall/revenue/module.hpp"

namespace townhall::revenue {

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

inline std::shared_ptr<const Principal> citizen(std::int64_t id) {
  return testing::citizen_principal(id, {"revenue:pay", "revenue:apply"});
}
inline std::shared_ptr<const Principal> clerk() {
  return testing::employee_principal(900, {"revenue:*", "citizens:sensitive"});
}

inline CallContext as(std::shared_ptr<const Principal> principal) {
  auto context = testing::as(std::move(principal));
  context.correlation_id = "test";
  return context;
}

inline bus::Event submitted(std::int64_t application, std::int64_t citizen_id, std::int64_t fee, std::string currency) {
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

inline bus::Event booking(const std::string& type, std::int64_t id, std::int64_t citizen_id, std::int64_t amount) {
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

}  // namespace townhall::revenue
