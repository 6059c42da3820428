#include "townhall/auth/module.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "routes.hpp"
#include "service.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/basic_module.hpp"
#include "townhall/platform/config.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/logging.hpp"
#include "townhall/platform/write_path.hpp"

namespace townhall::auth {

db::TableManifest table_manifest() {
  return bus::with_bus_tables({"citizens", "employees", "departments", "roles", "permissions", "role_permissions",
                               "user_roles", "sessions", "audit_log", "key_check", "password_resets"},
                              {});
}

namespace {

std::filesystem::path key_file_for(const db::ModuleDb& database, const Settings& settings) {
  if (settings.key_file.is_absolute()) return settings.key_file;
  return database.path().parent_path() / settings.key_file;
}

std::string demo_password() { return "demo-" + new_session_token().substr(0, 12); }

class AuthModuleImpl final : public ServiceModule<AuthService> {
 public:
  AuthModuleImpl(ModuleContext& context, const Settings& settings)
      : ServiceModule("auth", context, &auth::add_routes, settings, key_file_for(context.db, settings)) {}

  Api& api() { return service(); }

  void on_start() override {
    // The key is read at start, not construction: a module whose key file is missing
    // or unreadable is down (and retried) like one whose database is.
    service().start();
    if (context().demo) seed_demo();
  }

  ModuleHealth health() const override {
    auto health = BasicModule::health();
    if (health.up && !service().key_problem().empty())
      return {true, "national ids unavailable: " + service().key_problem(), true};
    return health;
  }

 private:
  // `serve --demo`: departments, an admin, a front desk clerk, a reviewer, a revenue clerk,
  // parks staff and three citizens, created once
  // (the passwords are printed that one time; only their hashes are kept).
  void seed_demo() {
    auto& module = context();
    const auto password_cost = service().settings().password_cost;
    auto connection = module.db.open(db::Role::service);
    if (store::find_employee_by_email(*connection, "admin@demo.townhall")) {
      logging::print(
          "townhall demo: demo data already present (its passwords were printed when it was created; "
          "`townhall admin create-user` adds another admin)");
      return;
    }
    commands::WriteContext context{"demo", "demo-seed", {}};
    auto check = [](const auto& result) {
      if (!result) throw std::runtime_error("demo seed failed: " + result.error().message);
    };
    struct Account {
      std::string label, email, name, password;
    };
    std::vector<Account> accounts;
    // One transaction: the demo data is there entirely or not at all.
    auto seeded = db::run_in_transaction(
        *connection,
        [&](db::Connection& service) -> Result<Unit> {
          check(commands::create_department(service, "BLD", "Building and Planning", context));
          check(commands::create_department(service, "PRK", "Parks and Recreation", context));
          check(commands::create_department(service, "REV", "Revenue and Taxation", context));

          auto staff = [&](std::string label, std::string email, std::string name,
                           std::optional<std::string> department, std::string role) {
            auto password = demo_password();
            check(commands::create_employee(
                service, {email, hash_password(password, password_cost), name, department, {std::move(role)}},
                context));
            accounts.push_back({std::move(label), std::move(email), std::move(name), std::move(password)});
          };
          staff("admin", "admin@demo.townhall", "Demo Administrator", std::nullopt, "admin");
          staff("front desk clerk", "desk@demo.townhall", "Dana Desk", std::nullopt, "clerk");
          staff("permits reviewer (BLD)", "reviewer@demo.townhall", "Rita Reviewer", "BLD", "permits_reviewer");
          staff("revenue clerk (REV)", "revenue@demo.townhall", "Ray Revenue", "REV", "revenue_clerk");
          staff("parks staff (PRK)", "parks@demo.townhall", "Pat Parks", "PRK", "parks_staff");

          const std::vector<std::array<std::string, 4>> citizens = {
              {"maria@demo.townhall", "Maria Garcia", "+1-555-0100", "12 Elm Street"},
              {"li@demo.townhall", "Li Wei", "+1-555-0101", "7 Oak Avenue"},
              {"sam@demo.townhall", "Sam Okafor", "+1-555-0102", "3 Pine Road"},
          };
          for (const auto& [email, name, phone, address] : citizens) {
            auto password = demo_password();
            commands::NewCitizen citizen{
                email,       hash_password(password, password_cost), name, phone, address, "Springfield", "12345",
                std::nullopt};
            auto registered = commands::register_citizen(service, citizen, context);
            check(registered);
            // All but the last are verified, so the demo shows both an approval and the
            // refusal for an unverified applicant.
            bool verified = email != citizens.back()[0];
            if (verified) {
              commands::CitizenChange change;
              change.email_verified = true;
              change.identity_verified = true;
              check(commands::update_citizen(service, registered->id, change, context));
            }
            accounts.push_back({verified ? "citizen (verified)" : "citizen (not verified)", email, name, password});
          }
          return Unit{};
        },
        module.events_committed);
    check(seeded);
    logging::print("townhall demo: created demo accounts (passwords are shown only now):");
    for (const auto& account : accounts)
      logging::print("  " + account.label + ": " + account.email + "  password: " + account.password);
    spdlog::info("auth: demo data seeded ({} accounts)", accounts.size());
  }
};

}  // namespace

Instance make_module(ModuleContext& context) {
  auto settings = parse_settings(context.config.settings);
  auto module = std::make_unique<AuthModuleImpl>(context, settings);
  Instance instance;
  instance.api = &module->api();
  instance.module = std::move(module);
  return instance;
}

std::filesystem::path key_file(const nlohmann::json& settings, const std::filesystem::path& data_dir) {
  auto parsed = parse_settings(settings);
  return parsed.key_file.is_absolute() ? parsed.key_file : data_dir / parsed.key_file;
}

std::chrono::milliseconds token_cache_ttl(const nlohmann::json& settings) {
  return parse_settings(settings).token_cache_ttl;
}

Result<CreatedStaffUser> create_staff_user(const db::ModuleDb& database, const nlohmann::json& settings_json,
                                           const StaffUser& user) {
  auto settings = parse_settings(settings_json);
  auto email = input::normalize_email(user.email);
  if (!email) return email.error();
  if (auto policy = check_password_policy(user.password, *email); !policy) return policy.error();
  if (auto problem = input::check_text(user.name, {.max_bytes = 200}))
    return make_error(Errc::invalid_argument, "name " + *problem);
  auto password_hash = hash_password(user.password, settings.password_cost);
  auto connection = database.open(db::Role::service);
  commands::WriteContext context{"cli", "cli-create-user", {}};
  // No server runs beside the CLI (the data directory's lock): its next start publishes.
  return db::run_in_transaction(
      *connection,
      [&](db::Connection& service) -> Result<CreatedStaffUser> {
        CreatedStaffUser created;
        if (user.department_code && !store::find_department(service, *user.department_code)) {
          auto department = commands::create_department(service, *user.department_code, *user.department_code, context);
          if (!department) return department.error();
          created.department_created = true;
        }
        auto employee = commands::create_employee(
            service, {*email, password_hash, user.name, user.department_code, {user.role}}, context);
        if (!employee) return employee.error();
        created.id = employee->id;
        return created;
      },
      {});
}

Result<IssuedPasswordReset> issue_password_reset(const db::ModuleDb& database, const nlohmann::json& settings_json,
                                                 const std::string& email) {
  auto settings = parse_settings(settings_json);
  auto normalized = input::normalize_email(email);
  if (!normalized) return normalized.error();
  auto connection = database.open(db::Role::service);
  commands::WriteContext context{"cli", "cli-reset-password", {}};
  auto anyone = [](const store::Account&) -> Result<Unit> { return Unit{}; };  // the operator of the data dir
  return db::run_in_transaction(
      *connection,
      [&](db::Connection& service) -> Result<IssuedPasswordReset> {
        auto issued =
            commands::issue_password_reset(service, *normalized, settings.password_reset_ttl, anyone, context);
        if (!issued) return issued.error();
        return IssuedPasswordReset{issued->token, issued->expires_at,
                                   store::subject_of(issued->account.kind, issued->account.id)};
      },
      {});
}

}  // namespace townhall::auth
