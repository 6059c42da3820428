// The commands that work on the data directory's files without a server: migrate,
// create a staff user, issue a password reset, expire licences, list dead letters.
#include "application_impl.hpp"
#include "townhall/revenue/module.hpp"

namespace townhall::app {

bool migrate_all(const config::Config& config, std::vector<std::string>& report) {
  bool ok = true;
  for (const auto& module : config.modules) {
    try {
      auto database = open_module_db(config, module, nullptr);
      auto applied = migrate(*database);
      if (applied.empty()) report.push_back(module.name + ": up to date");
      for (const auto& m : applied) report.push_back(module.name + ": applied " + m.component + "/" + m.name);
    } catch (const std::exception& error) {
      ok = false;
      report.push_back(module.name + ": FAILED: " + error.what());
    }
  }
  return ok;
}

Result<auth::CreatedStaffUser> create_staff_user(const config::Config& config, const auth::StaffUser& user) {
  const auto* module = config.module("auth");
  if (!module) return make_error(Errc::unavailable, "the registry has no auth module");
  auto database = open_module_db(config, *module, nullptr);
  migrate(*database);
  return auth::create_staff_user(*database, module->settings, user);
}

Result<auth::IssuedPasswordReset> issue_password_reset(const config::Config& config, const std::string& email) {
  const auto* module = config.module("auth");
  if (!module) return make_error(Errc::unavailable, "the registry has no auth module");
  auto database = open_module_db(config, *module, nullptr);
  migrate(*database);
  return auth::issue_password_reset(*database, module->settings, email);
}

Result<std::int64_t> expire_business_licenses(const config::Config& config) {
  const auto* module = config.module("revenue");
  if (!module) return make_error(Errc::unavailable, "the registry has no revenue module");
  auto database = open_module_db(config, *module, nullptr);
  migrate(*database);
  return revenue::expire_lapsed_licenses(*database);
}

Result<std::int64_t> mark_overdue_invoices(const config::Config& config) {
  const auto* module = config.module("revenue");
  if (!module) return make_error(Errc::unavailable, "the registry has no revenue module");
  auto database = open_module_db(config, *module, nullptr);
  migrate(*database);
  return revenue::mark_invoices_overdue(*database);
}

std::vector<bus::DeadLetter> list_dead_letters(const config::Config& config, const std::optional<std::string>& module,
                                               std::vector<std::string>& errors) {
  std::vector<bus::DeadLetter> out;
  for (const auto& m : config.modules) {
    if (module && m.name != *module) continue;
    try {
      auto letters = bus::read_dead_letters(*open_module_db(config, m, nullptr));
      out.insert(out.end(), letters.begin(), letters.end());
    } catch (const std::exception& error) {
      errors.push_back(m.name + ": " + error.what());
    }
  }
  return out;
}

}  // namespace townhall::app
