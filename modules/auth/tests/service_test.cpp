// The auth module's service, without sockets: accounts, sessions, authorization, events
// in the same transaction, the audited national id, the token cache and the throttle.
#include "service.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "commands.hpp"
#include "coro.hpp"
#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {
namespace {

using testing::run_awaitable;
using json = nlohmann::json;

std::shared_ptr<const Principal> employee(std::int64_t id, std::vector<std::string> permissions,
                                          std::string department = "") {
  auto p = std::make_shared<Principal>();
  p->id = id;
  p->kind = Principal::Kind::employee;
  p->permissions = std::move(permissions);
  p->department = std::move(department);
  return p;
}

std::shared_ptr<const Principal> citizen(std::int64_t id) {
  auto p = std::make_shared<Principal>();
  p->id = id;
  p->kind = Principal::Kind::citizen;
  p->roles = {"citizen"};
  return p;
}

CallContext as(std::shared_ptr<const Principal> principal) {
  CallContext context;
  context.principal = std::move(principal);
  context.correlation_id = "test";
  return context;
}

class AuthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::migrate_module(database, "auth");
    settings.password_cost = {1, 8192 * 1024};
    settings.login_throttle.max_per_account_and_ip = 3;
    settings.login_throttle.max_per_ip = 1000;
    settings.login_throttle.base_delay = std::chrono::milliseconds(20);
    settings.login_throttle.max_delay = std::chrono::milliseconds(80);
    make_service();
  }

  void make_service() {
    service = std::make_unique<AuthService>(
        settings, dir.path() / "auth.key",
        AuthService::Dependencies{database, writer, readers, metrics, [this] { ++commits; }});
    service->start();
  }

  void TearDown() override {
    service->stop();
    writer.stop();
  }

  Citizen register_citizen(const std::string& email, std::optional<std::string> national_id = std::nullopt) {
    Registration r{email,   "a long enough password", "Test Citizen", "+1-555-0100", "1 Main St", "Springfield",
                   "12345", std::move(national_id)};
    auto result = run_awaitable(service->register_citizen(CallContext{}, std::move(r)));
    EXPECT_TRUE(result) << (result ? "" : result.error().message);
    return result ? *result : Citizen{};
  }

  std::int64_t count(const std::string& sql) {
    auto reader = database.open(db::Role::reader);
    auto query = reader->prepare(sql);
    query.executeStep();
    return query.getColumn(0).getInt64();
  }

  std::vector<json> outbox(const std::string& aggregate_id) {
    auto reader = database.open(db::Role::reader);
    auto query =
        reader->prepare("SELECT event_type, event_version, data FROM outbox WHERE aggregate_id = ? ORDER BY id");
    query.bind(1, aggregate_id);
    std::vector<json> out;
    while (query.executeStep())
      out.push_back({{"type", query.getColumn(0).getString()},
                     {"version", query.getColumn(1).getInt64()},
                     {"data", json::parse(query.getColumn(2).getString())}});
    return out;
  }

  std::int64_t create_staff(const std::string& email, std::vector<std::string> roles,
                            std::optional<std::string> department = std::nullopt) {
    auto admin = as(employee(999, {"*"}));
    if (department && service->list_departments()->empty()) {
      auto created = run_awaitable(service->create_department(admin, *department, "Department " + *department));
      EXPECT_TRUE(created);
    }
    auto result = run_awaitable(
        service->create_employee(admin, NewStaff{email, "staff password 123", "Staff", department, std::move(roles)}));
    EXPECT_TRUE(result) << (result ? "" : result.error().message);
    return result ? result->id : 0;
  }

  testing::TempDir dir;
  metrics::Registry metrics;
  db::ModuleDb database{"auth", dir.path() / "auth.db", table_manifest()};
  db::Writer writer{"auth"};
  db::ReaderPool readers{database, 2};
  Settings settings;
  int commits = 0;
  std::unique_ptr<AuthService> service;
};

TEST_F(AuthServiceTest, RegistrationValidatesEmailPasswordAndUniqueness) {
  auto attempt = [&](std::string email, std::string password, std::optional<std::string> national_id = {}) {
    return run_awaitable(service->register_citizen(
        CallContext{}, Registration{email, password, "Name", {}, {}, {}, {}, std::move(national_id)}));
  };
  EXPECT_EQ(attempt("not-an-email", "a long enough password").error().code, Errc::invalid_argument);
  EXPECT_EQ(attempt("a@b", "a long enough password").error().code, Errc::invalid_argument);
  EXPECT_EQ(attempt("x@example.org", "short").error().code, Errc::invalid_argument);
  EXPECT_EQ(attempt("longname@example.org", "LONGNAME@example.org").error().code, Errc::invalid_argument);
  EXPECT_EQ(attempt("x@example.org", "a long enough password", "12'; DROP TABLE").error().code, Errc::invalid_argument);
  ASSERT_TRUE(attempt("Maria@Example.org", "a long enough password"));
  auto duplicate = attempt("maria@example.ORG", "another long password");
  EXPECT_EQ(duplicate.error().code, Errc::conflict);
  EXPECT_EQ(count("SELECT count(*) FROM citizens"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM outbox"), 1);
}

TEST_F(AuthServiceTest, AFailureAfterTheStateWriteLeavesNeitherRowNorEvent) {
  service->set_fault_hook([](std::string_view point) {
    if (point == "citizen.created" || point == "citizen.updated") throw std::runtime_error("injected");
  });
  EXPECT_THROW(run_awaitable(service->register_citizen(
                   CallContext{}, Registration{"a@example.org", "a long enough password", "A", {}, {}, {}, {}, {}})),
               std::runtime_error);
  EXPECT_EQ(count("SELECT count(*) FROM citizens"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM outbox"), 0);

  service->set_fault_hook({});
  auto maria = register_citizen("maria@example.org");
  service->set_fault_hook([](std::string_view point) {
    if (point == "citizen.updated") throw std::runtime_error("injected");
  });
  CitizenPatch patch;
  patch.phone = std::optional<std::string>("+1-555-9999");
  EXPECT_THROW(run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, patch)), std::runtime_error);
  EXPECT_EQ(count("SELECT count(*) FROM citizens WHERE phone = '+1-555-0100' AND event_version = 1"), 1);
  EXPECT_EQ(outbox(std::to_string(maria.id)).size(), 1u);
}

TEST_F(AuthServiceTest, ExactlyOneEventPerChangeWithIncreasingVersions) {
  auto maria = register_citizen("maria@example.org", "NID-12345");
  auto self = as(citizen(maria.id));
  CitizenPatch phone;
  phone.phone = std::optional<std::string>("+1-555-0199");
  auto updated = run_awaitable(service->update_citizen(self, maria.id, phone));
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->event_version, 2);
  // The same change again changes nothing: no event, no version.
  auto again = run_awaitable(service->update_citizen(self, maria.id, phone));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->event_version, 2);
  ASSERT_TRUE(run_awaitable(service->delete_citizen(self, maria.id)));

  auto events = outbox(std::to_string(maria.id));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["type"], "citizen.created");
  EXPECT_EQ(events[1]["type"], "citizen.updated");
  EXPECT_EQ(events[2]["type"], "citizen.deleted");
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i]["version"], static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(events[i]["data"]["snapshot"]["event_version"], static_cast<std::int64_t>(i + 1));
  }
  EXPECT_EQ(events[1]["data"]["changes"]["phone"]["old"], "+1-555-0100");
  EXPECT_EQ(events[1]["data"]["changes"]["phone"]["new"], "+1-555-0199");
  EXPECT_EQ(events[2]["data"]["snapshot"]["is_active"], false);
  // Soft delete: the row stays, inactive; the citizen's sessions were revoked with it.
  EXPECT_EQ(count("SELECT count(*) FROM citizens WHERE deleted_at IS NOT NULL AND is_active = 0"), 1);
}

TEST_F(AuthServiceTest, EventsNeverCarryTheNationalIdOrThePasswordHash) {
  auto maria = register_citizen("maria@example.org", "NID-555-777");
  CitizenPatch patch;
  patch.national_id = std::optional<std::string>("NID-888-999");
  ASSERT_TRUE(run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, patch)));
  auto reader = database.open(db::Role::reader);
  auto hash = reader->prepare("SELECT password_hash FROM citizens");
  ASSERT_TRUE(hash.executeStep());
  auto password_hash = hash.getColumn(0).getString();
  auto events = outbox(std::to_string(maria.id));
  ASSERT_EQ(events.size(), 2u);
  for (const auto& event : events) {
    auto text = event.dump();
    EXPECT_EQ(text.find("NID-555-777"), std::string::npos) << text;
    EXPECT_EQ(text.find("NID-888-999"), std::string::npos) << text;
    EXPECT_EQ(text.find(password_hash), std::string::npos);
    EXPECT_EQ(text.find("password"), std::string::npos);
    EXPECT_FALSE(event["data"]["snapshot"].contains("national_id"));
    EXPECT_TRUE(event["data"]["snapshot"]["has_national_id"].get<bool>());
  }
  // At rest it is sealed: the plain text is nowhere in the row.
  auto sealed = reader->prepare("SELECT count(*) FROM citizens WHERE instr(national_id_sealed, 'NID-888-999') > 0");
  sealed.executeStep();
  EXPECT_EQ(sealed.getColumn(0).getInt(), 0);
}

TEST_F(AuthServiceTest, ChangingNameOrNationalIdResetsIdentityVerification) {
  auto maria = register_citizen("maria@example.org", "NID-1000");
  auto clerk = as(employee(5, {"citizens:read", "citizens:write", "citizens:verify"}));
  auto verify = [&] {
    CitizenPatch patch;
    patch.identity_verified = true;
    auto verified = run_awaitable(service->update_citizen(clerk, maria.id, patch));
    ASSERT_TRUE(verified) << verified.error().message;
    ASSERT_TRUE(verified->identity_verified);
  };
  auto change = [&](CitizenPatch patch) {
    auto changed = run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, std::move(patch)));
    EXPECT_TRUE(changed) << changed.error().message;
    return changed ? changed->identity_verified : true;
  };

  verify();
  CitizenPatch phone;  // contact data is not identity
  phone.phone = std::optional<std::string>("+1-555-0111");
  EXPECT_TRUE(change(phone));
  CitizenPatch name;
  name.name = "Somebody Else";
  EXPECT_FALSE(change(name));
  // The reset is in the same event as the change, so caches never see the new name verified.
  auto events = outbox(std::to_string(maria.id));
  const auto& last = events.back();
  EXPECT_EQ(last["data"]["changes"]["name"]["new"], "Somebody Else");
  EXPECT_EQ(last["data"]["changes"]["identity_verified"]["new"], false);
  EXPECT_EQ(last["data"]["snapshot"]["identity_verified"], false);

  verify();
  CitizenPatch same_id;  // the same id again (other spelling) is no change
  same_id.national_id = std::optional<std::string>("nid 1000");
  EXPECT_TRUE(change(same_id));
  CitizenPatch new_id;
  new_id.national_id = std::optional<std::string>("NID-2000");
  EXPECT_FALSE(change(new_id));
  verify();
  CitizenPatch cleared;
  cleared.national_id = std::optional<std::string>();
  EXPECT_FALSE(change(cleared));

  // Staff who change the name and verify in one request leave it verified.
  CitizenPatch corrected;
  corrected.name = "Maria Garcia";
  corrected.identity_verified = true;
  auto staff_change = run_awaitable(service->update_citizen(clerk, maria.id, corrected));
  ASSERT_TRUE(staff_change);
  EXPECT_TRUE(staff_change->identity_verified);
}

// Issue 28.2: a national id belongs to one *verified* identity. An unverified claim
// blocks nobody and is answered as any other registration (no oracle for whose id is on
// file, no squatting); staff see the competing claims and verify one, and a second
// verification of the same id is refused. A citizen's own changes are bounded and audited.
TEST_F(AuthServiceTest, ANationalIdBelongsToOneVerifiedIdentityAndIsNoOracle) {
  auto squatter = register_citizen("squatter@example.org", "AB-123 456");
  auto fresh = register_citizen("fresh@example.org", "ZZ-000");  // an id nobody else claims
  // The owner registers the same id, however spelled, and is answered as anyone is.
  auto owner = register_citizen("owner@example.org", "ab123456");
  ASSERT_GT(owner.id, 0);
  EXPECT_EQ(owner.has_national_id, fresh.has_national_id);
  EXPECT_EQ(owner.identity_verified, fresh.identity_verified);
  // Compared by keyed digest: the plain value is nowhere in the file, and the digest is
  // not a plain hash of it.
  EXPECT_EQ(count("SELECT count(*) FROM citizens WHERE length(national_id_digest) = 32 AND "
                  "instr(national_id_digest, 'AB123456') = 0"),
            3);

  auto desk = as(employee(7, {"citizens:read", "citizens:write", "citizens:verify"}));
  auto claims = service->national_id_claims(desk, owner.id);
  ASSERT_TRUE(claims) << claims.error().message;
  ASSERT_EQ(claims->size(), 2u);
  EXPECT_EQ((*claims)[0].citizen_id, squatter.id);  // oldest first
  EXPECT_EQ((*claims)[1].citizen_id, owner.id);
  EXPECT_EQ(service->national_id_claims(as(citizen(owner.id)), owner.id).error().code, Errc::not_found);
  EXPECT_EQ(service->national_id_claims(as(employee(8, {"citizens:read"})), owner.id).error().code, Errc::forbidden);

  CitizenPatch verify;
  verify.identity_verified = true;
  ASSERT_TRUE(run_awaitable(service->update_citizen(desk, owner.id, verify)));
  auto second = run_awaitable(service->update_citizen(desk, squatter.id, verify));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::conflict);
  EXPECT_NE(second.error().message.find(std::to_string(owner.id)), std::string::npos) << second.error().message;

  // A citizen's own changes: audited, and at most national_id_changes_per_day (3) a day.
  auto li = register_citizen("li@example.org");
  for (int i = 0; i < 3; ++i) {
    CitizenPatch change;
    change.national_id = std::optional<std::string>("LI-" + std::to_string(i));
    ASSERT_TRUE(run_awaitable(service->update_citizen(as(citizen(li.id)), li.id, change))) << i;
  }
  CitizenPatch fourth;
  fourth.national_id = std::optional<std::string>("AB 123 456");
  auto limited = run_awaitable(service->update_citizen(as(citizen(li.id)), li.id, fourth));
  ASSERT_FALSE(limited);
  EXPECT_EQ(limited.error().code, Errc::too_many_requests);
  EXPECT_GT(limited.error().retry_after_seconds, 0);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'citizen.national_id.set' AND subject = 'citizen:" +
                  std::to_string(li.id) + "'"),
            3);
  EXPECT_TRUE(run_awaitable(service->update_citizen(desk, li.id, fourth)));  // staff are not limited
}

TEST_F(AuthServiceTest, NationalIdsSealedBeforeDigestsGetThemAtStart) {
  auto maria = register_citizen("maria@example.org", "NID-31337");
  service->stop();
  {
    auto owner = database.open(db::Role::owner);
    owner->sql().exec("UPDATE citizens SET national_id_digest = NULL");
  }
  make_service();
  EXPECT_EQ(count("SELECT count(*) FROM citizens WHERE national_id_digest IS NOT NULL"), 1);
  // The backfilled digest is the one a new claim of the same id gets.
  auto li = register_citizen("li@example.org", "nid 31337");
  auto desk = as(employee(7, {"citizens:verify"}));
  auto claims = service->national_id_claims(desk, li.id);
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->size(), 2u);
  EXPECT_EQ(claims->front().citizen_id, maria.id);
}

// Issue 21 / 27.2: the key file is checked against the sealed data at start. A key from
// another installation, or none, leaves auth serving without national ids: 503 naming
// the fix, never a 500, never a new key beside sealed rows, never a second claim of a
// national id on file.
TEST_F(AuthServiceTest, AKeyThatDoesNotOpenTheSealedDataIsFoundAtStart) {
  auto maria = register_citizen("maria@example.org", "NID-777");
  EXPECT_TRUE(service->key_problem().empty());
  EXPECT_EQ(count("SELECT count(*) FROM key_check"), 1);
  service->stop();
  auto key = dir.path() / "auth.key";
  auto original = dir.path() / "auth.key.original";
  std::filesystem::rename(key, original);
  SecretBox::create(key);  // another installation's key
  make_service();
  const auto& problem = service->key_problem();
  EXPECT_NE(problem.find("does not match"), std::string::npos) << problem;
  EXPECT_NE(problem.find("townhall restore"), std::string::npos) << problem;  // names the fix
  auto clerk = as(employee(5, {"citizens:read", "citizens:sensitive"}));
  auto read = run_awaitable(service->get_sensitive(clerk, maria.id, "tax record"));
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, Errc::unavailable);
  EXPECT_NE(read.error().message.find("does not match"), std::string::npos) << read.error().message;
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'citizen.national_id.read'"), 0);
  // Nothing is sealed with the wrong key, and the national id on file cannot be claimed.
  Registration claim{"li@example.org", "a long enough password", "Li", {}, {}, {}, {}, std::string("NID-777")};
  EXPECT_EQ(run_awaitable(service->register_citizen(CallContext{}, claim)).error().code, Errc::unavailable);
  // Everything that needs no key still works.
  register_citizen("sam@example.org");
  EXPECT_TRUE(run_awaitable(service->login("maria@example.org", "a long enough password", "127.0.0.1")));
  EXPECT_NE(metrics.render().find("townhall_auth_key_ok 0"), std::string::npos);

  // The key goes missing: no new key is made beside sealed data.
  service->stop();
  std::filesystem::remove(key);
  make_service();
  EXPECT_FALSE(std::filesystem::exists(key));
  EXPECT_NE(service->key_problem().find("is missing"), std::string::npos) << service->key_problem();
  EXPECT_EQ(run_awaitable(service->get_sensitive(clerk, maria.id, "tax record")).error().code, Errc::unavailable);

  // The right key is put back: everything reads again.
  service->stop();
  std::filesystem::rename(original, key);
  make_service();
  EXPECT_TRUE(service->key_problem().empty()) << service->key_problem();
  auto value = run_awaitable(service->get_sensitive(clerk, maria.id, "tax record"));
  ASSERT_TRUE(value) << value.error().message;
  EXPECT_EQ(**value, "NID-777");
  EXPECT_NE(metrics.render().find("townhall_auth_key_ok 1"), std::string::npos);
}

// A file from before the key check (no key_check row): the key is tested on a sealed id
// and, when it opens it, its check value is recorded; a fresh file gets its key and row.
TEST_F(AuthServiceTest, TheKeyCheckValueIsRecordedForOlderFiles) {
  register_citizen("maria@example.org", "NID-1");
  service->stop();
  database.open(db::Role::owner)->exec("DELETE FROM key_check");
  make_service();
  EXPECT_TRUE(service->key_problem().empty());
  EXPECT_EQ(count("SELECT count(*) FROM key_check"), 1);

  service->stop();  // the same older file with a foreign key: found by the sealed id
  database.open(db::Role::owner)->exec("DELETE FROM key_check");
  std::filesystem::remove(dir.path() / "auth.key");
  SecretBox::create(dir.path() / "auth.key");
  make_service();
  EXPECT_NE(service->key_problem().find("does not match"), std::string::npos);
  EXPECT_EQ(count("SELECT count(*) FROM key_check"), 0);  // the wrong key is never recorded
}

TEST_F(AuthServiceTest, LookalikeEmailsNameTheSameAccount) {
  register_citizen("maria@example.org");
  register_citizen("jos\u00e9@example.org");  // composed é
  register_citizen("kelvin@example.org");
  for (const char* lookalike : {"\uff4daria@example.org",      // fullwidth ｍ
                                "MARIA@EXAMPLE.ORG",           //
                                "jose\u0301@example.org",      // e + combining acute
                                "\u212aelvin@example.org"}) {  // Kelvin sign
    Registration again{lookalike, "a long enough password", "Name", {}, {}, {}, {}, {}};
    auto registered = run_awaitable(service->register_citizen(CallContext{}, again));
    ASSERT_FALSE(registered) << lookalike;
    EXPECT_EQ(registered.error().code, Errc::conflict) << lookalike;
    // and signs in to the account it looks like
    EXPECT_TRUE(run_awaitable(service->login(lookalike, "a long enough password", "127.0.0.1"))) << lookalike;
  }
}

TEST_F(AuthServiceTest, SensitiveReadsNeedPermissionAndAreAudited) {
  auto maria = register_citizen("maria@example.org", "NID-424242");
  auto other = register_citizen("other@example.org");
  auto clerk = as(employee(5, {"citizens:read", "citizens:sensitive"}));
  for (int i = 0; i < 3; ++i) {
    auto value = run_awaitable(service->get_sensitive(clerk, maria.id, "tax record"));
    ASSERT_TRUE(value) << value.error().message;
    ASSERT_TRUE(value->has_value());
    EXPECT_EQ(**value, "NID-424242");
  }
  auto none = run_awaitable(service->get_sensitive(clerk, other.id, "tax record"));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'citizen.national_id.read' AND subject = 'citizen:" +
                  std::to_string(maria.id) + "' AND actor = 'employee:5' AND purpose = 'tax record'"),
            3);

  EXPECT_EQ(run_awaitable(service->get_sensitive(as(employee(6, {"citizens:read"})), maria.id, "curious")).error().code,
            Errc::forbidden);
  EXPECT_EQ(run_awaitable(service->get_sensitive(as(citizen(other.id)), maria.id, "curious")).error().code,
            Errc::not_found);
  EXPECT_EQ(run_awaitable(service->get_sensitive(CallContext{}, maria.id, "no one")).error().code, Errc::forbidden);
  EXPECT_EQ(run_awaitable(service->get_sensitive(clerk, maria.id, "")).error().code, Errc::invalid_argument);
  // Refused reads leave no audit row; the four granted ones each left one.
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'citizen.national_id.read'"), 4);
}

TEST_F(AuthServiceTest, ObjectLevelAuthorization) {
  auto maria = register_citizen("maria@example.org");
  auto li = register_citizen("li@example.org");
  // Another citizen's record does not exist for a citizen.
  EXPECT_EQ(run_awaitable(service->get_citizen(as(citizen(li.id)), maria.id)).error().code, Errc::not_found);
  CitizenPatch phone;
  phone.phone = std::optional<std::string>("+1");
  EXPECT_EQ(run_awaitable(service->update_citizen(as(citizen(li.id)), maria.id, phone)).error().code, Errc::not_found);
  EXPECT_EQ(run_awaitable(service->delete_citizen(as(citizen(li.id)), maria.id)).error().code, Errc::not_found);
  // Staff without the permission: forbidden. With it: allowed.
  auto parks = as(employee(7, {"parks:*"}));
  EXPECT_EQ(run_awaitable(service->get_citizen(parks, maria.id)).error().code, Errc::forbidden);
  EXPECT_EQ(run_awaitable(service->update_citizen(parks, maria.id, phone)).error().code, Errc::forbidden);
  EXPECT_EQ(service->list_citizens(parks, {}, {}, {}).error().code, Errc::forbidden);
  auto reviewer = as(employee(8, {"citizens:read", "permits:review"}));
  EXPECT_TRUE(run_awaitable(service->get_citizen(reviewer, maria.id)));
  EXPECT_EQ(run_awaitable(service->update_citizen(reviewer, maria.id, phone)).error().code, Errc::forbidden);
  auto admin = as(employee(9, {"*"}));
  EXPECT_TRUE(run_awaitable(service->update_citizen(admin, maria.id, phone)));
  // Verification flags: never by the citizen, only with citizens:verify.
  CitizenPatch verify;
  verify.identity_verified = true;
  EXPECT_EQ(run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, verify)).error().code,
            Errc::forbidden);
  auto clerk = as(employee(10, {"citizens:read", "citizens:write", "citizens:verify"}));
  auto verified = run_awaitable(service->update_citizen(clerk, maria.id, verify));
  ASSERT_TRUE(verified);
  EXPECT_TRUE(verified->identity_verified);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'citizen.verification.set'"), 1);
  // The list filters by email and by name.
  auto list = service->list_citizens(reviewer, std::string("LI@example.org"), {}, {});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->total, 1);
  EXPECT_EQ(list->items[0].id, li.id);
}

TEST_F(AuthServiceTest, LoginFailuresLookAlikeAndAreThrottled) {
  register_citizen("maria@example.org");
  auto unknown = run_awaitable(service->login("nobody@example.org", "a long enough password", "10.0.0.1"));
  auto wrong = run_awaitable(service->login("maria@example.org", "not her password", "10.0.0.1"));
  ASSERT_FALSE(unknown);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(unknown.error().code, Errc::unauthorized);
  EXPECT_EQ(wrong.error().code, Errc::unauthorized);
  EXPECT_EQ(unknown.error().message, wrong.error().message);

  // Two more failures from one address reach the limit (3) for that account and
  // address: the right password is refused there too.
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(run_awaitable(service->login("maria@example.org", "nope nope!", "10.0.0.2")));
  auto blocked = run_awaitable(service->login("maria@example.org", "a long enough password", "10.0.0.2"));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, Errc::too_many_requests);
  EXPECT_GT(blocked.error().retry_after_seconds, 0);
  // Another account is not affected.
  register_citizen("li@example.org");
  EXPECT_TRUE(run_awaitable(service->login("li@example.org", "a long enough password", "10.0.0.2")));
}

TEST_F(AuthServiceTest, AnAttackerElsewhereCannotLockTheOwnerOut) {
  register_citizen("admin@example.org");
  // Failures from many addresses: each pair stays under its limit or is locked alone.
  for (int i = 0; i < 12; ++i)
    EXPECT_FALSE(run_awaitable(
        service->login("admin@example.org", "guess number " + std::to_string(i), "10.6.6." + std::to_string(i % 4))));
  auto locked = run_awaitable(service->login("admin@example.org", "a long enough password", "10.6.6.0"));
  ASSERT_FALSE(locked);
  EXPECT_EQ(locked.error().code, Errc::too_many_requests);
  // The owner, from their own address, gets in (after a bounded delay).
  auto started = std::chrono::steady_clock::now();
  auto owner = run_awaitable(service->login("admin@example.org", "a long enough password", "192.0.2.7"));
  ASSERT_TRUE(owner) << owner.error().message;
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(80));
}

// Valid logins cost an Argon2 verification each: a few addresses signing one account in
// at the rate limit must not keep the hashing threads busy (issue 28 §7).
TEST_F(AuthServiceTest, SuccessfulLoginsAreThrottledPerAccountAndPerAddress) {
  settings.login_throttle.max_logins_per_account = 3;
  settings.login_throttle.max_logins_per_ip = 4;
  make_service();
  register_citizen("maria@example.org");
  register_citizen("li@example.org");
  // Three from three addresses spend the account's share; the fourth is refused before
  // its password is checked, from any address.
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(
        run_awaitable(service->login("maria@example.org", "a long enough password", "10.7.0." + std::to_string(i))));
  auto refused = run_awaitable(service->login("maria@example.org", "a long enough password", "10.7.0.9"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::too_many_requests);
  EXPECT_GT(refused.error().retry_after_seconds, 0);
  EXPECT_EQ(metrics.counter("townhall_auth_logins_total", "", {"outcome"}).with({"throttled"}).value(), 1);
  // Other accounts are not affected, until one address has signed in max_logins_per_ip
  // times, whatever the accounts.
  register_citizen("ana@example.org");
  register_citizen("jo@example.org");
  for (auto email : {"li@example.org", "li@example.org", "ana@example.org", "ana@example.org"})
    EXPECT_TRUE(run_awaitable(service->login(email, "a long enough password", "10.8.0.1"))) << email;
  auto from_address = run_awaitable(service->login("jo@example.org", "a long enough password", "10.8.0.1"));
  ASSERT_FALSE(from_address);
  EXPECT_EQ(from_address.error().code, Errc::too_many_requests);
  EXPECT_TRUE(run_awaitable(service->login("jo@example.org", "a long enough password", "10.8.0.2")));
}

// Argon2 work beyond max_queued_password_hashes is refused at once (503 + Retry-After),
// never queued without bound behind a flood.
TEST_F(AuthServiceTest, PasswordChecksBeyondTheQueueAreRefusedNotQueued) {
  register_citizen("maria@example.org");
  settings.max_queued_password_hashes = 2;
  make_service();
  // Six logins start before any check finishes: every start is queued on the context
  // ahead of the first completion.
  boost::asio::io_context io;
  std::vector<std::optional<Result<LoginResult>>> results(6);
  for (std::size_t i = 0; i < results.size(); ++i)
    boost::asio::co_spawn(io,
                          service->login("maria@example.org", "a long enough password", "10.9.0." + std::to_string(i)),
                          [&results, i](std::exception_ptr, Result<LoginResult> result) { results[i] = result; });
  io.run();
  int signed_in = 0, busy = 0;
  for (auto& result : results) {
    ASSERT_TRUE(result.has_value());
    if (*result) {
      ++signed_in;
    } else {
      EXPECT_EQ(result->error().code, Errc::unavailable) << result->error().message;
      EXPECT_EQ(result->error().retry_after_seconds, 1);
      ++busy;
    }
  }
  EXPECT_EQ(signed_in, 2);
  EXPECT_EQ(busy, 4);
  EXPECT_EQ(metrics.counter("townhall_auth_logins_total", "", {"outcome"}).with({"busy"}).value(), 4);
  // Once the queue has drained, the next one is served.
  EXPECT_TRUE(run_awaitable(service->login("maria@example.org", "a long enough password", "10.9.0.9")));
}

TEST_F(AuthServiceTest, TokensAuthenticateUntilLogoutAndStoreOnlyTheirHash) {
  auto maria = register_citizen("maria@example.org");
  auto session = run_awaitable(service->login("Maria@example.org", "a long enough password", "127.0.0.1"));
  ASSERT_TRUE(session) << session.error().message;
  EXPECT_EQ(session->token.size(), 43u);
  EXPECT_EQ(session->principal->id, maria.id);
  EXPECT_EQ(count("SELECT count(*) FROM sessions WHERE token_hash = '" + token_hash(session->token) + "'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM sessions WHERE token_hash = '" + session->token + "'"), 0);

  auto principal = service->authenticate_now(session->token);
  ASSERT_TRUE(principal);
  EXPECT_TRUE((*principal)->has("permits:apply"));
  EXPECT_EQ(service->token_cache().size(), 1u);
  ASSERT_TRUE(service->authenticate_now(session->token));  // from the cache

  ASSERT_TRUE(run_awaitable(service->logout(session->token)));
  auto after = service->authenticate_now(session->token);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::unauthorized);
  EXPECT_EQ(service->authenticate_now("not-a-token").error().code, Errc::unauthorized);
  EXPECT_EQ(service->authenticate_now(std::string(43, 'A')).error().code, Errc::unauthorized);
}

TEST_F(AuthServiceTest, RoleChangesRevokeSessionsAndEmitRoleChanged) {
  auto id = create_staff("rita@example.org", {"permits_reviewer"}, "BLD");
  auto session = run_awaitable(service->login("rita@example.org", "staff password 123", "127.0.0.1"));
  ASSERT_TRUE(session);
  ASSERT_TRUE(service->authenticate_now(session->token));  // cached now
  EXPECT_EQ(session->principal->department, "BLD");
  EXPECT_TRUE(session->principal->has("permits:review"));

  auto admin = as(employee(999, {"*"}));
  EXPECT_EQ(run_awaitable(service->set_employee_roles(admin, id, {"no_such_role"})).error().code, Errc::unprocessable);
  EXPECT_EQ(run_awaitable(service->set_employee_roles(as(employee(5, {"citizens:read"})), id, {"admin"})).error().code,
            Errc::forbidden);
  auto changed = run_awaitable(service->set_employee_roles(admin, id, {"revenue_clerk", "permits_reviewer"}));
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->roles, (std::vector<std::string>{"permits_reviewer", "revenue_clerk"}));
  EXPECT_FALSE(service->authenticate_now(session->token));

  auto events = outbox(std::to_string(id));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["type"], "employee.assigned");
  EXPECT_EQ(events[1]["type"], "role.changed");
  EXPECT_EQ(events[1]["data"]["changes"]["roles"]["new"], json({"permits_reviewer", "revenue_clerk"}));
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'employee.roles.set'"), 1);
  // Setting the same roles again changes nothing.
  ASSERT_TRUE(run_awaitable(service->set_employee_roles(admin, id, {"revenue_clerk", "permits_reviewer"})));
  EXPECT_EQ(outbox(std::to_string(id)).size(), 2u);
}

TEST_F(AuthServiceTest, ExpiredSessionsDoNotAuthenticate) {
  service->stop();
  settings.session_ttl = std::chrono::seconds(1);
  settings.token_cache_ttl = std::chrono::milliseconds(0);
  make_service();
  register_citizen("maria@example.org");
  auto session = run_awaitable(service->login("maria@example.org", "a long enough password", "127.0.0.1"));
  ASSERT_TRUE(session);
  ASSERT_TRUE(service->authenticate_now(session->token));
  EXPECT_TRUE(
      testing::wait_until([&] { return !service->authenticate_now(session->token); }, std::chrono::milliseconds(5000)));
}

// The content hash auth computes for a cache's fields is the one a cache row of the same
// citizen hashes to; an inactive citizen's contact fields are not kept.
TEST_F(AuthServiceTest, ConsistencyDigestsCoverTheFieldsACacheKeeps) {
  auto maria = register_citizen("maria@example.org");
  auto module = CallContext::as_service("permits", "test");
  const CitizenFields name_only{CitizenField::name};
  const CitizenFields contact{CitizenField::name, CitizenField::phone, CitizenField::is_active};
  auto versions = run_awaitable(service->citizen_versions(module, 0, 10, contact));
  ASSERT_TRUE(versions);
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ(
      (*versions)[0].content,
      consistency::ContentHash().text("Test Citizen").nullable_text(std::string("+1-555-0100")).integer(1).value());
  auto before = *run_awaitable(service->citizen_digest(module, 0, 1000, name_only));
  CitizenPatch patch;
  patch.phone = std::optional<std::string>("+1-555-0199");
  ASSERT_TRUE(run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, patch)));
  // A field the cache does not keep changes the version, not the content.
  auto after = *run_awaitable(service->citizen_versions(module, 0, 10, name_only));
  EXPECT_EQ(after[0].content, consistency::ContentHash().text("Test Citizen").value());
  EXPECT_FALSE(before.same(*run_awaitable(service->citizen_digest(module, 0, 1000, name_only))));  // the version moved
  ASSERT_TRUE(run_awaitable(service->delete_citizen(as(employee(9, {"*"})), maria.id)));
  auto closed = *run_awaitable(service->citizen_versions(module, 0, 10, contact));
  EXPECT_EQ(closed[0].content,
            consistency::ContentHash().text("Test Citizen").null().integer(0).value());  // no contact data kept
}

TEST_F(AuthServiceTest, ConsistencyReadsPageThroughCitizens) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(register_citizen("c" + std::to_string(i) + "@example.org").id);
  CitizenPatch patch;
  patch.name = "Renamed";
  ASSERT_TRUE(run_awaitable(service->update_citizen(as(citizen(ids[1])), ids[1], patch)));
  auto module = CallContext::as_service("permits", "test");
  EXPECT_EQ(run_awaitable(service->citizen_versions(CallContext{}, ids[2], 10, {})).error().code, Errc::forbidden);
  auto versions = run_awaitable(service->citizen_versions(module, ids[2], 10, {}));
  ASSERT_TRUE(versions);
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].id, ids[3]);
  auto all = run_awaitable(service->citizens_since(module, 0, 3));
  ASSERT_TRUE(all);
  ASSERT_EQ(all->citizens.size(), 3u);
  auto rest = run_awaitable(service->citizens_since(module, all->next, 10));
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->citizens.size(), 2u);
  EXPECT_EQ(rest->citizens.back().id, ids[1]);  // the latest change comes last
  EXPECT_EQ(rest->citizens.back().name, "Renamed");
  CallContext late;
  late.deadline = CallContext::Clock::now() - std::chrono::seconds(1);
  EXPECT_EQ(run_awaitable(service->get_citizen(late, ids[0])).error().code, Errc::deadline_exceeded);
}

TEST_F(AuthServiceTest, DownModuleAnswersUnavailableButCachedTokensStillWork) {
  register_citizen("maria@example.org");
  auto session = run_awaitable(service->login("maria@example.org", "a long enough password", "127.0.0.1"));
  ASSERT_TRUE(session);
  ASSERT_TRUE(service->authenticate_now(session->token));
  service->stop();
  EXPECT_TRUE(service->authenticate_now(session->token));
  EXPECT_EQ(run_awaitable(service->get_citizen(CallContext::as_service("permits", "test"), 1)).error().code,
            Errc::unavailable);
  EXPECT_EQ(run_awaitable(service->login("maria@example.org", "a long enough password", "127.0.0.1")).error().code,
            Errc::unavailable);
  service->start();
}

TEST_F(AuthServiceTest, CreateStaffUserForTheCli) {
  auto created = create_staff_user(database, json::object(),
                                   StaffUser{"Boss@Example.org", "a strong password", "Boss", "admin", "CLERKS"});
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(created->department_created);
  EXPECT_EQ(create_staff_user(database, json::object(),
                              StaffUser{"boss@example.org", "a strong password", "Boss", "admin", std::nullopt})
                .error()
                .code,
            Errc::conflict);
  EXPECT_EQ(create_staff_user(database, json::object(),
                              StaffUser{"x@example.org", "a strong password", "X", "emperor", std::nullopt})
                .error()
                .code,
            Errc::unprocessable);
  auto session = run_awaitable(service->login("boss@example.org", "a strong password", "127.0.0.1"));
  ASSERT_TRUE(session);
  EXPECT_TRUE(session->principal->has("anything:at-all"));
  EXPECT_EQ(session->principal->department, "CLERKS");
}

// --- passwords (issue 27 §7) ------------------------------------------------------------

class AuthPasswordTest : public AuthServiceTest {
 protected:
  std::string login_token(const std::string& email, const std::string& password, const std::string& ip = "10.1.1.1") {
    auto session = run_awaitable(service->login(email, password, ip));
    return session ? session->token : std::string();
  }

  Result<Unit> change(const CallContext& context, const std::string& current, const std::string& next,
                      const std::string& session_token, const std::string& ip = "10.1.1.1") {
    return run_awaitable(service->change_password(context, current, next, ip, session_token));
  }

  Result<Unit> confirm(const std::string& token, const std::string& password, const std::string& ip = "10.2.2.2") {
    return run_awaitable(service->confirm_password_reset(CallContext{}, token, password, ip));
  }

  std::string issue(const std::string& email, std::shared_ptr<const Principal> staff = nullptr) {
    if (!staff) staff = employee(5, {"citizens:write"});
    auto issued = run_awaitable(service->issue_password_reset(as(staff), email));
    EXPECT_TRUE(issued) << (issued ? "" : issued.error().message);
    return issued ? issued->token : std::string();
  }

  // The principal a session token authenticates as (what the gateway hands the routes).
  CallContext signed_in(const std::string& token) {
    auto principal = service->authenticate_now(token);
    EXPECT_TRUE(principal);
    return as(principal ? *principal : nullptr);
  }

  std::string file_bytes() {
    std::string all;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      all += bytes.str();
    }
    return all;
  }
};

TEST_F(AuthPasswordTest, ChangingThePasswordNeedsTheCurrentOneAndEndsEveryOtherSession) {
  auto maria = register_citizen("maria@example.org");
  auto current = login_token("maria@example.org", "a long enough password");
  auto other = login_token("maria@example.org", "a long enough password", "10.9.9.9");
  ASSERT_TRUE(service->authenticate_now(other));  // cached now
  auto context = signed_in(current);

  auto wrong = change(context, "not her password", "a brand new password", current);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::invalid_argument);
  EXPECT_NE(wrong.error().message.find("current_password"), std::string::npos);
  auto weak = change(context, "a long enough password", "short", current);
  ASSERT_FALSE(weak);
  EXPECT_NE(weak.error().message.find("new_password"), std::string::npos);
  EXPECT_EQ(change(context, "a long enough password", "MARIA@example.org", current).error().code,
            Errc::invalid_argument);
  EXPECT_TRUE(service->authenticate_now(other));  // nothing changed yet

  auto changed = change(context, "a long enough password", "a brand new password", current);
  ASSERT_TRUE(changed) << changed.error().message;
  EXPECT_TRUE(service->authenticate_now(current));  // the caller's session stays
  EXPECT_FALSE(service->authenticate_now(other));   // every other one ended, cached or not
  EXPECT_TRUE(login_token("maria@example.org", "a long enough password").empty());
  EXPECT_FALSE(login_token("maria@example.org", "a brand new password").empty());
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.changed' AND subject = 'citizen:" +
                  std::to_string(maria.id) + "' AND actor = 'citizen:" + std::to_string(maria.id) + "'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE detail LIKE '%password\"%' OR detail LIKE '%new password%' "
                  "OR detail LIKE '%$argon2%'"),
            0);
  EXPECT_EQ(outbox(std::to_string(maria.id)).size(), 1u);  // citizen.created only: no event carries a password

  // Staff change theirs the same way.
  create_staff("rita@example.org", {"permits_reviewer"}, "BLD");
  auto rita = login_token("rita@example.org", "staff password 123");
  ASSERT_TRUE(change(signed_in(rita), "staff password 123", "another staff password", rita));
  EXPECT_FALSE(login_token("rita@example.org", "another staff password").empty());
}

TEST_F(AuthPasswordTest, AWrongCurrentPasswordCountsAsAFailedLoginOfTheAccount) {
  register_citizen("maria@example.org");
  auto token = login_token("maria@example.org", "a long enough password", "10.3.3.3");
  auto context = signed_in(token);
  // The throttle allows 3 failures per account and address: the third wrong guess comes
  // from login, so change and login share one count.
  EXPECT_EQ(change(context, "guess one!!", "a brand new password", token, "10.3.3.3").error().code,
            Errc::invalid_argument);
  EXPECT_EQ(change(context, "guess two!!", "a brand new password", token, "10.3.3.3").error().code,
            Errc::invalid_argument);
  EXPECT_FALSE(run_awaitable(service->login("maria@example.org", "guess three", "10.3.3.3")));
  auto refused = change(context, "a long enough password", "a brand new password", token, "10.3.3.3");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::too_many_requests);
  EXPECT_GT(refused.error().retry_after_seconds, 0);
  EXPECT_EQ(run_awaitable(service->login("maria@example.org", "a long enough password", "10.3.3.3")).error().code,
            Errc::too_many_requests);
  // Elsewhere the owner is only slowed down, never locked out.
  EXPECT_TRUE(change(context, "a long enough password", "a brand new password", token, "192.0.2.9"));
}

TEST_F(AuthPasswordTest, AResetTokenIsHashedAtRestUsedOnceAndEndsEverySession) {
  auto maria = register_citizen("maria@example.org");
  auto first = login_token("maria@example.org", "a long enough password");
  auto second = login_token("maria@example.org", "a long enough password", "10.9.9.9");
  ASSERT_TRUE(service->authenticate_now(first));  // cached now
  auto token = issue("Maria@Example.org");
  ASSERT_EQ(token.size(), 43u);
  EXPECT_EQ(count("SELECT count(*) FROM password_resets WHERE token_hash = '" + token_hash(token) + "'"), 1);
  EXPECT_EQ(file_bytes().find(token), std::string::npos) << "the plain token is in auth.db";
  EXPECT_TRUE(service->authenticate_now(first));  // issuing ends nothing

  ASSERT_TRUE(confirm(token, "a reset password 1"));
  EXPECT_FALSE(service->authenticate_now(first));
  EXPECT_FALSE(service->authenticate_now(second));
  EXPECT_TRUE(login_token("maria@example.org", "a long enough password").empty());
  EXPECT_FALSE(login_token("maria@example.org", "a reset password 1").empty());
  auto again = confirm(token, "a reset password 2");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, kResetFailed);
  EXPECT_TRUE(login_token("maria@example.org", "a reset password 2", "10.4.4.4").empty());

  const auto subject = "'citizen:" + std::to_string(maria.id) + "'";
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.issued' AND actor = 'employee:5' "
                  "AND subject = " +
                  subject),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.used' AND subject = " + subject +
                  " AND detail LIKE '%\"issued_by\":\"employee:5\"%' AND detail LIKE '%\"sessions_ended\":2%'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE instr(coalesce(detail, ''), '" + token + "') > 0 OR " +
                  "instr(coalesce(detail, ''), '" + token_hash(token) + "') > 0"),
            0);
  EXPECT_EQ(file_bytes().find(token), std::string::npos);
}

TEST_F(AuthPasswordTest, TwoConfirmationsWithOneTokenSetThePasswordOnce) {
  register_citizen("maria@example.org");
  auto token = issue("maria@example.org");
  // Both start before either finishes: each passes the read check, hashes off the
  // thread, then the writer decides.
  boost::asio::io_context io;
  std::vector<Result<Unit>> results;
  const CallContext anonymous;  // outlives both coroutines
  for (const auto* password : {"first new password", "second new password"})
    boost::asio::co_spawn(io, service->confirm_password_reset(anonymous, token, password, "10.5.5.5"),
                          [&](std::exception_ptr error, Result<Unit> result) {
                            EXPECT_FALSE(error);
                            results.push_back(std::move(result));
                          });
  io.run();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(static_cast<int>(static_cast<bool>(results[0])) + static_cast<int>(static_cast<bool>(results[1])), 1);
  for (const auto& result : results) {
    if (!result) {
      EXPECT_EQ(result.error().message, kResetFailed);
    }
  }
  int working = 0;
  for (const auto* password : {"first new password", "second new password"})
    working += login_token("maria@example.org", password).empty() ? 0 : 1;
  EXPECT_EQ(working, 1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.used'"), 1);
}

TEST_F(AuthPasswordTest, AnExpiredOrReplacedTokenIsRefused) {
  register_citizen("maria@example.org");
  auto expired = issue("maria@example.org");
  database.open(db::Role::owner)->exec("UPDATE password_resets SET expires_at = '2020-01-01T00:00:00.000Z'");
  auto refused = confirm(expired, "a brand new password");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, kResetFailed);
  EXPECT_FALSE(login_token("maria@example.org", "a long enough password").empty());  // unchanged

  auto older = issue("maria@example.org");
  auto newer = issue("maria@example.org");
  auto replaced = confirm(older, "a brand new password");
  ASSERT_FALSE(replaced);
  EXPECT_EQ(replaced.error().message, kResetFailed);
  EXPECT_TRUE(confirm(newer, "a brand new password"));
  EXPECT_EQ(count("SELECT count(*) FROM password_resets"), 1);  // the expired one pruned, the older replaced

  // The default lifetime is 30 minutes.
  auto issued = run_awaitable(service->issue_password_reset(as(employee(5, {"citizens:write"})), "maria@example.org"));
  ASSERT_TRUE(issued);
  auto expires = utc::parse(issued->expires_at);
  ASSERT_TRUE(expires);
  auto left = *expires - std::chrono::system_clock::now();
  EXPECT_GT(left, std::chrono::minutes(29));
  EXPECT_LE(left, std::chrono::minutes(30));
}

// The hash the current password was verified against must still be the stored one when
// the change is written: of two changes racing from one old password, the second is refused.
TEST_F(AuthPasswordTest, AChangeRacingAnotherIsRefused) {
  auto maria = register_citizen("maria@example.org");
  auto connection = database.open(db::Role::service);
  auto verified_against = store::find_active_account(*connection, Principal::Kind::citizen, maria.id);
  ASSERT_TRUE(verified_against);
  auto change_to = [&](const std::string& password) {
    return db::run_in_transaction(*connection,
                                  [&](db::Connection& service) {
                                    return commands::change_password(
                                        service, *verified_against, hash_password(password, settings.password_cost), "",
                                        "10.1.1.1", commands::WriteContext{"test", "test", {}});
                                  },
                                  {});
  };
  ASSERT_TRUE(change_to("the first new password"));
  auto second = change_to("the second new password");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::conflict);
  EXPECT_FALSE(login_token("maria@example.org", "the first new password").empty());
}

TEST_F(AuthPasswordTest, WhoMayIssueAResetToken) {
  auto maria = register_citizen("maria@example.org");
  create_staff("rita@example.org", {"permits_reviewer"}, "BLD");
  auto attempt = [&](std::shared_ptr<const Principal> caller, const std::string& email) {
    auto issued = run_awaitable(service->issue_password_reset(as(std::move(caller)), email));
    return issued ? 0 : static_cast<int>(issued.error().code);
  };
  const auto clerk = employee(5, {"citizens:read", "citizens:write"});
  const auto staff_admin = employee(6, {"auth:admin"});
  EXPECT_EQ(attempt(citizen(maria.id), "maria@example.org"), static_cast<int>(Errc::forbidden));
  EXPECT_EQ(attempt(employee(7, {"citizens:read"}), "maria@example.org"), static_cast<int>(Errc::forbidden));
  EXPECT_EQ(attempt(nullptr, "maria@example.org"), static_cast<int>(Errc::forbidden));
  EXPECT_EQ(attempt(clerk, "maria@example.org"), 0);
  // An account the caller may not reset answers as no account: a clerk cannot tell
  // an employee's email from an unknown one.
  EXPECT_EQ(attempt(clerk, "rita@example.org"), static_cast<int>(Errc::not_found));  // an employee: auth:admin
  auto as_clerk = run_awaitable(service->issue_password_reset(as(clerk), "rita@example.org"));
  auto unknown = run_awaitable(service->issue_password_reset(as(clerk), "nobody@example.org"));
  ASSERT_FALSE(as_clerk);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(as_clerk.error().message, unknown.error().message);
  EXPECT_EQ(attempt(staff_admin, "rita@example.org"), 0);
  EXPECT_EQ(attempt(staff_admin, "maria@example.org"), static_cast<int>(Errc::not_found));
  EXPECT_EQ(attempt(employee(8, {"*"}), "rita@example.org"), 0);
  EXPECT_EQ(attempt(clerk, "nobody@example.org"), static_cast<int>(Errc::not_found));
  EXPECT_EQ(attempt(clerk, "not an email"), static_cast<int>(Errc::invalid_argument));
  ASSERT_TRUE(run_awaitable(service->delete_citizen(as(employee(8, {"*"})), maria.id)));
  EXPECT_EQ(attempt(clerk, "maria@example.org"), static_cast<int>(Errc::not_found));
}

TEST_F(AuthPasswordTest, PublicFailuresLookAlikeAndAreThrottledPerAddress) {
  register_citizen("maria@example.org");
  auto used = issue("maria@example.org");
  ASSERT_TRUE(confirm(used, "a brand new password", "10.7.7.7"));
  auto live = issue("maria@example.org");
  // Malformed, unknown, used: one code, one message (the throttle allows 3 per address).
  std::vector<Result<Unit>> failures = {confirm("x", "another new password", "10.6.6.6"),
                                        confirm(new_session_token(), "another new password", "10.6.6.6"),
                                        confirm(used, "another new password", "10.6.6.6")};
  for (const auto& failure : failures) {
    ASSERT_FALSE(failure);
    EXPECT_EQ(failure.error().code, Errc::invalid_argument);
    EXPECT_EQ(failure.error().message, kResetFailed);
  }
  // The address is refused now, even with the live token; another address is not.
  auto refused = confirm(live, "another new password", "10.6.6.6");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::too_many_requests);
  EXPECT_TRUE(confirm(live, "another new password", "10.8.8.8"));
}

// The public "forgot password" request: the same answer and the same trace for a known
// and an unknown email, every request counted per email and address, and no token.
TEST_F(AuthPasswordTest, RequestsAnswerAlikeForKnownAndUnknownEmailsAndAreThrottled) {
  auto maria = register_citizen("maria@example.org");
  create_staff("rita@example.org", {"permits_reviewer"}, "BLD");
  auto request = [&](const std::string& email, const std::string& ip = "10.6.6.6") {
    return run_awaitable(service->request_password_reset(CallContext{}, email, ip));
  };
  EXPECT_TRUE(request("Maria@Example.org"));
  EXPECT_TRUE(request("rita@example.org"));
  EXPECT_TRUE(request("nobody@example.org"));
  EXPECT_EQ(request("not an email").error().code, Errc::invalid_argument);  // syntax only
  EXPECT_EQ(count("SELECT count(*) FROM password_resets"), 0);              // nothing to deliver one with yet
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.requested' AND subject = 'citizen:" +
                  std::to_string(maria.id) + "' AND detail LIKE '%10.6.6.6%'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.requested' AND subject LIKE "
                  "'employee:%'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.requested' AND subject = 'none'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE instr(coalesce(detail, '') || subject, 'nobody') > 0"), 0);

  // 3 per email and address in the test settings, known or not; another address is not
  // refused, and failed logins are counted apart.
  for (const auto* email : {"maria@example.org", "nobody@example.org"}) {
    EXPECT_TRUE(request(email, "10.7.7.7"));
    EXPECT_TRUE(request(email, "10.7.7.7"));
    EXPECT_TRUE(request(email, "10.7.7.7"));
    auto refused = request(email, "10.7.7.7");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::too_many_requests);
    EXPECT_GT(refused.error().retry_after_seconds, 0);
    EXPECT_TRUE(request(email, "10.8.8.8"));
  }
  EXPECT_TRUE(run_awaitable(service->login("maria@example.org", "a long enough password", "10.7.7.7")));
}

TEST_F(AuthPasswordTest, TheCliIssuesATokenThatWorks) {
  register_citizen("maria@example.org");
  auto issued = issue_password_reset(database, json::object(), "MARIA@example.org");
  ASSERT_TRUE(issued) << issued.error().message;
  EXPECT_EQ(issued->account, "citizen:1");
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'password.reset.issued' AND actor = 'cli'"), 1);
  EXPECT_EQ(issue_password_reset(database, json::object(), "nobody@example.org").error().code, Errc::not_found);
  ASSERT_TRUE(confirm(issued->token, "a cli reset password"));
  EXPECT_FALSE(login_token("maria@example.org", "a cli reset password").empty());
}

TEST(LoginThrottle, LocksAnAccountPerAddressAndSlowsItDownEverywhere) {
  LoginThrottle::Limits limits;
  limits.max_per_account_and_ip = 2;
  limits.max_per_ip = 5;
  limits.window = std::chrono::seconds(60);
  limits.base_delay = std::chrono::milliseconds(100);
  limits.max_delay = std::chrono::milliseconds(350);
  LoginThrottle throttle(limits);
  auto t0 = LoginThrottle::Clock::now();
  EXPECT_FALSE(throttle.check("a", "ip", t0).refused);
  throttle.failed("a", "ip", t0);
  throttle.failed("a", "ip", t0);
  auto verdict = throttle.check("a", "ip", t0 + std::chrono::seconds(10));
  ASSERT_TRUE(verdict.refused);
  EXPECT_EQ(verdict.refused->count(), 50);
  // The same account from another address is not refused, only delayed, and the delay
  // grows with further failures up to its bound.
  auto elsewhere = throttle.check("a", "other", t0);
  EXPECT_FALSE(elsewhere.refused);
  EXPECT_EQ(elsewhere.delay, std::chrono::milliseconds(100));
  throttle.failed("a", "third", t0);
  EXPECT_EQ(throttle.check("a", "other", t0).delay, std::chrono::milliseconds(200));
  throttle.failed("a", "fourth", t0);
  throttle.failed("a", "fifth", t0);
  EXPECT_EQ(throttle.check("a", "other", t0).delay, std::chrono::milliseconds(350));
  EXPECT_FALSE(throttle.check("b", "ip", t0).refused);  // the address has 2 of 5
  EXPECT_EQ(throttle.check("b", "ip", t0).delay, std::chrono::milliseconds(0));
  EXPECT_FALSE(throttle.check("a", "ip", t0 + std::chrono::seconds(61)).refused);
  for (int i = 0; i < 5; ++i) throttle.failed("k" + std::to_string(i), "ip2", t0);
  EXPECT_TRUE(throttle.check("fresh", "ip2", t0).refused);  // per address
  // The owner's success clears the account's delay.
  throttle.succeeded("a", "other");
  EXPECT_EQ(throttle.check("a", "other", t0).delay, std::chrono::milliseconds(0));
}

TEST(LoginThrottle, SuccessfulLoginsAreBoundedPerAccountAndPerAddress) {
  LoginThrottle::Limits limits;
  limits.max_logins_per_account = 2;
  limits.max_logins_per_ip = 3;
  limits.login_window = std::chrono::seconds(60);
  LoginThrottle throttle(limits);
  auto t0 = LoginThrottle::Clock::now();
  throttle.succeeded("a", "ip1", t0);
  EXPECT_FALSE(throttle.check("a", "ip2", t0).refused);
  throttle.succeeded("a", "ip2", t0);
  auto verdict = throttle.check("a", "ip3", t0 + std::chrono::seconds(15));  // any address
  ASSERT_TRUE(verdict.refused);
  EXPECT_EQ(verdict.reason, LoginThrottle::Reason::logins);
  EXPECT_EQ(verdict.refused->count(), 45);
  EXPECT_FALSE(throttle.check("a", "ip3", t0 + std::chrono::seconds(60)).refused);  // the window ended
  // Per address, over accounts.
  throttle.succeeded("b", "ip9", t0);
  throttle.succeeded("c", "ip9", t0);
  EXPECT_FALSE(throttle.check("d", "ip9", t0).refused);
  throttle.succeeded("d", "ip9", t0);
  EXPECT_TRUE(throttle.check("e", "ip9", t0).refused);
  EXPECT_FALSE(throttle.check("e", "ip8", t0).refused);
}

TEST(TokenCache, AnInvalidationWinsOverALookupThatStartedBeforeIt) {
  TokenCache cache(std::chrono::milliseconds(5000));
  auto principal = std::make_shared<Principal>();
  principal->id = 7;
  auto far = std::chrono::system_clock::now() + std::chrono::hours(1);
  auto seen = cache.generation();
  cache.erase_principal(Principal::Kind::citizen, 7);  // e.g. logout, while a lookup read the database
  cache.insert("h", principal, far, seen);
  EXPECT_EQ(cache.find("h"), nullptr);
  cache.insert("h", principal, far, cache.generation());
  EXPECT_NE(cache.find("h"), nullptr);
  // Entries never outlive their session, nor their TTL.
  cache.insert("old", principal, std::chrono::system_clock::now() - std::chrono::seconds(1), cache.generation());
  EXPECT_EQ(cache.find("old"), nullptr);
  EXPECT_EQ(cache.find("h", TokenCache::Clock::now() + std::chrono::seconds(6)), nullptr);
}

TEST(AuthSettings, UnknownOrBadKeysAreNamed) {
  EXPECT_NO_THROW(parse_settings(json::object()));
  auto message = [](const json& section) { return testing::thrown_message([&] { parse_settings(section); }); };
  EXPECT_NE(message({{"session_ttl", 5}}).find("modules.auth.settings.session_ttl: unknown"), std::string::npos);
  EXPECT_NE(message({{"session_ttl_seconds", 0}}).find("session_ttl_seconds"), std::string::npos);
  EXPECT_NE(message({{"password_hash", {{"memory_kib", 1}}}}).find("password_hash.memory_kib"), std::string::npos);
  EXPECT_NE(message({{"login_throttle", {{"x", 1}}}}).find("login_throttle.x"), std::string::npos);
  EXPECT_NE(message({{"password_reset_ttl_seconds", 0}}).find("password_reset_ttl_seconds"), std::string::npos);
  EXPECT_EQ(parse_settings({{"password_reset_ttl_seconds", 600}}).password_reset_ttl, std::chrono::seconds(600));
  EXPECT_NE(message({{"login_throttle", {{"max_logins_per_account", 0}}}}).find("max_logins_per_account"),
            std::string::npos);
  EXPECT_NE(message({{"password_hash", {{"max_queued", 0}}}}).find("password_hash.max_queued"), std::string::npos);
  auto parsed = parse_settings(
      {{"login_throttle", {{"max_logins_per_account", 4}, {"max_logins_per_ip", 9}, {"login_window_seconds", 30}}},
       {"password_hash", {{"max_queued", 3}}}});
  EXPECT_EQ(parsed.login_throttle.max_logins_per_account, 4);
  EXPECT_EQ(parsed.login_throttle.max_logins_per_ip, 9);
  EXPECT_EQ(parsed.login_throttle.login_window, std::chrono::seconds(30));
  EXPECT_EQ(parsed.max_queued_password_hashes, 3u);
}

}  // namespace
}  // namespace townhall::auth
