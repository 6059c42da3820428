#include "commands.hpp"

#include <algorithm>

#include "credentials.hpp"
#include "townhall/auth/events.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth::commands {
namespace {

using json = nlohmann::json;

void append(db::Connection& service, std::string_view topic, std::string_view type, std::string_view aggregate_type,
            std::string aggregate_id, std::int64_t version, json data, const WriteContext& context) {
  bus::NewEvent event;
  event.topic = topic;
  event.event_type = type;
  event.aggregate_type = aggregate_type;
  event.aggregate_id = std::move(aggregate_id);
  event.event_version = version;
  event.data = events::versioned(std::move(data));
  event.correlation_id = context.correlation_id;
  bus::append(service, event);
}

void fault(const WriteContext& context, std::string_view point) {
  if (context.fault) context.fault(point);
}

json department_snapshot(const store::Department& d) {
  return events::department_snapshot({d.code, d.name, d.event_version, d.is_active}, d.created_at, d.updated_at);
}

events::EmployeeSnapshot employee_snapshot(const Employee& e) {
  return {e.id, e.email, e.name, e.department_code, e.is_active, e.roles};
}

Employee to_employee(db::Connection& connection, const store::EmployeeRow& row) {
  return Employee{row.id,
                  row.email,
                  row.name,
                  row.department_code,
                  row.is_active,
                  store::roles_of(connection, Principal::Kind::employee, row.id),
                  row.event_version,
                  row.created_at,
                  row.updated_at};
}

json to_value(const std::string& value) { return value; }
json to_value(bool value) { return value; }
json to_value(const std::optional<std::string>& value) { return nullable(value); }

// Records old -> new of one field in `changes` and applies it.
template <class T>
void change_field(json& changes, const char* name, T& field, const T& value) {
  if (field == value) return;
  changes[name] = {{"old", to_value(field)}, {"new", to_value(value)}};
  field = value;
}

Result<Unit> check_roles(db::Connection& connection, const std::vector<std::string>& roles) {
  for (const auto& role : roles)
    if (!store::role_exists(connection, role)) return make_error(Errc::unprocessable, "unknown role '" + role + "'");
  return Unit{};
}

}  // namespace

json citizen_snapshot(const Citizen& c) { return events::citizen_snapshot(c); }

Result<Citizen> register_citizen(db::Connection& service, const NewCitizen& input, const WriteContext& context) {
  if (store::email_in_use(service, input.email))
    return make_error(Errc::conflict, "an account with this email already exists");
  // A national id another citizen claims is accepted and answered the same (issue 28.2):
  // an unverified claim blocks nobody, and the answer says nothing of who holds what.
  // Verifying one is where competing claims are settled.
  auto now = utc::now();
  store::CitizenRow row;
  row.citizen.email = input.email;
  row.citizen.name = input.name;
  row.citizen.phone = input.phone;
  row.citizen.address = input.address;
  row.citizen.city = input.city;
  row.citizen.postal_code = input.postal_code;
  row.citizen.has_national_id = input.national_id.has_value();
  row.citizen.event_version = 1;
  row.citizen.created_at = now;
  row.citizen.updated_at = now;
  row.password_hash = input.password_hash;
  if (input.national_id) {
    row.national_id_sealed = input.national_id->sealed;
    row.national_id_digest = input.national_id->digest;
  }
  row.change_seq = store::next_change_seq(service);
  store::insert_citizen(service, row);
  store::set_roles(service, Principal::Kind::citizen, row.citizen.id, {"citizen"});
  if (input.national_id)
    store::audit(service,
                 {context.actor, "citizen.national_id.set", "citizen:" + std::to_string(row.citizen.id), std::nullopt,
                  context.correlation_id, std::nullopt},
                 now);
  fault(context, "citizen.created");
  append(service, events::kCitizenTopic, events::kCitizenCreated, "citizen", std::to_string(row.citizen.id), 1,
         {{"snapshot", citizen_snapshot(row.citizen)}}, context);
  return row.citizen;
}

Result<Citizen> update_citizen(db::Connection& service, std::int64_t id, const CitizenChange& change,
                               const WriteContext& context) {
  auto row = store::find_citizen(service, id);
  if (!row || row->deleted_at) return make_error(Errc::not_found, "no such citizen");
  const auto stored = *row;
  auto& c = row->citizen;
  json changes = json::object();
  if (change.email && *change.email != c.email) {
    if (store::email_in_use(service, *change.email, id))
      return make_error(Errc::conflict, "an account with this email already exists");
    change_field(changes, "email", c.email, *change.email);
    // A new address is unverified until someone verifies it again.
    if (!change.email_verified) change_field(changes, "email_verified", c.email_verified, false);
  }
  if (change.name && *change.name != c.name) {
    change_field(changes, "name", c.name, *change.name);
    // A verified identity is a name and a national id together: either changed, it must
    // be verified again before permits issues anything in it.
    if (!change.identity_verified) change_field(changes, "identity_verified", c.identity_verified, false);
  }
  if (change.phone) change_field(changes, "phone", c.phone, *change.phone);
  if (change.address) change_field(changes, "address", c.address, *change.address);
  if (change.city) change_field(changes, "city", c.city, *change.city);
  if (change.postal_code) change_field(changes, "postal_code", c.postal_code, *change.postal_code);
  if (change.email_verified) change_field(changes, "email_verified", c.email_verified, *change.email_verified);
  if (change.identity_verified)
    change_field(changes, "identity_verified", c.identity_verified, *change.identity_verified);
  if (change.national_id) {
    const auto& next = *change.national_id;
    std::optional<std::string> digest = next ? std::optional<std::string>(next->digest) : std::nullopt;
    if (digest != row->national_id_digest || !digest) {
      if (change.national_id_changes_per_day > 0 &&
          store::national_id_changes_since(service, id,
                                           utc::format(std::chrono::system_clock::now() - std::chrono::hours(24))) >=
              change.national_id_changes_per_day)
        return make_error(Errc::too_many_requests,
                          "the national id was changed " + std::to_string(change.national_id_changes_per_day) +
                              " times in the last 24 hours; try again tomorrow or ask the front desk",
                          3600);
      store::audit(service,
                   {context.actor, "citizen.national_id.set", "citizen:" + std::to_string(id), std::nullopt,
                    context.correlation_id, std::nullopt},
                   utc::now());
      bool had = c.has_national_id;
      // Only whether one is on file is visible outside auth; the value never is.
      row->national_id_sealed = next ? std::optional<std::string>(next->sealed) : std::nullopt;
      row->national_id_digest = digest;
      change_field(changes, "has_national_id", c.has_national_id, next.has_value());
      if (had && next) changes["national_id_replaced"] = true;
      if ((had || next) && !change.identity_verified)
        change_field(changes, "identity_verified", c.identity_verified, false);
    }
  }
  if (changes.empty()) return c;
  // Competing claims are settled here: one verified identity per national id. Only staff
  // verify, so only staff learn of another holder.
  if (c.identity_verified && row->national_id_digest) {
    if (auto holder = store::verified_national_id_holder(service, *row->national_id_digest, id))
      return make_error(Errc::conflict, "citizen " + std::to_string(*holder) +
                                            " holds this national id as a verified identity; settle the competing "
                                            "claims first (GET .../citizens/" +
                                            std::to_string(id) + "/national-id-claims)");
  }
  c.event_version += 1;
  c.updated_at = utc::now();
  row->change_seq = store::next_change_seq(service);
  store::update_citizen(service, stored, *row);
  if (changes.contains("email_verified") || changes.contains("identity_verified"))
    store::audit(service,
                 {context.actor, "citizen.verification.set", "citizen:" + std::to_string(id), std::nullopt,
                  context.correlation_id,
                  json{{"email_verified", c.email_verified}, {"identity_verified", c.identity_verified}}.dump()},
                 c.updated_at);
  fault(context, "citizen.updated");
  append(service, events::kCitizenTopic, events::kCitizenUpdated, "citizen", std::to_string(id), c.event_version,
         {{"snapshot", citizen_snapshot(c)}, {"changes", changes}}, context);
  return c;
}

Result<Citizen> delete_citizen(db::Connection& service, std::int64_t id, const WriteContext& context) {
  auto row = store::find_citizen(service, id);
  if (!row || row->deleted_at) return make_error(Errc::not_found, "no such citizen");
  const auto stored = *row;
  auto now = utc::now();
  auto& c = row->citizen;
  c.is_active = false;
  c.event_version += 1;
  c.updated_at = now;
  row->deleted_at = now;
  row->change_seq = store::next_change_seq(service);
  store::update_citizen(service, stored, *row);
  store::revoke_sessions_of(service, Principal::Kind::citizen, id, now);
  store::audit(service,
               {context.actor, "citizen.deleted", "citizen:" + std::to_string(id), std::nullopt, context.correlation_id,
                std::nullopt},
               now);
  fault(context, "citizen.deleted");
  append(service, events::kCitizenTopic, events::kCitizenDeleted, "citizen", std::to_string(id), c.event_version,
         {{"snapshot", citizen_snapshot(c)}, {"changes", {{"is_active", {{"old", true}, {"new", false}}}}}}, context);
  return c;
}

Result<store::Department> create_department(db::Connection& service, const std::string& code, const std::string& name,
                                            const WriteContext& context) {
  if (store::find_department(service, code))
    return make_error(Errc::conflict, "department '" + code + "' already exists");
  auto now = utc::now();
  store::Department department{code, name, 1, now, now};
  store::insert_department(service, department);
  fault(context, "department.created");
  append(service, events::kDepartmentTopic, events::kDepartmentCreated, "department", code, 1,
         {{"snapshot", department_snapshot(department)}}, context);
  return department;
}

Result<store::Department> set_department_active(db::Connection& service, const std::string& code, bool active,
                                                const WriteContext& context) {
  auto department = store::find_department(service, code);
  if (!department) return make_error(Errc::not_found, "no such department");
  if (department->is_active == active) return *department;
  department->is_active = active;
  department->event_version += 1;
  department->updated_at = utc::now();
  store::update_department(service, *department);
  const auto type = active ? events::kDepartmentReactivated : events::kDepartmentDeactivated;
  store::audit(
      service,
      {context.actor, std::string(type), "department:" + code, std::nullopt, context.correlation_id, std::nullopt},
      department->updated_at);
  fault(context, type);
  append(service, events::kDepartmentTopic, type, "department", code, department->event_version,
         {{"snapshot", department_snapshot(*department)},
          {"changes", {{"is_active", {{"old", !active}, {"new", active}}}}}},
         context);
  return *department;
}

Result<store::Department> update_department(db::Connection& service, const std::string& code, const std::string& name,
                                            const WriteContext& context) {
  auto department = store::find_department(service, code);
  if (!department) return make_error(Errc::not_found, "no such department");
  if (department->name == name) return *department;
  json changes = {{"name", {{"old", department->name}, {"new", name}}}};
  department->name = name;
  department->event_version += 1;
  department->updated_at = utc::now();
  store::update_department(service, *department);
  fault(context, "department.updated");
  append(service, events::kDepartmentTopic, events::kDepartmentUpdated, "department", code, department->event_version,
         {{"snapshot", department_snapshot(*department)}, {"changes", changes}}, context);
  return *department;
}

Result<Employee> create_employee(db::Connection& service, const NewEmployee& input, const WriteContext& context) {
  if (input.department_code && !store::find_department(service, *input.department_code))
    return make_error(Errc::unprocessable, "unknown department '" + *input.department_code + "'");
  if (auto roles = check_roles(service, input.roles); !roles) return roles.error();
  if (store::email_in_use(service, input.email))
    return make_error(Errc::conflict, "an account with this email already exists");
  auto now = utc::now();
  store::EmployeeRow row{0, input.email, input.password_hash, input.name, input.department_code, true, 1, now, now};
  store::insert_employee(service, row);
  store::set_roles(service, Principal::Kind::employee, row.id, input.roles);
  auto employee = to_employee(service, row);
  store::audit(service,
               {context.actor, "employee.created", "employee:" + std::to_string(row.id), std::nullopt,
                context.correlation_id, json{{"roles", employee.roles}}.dump()},
               now);
  fault(context, "employee.assigned");
  append(service, events::kEmployeeTopic, events::kEmployeeAssigned, "employee", std::to_string(row.id), 1,
         events::employee_data(employee_snapshot(employee)), context);
  return employee;
}

Result<Employee> set_employee_roles(db::Connection& service, std::int64_t id, const std::vector<std::string>& roles,
                                    const WriteContext& context) {
  auto row = store::find_employee(service, id);
  if (!row) return make_error(Errc::not_found, "no such employee");
  if (auto checked = check_roles(service, roles); !checked) return checked.error();
  auto sorted = roles;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  auto old_roles = store::roles_of(service, Principal::Kind::employee, id);
  if (old_roles == sorted) return to_employee(service, *row);
  auto now = utc::now();
  store::set_roles(service, Principal::Kind::employee, id, sorted);
  row->event_version += 1;
  row->updated_at = now;
  store::update_employee(service, *row);
  store::revoke_sessions_of(service, Principal::Kind::employee, id, now);
  store::audit(service,
               {context.actor, "employee.roles.set", "employee:" + std::to_string(id), std::nullopt,
                context.correlation_id, json{{"old", old_roles}, {"new", sorted}}.dump()},
               now);
  auto employee = to_employee(service, *row);
  fault(context, "role.changed");
  append(service, events::kEmployeeTopic, events::kRoleChanged, "employee", std::to_string(id), row->event_version,
         events::employee_data(employee_snapshot(employee), {{"roles", {{"old", old_roles}, {"new", sorted}}}}),
         context);
  return employee;
}

Result<Employee> set_employee_active(db::Connection& service, std::int64_t id, bool active,
                                     const WriteContext& context) {
  auto row = store::find_employee(service, id);
  if (!row) return make_error(Errc::not_found, "no such employee");
  if (row->is_active == active) return to_employee(service, *row);
  auto now = utc::now();
  row->is_active = active;
  row->event_version += 1;
  row->updated_at = now;
  store::update_employee(service, *row);
  int ended = active ? 0 : store::revoke_sessions_of(service, Principal::Kind::employee, id, now);
  const auto type = active ? events::kEmployeeReactivated : events::kEmployeeDeactivated;
  store::audit(service,
               {context.actor, std::string(type), "employee:" + std::to_string(id), std::nullopt,
                context.correlation_id, active ? std::nullopt : std::optional(json{{"sessions_ended", ended}}.dump())},
               now);
  auto employee = to_employee(service, *row);
  fault(context, type);
  append(service, events::kEmployeeTopic, type, "employee", std::to_string(id), row->event_version,
         events::employee_data(employee_snapshot(employee), {{"is_active", {{"old", !active}, {"new", active}}}}),
         context);
  return employee;
}

Result<int> prune_audit(db::Connection& service, const std::string& before, int batch,
                        const std::function<Result<Unit>(const std::vector<store::AuditRow>&)>& exported) {
  auto rows = store::audit_before(service, before, batch);
  if (rows.empty()) return 0;
  if (auto kept = exported(rows); !kept) return kept.error();
  return store::delete_audit_through(service, before, {rows.back().at, rows.back().id});
}

Result<Employee> get_employee(db::Connection& connection, std::int64_t id) {
  auto row = store::find_employee(connection, id);
  if (!row) return make_error(Errc::not_found, "no such employee");
  return to_employee(connection, *row);
}

Result<int> change_password(db::Connection& service, const store::Account& account, const std::string& new_hash,
                            const std::string& kept_token_hash, const std::string& client_ip,
                            const WriteContext& context) {
  auto current = store::find_active_account(service, account.kind, account.id);
  if (!current) return make_error(Errc::not_found, "no such account");
  if (current->password_hash != account.password_hash)
    return make_error(Errc::conflict, "the password was changed meanwhile; sign in again");
  auto now = utc::now();
  store::set_password_hash(service, account.kind, account.id, new_hash);
  int ended = store::revoke_other_sessions_of(service, account.kind, account.id, kept_token_hash, now);
  store::audit(service,
               {context.actor, "password.changed", store::subject_of(account.kind, account.id), std::nullopt,
                context.correlation_id, json{{"other_sessions_ended", ended}, {"client_ip", client_ip}}.dump()},
               now);
  fault(context, "password.changed");
  return ended;
}

namespace {

// A new reset token for `account`, replacing its unused older ones (and dropping expired
// ones of anyone): only its SHA-256 is the key; `sealed` keeps it for the mailer.
IssuedPasswordReset store_reset_token(db::Connection& service, const store::Account& account, std::chrono::seconds ttl,
                                      const SecretBox* sealer, const WriteContext& context) {
  auto now = std::chrono::system_clock::now();
  IssuedPasswordReset issued{new_session_token(), utc::format(now + ttl), account};
  std::optional<std::string> sealed;
  if (sealer) sealed = sealer->seal(issued.token);
  store::prune_password_resets(service, utc::format(now));
  store::delete_unused_password_resets_of(service, account.kind, account.id);
  store::insert_password_reset(
      service, token_hash(issued.token),
      {account.kind, account.id, context.actor, utc::format(now), issued.expires_at, {}, std::move(sealed)});
  return issued;
}

}  // namespace

Result<IssuedPasswordReset> issue_password_reset(db::Connection& service, const std::string& email,
                                                 std::chrono::seconds ttl,
                                                 const std::function<Result<Unit>(const store::Account&)>& may_reset,
                                                 const WriteContext& context) {
  auto account = store::find_active_account_by_email(service, email);
  if (!account) return make_error(Errc::not_found, std::string(kNoResettableAccount));
  if (auto allowed = may_reset(*account); !allowed) return allowed.error();
  auto issued = store_reset_token(service, *account, ttl, nullptr, context);
  store::audit(service,
               {context.actor, "password.reset.issued", store::subject_of(account->kind, account->id), std::nullopt,
                context.correlation_id, json{{"expires_at", issued.expires_at}}.dump()},
               utc::now());
  fault(context, "password.reset.issued");
  return issued;
}

Result<store::Account> reset_password(db::Connection& service, const std::string& token_hash,
                                      const std::string& new_hash, const std::string& client_ip,
                                      const WriteContext& context) {
  const Error unusable{Errc::not_found, "no usable reset token"};
  auto reset = store::find_password_reset(service, token_hash);
  if (!reset) return unusable;
  auto account = store::find_active_account(service, reset->kind, reset->principal_id);
  if (!account) return unusable;
  auto now = utc::now();
  if (!store::use_password_reset(service, token_hash, now)) return unusable;
  store::set_password_hash(service, account->kind, account->id, new_hash);
  int ended = store::revoke_sessions_of(service, account->kind, account->id, now);
  store::audit(service,
               {context.actor, "password.reset.used", store::subject_of(account->kind, account->id), std::nullopt,
                context.correlation_id,
                json{{"issued_by", reset->issued_by}, {"sessions_ended", ended}, {"client_ip", client_ip}}.dump()},
               now);
  fault(context, "password.reset.used");
  account->password_hash = new_hash;
  return *account;
}

Result<ResetRequest> record_password_reset_request(db::Connection& service, const std::string& email,
                                                   std::chrono::seconds ttl, const SecretBox* secrets,
                                                   const std::string& client_ip, const WriteContext& context) {
  auto account = store::find_active_account_by_email(service, email);
  ResetRequest request;
  if (account) request.subject = store::subject_of(account->kind, account->id);
  if (account && secrets) {
    auto issued = store_reset_token(service, *account, ttl, secrets, context);
    std::string name;
    if (account->kind == Principal::Kind::citizen) {
      if (auto citizen = store::find_citizen(service, account->id)) name = citizen->citizen.name;
    } else if (auto employee = store::find_employee(service, account->id)) {
      name = employee->name;
    }
    events::PasswordResetRequested announced{
        token_hash(issued.token), std::string(to_string(account->kind)), account->id, account->email, name,
        issued.expires_at};
    append(service, events::kPasswordResetTopic, events::kPasswordResetRequested, "account", *request.subject, 1,
           events::password_reset_data(announced), context);
    request.mailed = true;
  }
  store::audit(service,
               {context.actor, "password.reset.requested", request.subject.value_or("none"), std::nullopt,
                context.correlation_id, json{{"client_ip", client_ip}, {"mailed", request.mailed}}.dump()},
               utc::now());
  fault(context, "password.reset.requested");
  return request;
}

Result<std::optional<std::string>> read_sealed_national_id(db::Connection& service, std::int64_t id,
                                                           std::string_view purpose, const WriteContext& context) {
  auto row = store::find_citizen(service, id);
  if (!row) return make_error(Errc::not_found, "no such citizen");
  store::audit(service,
               {context.actor, "citizen.national_id.read", "citizen:" + std::to_string(id), std::string(purpose),
                context.correlation_id, std::nullopt},
               utc::now());
  fault(context, "national_id.read");
  return row->national_id_sealed;
}

}  // namespace townhall::auth::commands
