#include "settings.hpp"

#include "townhall/platform/settings_reader.hpp"

namespace townhall::notify {

std::string envelope_address(const std::string& from) {
  auto open = from.rfind('<');
  auto close = from.rfind('>');
  if (open != std::string::npos && close != std::string::npos && close > open + 1)
    return from.substr(open + 1, close - open - 1);
  return from;
}

Settings parse_settings(const nlohmann::json& section) {
  config::SettingsReader reader(section, "modules.notify.settings");
  Settings settings;
  auto smtp = reader.section("smtp");
  settings.smtp.enabled = smtp.boolean("enabled", false);
  settings.smtp.host = smtp.text("host", settings.smtp.host, 253, false);
  settings.smtp.port = static_cast<int>(smtp.integer("port", settings.smtp.port, 1, 65535));
  settings.smtp.security = smtp.choice("security", settings.smtp.security, {"starttls", "tls", "none"});
  settings.smtp.from = smtp.text("from", settings.smtp.from, 320, false);
  if (envelope_address(settings.smtp.from).find('@') == std::string::npos)
    smtp.fail("from", "expected an address such as \"Town Hall <no-reply@example.org>\"");
  settings.smtp.username = smtp.text("username", "", 320);
  settings.smtp.password_file = smtp.text("password_file", "", 4096);
  if (!settings.smtp.password_file.empty() && settings.smtp.username.empty())
    smtp.fail("password_file", "needs a username");
  settings.smtp.timeout = std::chrono::milliseconds(smtp.integer("timeout_ms", 10000, 100, 300000));
  smtp.finish();
  settings.max_attempts = static_cast<int>(reader.integer("max_attempts", settings.max_attempts, 1, 100));
  settings.retry_initial = std::chrono::milliseconds(reader.integer("retry_initial_ms", 5000, 10, 86'400'000));
  settings.retry_max = std::chrono::milliseconds(reader.integer("retry_max_ms", 3'600'000, 10, 7 * 86'400'000LL));
  if (settings.retry_max < settings.retry_initial) reader.fail("retry_max_ms", "must not be below retry_initial_ms");
  settings.license_reminder_days =
      static_cast<int>(reader.integer("license_reminder_days", settings.license_reminder_days, 1, 365));
  reader.finish();
  return settings;
}

}  // namespace townhall::notify
