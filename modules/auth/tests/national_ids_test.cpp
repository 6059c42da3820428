// The national id: one verified identity each, sealed with auth.key (checked against
// auth.db at start), read only audited.
#include "fixture.hpp"

namespace townhall::auth {
namespace {

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

}  // namespace
}  // namespace townhall::auth
