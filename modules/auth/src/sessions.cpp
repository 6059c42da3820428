// Sessions: login (throttled, hashed off the I/O threads), logout, and the token
// authentication every request goes through.
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "service_internal.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {

std::shared_ptr<const Principal> AuthService::load_principal(db::Connection& connection, Principal::Kind kind,
                                                             std::int64_t id) {
  auto principal = std::make_shared<Principal>();
  principal->id = id;
  principal->kind = kind;
  if (kind == Principal::Kind::citizen) {
    auto row = store::find_citizen(connection, id);
    if (!row || row->deleted_at || !row->citizen.is_active) return nullptr;
    principal->email = row->citizen.email;
    principal->name = row->citizen.name;
  } else {
    auto row = store::find_employee(connection, id);
    if (!row || !row->is_active) return nullptr;
    principal->email = row->email;
    principal->name = row->name;
    principal->department = row->department_code.value_or("");
  }
  principal->roles = store::roles_of(connection, kind, id);
  principal->permissions = store::permissions_of(connection, principal->roles);
  return principal;
}

boost::asio::awaitable<Result<LoginResult>> AuthService::login(std::string email_text, std::string password,
                                                               std::string client_ip) {
  if (auto ok = usable(); !ok) co_return ok.error();
  auto normalized = input::normalize_email(email_text);
  // Throttle by the address as typed when it is not a valid email: still one account key.
  std::string account = normalized ? *normalized : email_text.substr(0, 254);
  auto verdict = throttle_.check(account, client_ip);
  if (auto wait = verdict.refused) {
    login_throttled_->inc();
    auto why = verdict.reason == LoginThrottle::Reason::failures
                   ? "too many failed logins from this address"
                   : "too many logins to this account or from this address";
    co_return make_error(Errc::too_many_requests,
                         std::string(why) + "; retry after " + std::to_string(wait->count()) + " s",
                         static_cast<int>(wait->count()));
  }
  if (verdict.delay.count() > 0) {
    // The account is under attack from elsewhere: slow every attempt down, lock nobody out.
    boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor, verdict.delay);
    co_await pause.async_wait(boost::asio::use_awaitable);
  }

  // Look the account up; an unknown one is verified against a decoy hash of the same
  // cost, so the answer and its timing do not tell whether the email exists.
  std::optional<std::string> hash;
  Principal::Kind kind = Principal::Kind::citizen;
  std::int64_t id = 0;
  if (normalized && password.size() <= 256) {
    auto found = deps_.readers.read([&](db::Connection& reader) -> Result<Unit> {
      if (auto employee = store::find_employee_by_email(reader, *normalized); employee && employee->is_active) {
        hash = employee->password_hash, kind = Principal::Kind::employee, id = employee->id;
      } else if (auto citizen = store::find_active_citizen_by_email(reader, *normalized)) {
        hash = citizen->password_hash, kind = Principal::Kind::citizen, id = citizen->citizen.id;
      }
      return Unit{};
    });
    if (!found) co_return found.error();
  }
  if (password.size() > 256) password.resize(256);
  auto verify = [&] {
    return hash ? verify_password(*hash, password) : verify_password_of_nobody(password, settings_.password_cost);
  };
  auto verified = co_await hash_off_thread(verify);
  if (!verified) {
    login_busy_->inc();
    co_return verified.error();
  }
  if (!*verified) {
    throttle_.failed(account, client_ip);
    login_failure_->inc();
    co_return make_error(Errc::unauthorized, std::string(kLoginFailed));
  }
  throttle_.succeeded(account, client_ip);

  auto token = new_session_token();
  auto expires = std::chrono::system_clock::now() + settings_.session_ttl;
  store::Session session{kind, id, utc::format(expires), std::nullopt};
  auto hashed = token_hash(token);
  auto principal = co_await writes_.run([&](db::Connection& service) -> Result<std::shared_ptr<const Principal>> {
    store::insert_session(service, hashed, session, utc::now(), client_ip);
    if (++logins_ % 1000 == 0) store::prune_sessions(service, utc::now());
    auto loaded = load_principal(service, kind, id);
    if (!loaded) return make_error(Errc::unauthorized, std::string(kLoginFailed));
    return loaded;
  });
  if (!principal) co_return principal.error();
  login_success_->inc();
  co_return LoginResult{std::move(token), session.expires_at, std::move(principal.value())};
}

boost::asio::awaitable<Result<Unit>> AuthService::logout(std::string_view token) {
  auto hashed = token_hash(token);
  auto revoked = co_await writes_.run([&](db::Connection& service) -> Result<Unit> {
    store::revoke_session(service, hashed, utc::now());
    return Unit{};
  });
  token_cache_.erase(hashed);
  co_return revoked;
}

Result<input::Listed<store::SessionListing>> AuthService::list_sessions(const CallContext& context,
                                                                        std::string_view session_token,
                                                                        input::Page page) {
  const auto* principal = context.principal.get();
  if (!principal) return make_error(Errc::forbidden, "only a signed-in account lists its sessions");
  const auto kind = principal->kind;
  const auto id = principal->id;
  const auto now = utc::now();
  auto listed = read_page(
      page, PagedQuery<store::SessionListing>{
                "auth.sessions", std::string(to_string(kind)) + " " + std::to_string(id),
                [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                  return store::list_live_sessions(reader, kind, id, now, after, limit);
                },
                [&](db::Connection& reader) { return store::count_live_sessions(reader, kind, id, now); },
                [](const store::SessionListing& session) { return session.created_at + " " + session.public_id; }});
  if (!listed) return listed;
  const auto current = token_hash(session_token).substr(0, 16);
  for (auto& session : listed->items) session.current = session.public_id == current;
  return listed;
}

Result<std::shared_ptr<const Principal>> AuthService::authenticate_now(std::string_view token) {
  if (!looks_like_token(token)) return kInvalidToken;
  auto hashed = token_hash(token);
  if (auto cached = token_cache_.find(hashed)) {
    cache_hits_->inc();
    return cached;
  }
  cache_misses_->inc();
  if (auto ok = usable(); !ok) return ok.error();
  auto generation = token_cache_.generation();
  return deps_.readers.read([&](db::Connection& reader) -> Result<std::shared_ptr<const Principal>> {
    auto session = store::find_session(reader, hashed);
    if (!session || session->revoked_at || session->expires_at <= utc::now()) return kInvalidToken;
    auto principal = load_principal(reader, session->kind, session->principal_id);
    if (!principal) return kInvalidToken;
    if (auto expires = utc::parse(session->expires_at)) token_cache_.insert(hashed, principal, *expires, generation);
    return principal;
  });
}

boost::asio::awaitable<Result<std::shared_ptr<const Principal>>> AuthService::authenticate(CallContext context,
                                                                                           std::string token) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  co_return authenticate_now(token);
}

}  // namespace townhall::auth
