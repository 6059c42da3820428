#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace townhall::notify {

// How notify reaches its SMTP server (libcurl's SMTP client). Off by default: the inbox
// works without it.
struct SmtpSettings {
  bool enabled = false;
  std::string host = "localhost";
  int port = 25;
  std::string security = "starttls";  // starttls (required) | tls (implicit, smtps) | none (a local relay)
  std::string from = "Townhall <no-reply@townhall.invalid>";  // the From header; its address is MAIL FROM
  std::string username;                                       // empty: no AUTH
  std::filesystem::path password_file;                        // relative: to the data directory; read at start
  std::chrono::milliseconds timeout{10000};
};

// The notify module's registry section (`modules.notify.settings`).
struct Settings {
  SmtpSettings smtp;
  int max_attempts = 8;                           // then the email is failed (a dead letter)
  std::chrono::milliseconds retry_initial{5000};  // doubled per attempt
  std::chrono::milliseconds retry_max{std::chrono::hours(1)};
  int license_reminder_days = 30;  // "your license expires in N days"
};

// Throws config::ConfigError naming the key; unknown keys are errors.
Settings parse_settings(const nlohmann::json& section);

// The address inside "Name <address>" (or the whole text).
std::string envelope_address(const std::string& from);

}  // namespace townhall::notify
