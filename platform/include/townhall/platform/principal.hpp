#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace townhall {

// Who is calling: an authenticated citizen or employee, as auth vouches for them.
// Modules authorize with it (DESIGN.md §6: permissions are checked by the owner of the
// resource); a citizen's own records are theirs by id, not by permission.
struct Principal {
  enum class Kind { citizen, employee };

  std::int64_t id = 0;
  Kind kind = Kind::citizen;
  std::string email;
  std::string name;
  std::vector<std::string> roles;
  std::vector<std::string> permissions;  // "citizens:read", "revenue:*", or "*" (admin)
  std::string department;                // employees only; empty when none

  bool is_citizen() const { return kind == Kind::citizen; }
  bool is_employee() const { return kind == Kind::employee; }
  bool is_citizen(std::int64_t citizen_id) const { return kind == Kind::citizen && id == citizen_id; }

  // "citizens:read" is granted by "citizens:read", "citizens:*" or "*".
  bool has(std::string_view permission) const {
    auto colon = permission.find(':');
    auto area = permission.substr(0, colon);
    return std::any_of(permissions.begin(), permissions.end(), [&](const std::string& granted) {
      if (granted == "*" || granted == permission) return true;
      return granted.size() == area.size() + 2 && granted.ends_with(":*") && granted.starts_with(area);
    });
  }
};

std::string_view to_string(Principal::Kind kind);

// What travels with every internal Api call (DESIGN.md §5), as it would over the wire:
// who asks (null: the module itself, e.g. a background job), the request's correlation
// id, and when the caller stops waiting.
struct CallContext {
  std::shared_ptr<const Principal> principal;
  std::string correlation_id;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);

  bool expired() const { return std::chrono::steady_clock::now() >= deadline; }
};

}  // namespace townhall
