// Password changes and resets (issue 27 §7).
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "service_internal.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {

boost::asio::awaitable<Result<Unit>> AuthService::pass_throttle(LoginThrottle& throttle, const std::string& account,
                                                                const std::string& client_ip) {
  auto verdict = throttle.check(account, client_ip);
  if (auto wait = verdict.refused) {
    if (&throttle == &throttle_) login_throttled_->inc();
    co_return make_error(Errc::too_many_requests,
                         "too many attempts from this address; retry after " + std::to_string(wait->count()) + " s",
                         static_cast<int>(wait->count()));
  }
  if (verdict.delay.count() > 0) {
    boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor, verdict.delay);
    co_await pause.async_wait(boost::asio::use_awaitable);
  }
  co_return Unit{};
}

boost::asio::awaitable<Result<Unit>> AuthService::change_password(const CallContext& context,
                                                                  std::string current_password,
                                                                  std::string new_password, std::string client_ip,
                                                                  std::string session_token) {
  const auto principal = context.principal;
  if (!principal) co_return make_error(Errc::unauthorized, "sign in to change your password");
  if (auto ok = usable(); !ok) co_return ok.error();
  if (auto policy = check_password_policy(new_password, principal->email); !policy)
    co_return make_error(Errc::invalid_argument, "field 'new_password': " + policy.error().message);
  // The login throttle's key for this account (its normalized email): a wrong current
  // password counts as a failed login, so a stolen session guesses no faster here.
  const std::string account_key = principal->email;
  if (auto ok = co_await pass_throttle(throttle_, account_key, client_ip); !ok) co_return ok.error();
  auto account = deps_.readers.read([&](db::Connection& reader) -> Result<store::Account> {
    auto found = store::find_active_account(reader, principal->kind, principal->id);
    if (!found) return kInvalidToken;
    return *found;
  });
  if (!account) co_return account.error();
  auto verify = [&] {
    return current_password.size() <= 256 && verify_password(account->password_hash, current_password);
  };
  auto verified = co_await hash_off_thread(verify);
  if (!verified) co_return verified.error();  // the hashing queue is full: 503, not a failed guess
  if (!*verified) {
    throttle_.failed(account_key, client_ip);
    co_return make_error(Errc::invalid_argument, "field 'current_password': is not this account's password");
  }
  throttle_.succeeded(account_key, client_ip);
  auto hash = [&] { return hash_password(new_password, settings_.password_cost); };
  auto new_hash = co_await hash_off_thread(hash);
  if (!new_hash) co_return new_hash.error();
  const auto kept = token_hash(session_token);
  auto ended = co_await writes_.run([&](db::Connection& service) {
    return commands::change_password(service, *account, *new_hash, kept, client_ip, write_context(context));
  });
  if (!ended) co_return ended.error();
  // The other sessions were revoked in the same transaction; forget cached principals.
  token_cache_.erase_principal(principal->kind, principal->id);
  spdlog::info("auth: {} changed its password ({} other sessions ended)",
               store::subject_of(principal->kind, principal->id), *ended);
  co_return Unit{};
}

boost::asio::awaitable<Result<commands::IssuedPasswordReset>> AuthService::issue_password_reset(
    const CallContext& context, std::string email_text) {
  const auto principal = context.principal;
  if (!principal || !(principal->has("citizens:write") || principal->has("auth:admin")))
    co_return make_error(Errc::forbidden, "needs permission citizens:write (citizens) or auth:admin (employees)");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto email = input::normalize_email(email_text);
  if (!email) co_return email.error();
  // An account the caller may not reset answers as no account does: a clerk learns
  // nothing of who is an employee (nor an admin of who is a citizen).
  auto may_reset = [&](const store::Account& account) -> Result<Unit> {
    bool allowed =
        account.kind == Principal::Kind::employee ? principal->has("auth:admin") : principal->has("citizens:write");
    if (!allowed) return make_error(Errc::not_found, std::string(commands::kNoResettableAccount));
    return Unit{};
  };
  auto issued = co_await writes_.run([&](db::Connection& service) {
    return commands::issue_password_reset(service, *email, settings_.password_reset_ttl, may_reset,
                                          write_context(context));
  });
  if (issued)
    spdlog::info("auth: password reset token for {} issued by {} (expires {})",
                 store::subject_of(issued->account.kind, issued->account.id), actor_of(context), issued->expires_at);
  co_return issued;
}

boost::asio::awaitable<Result<Unit>> AuthService::confirm_password_reset(const CallContext& context, std::string token,
                                                                         std::string new_password,
                                                                         std::string client_ip) {
  if (auto ok = usable(); !ok) co_return ok.error();
  // Failed confirmations are counted per client address by the login throttle (under a
  // key no email can take: input text has no control characters), and add to the
  // address's failed logins: a token cannot be guessed faster than a password. A refused
  // address is refused whatever it sends, a live token included.
  const std::string throttle_key = "\npassword-reset\n" + client_ip;
  if (auto ok = co_await pass_throttle(throttle_, throttle_key, client_ip); !ok) co_return ok.error();
  // The rules that need no account first: their answer tells nothing of the token.
  if (auto policy = check_password_policy(new_password, {}); !policy)
    co_return make_error(Errc::invalid_argument, "field 'new_password': " + policy.error().message);
  const Error failed{Errc::invalid_argument, std::string(kResetFailed)};
  if (!looks_like_token(token)) {
    throttle_.failed(throttle_key, client_ip);
    co_return failed;
  }
  const auto hashed = token_hash(token);
  auto account = deps_.readers.read([&](db::Connection& reader) -> Result<store::Account> {
    auto reset = store::find_password_reset(reader, hashed);
    if (!reset || reset->used_at || reset->expires_at <= utc::now()) return failed;
    auto found = store::find_active_account(reader, reset->kind, reset->principal_id);
    if (!found) return failed;
    return *found;
  });
  if (!account) {
    if (account.error().code == failed.code) throttle_.failed(throttle_key, client_ip);
    co_return account.error();
  }
  // The token is good: only its holder learns that the password is the email.
  if (auto policy = check_password_policy(new_password, account->email); !policy)
    co_return make_error(Errc::invalid_argument, "field 'new_password': " + policy.error().message);
  auto hash = [&] { return hash_password(new_password, settings_.password_cost); };
  auto new_hash = co_await hash_off_thread(hash);
  if (!new_hash) co_return new_hash.error();
  // Used in the write transaction: of two confirmations with one token, one sets the password.
  auto reset = co_await writes_.run([&](db::Connection& service) {
    return commands::reset_password(service, hashed, *new_hash, client_ip, write_context(context));
  });
  if (!reset) {
    if (reset.error().code != Errc::not_found) co_return reset.error();
    throttle_.failed(throttle_key, client_ip);
    co_return failed;
  }
  token_cache_.erase_principal(reset->kind, reset->id);
  spdlog::info("auth: the password of {} was reset with a token; its sessions ended",
               store::subject_of(reset->kind, reset->id));
  co_return Unit{};
}

boost::asio::awaitable<Result<Unit>> AuthService::request_password_reset(const CallContext& context,
                                                                         std::string email_text,
                                                                         std::string client_ip) {
  if (auto ok = usable(); !ok) co_return ok.error();
  auto email = input::normalize_email(email_text);  // its syntax says nothing of accounts
  if (!email) co_return email.error();
  // Every request counts (nothing is guessed here, but each would become an email): per
  // email and address, per address, and a bounded delay per email.
  if (auto ok = co_await pass_throttle(reset_requests_, *email, client_ip); !ok) co_return ok.error();
  reset_requests_.failed(*email, client_ip);
  // Known or not, one read and one audited write (and for an account, the token the
  // notify module mails): the answer is the same.
  const SecretBox* sealer = key_usable() ? &*secrets_ : nullptr;
  auto recorded = co_await writes_.run([&](db::Connection& service) {
    return commands::record_password_reset_request(service, *email, settings_.password_reset_ttl, sealer, client_ip,
                                                   write_context(context));
  });
  if (!recorded) co_return recorded.error();
  if (recorded->subject && recorded->mailed)
    spdlog::info("auth: {} asked for a password reset from {}; its token goes by email (notify)", *recorded->subject,
                 client_ip);
  else if (recorded->subject)
    spdlog::warn(
        "auth: {} asked for a password reset from {}; no token issued: auth.key does not open the sealed "
        "data (staff can issue one with `townhall admin reset-password`)",
        *recorded->subject, client_ip);
  co_return Unit{};
}

boost::asio::awaitable<Result<PasswordResetMail>> AuthService::password_reset_mail(CallContext context,
                                                                                   std::string reference) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (!context.is_service()) co_return make_error(Errc::forbidden, "only a module may read a reset token to mail");
  if (auto ok = usable(); !ok) co_return ok.error();
  if (auto ok = key_usable(); !ok) co_return ok.error();
  const Error gone{Errc::not_found, "the reset token was used, replaced or has expired"};
  auto found =
      deps_.readers.read([&](db::Connection& reader) -> Result<std::pair<store::PasswordReset, store::Account>> {
        auto reset = store::find_password_reset(reader, reference);
        if (!reset || reset->used_at || !reset->sealed_token || reset->expires_at <= utc::now()) return gone;
        auto account = store::find_active_account(reader, reset->kind, reset->principal_id);
        if (!account) return gone;
        return std::pair{*reset, *account};
      });
  if (!found) co_return found.error();
  auto token = secrets_->open(*found->first.sealed_token);
  if (!token) {
    spdlog::error("auth: a sealed reset token does not open with the checked key (damaged row)");
    co_return make_error(Errc::unavailable, "the reset token cannot be read: its sealed value in auth.db is damaged");
  }
  // The address the account has now (an email changed since the request goes there).
  co_return PasswordResetMail{std::move(*token), found->second.email, found->first.expires_at};
}

}  // namespace townhall::auth
