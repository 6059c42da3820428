#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace townhall::permits {

struct PermitType {
  std::int64_t fee_cents = 0;  // 0: no fee, the application goes straight to review
  std::string currency = "USD";
  bool inspection_required = false;  // approval needs a passed inspection
};

// The permits module's registry section (`modules.permits.settings`).
struct Settings {
  std::map<std::string, PermitType> permit_types;
  // When auth cannot answer, approval may rely on a citizen_refs row this fresh.
  std::chrono::seconds identity_fallback_max_age{300};
};

// Throws config::ConfigError naming the key; unknown keys are errors.
Settings parse_settings(const nlohmann::json& section);

}  // namespace townhall::permits
