#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/platform/consistency.hpp"
#include "townhall/platform/principal.hpp"
#include "townhall/platform/result.hpp"

// The auth module's contract with the rest of the system (DESIGN.md §5). Other modules
// get an auth::Api& from the composition root; every call can fail the way a remote call
// fails (unavailable, deadline_exceeded, not_found, forbidden) and callers handle that.
// Parameters are values (a coroutine may run after its caller's temporaries are gone,
// and an HTTP client would serialize them); an anonymous CallContext is refused.
namespace townhall::auth {

// Event topics and types auth publishes (DESIGN.md §4).
namespace events {
inline constexpr std::string_view kCitizenTopic = "gov.auth.citizen";
inline constexpr std::string_view kDepartmentTopic = "gov.auth.department";
inline constexpr std::string_view kEmployeeTopic = "gov.auth.employee";
inline constexpr std::string_view kCitizenCreated = "citizen.created";
inline constexpr std::string_view kCitizenUpdated = "citizen.updated";
inline constexpr std::string_view kCitizenDeleted = "citizen.deleted";
inline constexpr std::string_view kDepartmentCreated = "department.created";
inline constexpr std::string_view kDepartmentUpdated = "department.updated";
// A deactivated department takes no new permit applications; its existing ones stay.
inline constexpr std::string_view kDepartmentDeactivated = "department.deactivated";
inline constexpr std::string_view kDepartmentReactivated = "department.reactivated";
inline constexpr std::string_view kEmployeeAssigned = "employee.assigned";
// An employee's roles were replaced (their sessions ended); the payload has the old and
// new roles (events::employee_of, events::roles_change_of).
inline constexpr std::string_view kRoleChanged = "role.changed";
// An employee was off-boarded (every session ended at once) or taken back.
inline constexpr std::string_view kEmployeeDeactivated = "employee.deactivated";
inline constexpr std::string_view kEmployeeReactivated = "employee.reactivated";
// An account asked for a password reset: the notify module mails it (events.hpp).
inline constexpr std::string_view kPasswordResetTopic = "gov.auth.password_reset";
inline constexpr std::string_view kPasswordResetRequested = "password_reset.requested";
inline constexpr std::array kTopics{kCitizenTopic, kDepartmentTopic, kEmployeeTopic, kPasswordResetTopic};
}  // namespace events

// A citizen as other modules may see it: contact data and flags, never the national id
// or the password hash. Matches the `snapshot` of gov.auth.citizen events.
struct Citizen {
  std::int64_t id = 0;
  std::string email;
  std::string name;
  std::optional<std::string> phone;
  std::optional<std::string> address;
  std::optional<std::string> city;
  std::optional<std::string> postal_code;
  bool has_national_id = false;
  bool email_verified = false;
  bool identity_verified = false;
  bool is_active = true;
  std::int64_t event_version = 0;
  std::string created_at;
  std::string updated_at;
};

// The citizen fields a cache may keep (never the national id), each named as the column
// every citizen_refs table gives it. A cache keeps no contact data of a closed account:
// for an inactive citizen email, phone, address, city and postal_code are null.
enum class CitizenField : std::uint8_t {
  name,
  email,
  phone,
  address,
  city,
  postal_code,
  email_verified,
  identity_verified,
  is_active
};
using CitizenFields = std::vector<CitizenField>;

inline std::string_view column_name(CitizenField field) {
  switch (field) {
    case CitizenField::name: return "name";
    case CitizenField::email: return "email";
    case CitizenField::phone: return "phone";
    case CitizenField::address: return "address";
    case CitizenField::city: return "city";
    case CitizenField::postal_code: return "postal_code";
    case CitizenField::email_verified: return "email_verified";
    case CitizenField::identity_verified: return "identity_verified";
    case CitizenField::is_active: return "is_active";
  }
  return "";
}

// The content hash (consistency::ContentHash) of what a cache keeping `fields` holds for
// `citizen`: what auth's digests cover and what the check computes from the cache's
// columns, so a cache row that differs in any kept field is found.
inline std::uint64_t cached_content(const Citizen& citizen, const CitizenFields& fields) {
  consistency::ContentHash hash;
  auto contact = [&](const std::optional<std::string>& value) {
    hash.nullable_text(citizen.is_active ? value : std::nullopt);
  };
  for (auto field : fields) {
    switch (field) {
      case CitizenField::name: hash.text(citizen.name); break;
      case CitizenField::email: contact(citizen.email); break;
      case CitizenField::phone: contact(citizen.phone); break;
      case CitizenField::address: contact(citizen.address); break;
      case CitizenField::city: contact(citizen.city); break;
      case CitizenField::postal_code: contact(citizen.postal_code); break;
      case CitizenField::email_verified: hash.integer(citizen.email_verified ? 1 : 0); break;
      case CitizenField::identity_verified: hash.integer(citizen.identity_verified ? 1 : 0); break;
      case CitizenField::is_active: hash.integer(citizen.is_active ? 1 : 0); break;
    }
  }
  return hash.value();
}

struct CitizenVersion {
  std::int64_t id = 0;
  std::int64_t event_version = 0;
  bool is_active = true;
  std::uint64_t content = 0;  // cached_content() of the fields asked for
};

// Citizens changed after `change_seq`, oldest change first; `next` is where to go on.
struct CitizenChanges {
  std::vector<Citizen> citizens;
  std::int64_t next = 0;
};

// A department as other modules may see it (the snapshot of gov.auth.department events).
struct DepartmentRef {
  std::string code;
  std::string name;
  std::int64_t event_version = 0;
  bool is_active = true;  // false: it takes no new permit applications
};

// A password reset token to mail (password_reset_mail): the token itself, shown only in
// the email, the account's address and the token's expiry.
struct PasswordResetMail {
  std::string token;
  std::string email;
  std::string expires_at;
};

class Api {
 public:
  virtual ~Api() = default;

  // Bearer token -> principal. unauthorized when the token is unknown, expired or
  // revoked (or its account is gone). Served from a short-TTL cache; logout, role
  // changes and deletions invalidate it at once.
  virtual boost::asio::awaitable<Result<std::shared_ptr<const Principal>>> authenticate(CallContext context,
                                                                                        std::string token) = 0;

  // Fresh from auth's own file (not a cache). The caller is the citizen, staff with
  // citizens:read, or a module calling as itself (CallContext::as_service).
  virtual boost::asio::awaitable<Result<Citizen>> get_citizen(CallContext context, std::int64_t citizen_id) = 0;

  // The citizen's national id (nullopt when none is on file). Needs a principal with
  // citizens:sensitive and a stated purpose; each call writes an audit_log row (who,
  // what, purpose, when) in the same transaction as it reads.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> get_sensitive(CallContext context,
                                                                                   std::int64_t citizen_id,
                                                                                   std::string purpose) = 0;

  // (id, event_version, content of `fields`) of citizens with id > after_id, ascending, at
  // most `limit` (≤ 1000): what a consistency check compares a cache with.
  virtual boost::asio::awaitable<Result<std::vector<CitizenVersion>>> citizen_versions(CallContext context,
                                                                                       std::int64_t after_id, int limit,
                                                                                       CitizenFields fields) = 0;

  // The digest of (id, event_version, content of `fields`) of citizens with from_id <= id
  // < to_id: what a cache's consistency check compares its own range with before asking
  // for entries.
  virtual boost::asio::awaitable<Result<consistency::Digest>> citizen_digest(CallContext context, std::int64_t from_id,
                                                                             std::int64_t to_id,
                                                                             CitizenFields fields) = 0;

  // Citizens whose last change is after `change_seq` (0: all), for resync.
  virtual boost::asio::awaitable<Result<CitizenChanges>> citizens_since(CallContext context, std::int64_t change_seq,
                                                                        int limit) = 0;

  // Every department (a few dozen at most), for a cache's bootstrap.
  virtual boost::asio::awaitable<Result<std::vector<DepartmentRef>>> departments(CallContext context) = 0;
  // The token of the reset a password_reset.requested event announced (by its
  // `reference`), for the module that mails it, at the moment it sends: a module calling
  // as itself only (forbidden otherwise). not_found when the token was used, replaced by
  // a newer one or expired, or its account closed or changed its email; unavailable when
  // auth's key does not open its sealed tokens.
  virtual boost::asio::awaitable<Result<PasswordResetMail>> password_reset_mail(CallContext context,
                                                                                std::string reference) = 0;
};

}  // namespace townhall::auth
