#include "settings.hpp"

#include <algorithm>

#include "townhall/platform/settings_reader.hpp"

namespace townhall::permits {
namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

PermitType parse_permit_type(config::SettingsReader& reader) {
  PermitType type;
  if (const auto* fee = reader.value("fee_cents")) {
    if (!fee->is_number_integer() || fee->get<std::int64_t>() < 0 || fee->get<std::int64_t>() > 100'000'000'00)
      reader.fail("fee_cents", "expected a non-negative integer (minor units)");
    type.fee_cents = fee->get<std::int64_t>();
  }
  if (const auto* currency = reader.value("currency")) {
    auto text = currency->is_string() ? currency->get<std::string>() : std::string();
    bool iso = text.size() == 3 && std::all_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    if (!iso) reader.fail("currency", "expected an ISO 4217 code such as \"USD\"");
    type.currency = text;
  }
  type.inspection_required = reader.boolean("inspection_required", type.inspection_required);
  reader.finish();
  return type;
}

}  // namespace

Settings parse_settings(const nlohmann::json& section) {
  config::SettingsReader reader(section, "modules.permits.settings");
  Settings settings;
  settings.identity_fallback_max_age = std::chrono::seconds(
      reader.integer("identity_fallback_max_age_seconds", settings.identity_fallback_max_age.count(), 0, 86400));
  if (const auto* types = reader.value("permit_types"); types && !types->is_object())
    reader.fail("permit_types", "expected an object of permit types");
  auto types = reader.section("permit_types");
  for (const auto& name : types.keys()) {
    if (!valid_name(name)) types.fail(name, "a permit type is 1-64 of a-z, 0-9, '_' and '-'");
    auto type = types.section(name);
    settings.permit_types[name] = parse_permit_type(type);
  }
  reader.finish();
  return settings;
}

}  // namespace townhall::permits
