#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "credentials.hpp"
#include "store.hpp"
#include "townhall/auth/api.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/result.hpp"

// auth's state changes. Each runs inside the caller's transaction on a service
// connection (db::WritePath or db::run_in_transaction): check, write the rows, append the
// events to the outbox (DESIGN.md §4.1); an Error rolls everything back. Synchronous and
// free of I/O other than the database, so the HTTP service (on the writer thread), the
// CLI and the demo seed share them; the write path wakes the bus.
namespace townhall::auth::commands {

struct WriteContext {
  std::string actor;           // "employee:7", "citizen:42", "cli", "demo"
  std::string correlation_id;  // the request id
  // Fault injection for tests, called after the state is written and before the
  // events are appended; throwing aborts the transaction.
  std::function<void(std::string_view point)> fault;
};

// A national id as auth keeps it: sealed (readable with the key, audited) and its keyed
// digest (for uniqueness). The plain value never reaches the database.
struct SealedNationalId {
  std::string sealed;
  std::string digest;
};

struct NewCitizen {
  std::string email;  // normalized
  std::string password_hash;
  std::string name;
  std::optional<std::string> phone, address, city, postal_code;
  std::optional<SealedNationalId> national_id;
};

// A validated change: absent fields stay, engaged-but-empty optionals clear.
struct CitizenChange {
  std::optional<std::string> email;  // normalized
  std::optional<std::string> name;
  std::optional<std::optional<std::string>> phone, address, city, postal_code;
  std::optional<std::optional<SealedNationalId>> national_id;
  std::optional<bool> email_verified, identity_verified;
  // > 0: at most this many national id changes in 24 h (the citizen's own changes).
  int national_id_changes_per_day = 0;
};

struct Employee {
  std::int64_t id = 0;
  std::string email;
  std::string name;
  std::optional<std::string> department_code;
  bool is_active = true;
  std::vector<std::string> roles;
  std::int64_t event_version = 1;
  std::string created_at;
  std::string updated_at;
};

struct NewEmployee {
  std::string email;  // normalized
  std::string password_hash;
  std::string name;
  std::optional<std::string> department_code;
  std::vector<std::string> roles;
};

// The gov.auth.citizen snapshot: never the national id or the password hash.
nlohmann::json citizen_snapshot(const Citizen& citizen);

Result<Citizen> register_citizen(db::Connection& service, const NewCitizen& input, const WriteContext& context);
// not_found for an unknown or deleted citizen; conflict when the new email or national
// id is another active citizen's. Changing the name or the national id (like the email
// for email_verified) resets identity_verified unless the same change sets it.
// No change: the citizen as is, no event.
Result<Citizen> update_citizen(db::Connection& service, std::int64_t id, const CitizenChange& change,
                               const WriteContext& context);
// Soft delete; revokes the citizen's sessions.
Result<Citizen> delete_citizen(db::Connection& service, std::int64_t id, const WriteContext& context);

Result<store::Department> create_department(db::Connection& service, const std::string& code, const std::string& name,
                                            const WriteContext& context);
Result<store::Department> update_department(db::Connection& service, const std::string& code, const std::string& name,
                                            const WriteContext& context);

// unprocessable for an unknown department or role; conflict when the email is taken.
Result<Employee> create_employee(db::Connection& service, const NewEmployee& input, const WriteContext& context);
// Replaces the roles, revokes the employee's sessions, emits role.changed, audits.
Result<Employee> set_employee_roles(db::Connection& service, std::int64_t id, const std::vector<std::string>& roles,
                                    const WriteContext& context);
// Deactivates (ending every session of the employee) or reactivates an employee: audited
// ("employee.deactivated" / "employee.reactivated"), announced on gov.auth.employee. No
// change (already so): the employee as is, no event.
Result<Employee> set_employee_active(db::Connection& service, std::int64_t id, bool active,
                                     const WriteContext& context);
Result<Employee> get_employee(db::Connection& connection, std::int64_t id);

// Deactivates or reactivates a department: audited, announced on gov.auth.department
// (department.deactivated / .reactivated, the snapshot with is_active). No change: as is.
Result<store::Department> set_department_active(db::Connection& service, const std::string& code, bool active,
                                                const WriteContext& context);

// Audit retention: the oldest `batch` rows written before `before` are handed to
// `exported` (which writes them durably, or fails and so keeps them), then deleted in this
// transaction. Returns how many were deleted (0: none left).
Result<int> prune_audit(db::Connection& service, const std::string& before, int batch,
                        const std::function<Result<Unit>(const std::vector<store::AuditRow>&)>& exported);

// Sets an account's password (issue 27 §7) when its hash is still `expected_hash` (the one
// the current password was verified against; conflict when it changed meanwhile), ends
// every session of the account but `kept_token_hash` (the caller's), audits
// ("password.changed" with the client address; never a password, token or hash). not_found for an account that is gone
// or inactive. Returns how many sessions were ended.
Result<int> change_password(db::Connection& service, const store::Account& account, const std::string& new_hash,
                            const std::string& kept_token_hash, const std::string& client_ip,
                            const WriteContext& context);

// What issuing a reset token answers for an email no active account the caller may
// reset uses (unknown, inactive, or an employee's for a caller without auth:admin).
inline constexpr std::string_view kNoResettableAccount = "no account you may reset uses this email";

// A reset token shown once: to the staff member who asked, or by the CLI.
struct IssuedPasswordReset {
  std::string token;
  std::string expires_at;
  store::Account account;
};
// Issues a reset token for the active account with `email` (normalized): 256 random
// bits, stored as their SHA-256, valid for `ttl`; the account's unused older tokens are
// deleted. `may_reset` decides, once the account is known, whether the caller may reset
// it. not_found for no active account; audits "password.reset.issued".
Result<IssuedPasswordReset> issue_password_reset(db::Connection& service, const std::string& email,
                                                 std::chrono::seconds ttl,
                                                 const std::function<Result<Unit>(const store::Account&)>& may_reset,
                                                 const WriteContext& context);
// Uses the reset token whose hash is `token_hash` and sets the password: once (the token is
// marked used in this transaction; not_found when it is unknown, used, expired, or its
// account is gone), ending every session of the account, audited ("password.reset.used").
Result<store::Account> reset_password(db::Connection& service, const std::string& token_hash,
                                      const std::string& new_hash, const std::string& client_ip,
                                      const WriteContext& context);

// Records a public reset request for `email` (normalized) in the audit log
// ("password.reset.requested" with the client address; subject the account, or "none"
// when no active account uses the email). For an active account it also issues a token
// (as issue_password_reset does, replacing unused older ones), keeps it sealed with
// `secrets` for the mailer and announces it (password_reset.requested, no token in it);
// with no usable key (`secrets` null) it issues none. Returns the account's subject,
// nullopt for none.
struct ResetRequest {
  std::optional<std::string> subject;
  bool mailed = false;  // a token was issued and announced for the mailer
};
Result<ResetRequest> record_password_reset_request(db::Connection& service, const std::string& email,
                                                   std::chrono::seconds ttl, const SecretBox* secrets,
                                                   const std::string& client_ip, const WriteContext& context);

// Reads the sealed national id and writes the audit row in one transaction.
Result<std::optional<std::string>> read_sealed_national_id(db::Connection& service, std::int64_t id,
                                                           std::string_view purpose, const WriteContext& context);

}  // namespace townhall::auth::commands
