#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <mutex>

#include "commands.hpp"
#include "credentials.hpp"
#include "settings.hpp"
#include "throttle.hpp"
#include "token_cache.hpp"
#include "townhall/auth/api.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/service_kit.hpp"

namespace townhall::metrics {
class Registry;
class Counter;
class Gauge;
}  // namespace townhall::metrics

namespace townhall::auth {

struct Registration {
  std::string email;  // as typed; normalized by the service
  std::string password;
  std::string name;
  std::optional<std::string> phone, address, city, postal_code, national_id;
};

// A PATCH of a citizen, already type-checked.
struct CitizenPatch {
  std::optional<std::string> email;
  std::optional<std::string> name;
  std::optional<std::optional<std::string>> phone, address, city, postal_code, national_id;
  std::optional<bool> email_verified, identity_verified;
};

struct NewStaff {
  std::string email;
  std::string password;
  std::string name;
  std::optional<std::string> department_code;
  std::vector<std::string> roles;
};

struct LoginResult {
  std::string token;
  std::string expires_at;
  std::shared_ptr<const Principal> principal;
};

using CitizenList = input::Listed<Citizen>;
using EmployeeList = input::Listed<commands::Employee>;
using AuditList = input::Listed<store::AuditRow>;

// GET /employees' query, already type-checked.
struct EmployeeQuery {
  std::optional<std::string> q;  // an email or name prefix
  std::optional<std::string> department_code;
  std::optional<std::string> role;
  std::optional<bool> active;
};

// GET /audit's query, already type-checked; from/to are RFC 3339 times.
struct AuditQuery {
  std::optional<std::int64_t> actor_id;  // an employee's id (actor_kind citizen: a citizen's)
  Principal::Kind actor_kind = Principal::Kind::employee;
  std::optional<std::int64_t> citizen_id;  // rows about this citizen
  std::optional<std::string> action;
  std::optional<std::chrono::system_clock::time_point> from, to;
};

// What a failed login answers, whatever failed (unknown email, wrong password, inactive
// account): one status, one body.
inline constexpr std::string_view kLoginFailed = "invalid email or password";

// What a failed reset confirmation answers, whatever failed (unknown, malformed, used or
// expired token, an account that is gone): one status, one body.
inline constexpr std::string_view kResetFailed = "the reset token is invalid, expired or already used";

// What a public reset request answers, whether an account uses the email or not.
inline constexpr std::string_view kResetRequested =
    "if an account uses this email, a reset code is on its way there; it works once, for a short time. "
    "No email? Ask the front desk (staff: an administrator) for a code";

// The auth module's behaviour, reachable without sockets. Implements auth::Api for the
// other modules and the gateway; the HTTP routes are thin wrappers around it.
// Reads use the reader pool on the caller's thread (short point reads); writes run on
// the module's writer thread; password hashing runs on its own small pool so neither
// network threads nor the writer wait for Argon2.
class AuthService final : public Api, private ModuleService {
 public:
  // No I/O: the key file is read by start().
  AuthService(Settings settings, ServiceDependencies dependencies, std::filesystem::path key_file);
  ~AuthService() override;

  // Loads (or creates) the key file, opens the service connection (on the writer),
  // prunes old sessions and opens the gate. Throws when the key file or the database
  // cannot be used.
  void start();
  // Closes the gate and the service connection; calls then answer unavailable (cached
  // tokens still authenticate until their entries expire).
  void stop();
  // Empty when auth.key matches the sealed data; else why national ids are unavailable
  // and how to fix it (set by start()).
  const std::string& key_problem() const { return key_problem_; }

  // Fault injection for tests (see commands::WriteContext::fault).
  void set_fault_hook(std::function<void(std::string_view)> hook) { fault_hook_ = std::move(hook); }
  const Settings& settings() const { return settings_; }

  boost::asio::awaitable<Result<Citizen>> register_citizen(const CallContext& context, Registration input);
  boost::asio::awaitable<Result<LoginResult>> login(std::string email, std::string password, std::string client_ip);
  boost::asio::awaitable<Result<Unit>> logout(std::string_view token);
  // The caller's own live sessions (citizen or employee), `session_token` (the caller's)
  // marked current; never a token nor its hash.
  Result<input::Listed<store::SessionListing>> list_sessions(const CallContext& context, std::string_view session_token,
                                                             input::Page page);
  // Passwords (issue 27 §7). change_password: the signed-in account's own, proved by the
  // current one (a wrong one is a failed login of the account from this address, same
  // throttle); ends every other session of the account, `session_token` (the caller's)
  // stays. issue_password_reset: staff (citizens:write for a citizen, auth:admin for an
  // employee) get a single-use token, shown once. confirm_password_reset: anyone holding
  // a token sets the password with it, ending every session; failures answer kResetFailed
  // and are counted per client address.
  boost::asio::awaitable<Result<Unit>> change_password(const CallContext& context, std::string current_password,
                                                       std::string new_password, std::string client_ip,
                                                       std::string session_token);
  boost::asio::awaitable<Result<commands::IssuedPasswordReset>> issue_password_reset(const CallContext& context,
                                                                                     std::string email);
  boost::asio::awaitable<Result<Unit>> confirm_password_reset(const CallContext& context, std::string token,
                                                              std::string new_password, std::string client_ip);
  // The public "forgot password" request: one answer (kResetRequested) for known and
  // unknown emails, the same work for both (one lookup, one audit row), at most
  // max_failures_per_account_and_ip per email and address (max_failures_per_ip per
  // address) per window, else 429. Issues no token: there is no channel to deliver one
  // until the notify module exists (then it issues one and emails it here).
  boost::asio::awaitable<Result<Unit>> request_password_reset(const CallContext& context, std::string email,
                                                              std::string client_ip);
  boost::asio::awaitable<Result<Citizen>> update_citizen(const CallContext& context, std::int64_t id,
                                                         CitizenPatch patch);
  boost::asio::awaitable<Result<Unit>> delete_citizen(const CallContext& context, std::int64_t id);
  Result<CitizenList> list_citizens(const CallContext& context, std::optional<std::string> email,
                                    std::optional<std::string> name, input::Page page);

  boost::asio::awaitable<Result<store::Department>> create_department(const CallContext& context, std::string code,
                                                                      std::string name);
  boost::asio::awaitable<Result<store::Department>> update_department(const CallContext& context, std::string code,
                                                                      std::string name);
  Result<std::vector<store::Department>> list_departments();
  boost::asio::awaitable<Result<commands::Employee>> create_employee(const CallContext& context, NewStaff input);
  boost::asio::awaitable<Result<commands::Employee>> set_employee_roles(const CallContext& context, std::int64_t id,
                                                                        std::vector<std::string> roles);
  Result<commands::Employee> get_employee(const CallContext& context, std::int64_t id);
  // Staff lifecycle (issue 26 §2, auth:admin). Employees in id order, filtered.
  Result<EmployeeList> list_employees(const CallContext& context, EmployeeQuery query, input::Page page);
  // Deactivation ends every session of the employee at once, cached tokens included; an
  // admin cannot deactivate themself (conflict).
  boost::asio::awaitable<Result<commands::Employee>> set_employee_active(const CallContext& context, std::int64_t id,
                                                                         bool active);
  boost::asio::awaitable<Result<store::Department>> set_department_active(const CallContext& context, std::string code,
                                                                          bool active);
  // The audit log (issue 26 §4: auth:admin or audit:read), newest first.
  Result<AuditList> list_audit(const CallContext& context, const AuditQuery& query, input::Page page);
  // Audit retention now: rows older than audit_retention_days before `now` are appended
  // to <audit export dir>/audit-YYYY-MM-DD.jsonl (fsync'd), then deleted. How many.
  boost::asio::awaitable<Result<std::int64_t>> prune_audit(std::chrono::system_clock::time_point now);
  const std::filesystem::path& audit_export_dir() const { return audit_export_dir_; }
  // Every active citizen claiming citizen `id`'s national id (`id` first among equals by
  // age), for staff with citizens:verify settling competing claims before verifying one.
  Result<std::vector<store::NationalIdClaim>> national_id_claims(const CallContext& context, std::int64_t id);

  // auth::Api
  boost::asio::awaitable<Result<std::shared_ptr<const Principal>>> authenticate(CallContext context,
                                                                                std::string token) override;
  boost::asio::awaitable<Result<Citizen>> get_citizen(CallContext context, std::int64_t citizen_id) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> get_sensitive(CallContext context, std::int64_t citizen_id,
                                                                           std::string purpose) override;
  boost::asio::awaitable<Result<consistency::Digest>> citizen_digest(CallContext context, std::int64_t from_id,
                                                                     std::int64_t to_id, CitizenFields fields) override;
  boost::asio::awaitable<Result<std::vector<CitizenVersion>>> citizen_versions(CallContext context,
                                                                               std::int64_t after_id, int limit,
                                                                               CitizenFields fields) override;
  boost::asio::awaitable<Result<CitizenChanges>> citizens_since(CallContext context, std::int64_t change_seq,
                                                                int limit) override;
  boost::asio::awaitable<Result<std::vector<DepartmentRef>>> departments(CallContext context) override;
  boost::asio::awaitable<Result<PasswordResetMail>> password_reset_mail(CallContext context,
                                                                        std::string reference) override;

  // The synchronous core of authenticate (no coroutine): for the benchmark and tests.
  Result<std::shared_ptr<const Principal>> authenticate_now(std::string_view token);
  const TokenCache& token_cache() const { return token_cache_; }

 private:
  // Runs `task` (an Argon2 computation) on the hashing pool; unavailable (with a
  // Retry-After) when max_queued_password_hashes are already queued or running, so no
  // caller waits behind an unbounded queue.
  template <class F>
  boost::asio::awaitable<Result<std::invoke_result_t<F>>> hash_off_thread(const F& task);

  // `throttle`'s verdict for (account, address): 429 when refused, else after its delay.
  boost::asio::awaitable<Result<Unit>> pass_throttle(LoginThrottle& throttle, const std::string& account,
                                                     const std::string& client_ip);

  commands::WriteContext write_context(const CallContext& context) const;
  // Reads the principal of a session's account; nullopt when the account is gone.
  std::shared_ptr<const Principal> load_principal(db::Connection& connection, Principal::Kind kind, std::int64_t id);
  Result<Unit> may_read_citizen(const CallContext& context, std::int64_t id) const;
  Result<commands::SealedNationalId> seal_national_id(const std::string& national_id) const;
  void backfill_national_id_digests(db::Connection& service);
  void open_key(db::Connection& service);
  Result<Unit> key_usable() const;                // unavailable naming the fix when the key is not usable
  boost::asio::awaitable<void> retention_loop();  // prune_audit once a day while the gate is open

  Settings settings_;
  std::filesystem::path key_file_;
  std::optional<SecretBox> secrets_;  // loaded by start(); empty when missing or not the data's
  std::string key_problem_;
  boost::asio::thread_pool hashing_{2};
  std::atomic<std::size_t> hashes_queued_{0};  // admitted to hashing_, not yet done
  TokenCache token_cache_;
  LoginThrottle throttle_;
  LoginThrottle reset_requests_;  // public reset requests, counted apart from failed logins
  std::function<void(std::string_view)> fault_hook_;
  std::filesystem::path audit_export_dir_;
  std::unique_ptr<boost::asio::steady_timer> retention_timer_;
  std::shared_ptr<Latch> retention_done_;
  std::atomic<std::uint64_t> logins_{0};
  metrics::Counter* login_success_ = nullptr;
  metrics::Counter* login_failure_ = nullptr;
  metrics::Counter* login_throttled_ = nullptr;
  metrics::Counter* login_busy_ = nullptr;
  metrics::Counter* cache_hits_ = nullptr;
  metrics::Counter* cache_misses_ = nullptr;
  metrics::Gauge* key_ok_ = nullptr;
};

}  // namespace townhall::auth
