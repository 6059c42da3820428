#include "settings.hpp"

#include <algorithm>

#include "townhall/platform/config.hpp"

namespace townhall::permits {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& message) {
  throw config::ConfigError("modules.permits.settings." + key + ": " + message);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

}  // namespace

Settings parse_settings(const nlohmann::json& section) {
  Settings settings;
  if (!section.is_object()) fail("", "expected an object");
  for (const auto& [key, value] : section.items()) {
    if (key == "identity_fallback_max_age_seconds") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > 86400)
        fail(key, "expected an integer from 0 to 86400");
      settings.identity_fallback_max_age = std::chrono::seconds(value.get<std::int64_t>());
    } else if (key == "permit_types") {
      if (!value.is_object()) fail(key, "expected an object of permit types");
      for (const auto& [name, type] : value.items()) {
        auto path = key + "." + name;
        if (!valid_name(name)) fail(path, "a permit type is 1-64 of a-z, 0-9, '_' and '-'");
        if (!type.is_object()) fail(path, "expected an object");
        PermitType parsed;
        for (const auto& [field, v] : type.items()) {
          if (field == "fee_cents") {
            if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 100'000'000'00)
              fail(path + ".fee_cents", "expected a non-negative integer (minor units)");
            parsed.fee_cents = v.get<std::int64_t>();
          } else if (field == "currency") {
            auto text = v.is_string() ? v.get<std::string>() : std::string();
            bool iso =
                text.size() == 3 && std::all_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
            if (!iso) fail(path + ".currency", "expected an ISO 4217 code such as \"USD\"");
            parsed.currency = text;
          } else if (field == "inspection_required") {
            if (!v.is_boolean()) fail(path + ".inspection_required", "expected true or false");
            parsed.inspection_required = v.get<bool>();
          } else {
            fail(path + "." + field, "unknown setting");
          }
        }
        settings.permit_types[name] = parsed;
      }
    } else {
      fail(key, "unknown setting");
    }
  }
  return settings;
}

}  // namespace townhall::permits
