#include "service.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "townhall/bus/event.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {
namespace {

std::string actor_of(const CallContext& context) {
  if (!context.principal) return context.service.empty() ? "anonymous" : "module:" + context.service;
  return std::string(to_string(context.principal->kind)) + ":" + std::to_string(context.principal->id);
}

bool looks_like_token(std::string_view token) {
  if (token.size() != 43) return false;
  for (char c : token)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

Result<Unit> check_national_id(const std::string& value) {
  if (value.empty() || value.size() > 32)
    return make_error(Errc::invalid_argument, "field 'national_id': must be 1 to 32 characters");
  for (char c : value)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == ' '))
      return make_error(Errc::invalid_argument, "field 'national_id': only letters, digits, '-' and spaces");
  return Unit{};
}

// What makes two national ids the same: case, spaces and dashes do not count.
std::string canonical_national_id(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ' ' || c == '-') continue;
    out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  return out;
}

Result<Unit> not_before_deadline(const CallContext& context) {
  if (context.expired()) return make_error(Errc::deadline_exceeded, "the caller's deadline has passed");
  return Unit{};
}

// Reads other modules make of citizens in bulk: a module as itself, or staff who may read
// any citizen. Never anonymous.
Result<Unit> may_read_citizens(const CallContext& context) {
  if (context.is_service()) return Unit{};
  if (!context.principal) return make_error(Errc::forbidden, "an anonymous caller may not read citizens");
  if (!context.principal->has("citizens:read")) return make_error(Errc::forbidden, "needs permission citizens:read");
  return Unit{};
}

const Error kInvalidToken{Errc::unauthorized, "the token is invalid, expired or revoked"};

}  // namespace

AuthService::AuthService(Settings settings, std::filesystem::path key_file, Dependencies dependencies)
    : settings_(std::move(settings)),
      key_file_(std::move(key_file)),
      deps_(std::move(dependencies)),
      writes_(deps_.database, deps_.writer, deps_.events_committed),
      token_cache_(settings_.token_cache_ttl),
      throttle_(settings_.login_throttle),
      reset_requests_(settings_.login_throttle) {
  auto& logins = deps_.metrics.counter("townhall_auth_logins_total", "Login attempts by outcome", {"outcome"});
  login_success_ = &logins.with({"success"});
  login_failure_ = &logins.with({"failure"});
  login_throttled_ = &logins.with({"throttled"});
  login_busy_ = &logins.with({"busy"});
  auto& cache =
      deps_.metrics.counter("townhall_auth_token_cache_total",
                            "Token authentications answered from the cache (hit) or the database (miss)", {"result"});
  cache_hits_ = &cache.with({"hit"});
  cache_misses_ = &cache.with({"miss"});
  key_ok_ = &deps_.metrics
                 .gauge("townhall_auth_key_ok",
                        "1 when auth.key matches the national ids sealed in auth.db (its key check value), 0 when "
                        "the key is missing or not theirs (national ids cannot be read or written)")
                 .with({});
}

AuthService::~AuthService() { hashing_.join(); }

void AuthService::start() {
  writes_.open();
  auto maintained = writes_.call([this](db::Connection& service) -> Result<Unit> {
    open_key(service);
    store::prune_sessions(service, utc::now());
    store::prune_password_resets(service, utc::now());
    if (secrets_) backfill_national_id_digests(service);
    return Unit{};
  });
  if (!maintained) throw std::runtime_error("auth: " + maintained.error().message);
  key_ok_->set(secrets_ ? 1 : 0);
  if (!secrets_) spdlog::critical("auth: {}", key_problem_);
  running_ = true;
}

// The key file against the sealed data (issue 21): its key check value when auth.db has
// one, else one sealed national id. A key is created only where nothing was ever sealed:
// a new key beside sealed rows would read none of them and let a second citizen claim
// every national id on file (their digests would no longer match). A missing or foreign
// key leaves auth serving without national ids (503 naming the fix), never a 500.
void AuthService::open_key(db::Connection& service) {
  secrets_.reset();
  key_problem_.clear();
  auto stored = store::key_check_value(service);
  auto sample = stored ? std::nullopt : store::any_sealed_national_id(service);
  auto key = SecretBox::load(key_file_);  // throws for a readable-by-others or malformed file
  const auto restore_hint =
      "restore the auth.key that was backed up with this auth.db (townhall restore --from "
      "BACKUP_DIR --module auth installs both; a backup's manifest.json lists it), then restart";
  if (!key) {
    if (stored || sample) {
      key_problem_ =
          "the key file " + key_file_.string() +
          " is missing but auth.db holds national ids sealed with a key; no new key was created. Fix: " + restore_hint;
      return;
    }
    key = SecretBox::create(key_file_);
    spdlog::info("auth: created the key file {} (back it up with auth.db: townhall backup copies both)",
                 key_file_.string());
  }
  const auto check_value = key->check_value();
  const bool matches = stored ? stored->size() == check_value.size() &&
                                    sodium_memcmp(stored->data(), check_value.data(), check_value.size()) == 0
                              : !sample || key->open(*sample).has_value();
  if (!matches) {
    key_problem_ = "the key file " + key_file_.string() +
                   " does not match the national ids sealed in auth.db (its key check value differs: a key from "
                   "another installation or a newer one). Fix: " +
                   restore_hint;
    return;
  }
  if (!stored) store::insert_key_check_value(service, check_value, utc::now());
  secrets_ = std::move(*key);
}

Result<Unit> AuthService::key_usable() const {
  if (!secrets_) return make_error(Errc::unavailable, "national ids are unavailable: " + key_problem_);
  return Unit{};
}

void AuthService::stop() {
  running_ = false;
  writes_.close();
}

Result<Unit> AuthService::usable() const {
  if (!running_) return make_error(Errc::unavailable, "the auth module is unavailable");
  return Unit{};
}

// `task` is borrowed: the caller's frame outlives the call. (GCC 12 destroys a lambda
// temporary with non-trivial captures twice when it appears in a co_await expression;
// callers pass a named lambda that captures by reference only.)
template <class F>
boost::asio::awaitable<Result<std::invoke_result_t<F>>> AuthService::hash_off_thread(const F& task) {
  using R = std::invoke_result_t<F>;
  if (hashes_queued_.fetch_add(1) >= settings_.max_queued_password_hashes) {
    --hashes_queued_;
    co_return make_error(Errc::unavailable, "the server is busy checking passwords; retry after 1 s", 1);
  }
  struct Admitted {
    std::atomic<std::size_t>& queued;
    ~Admitted() { --queued; }
  } admitted{hashes_queued_};
  co_return co_await boost::asio::co_spawn(
      hashing_.get_executor(), [&task]() -> boost::asio::awaitable<R> { co_return task(); },
      boost::asio::use_awaitable);
}

commands::WriteContext AuthService::write_context(const CallContext& context) const {
  return {actor_of(context), context.correlation_id, fault_hook_};
}

Result<commands::SealedNationalId> AuthService::seal_national_id(const std::string& national_id) const {
  if (auto ok = check_national_id(national_id); !ok) return ok.error();
  if (auto ok = key_usable(); !ok) return ok.error();
  return commands::SealedNationalId{secrets_->seal(national_id), secrets_->digest(canonical_national_id(national_id))};
}

// National ids sealed before digests existed (auth migration 0002) get theirs; two
// active citizens already holding the same id keep the first's digest and are logged
// for staff to resolve.
void AuthService::backfill_national_id_digests(db::Connection& service) {
  int filled = 0;
  for (const auto& [id, sealed] : store::sealed_ids_without_digest(service, 1'000'000)) {
    auto plain = secrets_->open(sealed);
    if (!plain) {
      spdlog::error("auth: the national id of citizen {} cannot be decrypted (wrong key file?)", id);
      continue;
    }
    auto digest = secrets_->digest(canonical_national_id(*plain));
    auto row = store::find_citizen(service, id);
    if (row && row->citizen.identity_verified && store::verified_national_id_holder(service, digest, id)) {
      spdlog::warn(
          "auth: citizen {} holds, verified, a national id another verified citizen holds; staff must "
          "settle it",
          id);
      continue;
    }
    store::set_national_id_digest(service, id, digest);
    ++filled;
  }
  if (filled > 0) spdlog::info("auth: national id digests written for {} citizens", filled);
}

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

// --- accounts and sessions -------------------------------------------------------------

boost::asio::awaitable<Result<Citizen>> AuthService::register_citizen(const CallContext& context, Registration input) {
  if (auto ok = usable(); !ok) co_return ok.error();
  auto email = input::normalize_email(input.email);
  if (!email) co_return email.error();
  if (auto policy = check_password_policy(input.password, *email); !policy) co_return policy.error();
  std::optional<commands::SealedNationalId> national_id;
  if (input.national_id) {
    auto sealed = seal_national_id(*input.national_id);
    if (!sealed) co_return sealed.error();
    national_id = std::move(*sealed);
  }

  commands::NewCitizen citizen;
  citizen.email = *email;
  citizen.name = std::move(input.name);
  citizen.phone = std::move(input.phone);
  citizen.address = std::move(input.address);
  citizen.city = std::move(input.city);
  citizen.postal_code = std::move(input.postal_code);
  citizen.national_id = std::move(national_id);
  auto hash = [&] { return hash_password(input.password, settings_.password_cost); };
  auto hashed = co_await hash_off_thread(hash);
  if (!hashed) co_return hashed.error();
  citizen.password_hash = std::move(*hashed);

  auto written = co_await writes_.run(
      [&](db::Connection& service) { return commands::register_citizen(service, citizen, write_context(context)); });
  if (written) spdlog::info("auth: citizen {} registered", written->id);
  co_return written;
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

// --- passwords (issue 27 §7) -----------------------------------------------------------

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
  // Known or not, one read and one audited write: the answer and its cost are the same.
  auto recorded = co_await writes_.run([&](db::Connection& service) {
    return commands::record_password_reset_request(service, *email, client_ip, write_context(context));
  });
  if (!recorded) co_return recorded.error();
  if (*recorded)
    spdlog::info("auth: {} asked for a password reset from {}; no email delivery yet: staff issue the token",
                 **recorded, client_ip);
  co_return Unit{};
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

// --- citizens --------------------------------------------------------------------------

Result<Unit> AuthService::may_read_citizen(const CallContext& context, std::int64_t id) const {
  const auto& principal = context.principal;
  if (context.is_service()) return Unit{};
  if (!principal) return make_error(Errc::forbidden, "an anonymous caller may not read citizens");
  if (principal->is_citizen(id)) return Unit{};
  if (principal->is_citizen()) return make_error(Errc::not_found, "no such citizen");
  if (!principal->has("citizens:read")) return make_error(Errc::forbidden, "needs permission citizens:read");
  return Unit{};
}

boost::asio::awaitable<Result<Citizen>> AuthService::get_citizen(CallContext context, std::int64_t id) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (auto ok = may_read_citizen(context, id); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return deps_.readers.read([&](db::Connection& reader) -> Result<Citizen> {
    auto row = store::find_citizen(reader, id);
    // A deleted citizen is gone for themselves; staff (and modules) still see the record.
    if (!row || (row->deleted_at && context.principal && context.principal->is_citizen()))
      return make_error(Errc::not_found, "no such citizen");
    return row->citizen;
  });
}

boost::asio::awaitable<Result<Citizen>> AuthService::update_citizen(const CallContext& context, std::int64_t id,
                                                                    CitizenPatch patch) {
  const auto& principal = context.principal;
  if (!principal) co_return make_error(Errc::forbidden, "a signed-in principal is required");
  bool self = principal->is_citizen(id);
  bool contact =
      patch.email || patch.name || patch.phone || patch.address || patch.city || patch.postal_code || patch.national_id;
  bool verification = patch.email_verified || patch.identity_verified;
  if (principal->is_citizen() && !self) co_return make_error(Errc::not_found, "no such citizen");
  if (contact && !self && !principal->has("citizens:write"))
    co_return make_error(Errc::forbidden, "needs permission citizens:write");
  if (verification && !principal->has("citizens:verify"))
    co_return make_error(Errc::forbidden,
                         "only staff with citizens:verify may set email_verified or identity_verified");
  if (auto ok = usable(); !ok) co_return ok.error();

  commands::CitizenChange change;
  if (patch.email) {
    auto email = input::normalize_email(*patch.email);
    if (!email) co_return email.error();
    change.email = *email;
  }
  change.name = std::move(patch.name);
  change.phone = std::move(patch.phone);
  change.address = std::move(patch.address);
  change.city = std::move(patch.city);
  change.postal_code = std::move(patch.postal_code);
  change.email_verified = patch.email_verified;
  change.identity_verified = patch.identity_verified;
  // A citizen's own national id changes are bounded (staff's are not): each is audited,
  // and an unbounded stream of them would be a way to probe.
  if (self) change.national_id_changes_per_day = settings_.national_id_changes_per_day;
  if (patch.national_id) {
    if (*patch.national_id) {
      auto sealed = seal_national_id(**patch.national_id);
      if (!sealed) co_return sealed.error();
      change.national_id = std::optional<commands::SealedNationalId>(std::move(*sealed));
    } else {
      change.national_id = std::optional<commands::SealedNationalId>();
    }
  }
  auto written = co_await writes_.run(
      [&](db::Connection& service) { return commands::update_citizen(service, id, change, write_context(context)); });
  co_return written;
}

boost::asio::awaitable<Result<Unit>> AuthService::delete_citizen(const CallContext& context, std::int64_t id) {
  const auto& principal = context.principal;
  if (!principal) co_return make_error(Errc::forbidden, "a signed-in principal is required");
  if (principal->is_citizen() && !principal->is_citizen(id)) co_return make_error(Errc::not_found, "no such citizen");
  if (!principal->is_citizen(id) && !principal->has("citizens:delete"))
    co_return make_error(Errc::forbidden, "needs permission citizens:delete");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run(
      [&](db::Connection& service) { return commands::delete_citizen(service, id, write_context(context)); });
  if (!written) co_return written.error();
  token_cache_.erase_principal(Principal::Kind::citizen, id);
  spdlog::info("auth: citizen {} deleted by {}", id, actor_of(context));
  co_return Unit{};
}

Result<CitizenList> AuthService::list_citizens(const CallContext& context, std::optional<std::string> email,
                                               std::optional<std::string> name, input::Page page) {
  const auto& principal = context.principal;
  if (!principal || !principal->has("citizens:read"))
    return make_error(Errc::forbidden, "needs permission citizens:read");
  if (auto ok = usable(); !ok) return ok.error();
  store::CitizenFilter filter;
  if (email) {
    auto normalized = input::normalize_email(*email);
    if (!normalized) return CitizenList{{}, 0, page};  // no citizen has an invalid email
    filter.email = *normalized;
  }
  filter.name = std::move(name);
  filter.include_deleted = true;
  return deps_.readers.read([&](db::Connection& reader) -> Result<CitizenList> {
    CitizenList out;
    out.page = page;
    out.items = store::list_citizens(reader, filter, page.offset(), page.size, out.total);
    return out;
  });
}

// --- staff -----------------------------------------------------------------------------

boost::asio::awaitable<Result<store::Department>> AuthService::create_department(const CallContext& context,
                                                                                 std::string code, std::string name) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) {
    return commands::create_department(service, code, name, write_context(context));
  });
  co_return written;
}

boost::asio::awaitable<Result<store::Department>> AuthService::update_department(const CallContext& context,
                                                                                 std::string code, std::string name) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) {
    return commands::update_department(service, code, name, write_context(context));
  });
  co_return written;
}

Result<std::vector<store::Department>> AuthService::list_departments() {
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read(
      [](db::Connection& reader) -> Result<std::vector<store::Department>> { return store::list_departments(reader); });
}

boost::asio::awaitable<Result<commands::Employee>> AuthService::create_employee(const CallContext& context,
                                                                                NewStaff input) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto email = input::normalize_email(input.email);
  if (!email) co_return email.error();
  if (auto policy = check_password_policy(input.password, *email); !policy) co_return policy.error();
  commands::NewEmployee employee{
      *email, {}, std::move(input.name), std::move(input.department_code), std::move(input.roles)};
  auto hash = [&] { return hash_password(input.password, settings_.password_cost); };
  auto hashed = co_await hash_off_thread(hash);
  if (!hashed) co_return hashed.error();
  employee.password_hash = std::move(*hashed);
  auto written = co_await writes_.run(
      [&](db::Connection& service) { return commands::create_employee(service, employee, write_context(context)); });
  co_return written;
}

boost::asio::awaitable<Result<commands::Employee>> AuthService::set_employee_roles(const CallContext& context,
                                                                                   std::int64_t id,
                                                                                   std::vector<std::string> roles) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) {
    return commands::set_employee_roles(service, id, roles, write_context(context));
  });
  if (!written) co_return written;
  // Sessions were revoked in the same transaction; forget cached principals too.
  token_cache_.erase_principal(Principal::Kind::employee, id);
  spdlog::info("auth: roles of employee {} set by {}", id, actor_of(context));
  co_return written;
}

Result<commands::Employee> AuthService::get_employee(const CallContext& context, std::int64_t id) {
  const auto& principal = context.principal;
  if (!principal || principal->is_citizen()) return make_error(Errc::not_found, "no such employee");
  if (!(principal->is_employee() && principal->id == id) && !principal->has("auth:admin"))
    return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) { return commands::get_employee(reader, id); });
}

Result<std::vector<store::NationalIdClaim>> AuthService::national_id_claims(const CallContext& context,
                                                                            std::int64_t id) {
  const auto& principal = context.principal;
  if (!principal || principal->is_citizen()) return make_error(Errc::not_found, "no such citizen");
  if (!principal->has("citizens:verify")) return make_error(Errc::forbidden, "needs permission citizens:verify");
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<store::NationalIdClaim>> {
    auto row = store::find_citizen(reader, id);
    if (!row || row->deleted_at) return make_error(Errc::not_found, "no such citizen");
    return store::national_id_claims(reader, id);
  });
}

// --- Api for other modules -------------------------------------------------------------

boost::asio::awaitable<Result<std::optional<std::string>>> AuthService::get_sensitive(CallContext context,
                                                                                      std::int64_t id,
                                                                                      std::string purpose) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  const auto& principal = context.principal;
  if (!principal) co_return make_error(Errc::forbidden, "reading a national id needs a principal to audit");
  if (principal->is_citizen() && !principal->is_citizen(id)) co_return make_error(Errc::not_found, "no such citizen");
  if (!principal->is_citizen(id) && !principal->has("citizens:sensitive"))
    co_return make_error(Errc::forbidden, "needs permission citizens:sensitive");
  if (auto problem = input::check_text(purpose, {.max_bytes = 200}))
    co_return make_error(Errc::invalid_argument, "purpose " + *problem);
  if (auto ok = usable(); !ok) co_return ok.error();
  if (auto ok = key_usable(); !ok) co_return ok.error();
  auto sealed = co_await writes_.run([&](db::Connection& service) {
    return commands::read_sealed_national_id(service, id, purpose, write_context(context));
  });
  if (!sealed) co_return sealed.error();
  if (!*sealed) co_return std::optional<std::string>();
  auto opened = secrets_->open(**sealed);
  if (!opened) {  // the key passed its check: this row's sealed value itself is damaged
    spdlog::error("auth: the sealed national id of citizen {} does not open with the checked key (damaged row)", id);
    co_return make_error(Errc::unavailable,
                         "the national id of this citizen cannot be read: its sealed value in auth.db is damaged "
                         "(restore auth.db from a backup)");
  }
  co_return std::optional<std::string>(std::move(*opened));
}

boost::asio::awaitable<Result<std::vector<CitizenVersion>>> AuthService::citizen_versions(CallContext context,
                                                                                          std::int64_t after_id,
                                                                                          int limit,
                                                                                          CitizenFields fields) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (auto ok = may_read_citizens(context); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<CitizenVersion>> {
    return store::citizen_versions(reader, after_id, std::clamp(limit, 1, 1000), fields);
  });
}

boost::asio::awaitable<Result<consistency::Digest>> AuthService::citizen_digest(CallContext context,
                                                                                std::int64_t from_id,
                                                                                std::int64_t to_id,
                                                                                CitizenFields fields) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (auto ok = may_read_citizens(context); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return deps_.readers.read([&](db::Connection& reader) -> Result<consistency::Digest> {
    return store::citizen_digest(reader, from_id, to_id, fields);
  });
}

boost::asio::awaitable<Result<CitizenChanges>> AuthService::citizens_since(CallContext context, std::int64_t change_seq,
                                                                           int limit) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (auto ok = may_read_citizens(context); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return deps_.readers.read([&](db::Connection& reader) -> Result<CitizenChanges> {
    return store::citizens_since(reader, change_seq, std::clamp(limit, 1, 1000));
  });
}

boost::asio::awaitable<Result<std::vector<DepartmentRef>>> AuthService::departments(CallContext context) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (context.anonymous()) co_return make_error(Errc::forbidden, "an anonymous caller may not list departments");
  auto listed = list_departments();
  if (!listed) co_return listed.error();
  std::vector<DepartmentRef> out;
  for (const auto& d : *listed) out.push_back({d.code, d.name, d.event_version});
  co_return out;
}

}  // namespace townhall::auth
