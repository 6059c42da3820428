// Logins and sessions: throttled, bounded password hashing, tokens stored as hashes and
// cached, revoked with role changes; staff accounts made by the CLI.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "fixture.hpp"
#include "throttle.hpp"
#include "token_cache.hpp"

namespace townhall::auth {
namespace {

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

// Issue 25: the portal's sessions page lists the account's own live sessions, paged, the
// caller's marked; no token and no token hash is shown, and another account's never.
TEST_F(AuthServiceTest, AnAccountListsItsOwnLiveSessionsWithoutTokens) {
  register_citizen("maria@example.org");
  register_citizen("li@example.org");
  std::vector<LoginResult> marias;
  for (const char* address : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    auto login = run_awaitable(service->login("maria@example.org", "a long enough password", address));
    ASSERT_TRUE(login) << login.error().message;
    marias.push_back(std::move(*login));
  }
  ASSERT_TRUE(run_awaitable(service->login("li@example.org", "a long enough password", "10.0.0.9")));
  ASSERT_TRUE(run_awaitable(service->logout(marias[0].token)));  // revoked: not listed

  auto maria = as(marias[1].principal);
  auto first = service->list_sessions(maria, marias[2].token, {1, "", true});
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->items.size(), 1u);
  EXPECT_EQ(first->total, 2);
  ASSERT_TRUE(first->next_cursor);
  auto second = service->list_sessions(maria, marias[2].token, {1, *first->next_cursor, false});
  ASSERT_TRUE(second) << second.error().message;
  ASSERT_EQ(second->items.size(), 1u);
  EXPECT_FALSE(second->next_cursor);
  const auto& older = first->items[0];
  const auto& newer = second->items[0];
  EXPECT_EQ(older.client_ip, "10.0.0.2");
  EXPECT_EQ(newer.client_ip, "10.0.0.3");
  EXPECT_FALSE(older.current);
  EXPECT_TRUE(newer.current);  // the caller's own session
  for (const auto& session : {older, newer}) {
    EXPECT_EQ(session.public_id.size(), 16u);
    for (const auto& login : marias) {
      EXPECT_EQ(session.public_id.find(login.token.substr(0, 8)), std::string::npos);
      EXPECT_NE(token_hash(login.token), session.public_id);  // a prefix of the hash, never the hash
    }
  }
  // Another account's cursor is refused.
  auto li = run_awaitable(service->login("li@example.org", "a long enough password", "10.0.0.9"));
  ASSERT_TRUE(li);
  auto stolen = service->list_sessions(as(li->principal), li->token, {1, *first->next_cursor, false});
  ASSERT_FALSE(stolen);
  EXPECT_EQ(stolen.error().code, Errc::invalid_argument);
  auto lis = service->list_sessions(as(li->principal), li->token, {50, "", false});
  ASSERT_TRUE(lis);
  EXPECT_EQ(lis->items.size(), 2u);  // Li's two, none of Maria's
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

}  // namespace
}  // namespace townhall::auth
