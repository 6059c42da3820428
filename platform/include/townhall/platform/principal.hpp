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
// who asks — a signed-in principal, or a module calling as itself (`service`, its name),
// never neither — the request's correlation id, and when the caller stops waiting, as a
// wall-clock instant (a steady clock's time means nothing on another machine). Api
// coroutines take it by value.
struct CallContext {
  using Clock = std::chrono::system_clock;

  std::shared_ptr<const Principal> principal;
  std::string service;  // the calling module when it calls as itself ("permits")
  std::string correlation_id;
  // The bearer token `principal` was authenticated from, when the call is made for a
  // signed-in user: an Api over HTTP sends it so the other side authenticates the user
  // itself (a principal never travels). Never logged.
  std::string bearer_token;
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);

  // A module calling another as itself (a saga step, a bootstrap, a consistency check).
  static CallContext as_service(std::string module, std::string correlation_id,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    CallContext context;
    context.service = std::move(module);
    context.correlation_id = std::move(correlation_id);
    context.deadline = Clock::now() + timeout;
    return context;
  }

  bool is_service() const { return !principal && !service.empty(); }
  bool anonymous() const { return !principal && service.empty(); }
  bool expired() const { return Clock::now() >= deadline; }
};

}  // namespace townhall
