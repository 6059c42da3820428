// Password changes and resets (issue 27 §7).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <sstream>

#include "fixture.hpp"

namespace townhall::auth {
namespace {

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

// The public "forgot password" request: the same answer and the same audit trace for a
// known and an unknown email, every request counted per email and address.
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
  // One token per account, kept for the mailer and announced; none for an unknown email.
  EXPECT_EQ(count("SELECT count(*) FROM password_resets WHERE sealed_token IS NOT NULL"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'password_reset.requested'"), 2);
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

// A requested token goes by email: the event names the reset, never the token; the
// mailer (a module calling as itself) gets the token from auth when it sends, until it
// is used or replaced; the token is in no file in the clear.
TEST_F(AuthPasswordTest, ARequestedTokenIsAnnouncedWithoutItAndHandedOnlyToTheMailer) {
  auto maria = register_citizen("maria@example.org");
  const auto account = "citizen:" + std::to_string(maria.id);
  ASSERT_TRUE(run_awaitable(service->request_password_reset(CallContext{}, "maria@example.org", "10.6.6.6")));
  auto announced = outbox(account);
  ASSERT_EQ(announced.size(), 1u);
  EXPECT_EQ(announced[0]["type"], events::kPasswordResetRequested);
  const auto data = announced[0]["data"];
  EXPECT_EQ(data["schema_version"], 1);
  EXPECT_EQ(data["account_kind"], "citizen");
  EXPECT_EQ(data["account_id"], maria.id);
  EXPECT_EQ(data["email"], "maria@example.org");
  const auto reference = data["reference"].get<std::string>();
  EXPECT_EQ(count("SELECT count(*) FROM password_resets WHERE token_hash = '" + reference + "'"), 1);

  const auto mailer = CallContext::as_service("notify", "test");
  auto refused = run_awaitable(service->password_reset_mail(as(citizen(maria.id)), reference));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::forbidden);
  auto mail = run_awaitable(service->password_reset_mail(mailer, reference));
  ASSERT_TRUE(mail) << mail.error().message;
  EXPECT_EQ(mail->email, "maria@example.org");
  EXPECT_EQ(token_hash(mail->token), reference);
  EXPECT_EQ(data.dump().find(mail->token), std::string::npos);
  EXPECT_EQ(file_bytes().find(mail->token), std::string::npos) << "the plain token is in auth.db";

  // A second request replaces the first token; the first is no longer handed out.
  ASSERT_TRUE(run_awaitable(service->request_password_reset(CallContext{}, "maria@example.org", "10.6.6.6")));
  EXPECT_EQ(run_awaitable(service->password_reset_mail(mailer, reference)).error().code, Errc::not_found);
  const auto second = outbox(account).back()["data"]["reference"].get<std::string>();
  auto newer = run_awaitable(service->password_reset_mail(mailer, second));
  ASSERT_TRUE(newer);
  EXPECT_FALSE(confirm(mail->token, "a reset password 1"));
  ASSERT_TRUE(confirm(newer->token, "a reset password 1"));
  EXPECT_FALSE(login_token("maria@example.org", "a reset password 1").empty());
  // Used: no longer handed out, and its sealed copy is gone.
  EXPECT_EQ(run_awaitable(service->password_reset_mail(mailer, second)).error().code, Errc::not_found);
  EXPECT_EQ(count("SELECT count(*) FROM password_resets WHERE sealed_token IS NOT NULL"), 0);
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

}  // namespace
}  // namespace townhall::auth
