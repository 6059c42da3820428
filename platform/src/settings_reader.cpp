#include "townhall/platform/settings_reader.hpp"

#include <algorithm>

#include "townhall/platform/config.hpp"

namespace townhall::config {

SettingsReader::SettingsReader(const nlohmann::json& section, std::string path)
    : section_(section.is_null() ? nlohmann::json::object() : section), path_(std::move(path)) {
  if (!section_.is_object()) throw ConfigError(path_ + ": expected an object");
}

void SettingsReader::fail(std::string_view key, const std::string& message) const {
  throw ConfigError(path_ + (key.empty() ? "" : ".") + std::string(key) + ": " + message);
}

const nlohmann::json* SettingsReader::value(std::string_view key) {
  read_.emplace(key);
  auto it = section_.find(std::string(key));
  return it == section_.end() ? nullptr : &*it;
}

std::vector<std::string> SettingsReader::keys() const {
  std::vector<std::string> out;
  for (const auto& item : section_.items()) out.push_back(item.key());
  return out;
}

bool SettingsReader::has(std::string_view key) const { return section_.contains(std::string(key)); }

std::int64_t SettingsReader::integer(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  const auto* found = value(key);
  if (!found) return fallback;
  if (!found->is_number_integer() || found->get<std::int64_t>() < min || found->get<std::int64_t>() > max)
    fail(key, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return found->get<std::int64_t>();
}

bool SettingsReader::boolean(std::string_view key, bool fallback) {
  const auto* found = value(key);
  if (!found) return fallback;
  if (!found->is_boolean()) fail(key, "expected true or false");
  return found->get<bool>();
}

std::string SettingsReader::text(std::string_view key, std::string fallback, std::size_t max_bytes, bool allow_empty) {
  const auto* found = value(key);
  if (!found) return fallback;
  if (!found->is_string()) fail(key, "expected a string");
  const auto& text = found->get_ref<const std::string&>();
  if (text.size() > max_bytes) fail(key, "longer than " + std::to_string(max_bytes) + " bytes");
  if (!allow_empty && text.empty()) fail(key, "must not be empty");
  if (std::any_of(text.begin(), text.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    fail(key, "must not contain control characters");
  return text;
}

std::string SettingsReader::choice(std::string_view key, std::string fallback,
                                   std::initializer_list<std::string_view> choices) {
  auto value = text(key, std::move(fallback), 64);
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return value;
  std::string listed;
  for (auto c : choices) listed += (listed.empty() ? "\"" : ", \"") + std::string(c) + "\"";
  fail(key, "expected one of " + listed);
}

SettingsReader SettingsReader::section(std::string_view key) {
  const auto* found = value(key);
  if (found && !found->is_object()) fail(key, "expected an object");  // null too: only a missing one is empty
  return SettingsReader(found ? *found : nlohmann::json(), path_ + "." + std::string(key));
}

void SettingsReader::finish() const {
  for (const auto& [key, value] : section_.items())
    if (!read_.contains(key)) fail(key, "unknown setting");
}

}  // namespace townhall::config
