// The permits service without sockets: cache handlers (order, duplicates, deletion),
// the payment saga step, the row-level scope, and approval when auth is down. Auth is
// reached only through its public contract (auth::Api), played here by testing::FakeAuth; the
// real auth module behind it is exercised by tests/integration/permits_http_test.cpp.
#include "service.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "coro.hpp"
#include "fake_auth.hpp"
#include "module_harness.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/auth/events.hpp"
#include "townhall/permits/module.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/row.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::permits {
namespace {

using json = nlohmann::json;
using testing::run_awaitable;

// The snapshot auth writes for a citizen `id` (every field), with `changes` laid over it.
json full_snapshot(std::int64_t id, const json& changes) {
  auth::Citizen citizen;
  citizen.id = id;
  citizen.email = "citizen" + std::to_string(id) + "@example.org";
  citizen.name = "Citizen";
  citizen.created_at = citizen.updated_at = "2026-11-22T00:00:00.000Z";
  auto snapshot = auth::events::citizen_snapshot(citizen);
  snapshot.update(changes);
  return snapshot;
}

bus::Event raw_citizen_event(std::string type, std::int64_t id, std::int64_t version, json snapshot) {
  bus::Event event;
  event.event_id = "auth:" + std::to_string(version);
  event.event_type = std::move(type);
  event.topic = "gov.auth.citizen";
  event.source = "auth";
  event.aggregate_type = "citizen";
  event.aggregate_id = std::to_string(id);
  event.event_version = version;
  event.data = {{"snapshot", std::move(snapshot)}};
  return event;
}

bus::Event citizen_event(std::string type, std::int64_t id, std::int64_t version, json changes) {
  return raw_citizen_event(std::move(type), id, version, full_snapshot(id, changes));
}

std::shared_ptr<const Principal> staff(std::int64_t id, std::vector<std::string> permissions, std::string department) {
  return testing::employee_principal(id, std::move(permissions), std::move(department));
}

class PermitsServiceTest : public ::testing::Test, protected testing::ModuleHarness {
 protected:
  PermitsServiceTest() : ModuleHarness("permits", table_manifest()) {}
  void SetUp() override {
    testing::migrate_module(database, "permits");
    auth.department_list = {{"BLD", "Building", 1}};
    Settings settings;
    settings.permit_types["fence"] = PermitType{0, "USD", false};
    settings.permit_types["deck"] = PermitType{2500, "EUR", false};
    settings.identity_fallback_max_age = std::chrono::seconds(300);
    make_service(settings);
    apply(&PermitsService::apply_department_event, [] {
      bus::Event event;
      event.event_type = "department.created";
      event.event_version = 1;
      event.data = auth::events::versioned(
          {{"snapshot", auth::events::department_snapshot({"BLD", "Building", 1}, "2026-11-22T00:00:00.000Z",
                                                          "2026-11-22T00:00:00.000Z")}});
      return event;
    }());
  }

  void make_service(Settings settings) {
    if (service) service->stop();
    service = std::make_unique<PermitsService>(settings, dependencies(), auth);
    service->start();
  }

  void TearDown() override {
    service->stop();
    writer.stop();
  }

  // A cache handler as the bus runs it (on a sync connection).
  bus::Outcome apply(bus::Outcome (*handler)(const bus::Event&, db::Connection&), const bus::Event& event) {
    return handle(handler, event, db::Role::sync);
  }

  // payment.completed as revenue writes it (its contract's encoder).
  static json payment_data(std::int64_t invoice_id, std::string module, std::string type, std::string id) {
    revenue::events::PaymentSnapshot p;
    p.id = 7;
    p.invoice_id = invoice_id;
    p.citizen_id = 1;
    p.amount_cents = 2500;
    p.currency = "EUR";
    p.method_type = "card";
    p.status = "completed";
    p.source_module = std::move(module);
    p.source_type = std::move(type);
    p.source_id = std::move(id);
    p.created_at = p.completed_at.emplace("2026-12-05T10:00:00Z");
    return revenue::events::event_data(revenue::events::payment_json(p));
  }

  bus::Outcome pay(const json& data) {
    bus::Event event;
    event.event_type = revenue::events::kPaymentCompleted;
    event.event_version = 1;
    event.data = data;
    return handle(std::bind_front(&PermitsService::apply_payment_event, service.get()), event);
  }

  std::optional<store::CitizenRef> ref(std::int64_t id) {
    auto reader = database.open(db::Role::reader);
    return store::find_citizen_ref(*reader, id);
  }

  // A citizen auth knows as verified, its cache row in permits, and its principal.
  std::shared_ptr<const Principal> verified_citizen() {
    auth::Citizen maria;
    maria.id = 1;
    maria.name = "Maria";
    maria.email = "maria@example.org";
    maria.identity_verified = true;
    maria.event_version = 2;
    auth.citizens[maria.id] = maria;
    apply(&PermitsService::apply_citizen_event,
          citizen_event("citizen.updated", maria.id, maria.event_version,
                        {{"name", "Maria"}, {"identity_verified", true}, {"is_active", true}}));
    return testing::citizen_principal(maria.id, {"permits:apply"});
  }

  // A verified citizen's context and their "deck" application (fee 2500 EUR: fee_due).
  std::pair<CallContext, std::optional<store::Application>> submitted_deck() {
    auto as_citizen = testing::as(verified_citizen());
    auto submitted = run_awaitable(service->submit(as_citizen, NewApplication{"deck", "A deck", "1 Main", "BLD"}));
    EXPECT_TRUE(submitted) << submitted.error().message;
    return {as_citizen, submitted ? std::optional(*submitted) : std::nullopt};
  }

  std::unique_ptr<PermitsService> service;
};

TEST_F(PermitsServiceTest, CitizenCacheKeepsTheNewestVersionWhateverTheOrder) {
  auto v1 = citizen_event("citizen.created", 7, 1, {{"name", "Maria"}, {"phone", "+1-100"}});
  auto v2 = citizen_event("citizen.updated", 7, 2, {{"name", "Maria"}, {"phone", "+1-200"}});
  auto v3 = citizen_event("citizen.updated", 7, 3, {{"name", "Maria G"}, {"phone", "+1-300"}});
  EXPECT_EQ(apply(&PermitsService::apply_citizen_event, v3), bus::Outcome::applied);
  EXPECT_EQ(apply(&PermitsService::apply_citizen_event, v1), bus::Outcome::stale);
  EXPECT_EQ(apply(&PermitsService::apply_citizen_event, v2), bus::Outcome::stale);
  EXPECT_EQ(apply(&PermitsService::apply_citizen_event, v3), bus::Outcome::stale);  // duplicate
  EXPECT_EQ(ref(7)->phone, "+1-300");
  EXPECT_EQ(ref(7)->name, "Maria G");
  EXPECT_EQ(ref(7)->event_version, 3);

  auto deleted = citizen_event("citizen.deleted", 7, 4,
                               {{"name", "Maria G"}, {"phone", "+1-300"}, {"email", "m@x.org"}, {"is_active", false}});
  EXPECT_EQ(apply(&PermitsService::apply_citizen_event, deleted), bus::Outcome::applied);
  EXPECT_FALSE(ref(7)->is_active);
  EXPECT_FALSE(ref(7)->phone);
  EXPECT_FALSE(ref(7)->email);
  EXPECT_EQ(ref(7)->name, "Maria G");
}

// Issue 27.3: a snapshot that lacks a field, or has one of the wrong type, is refused
// whole (the bus dead-letters it at once with the reason) and changes nothing; it used to
// blank the missing fields in every cache and reset verification.
TEST_F(PermitsServiceTest, ASnapshotMissingOrMistypingAnyFieldIsRefusedAndChangesNothing) {
  auto good = full_snapshot(7, {{"name", "Maria"}, {"phone", "+1-100"}, {"identity_verified", true}});
  ASSERT_EQ(apply(&PermitsService::apply_citizen_event, raw_citizen_event("citizen.created", 7, 1, good)),
            bus::Outcome::applied);
  for (const auto& [field, value] : good.items()) {
    if (field == "event_version") continue;  // the envelope's version is the one that counts
    auto missing = good;
    missing.erase(field);
    try {
      apply(&PermitsService::apply_citizen_event, raw_citizen_event("citizen.updated", 7, 2, missing));
      ADD_FAILURE() << "a snapshot without '" << field << "' was applied";
    } catch (const bus::PermanentError& error) {
      EXPECT_NE(std::string(error.what()).find("'" + field + "'"), std::string::npos) << error.what();
    }
    auto mistyped = good;
    mistyped[field] = json::array();
    EXPECT_THROW(apply(&PermitsService::apply_citizen_event, raw_citizen_event("citizen.updated", 7, 2, mistyped)),
                 bus::PermanentError)
        << field;
  }
  EXPECT_THROW(apply(&PermitsService::apply_citizen_event, raw_citizen_event("citizen.updated", 7, 2, {{"id", 7}})),
               bus::PermanentError);
  auto row = ref(7);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->name, "Maria");
  EXPECT_EQ(row->phone, "+1-100");
  EXPECT_TRUE(row->identity_verified);
  EXPECT_EQ(row->event_version, 1);
}

TEST_F(PermitsServiceTest, PaymentMovesAFeeDueApplicationToReviewOnce) {
  auto [as_citizen, submitted] = submitted_deck();
  ASSERT_TRUE(submitted);
  EXPECT_EQ(submitted->status, "fee_due");
  EXPECT_EQ(submitted->fee_cents, 2500);
  EXPECT_EQ(submitted->currency, "EUR");
  auto payment = payment_data(9, "permits", "application", std::to_string(submitted->id));
  EXPECT_EQ(pay(payment), bus::Outcome::applied);
  EXPECT_EQ(pay(payment), bus::Outcome::stale);                                      // a duplicate changes nothing
  EXPECT_EQ(pay(payment_data(10, "parks", "booking", "1")), bus::Outcome::applied);  // not for permits
  auto now = service->get_application(as_citizen, submitted->id);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->status, "under_review");
  EXPECT_EQ(now->invoice_id, "9");
  // Retrying cannot make an unknown application exist: a dead letter at once.
  EXPECT_THROW(pay(payment_data(11, "permits", "application", "999")), bus::PermanentError);
}

// payment.completed is read with revenue's one decoder (townhall/revenue/events.hpp): a
// payload missing any field, with a wrong type or of a schema version permits does not
// know is a dead letter at once naming why, and changes nothing.
TEST_F(PermitsServiceTest, AMalformedOrUnknownPaymentPayloadIsAPermanentError) {
  auto [as_citizen, submitted] = submitted_deck();
  ASSERT_TRUE(submitted);
  const auto good = payment_data(9, "permits", "application", std::to_string(submitted->id));
  auto refused_naming = [&](const json& data, const std::string& needle) {
    try {
      pay(data);
    } catch (const bus::PermanentError& error) {
      return std::string(error.what()).find(needle) != std::string::npos ? std::string() : std::string(error.what());
    }
    return std::string("accepted");
  };
  for (const auto& [key, value] : good.at("snapshot").items()) {
    auto missing = good;
    missing["snapshot"].erase(key);
    EXPECT_EQ(refused_naming(missing, "'" + key + "'"), "") << "without " << key;
  }
  auto wrong_type = good;
  wrong_type["snapshot"]["invoice_id"] = "9";
  EXPECT_EQ(refused_naming(wrong_type, "'invoice_id' must be"), "");
  auto future = good;
  future["schema_version"] = 2;
  EXPECT_EQ(refused_naming(future, "schema_version 2"), "");
  EXPECT_EQ(refused_naming(json{{"snapshot", 5}}, "'snapshot' must be an object"), "");
  EXPECT_EQ(service->get_application(as_citizen, submitted->id)->status, "fee_due");  // nothing applied
  auto legacy = good;  // written before payloads had versions: version 1
  legacy.erase("schema_version");
  EXPECT_EQ(pay(legacy), bus::Outcome::applied);
}

TEST_F(PermitsServiceTest, ScopesFollowTheRowLevelRule) {
  auto citizen = testing::citizen_principal(3);
  EXPECT_EQ(scope_for(citizen.get())->citizen_id, 3);
  EXPECT_EQ(scope_for(staff(1, {"permits:review"}, "BLD").get())->department_code, "BLD");
  EXPECT_FALSE(scope_for(staff(1, {"*"}, "BLD").get())->department_code);
  EXPECT_EQ(scope_for(staff(1, {"parks:*"}, "PRK").get()).error().code, Errc::forbidden);
  EXPECT_EQ(scope_for(staff(1, {"permits:review"}, "").get()).error().code, Errc::forbidden);
}

// Issue 26 §2: a department auth deactivated takes no new applications; its existing
// ones stay visible and reviewable, and it takes them again once reactivated.
TEST_F(PermitsServiceTest, AnInactiveDepartmentTakesNoNewApplications) {
  auto as_citizen = testing::as(verified_citizen());
  auto reviewer = testing::as(staff(2, {"permits:review"}, "BLD"));
  auto before = run_awaitable(service->submit(as_citizen, NewApplication{"fence", "f", "1 Main", "BLD"}));
  ASSERT_TRUE(before);
  auto department_event = [](std::string_view type, std::int64_t version, bool active) {
    bus::Event event;
    event.event_type = std::string(type);
    event.event_version = version;
    event.data = auth::events::versioned(
        {{"snapshot", auth::events::department_snapshot({"BLD", "Building", version, active},
                                                        "2026-11-22T00:00:00.000Z", "2026-11-22T00:00:00.000Z")}});
    return event;
  };
  EXPECT_EQ(
      apply(&PermitsService::apply_department_event, department_event(auth::events::kDepartmentDeactivated, 2, false)),
      bus::Outcome::applied);
  auto refused = run_awaitable(service->submit(as_citizen, NewApplication{"fence", "g", "1 Main", "BLD"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unprocessable);
  EXPECT_NE(refused.error().message.find("'BLD' is inactive"), std::string::npos);
  EXPECT_TRUE(service->get_application(as_citizen, before->id));
  EXPECT_TRUE(run_awaitable(service->decide(reviewer, before->id, Decision::approve, std::nullopt)));

  EXPECT_EQ(
      apply(&PermitsService::apply_department_event, department_event(auth::events::kDepartmentReactivated, 3, true)),
      bus::Outcome::applied);
  EXPECT_TRUE(run_awaitable(service->submit(as_citizen, NewApplication{"fence", "h", "1 Main", "BLD"})));
}

TEST_F(PermitsServiceTest, ApprovalFallsBackToAFreshCacheRowWhenAuthIsDown) {
  auto as_citizen = testing::as(verified_citizen());
  auto reviewer = testing::as(staff(2, {"permits:review"}, "BLD"));
  auto first = run_awaitable(service->submit(as_citizen, NewApplication{"fence", "f", "1 Main", "BLD"}));
  auto second = run_awaitable(service->submit(as_citizen, NewApplication{"fence", "g", "1 Main", "BLD"}));
  ASSERT_TRUE(first && second);

  auth.failure = Errc::unavailable;  // auth is down
  auto approved = run_awaitable(service->decide(reviewer, first->id, Decision::approve, std::nullopt));
  ASSERT_TRUE(approved) << approved.error().message;  // the cache row is seconds old
  EXPECT_EQ(approved->status, "approved");

  Settings strict = service->settings();
  strict.identity_fallback_max_age = std::chrono::seconds(0);
  make_service(strict);
  auto refused = run_awaitable(service->decide(reviewer, second->id, Decision::approve, std::nullopt));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unavailable);
  EXPECT_NE(refused.error().message.find("auth module is unavailable"), std::string::npos);
  EXPECT_GT(refused.error().retry_after_seconds, 0);
  EXPECT_EQ(service->get_application(reviewer, second->id)->status, "under_review");  // nothing changed
  auth.failure.reset();
  EXPECT_TRUE(run_awaitable(service->decide(reviewer, second->id, Decision::approve, std::nullopt)));
}

// DESIGN §5: the cache stands in for auth only when auth cannot answer (unavailable,
// deadline_exceeded), never when it answers something else.
TEST_F(PermitsServiceTest, ApprovalFallsBackToTheCacheOnlyWhenAuthCannotAnswer) {
  auto as_citizen = testing::as(verified_citizen());
  auto reviewer = testing::as(staff(2, {"permits:review"}, "BLD"));
  for (auto [failure, falls_back] : std::vector<std::pair<Errc, bool>>{{Errc::deadline_exceeded, true},
                                                                       {Errc::unavailable, true},
                                                                       {Errc::forbidden, false},
                                                                       {Errc::internal, false},
                                                                       {Errc::invalid_argument, false}}) {
    auth.failure = failure;
    auto application = run_awaitable(service->submit(as_citizen, NewApplication{"fence", "f", "1 Main", "BLD"}));
    ASSERT_TRUE(application);
    auto decided = run_awaitable(service->decide(reviewer, application->id, Decision::approve, std::nullopt));
    EXPECT_EQ(decided.ok(), falls_back) << to_string(failure);
    if (!falls_back) {
      EXPECT_EQ(decided.error().code, Errc::internal) << to_string(failure);
    }
  }
}

TEST(PermitsSettings, UnknownOrBadKeysAreNamed) {
  auto message = [](const json& section) { return testing::thrown_message([&] { parse_settings(section); }); };
  EXPECT_EQ(message({{"permit_types", {{"fence", {{"fee_cents", 0}}}}}}), "");
  EXPECT_NE(message({{"permit_types", {{"fence", {{"fee_cents", -1}}}}}}).find("permit_types.fence.fee_cents"),
            std::string::npos);
  EXPECT_NE(message({{"permit_types", {{"fence", {{"currency", "usd"}}}}}}).find("currency"), std::string::npos);
  EXPECT_NE(message({{"permit_types", {{"Fence!", json::object()}}}}).find("Fence!"), std::string::npos);
  EXPECT_NE(message({{"fees", 1}}).find("modules.permits.settings.fees: unknown"), std::string::npos);
}

}  // namespace
}  // namespace townhall::permits

namespace townhall::permits {
namespace {

class PermitTypesTest : public PermitsServiceTest {
 protected:
  CallContext admin() { return testing::as(testing::employee_principal(90, {"*"}, "")); }
  CallContext reviewer(std::string department = "BLD") {
    return testing::as(staff(91, {"permits:review"}, std::move(department)));
  }
};

// Issue 26.5: the registry's types become permits' data on the first start; a later
// change of the registry does not overwrite what administrators changed.
TEST_F(PermitTypesTest, TheFirstStartSeedsTheRegistrysTypesOnce) {
  auto listed = service->list_permit_types(CallContext{}, false, input::Page{});
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->items.size(), 2u);
  EXPECT_EQ(listed->items[0].permit_type, "deck");
  EXPECT_EQ(listed->items[0].fee_cents, 2500);
  EXPECT_EQ(listed->items[0].currency, "EUR");
  EXPECT_EQ(listed->items[0].version, 1);

  Settings changed = service->settings();
  changed.permit_types["deck"].fee_cents = 1;
  changed.permit_types["pool"] = PermitType{100, "USD", true};
  make_service(changed);
  listed = service->list_permit_types(CallContext{}, false, input::Page{});
  ASSERT_EQ(listed->items.size(), 2u) << "seeded once, on the first start only";
  EXPECT_EQ(listed->items[0].fee_cents, 2500);
}

TEST_F(PermitTypesTest, AnApplicationKeepsTheFeeAndRuleOfTheVersionItWasSubmittedWith) {
  auto as_citizen = testing::as(verified_citizen());
  auto before = run_awaitable(service->submit(as_citizen, NewApplication{"deck", "A deck", "1 Main", "BLD"}));
  ASSERT_TRUE(before) << before.error().message;
  EXPECT_EQ(before->fee_cents, 2500);

  auto changed =
      run_awaitable(service->change_permit_type(admin(), "deck", PermitTypeChange{4000, "USD", true, std::nullopt}));
  ASSERT_TRUE(changed) << changed.error().message;
  EXPECT_EQ(changed->version, 2);
  auto after = run_awaitable(service->submit(as_citizen, NewApplication{"deck", "A deck", "2 Main", "BLD"}));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->fee_cents, 4000);
  EXPECT_EQ(after->currency, "USD");
  EXPECT_EQ(service->get_application(as_citizen, before->id)->fee_cents, 2500) << "the old application keeps its fee";

  // Both paid; the old one needs no inspection (version 1), the new one does (version 2).
  EXPECT_EQ(pay(payment_data(11, "permits", "application", std::to_string(before->id))), bus::Outcome::applied);
  EXPECT_EQ(pay(payment_data(12, "permits", "application", std::to_string(after->id))), bus::Outcome::applied);
  auto approve = [&](std::int64_t id) {
    return run_awaitable(service->decide(reviewer(), id, Decision::approve, std::nullopt));
  };
  EXPECT_TRUE(approve(before->id)) << "version 1 needed no inspection";
  auto refused = approve(after->id);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::conflict);
  EXPECT_NE(refused.error().message.find("inspection"), std::string::npos);

  auto detail = service->get_permit_type(admin(), "deck");
  ASSERT_TRUE(detail && detail->history);
  ASSERT_EQ(detail->history->size(), 2u);
  EXPECT_EQ((*detail->history)[0].changed_by, 90);
  EXPECT_FALSE((*detail->history)[1].changed_by) << "version 1 came from the registry";
  EXPECT_FALSE(service->get_permit_type(CallContext{}, "deck")->history) << "versions are for administrators";
}

TEST_F(PermitTypesTest, AnInactiveTypeTakesNoApplicationsAndOnlyAdministratorsManageTypes) {
  auto as_citizen = testing::as(verified_citizen());
  ASSERT_TRUE(run_awaitable(service->change_permit_type(
      admin(), "fence", PermitTypeChange{std::nullopt, std::nullopt, std::nullopt, false})));
  auto refused = run_awaitable(service->submit(as_citizen, NewApplication{"fence", "f", "1 Main", "BLD"}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unprocessable);
  EXPECT_NE(refused.error().message.find("known types: deck"), std::string::npos) << refused.error().message;
  EXPECT_EQ(service->get_permit_type(CallContext{}, "fence").error().code, Errc::not_found);
  EXPECT_EQ(service->list_permit_types(CallContext{}, false, input::Page{})->items.size(), 1u);
  EXPECT_EQ(service->list_permit_types(admin(), true, input::Page{})->items.size(), 2u);
  EXPECT_EQ(service->list_permit_types(reviewer(), true, input::Page{}).error().code, Errc::forbidden);

  EXPECT_EQ(
      run_awaitable(service->create_permit_type(reviewer(), NewPermitType{"pool", 100, "USD", false})).error().code,
      Errc::forbidden);
  EXPECT_EQ(run_awaitable(service->create_permit_type(admin(), NewPermitType{"deck", 100, "USD", false})).error().code,
            Errc::conflict);
  auto pool = run_awaitable(service->create_permit_type(admin(), NewPermitType{"pool", 100, "USD", true}));
  ASSERT_TRUE(pool);
  EXPECT_TRUE(run_awaitable(service->submit(as_citizen, NewApplication{"pool", "p", "1 Main", "BLD"})));
  auto same = run_awaitable(
      service->change_permit_type(admin(), "pool", PermitTypeChange{100, std::nullopt, std::nullopt, std::nullopt}));
  EXPECT_EQ(same->version, 1) << "a change that changes nothing adds no version";
  EXPECT_EQ(run_awaitable(service->change_permit_type(admin(), "nope", PermitTypeChange{})).error().code,
            Errc::not_found);
}

// Issue 26.3, on the numbers: medians of known decision times, a department's staff see
// only theirs.
TEST_F(PermitTypesTest, TheApplicationsReportCountsByDepartmentAndStatusWithMedianDecisionHours) {
  auto insert = [&](std::string department, std::string status, std::string submitted,
                    std::optional<std::string> decided) {
    auto service_db = database.open(db::Role::service);
    store::Application a;
    a.citizen_id = 1;
    a.permit_type = "fence";
    a.department_code = std::move(department);
    a.status = std::move(status);
    a.submitted_at = a.updated_at = std::move(submitted);
    store::insert_application(*service_db, a);
    if (decided) db::execute(*service_db, "UPDATE applications SET decided_at = ? WHERE id = ?", *decided, a.id);
  };
  insert("BLD", "approved", "2026-03-01T10:00:00.000Z", "2026-03-01T12:00:00.000Z");  // 2 h
  insert("BLD", "approved", "2026-03-02T10:00:00.000Z", "2026-03-02T16:00:00.000Z");  // 6 h
  insert("BLD", "approved", "2026-03-03T10:00:00.000Z", "2026-03-04T10:00:00.000Z");  // 24 h
  insert("BLD", "rejected", "2026-03-05T10:00:00.000Z", "2026-03-05T11:00:00.000Z");  // 1 h
  insert("BLD", "under_review", "2026-03-06T10:00:00.000Z", std::nullopt);
  insert("PRK", "approved", "2026-03-07T10:00:00.000Z", "2026-03-07T14:00:00.000Z");  // 4 h
  insert("BLD", "approved", "2026-04-01T00:00:00.000Z", "2026-04-01T01:00:00.000Z");  // after the range

  // Medians come from per-day counts of decision times in buckets (design note 60):
  // within 1 % of the exact median plus half a second.
  auto near = [](double exact) { return 0.01 * exact + 0.5 / 3600; };
  auto all =
      service->applications_report(admin(), "2026-03-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z", std::nullopt);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->rows.size(), 4u);
  EXPECT_EQ(all->rows[0].department_code, "BLD");
  EXPECT_EQ(all->rows[0].status, "approved");
  EXPECT_EQ(all->rows[0].applications, 3);
  EXPECT_NEAR(*all->rows[0].median_hours_to_decision, 6.0, near(6.0));
  EXPECT_NEAR(*all->rows[1].median_hours_to_decision, 1.0, near(1.0));  // BLD rejected
  EXPECT_FALSE(all->rows[2].median_hours_to_decision);                  // BLD under_review
  EXPECT_EQ(all->rows[3].department_code, "PRK");
  EXPECT_EQ(all->applications, 6);
  EXPECT_EQ(all->decided, 5);
  EXPECT_NEAR(*all->median_hours_to_decision, 4.0, near(4.0)) << "1, 2, 4, 6, 24";

  auto mine =
      service->applications_report(reviewer(), "2026-03-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z", std::nullopt);
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine->applications, 5) << "a BLD reviewer sees BLD only";
  EXPECT_NEAR(*mine->median_hours_to_decision, 4.0, near(4.0)) << "1, 2, 6, 24";
  EXPECT_EQ(service->applications_report(reviewer(), "a", "b", "PRK").error().code, Errc::forbidden);
  EXPECT_EQ(service->applications_report(testing::as(verified_citizen()), "a", "b", std::nullopt).error().code,
            Errc::forbidden);
}

}  // namespace
}  // namespace townhall::permits
