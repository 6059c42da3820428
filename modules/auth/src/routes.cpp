#include "routes.hpp"

#include <nlohmann/json.hpp>

#include "townhall/platform/input.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/routes.hpp"
#include "townhall/platform/schema.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {
namespace {

using json = nlohmann::json;
using http::Request;

constexpr input::TextLimits kEmail{.max_bytes = 254};
constexpr input::TextLimits kPassword{.max_bytes = 1024};  // the policy then says ≤ 256
constexpr input::TextLimits kName{.max_bytes = 200};
constexpr input::TextLimits kPhone{.max_bytes = 32};
constexpr input::TextLimits kAddress{.max_bytes = 200};
constexpr input::TextLimits kCity{.max_bytes = 100};
constexpr input::TextLimits kPostalCode{.max_bytes = 20};
constexpr input::TextLimits kNationalId{.max_bytes = 32};
constexpr input::TextLimits kDepartmentCode{.max_bytes = 32};
constexpr input::TextLimits kRole{.max_bytes = 64};
constexpr input::TextLimits kAction{.max_bytes = 64};
constexpr input::TextLimits kResetToken{.max_bytes = 1024};  // a real one has 43 characters

json department_json(const store::Department& d) {
  return {{"code", d.code},
          {"name", d.name},
          {"is_active", d.is_active},
          {"created_at", d.created_at},
          {"updated_at", d.updated_at}};
}

// An optional text query parameter within `limits`; invalid_argument naming it.
Result<std::optional<std::string>> query_text(const Request& request, const char* name, input::TextLimits limits) {
  auto value = request.query_param(name);
  if (!value) return std::optional<std::string>();
  if (value->empty()) return make_error(Errc::invalid_argument, std::string("query parameter '") + name + "' is empty");
  if (auto problem = input::check_text(*value, limits))
    return make_error(Errc::invalid_argument, std::string("query parameter '") + name + "' " + *problem);
  return std::optional<std::string>(std::move(*value));
}

// An optional RFC 3339 time query parameter; invalid_argument naming it.
Result<std::optional<std::chrono::system_clock::time_point>> query_time(const Request& request, const char* name) {
  auto value = request.query_param(name);
  if (!value) return std::optional<std::chrono::system_clock::time_point>();
  auto parsed = utc::parse_rfc3339(*value);
  if (!parsed)
    return make_error(Errc::invalid_argument,
                      std::string("query parameter '") + name +
                          "' must be an RFC 3339 date-time (2026-12-01T09:30:00Z): " + parsed.error().message);
  return std::optional<std::chrono::system_clock::time_point>(*parsed);
}

json employee_json(const commands::Employee& e) {
  return {{"id", e.id},
          {"email", e.email},
          {"name", e.name},
          {"department_code", nullable(e.department_code)},
          {"is_active", e.is_active},
          {"roles", e.roles},
          {"created_at", e.created_at},
          {"updated_at", e.updated_at}};
}

// Department codes are short upper-case identifiers: BLD, PARKS-2.
Result<std::string> department_code(std::string text) {
  for (auto& c : text) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return make_error(Errc::invalid_argument, "field 'code': only letters, digits, '-' and '_'");
  }
  return text;
}

std::optional<std::string> bearer(const Request& request) {
  auto header = request.header("Authorization");
  if (header.size() <= 7) return std::nullopt;
  auto token = header.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return std::string(token);
}

struct Routes {
  AuthService& service;

  routes::Reply register_citizen(Request& request) {
    auto body = input::Body::read(
        request.body, {"email", "password", "name", "phone", "address", "city", "postal_code", "national_id"});
    Registration registration;
    registration.email = body.required_string("email", kEmail);
    registration.password = body.required_string("password", kPassword);
    registration.name = body.required_string("name", kName);
    registration.phone = body.optional_string("phone", kPhone);
    registration.address = body.optional_string("address", kAddress);
    registration.city = body.optional_string("city", kCity);
    registration.postal_code = body.optional_string("postal_code", kPostalCode);
    registration.national_id = body.optional_string("national_id", kNationalId);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto citizen = co_await service.register_citizen(request.call_context(), std::move(registration));
    if (!citizen) co_return http::problem(citizen.error());
    // <prefix>/register creates <prefix>/citizens/<id>.
    co_return routes::created_at(
        request.path.substr(0, request.path.rfind('/')) + "/citizens/" + std::to_string(citizen->id),
        citizen_json(*citizen));
  }

  routes::Reply login(Request& request) {
    auto body = input::Body::read(request.body, {"email", "password"});
    auto email = body.required_string("email", kEmail);
    auto password = body.required_string("password", kPassword);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto session = co_await service.login(std::move(email), std::move(password), request.client_ip);
    if (!session) co_return http::problem(session.error());
    auto response = json_body(200, {{"token", session->token},
                                    {"token_type", "Bearer"},
                                    {"expires_at", session->expires_at},
                                    {"principal", principal_json(*session->principal)}});
    response.set_header("Cache-Control", "no-store");
    co_return response;
  }

  routes::Reply logout(Request& request) {
    auto token = bearer(request);
    if (!token) co_return http::problem(make_error(Errc::unauthorized, "no bearer token"));
    co_return routes::no_content(co_await service.logout(*token));
  }

  routes::Reply change_password(Request& request) {
    auto body = input::Body::read(request.body, {"current_password", "new_password"});
    auto current = body.required_string("current_password", kPassword);
    auto next = body.required_string("new_password", kPassword);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto token = bearer(request);  // the gateway authenticated it: this session stays
    if (!token) co_return http::problem(make_error(Errc::unauthorized, "no bearer token"));
    auto done = co_await service.change_password(request.call_context(), std::move(current), std::move(next),
                                                 request.client_ip, std::move(*token));
    co_return routes::no_content(done);
  }

  routes::Reply issue_password_reset(Request& request) {
    auto body = input::Body::read(request.body, {"email"});
    auto email = body.required_string("email", kEmail);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto issued = co_await service.issue_password_reset(request.call_context(), std::move(email));
    if (!issued) co_return http::problem(issued.error());
    auto response = json_body(201, {{"token", issued->token}, {"expires_at", issued->expires_at}});
    response.set_header("Cache-Control", "no-store");
    co_return response;
  }

  routes::Reply request_password_reset(Request& request) {
    auto body = input::Body::read(request.body, {"email"});
    auto email = body.required_string("email", kEmail);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto done = co_await service.request_password_reset(request.call_context(), std::move(email), request.client_ip);
    if (!done) co_return http::problem(done.error());
    co_return json_body(202, {{"detail", kResetRequested}});
  }

  routes::Reply confirm_password_reset(Request& request) {
    auto body = input::Body::read(request.body, {"token", "new_password"});
    // Any string up to the limit reaches the service, which answers one body for every
    // token that is not a live one (its length included).
    auto token = body.required_string("token", kResetToken);
    auto password = body.required_string("new_password", kPassword);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto done = co_await service.confirm_password_reset(request.call_context(), std::move(token), std::move(password),
                                                        request.client_ip);
    co_return routes::no_content(done);
  }

  routes::Reply list_sessions(Request& request, input::Page page) {
    auto token = bearer(request);  // the gateway authenticated it
    if (!token) co_return http::problem(make_error(Errc::unauthorized, "no bearer token"));
    co_return routes::answer_page(service.list_sessions(request.call_context(), *token, page),
                                  [](const store::SessionListing& session) {
                                    return json{{"id", session.public_id},
                                                {"created_at", session.created_at},
                                                {"expires_at", session.expires_at},
                                                {"client_ip", nullable(session.client_ip)},
                                                {"current", session.current}};
                                  });
  }

  routes::Reply me(Request& request) { co_return json_body(200, principal_json(*request.principal)); }

  routes::Reply list_citizens(Request& request, input::Page page) {
    auto email = request.query_param("email");
    auto name = request.query_param("name");
    if (name) {
      if (auto problem = input::check_text(*name, kName))
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'name': " + *problem));
    }
    if (email && email->size() > kEmail.max_bytes)
      co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'email': too long"));
    auto list = service.list_citizens(request.call_context(), std::move(email), std::move(name), page);
    co_return routes::answer_page(list, citizen_json);
  }

  routes::Reply get_citizen(Request& request, std::int64_t id) {
    co_return routes::answer(co_await service.get_citizen(request.call_context(), id), citizen_json);
  }

  routes::Reply national_id_claims(Request& request, std::int64_t id) {
    auto claims = service.national_id_claims(request.call_context(), id);
    if (!claims) co_return http::problem(claims.error());
    json items = json::array();
    for (const auto& claim : *claims)
      items.push_back({{"citizen_id", claim.citizen_id},
                       {"identity_verified", claim.identity_verified},
                       {"created_at", claim.created_at}});
    co_return json_body(200, json{{"citizen_id", id}, {"claims", items}});
  }

  routes::Reply patch_citizen(Request& request, std::int64_t id) {
    auto body = input::Body::read(request.body, {"email", "name", "phone", "address", "city", "postal_code",
                                                 "national_id", "email_verified", "identity_verified"});
    CitizenPatch patch;
    patch.email = body.optional_string("email", kEmail);
    patch.name = body.optional_string("name", kName);
    patch.phone = body.nullable_string("phone", kPhone);
    patch.address = body.nullable_string("address", kAddress);
    patch.city = body.nullable_string("city", kCity);
    patch.postal_code = body.nullable_string("postal_code", kPostalCode);
    patch.national_id = body.nullable_string("national_id", kNationalId);
    patch.email_verified = body.optional_bool("email_verified");
    patch.identity_verified = body.optional_bool("identity_verified");
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    co_return routes::answer(co_await service.update_citizen(request.call_context(), id, std::move(patch)),
                             citizen_json);
  }

  routes::Reply delete_citizen(Request& request, std::int64_t id) {
    co_return routes::no_content(co_await service.delete_citizen(request.call_context(), id));
  }

  routes::Reply list_departments(Request&) {
    auto departments = service.list_departments();
    if (!departments) co_return http::problem(departments.error());
    json items = json::array();
    for (const auto& d : *departments) items.push_back(department_json(d));
    co_return json_body(200, {{"items", items}});
  }

  routes::Reply create_department(Request& request) {
    auto body = input::Body::read(request.body, {"code", "name"});
    auto code = body.required_string("code", kDepartmentCode);
    auto name = body.required_string("name", kName);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto normalized = department_code(std::move(code));
    if (!normalized) co_return http::problem(normalized.error());
    auto department = co_await service.create_department(request.call_context(), *normalized, std::move(name));
    co_return routes::answer(department, department_json, 201);
  }

  routes::Reply update_department(Request& request) {
    auto code = department_code(std::string(*request.param("code")));
    if (!code) co_return http::problem(make_error(Errc::not_found, "no such department"));
    auto body = input::Body::read(request.body, {"name"});
    auto name = body.required_string("name", kName);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto department = co_await service.update_department(request.call_context(), *code, std::move(name));
    co_return routes::answer(department, department_json);
  }

  routes::Reply create_employee(Request& request) {
    auto body = input::Body::read(request.body, {"email", "password", "name", "department_code", "roles"});
    NewStaff staff;
    staff.email = body.required_string("email", kEmail);
    staff.password = body.required_string("password", kPassword);
    staff.name = body.required_string("name", kName);
    auto code = body.optional_string("department_code", kDepartmentCode);
    if (body.has("roles")) staff.roles = body.required_string_array("roles", 20, kRole);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    if (code) {
      auto normalized = department_code(std::move(*code));
      if (!normalized) co_return http::problem(make_error(Errc::unprocessable, "unknown department"));
      staff.department_code = *normalized;
    }
    co_return routes::answer(co_await service.create_employee(request.call_context(), std::move(staff)), employee_json,
                             201);
  }

  routes::Reply list_employees(Request& request, input::Page page) {
    EmployeeQuery query;
    auto q = query_text(request, "q", kName);
    if (!q) co_return http::problem(q.error());
    query.q = std::move(*q);
    auto department = query_text(request, "department", kDepartmentCode);
    if (!department) co_return http::problem(department.error());
    if (*department) {
      auto code = department_code(std::move(**department));
      if (!code)
        co_return http::problem(
            make_error(Errc::invalid_argument, "query parameter 'department': only letters, digits, '-' and '_'"));
      query.department_code = std::move(*code);
    }
    auto role = query_text(request, "role", kRole);
    if (!role) co_return http::problem(role.error());
    query.role = std::move(*role);
    auto active = input::query_choice(request, "active", {"true", "false"});
    if (!active) co_return http::problem(active.error());
    if (*active) query.active = **active == "true";
    co_return routes::answer_page(service.list_employees(request.call_context(), std::move(query), page),
                                  employee_json);
  }

  routes::Reply deactivate_employee(Request& request, std::int64_t id) {
    if (auto ok = input::no_body(request, "a deactivation"); !ok) co_return http::problem(ok.error());
    co_return routes::answer(co_await service.set_employee_active(request.call_context(), id, false), employee_json);
  }

  routes::Reply reactivate_employee(Request& request, std::int64_t id) {
    if (auto ok = input::no_body(request, "a reactivation"); !ok) co_return http::problem(ok.error());
    co_return routes::answer(co_await service.set_employee_active(request.call_context(), id, true), employee_json);
  }

  routes::Reply set_department_active(Request& request, bool active) {
    auto code = department_code(std::string(*request.param("code")));
    if (!code) co_return http::problem(make_error(Errc::not_found, "no such department"));
    if (auto ok = input::no_body(request, active ? "a reactivation" : "a deactivation"); !ok)
      co_return http::problem(ok.error());
    co_return routes::answer(co_await service.set_department_active(request.call_context(), *code, active),
                             department_json);
  }
  routes::Reply deactivate_department(Request& request) { return set_department_active(request, false); }
  routes::Reply reactivate_department(Request& request) { return set_department_active(request, true); }

  routes::Reply list_audit(Request& request, input::Page page) {
    AuditQuery query;
    auto actor_id = input::query_id(request, "actor_id");
    if (!actor_id) co_return http::problem(actor_id.error());
    query.actor_id = *actor_id;
    auto actor_kind = input::query_choice(request, "actor_kind", {"employee", "citizen"});
    if (!actor_kind) co_return http::problem(actor_kind.error());
    if (*actor_kind && **actor_kind == "citizen") query.actor_kind = Principal::Kind::citizen;
    auto citizen_id = input::query_id(request, "citizen_id");
    if (!citizen_id) co_return http::problem(citizen_id.error());
    query.citizen_id = *citizen_id;
    auto action = query_text(request, "action", kAction);
    if (!action) co_return http::problem(action.error());
    query.action = std::move(*action);
    auto from = query_time(request, "from");
    if (!from) co_return http::problem(from.error());
    auto to = query_time(request, "to");
    if (!to) co_return http::problem(to.error());
    query.from = *from;
    query.to = *to;
    co_return routes::answer_page(service.list_audit(request.call_context(), query, page), audit_json);
  }

  routes::Reply get_employee(Request& request, std::int64_t id) {
    co_return routes::answer(service.get_employee(request.call_context(), id), employee_json);
  }

  routes::Reply set_roles(Request& request, std::int64_t id) {
    auto body = input::Body::read(request.body, {"roles"});
    auto roles = body.required_string_array("roles", 20, kRole);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto employee = co_await service.set_employee_roles(request.call_context(), id, std::move(roles));
    co_return routes::answer(employee, employee_json);
  }
};

}  // namespace

// The same fields as the gov.auth.citizen snapshot: what others may know of a citizen.
json citizen_json(const Citizen& c) { return commands::citizen_snapshot(c); }

json principal_json(const Principal& p) {
  return {{"id", p.id},
          {"kind", std::string(to_string(p.kind))},
          {"email", p.email},
          {"name", p.name},
          {"roles", p.roles},
          {"permissions", p.permissions},
          {"department", p.department.empty() ? json(nullptr) : json(p.department)}};
}

void add_routes(http::Router& router, const std::string& prefix, AuthService& service) {
  auto bind = routes::member_binder(std::make_shared<Routes>(Routes{service}));
  using http::Method;
  namespace s = schema;
  const auto citizen = s::object({{"id", s::integer(1)},
                                  {"email", s::string()},
                                  {"name", s::string()},
                                  {"phone", s::string_or_null()},
                                  {"address", s::string_or_null()},
                                  {"city", s::string_or_null()},
                                  {"postal_code", s::string_or_null()},
                                  {"has_national_id", s::boolean()},
                                  {"email_verified", s::boolean()},
                                  {"identity_verified", s::boolean()},
                                  {"is_active", s::boolean()},
                                  {"event_version", s::integer(1)},
                                  {"created_at", s::timestamp()},
                                  {"updated_at", s::timestamp()}});
  const auto principal = s::object({{"id", s::integer(1)},
                                    {"kind", s::one_of({"citizen", "employee"})},
                                    {"email", s::string()},
                                    {"name", s::string()},
                                    {"roles", s::array(s::string())},
                                    {"permissions", s::array(s::string())},
                                    {"department", s::string_or_null()}});
  const auto department = s::object({{"code", s::string()},
                                     {"name", s::string()},
                                     {"is_active", s::boolean()},
                                     {"created_at", s::timestamp()},
                                     {"updated_at", s::timestamp()}});
  const auto audit_row = s::object({{"id", s::integer(1)},
                                    {"at", s::timestamp()},
                                    {"actor", s::string()},
                                    {"actor_kind", s::or_null(s::one_of({"employee", "citizen"}))},
                                    {"actor_id", s::or_null(s::integer(1))},
                                    {"actor_email", s::string_or_null()},
                                    {"action", s::string()},
                                    {"subject", s::string()},
                                    {"purpose", s::string_or_null()},
                                    {"correlation_id", s::string_or_null()},
                                    {"detail", s::string_or_null()}});
  const auto employee = s::object({{"id", s::integer(1)},
                                   {"email", s::string()},
                                   {"name", s::string()},
                                   {"department_code", s::string_or_null()},
                                   {"is_active", s::boolean()},
                                   {"roles", s::array(s::string())},
                                   {"created_at", s::timestamp()},
                                   {"updated_at", s::timestamp()}});
  const routes::RouteTable table(router, prefix);
  const s::Json none;
  table.add_public(Method::post, "/register", bind(&Routes::register_citizen), "Register a citizen",
                   s::object({{"email", s::string()},
                              {"password", s::string()},
                              {"name", s::string()},
                              s::optional("phone", s::string()),
                              s::optional("address", s::string()),
                              s::optional("city", s::string()),
                              s::optional("postal_code", s::string()),
                              s::optional("national_id", s::string())}),
                   citizen, 201);
  table.add_public(Method::post, "/login", bind(&Routes::login), "Sign in: a bearer token",
                   s::object({{"email", s::string()}, {"password", s::string()}}),
                   s::object({{"token", s::string()},
                              {"token_type", s::one_of({"Bearer"})},
                              {"expires_at", s::timestamp()},
                              {"principal", principal}}));
  table.add(Method::post, "/logout", bind(&Routes::logout), "End this token's session", s::object({}), none, 204);
  table.add(Method::get, "/me", bind(&Routes::me), "Who the token belongs to", none, principal);
  table.add(Method::get, "/sessions", bind(&Routes::list_sessions),
            "The caller's own live sessions, oldest first, this one marked current (no token: `id` names a session "
            "and opens nothing; ?cursor= ?page_size= ?include=total)",
            none,
            s::page_of(s::object({{"id", s::string()},
                                  {"created_at", s::timestamp()},
                                  {"expires_at", s::timestamp()},
                                  {"client_ip", s::string_or_null()},
                                  {"current", s::boolean()}})));
  table.add(Method::post, "/password", bind(&Routes::change_password),
            "Change your password: the current one proves it is you (a wrong one counts as a failed login); "
            "ends your other sessions, this one stays",
            s::object({{"current_password", s::string()}, {"new_password", s::string()}}), none, 204);
  table.add(Method::post, "/password-resets", bind(&Routes::issue_password_reset),
            "Issue a single-use password reset token for an account (staff: citizens:write for a citizen, auth:admin "
            "for an employee); the token is shown only in this answer, and replaces the account's unused ones",
            s::object({{"email", s::string()}}), s::object({{"token", s::string()}, {"expires_at", s::timestamp()}}),
            201);
  table.add_public(
      Method::post, "/password-resets/request", bind(&Routes::request_password_reset),
      "Forgot your password: one 202 answer whether an account uses the email or not (recorded, audited); "
      "an account's reset code goes to its address by email (notify); 429 after repeated requests from an address",
      s::object({{"email", s::string()}}), s::object({{"detail", s::string()}}), 202);
  table.add_public(
      Method::post, "/password-resets/confirm", bind(&Routes::confirm_password_reset),
      "Set a new password with a reset token (once; ends every session of the account); one 400 body for every "
      "token that is not live, 429 after repeated failures from an address",
      s::object({{"token", s::string()}, {"new_password", s::string()}}), none, 204);
  table.add(Method::get, "/citizens", bind(&Routes::list_citizens),
            "Citizens (staff with citizens:read; ?email= ?name= ?cursor= ?page_size= ?include=total)", none,
            s::page_of(citizen));
  table.add(Method::get, "/citizens/{id}", bind(&Routes::get_citizen, "no such citizen"),
            "A citizen (the citizen, or staff who may read them)", none, citizen);
  table.add(Method::patch, "/citizens/{id}", bind(&Routes::patch_citizen, "no such citizen"),
            "Change a citizen; null clears an optional field",
            s::object({s::optional("email", s::string()), s::optional("name", s::string()),
                       s::optional("phone", s::string_or_null()), s::optional("address", s::string_or_null()),
                       s::optional("city", s::string_or_null()), s::optional("postal_code", s::string_or_null()),
                       s::optional("national_id", s::string_or_null()), s::optional("email_verified", s::boolean()),
                       s::optional("identity_verified", s::boolean())}),
            citizen);
  table.add(Method::del, "/citizens/{id}", bind(&Routes::delete_citizen, "no such citizen"),
            "Deactivate a citizen's account", none, none, 204);
  table.add(
      Method::get, "/citizens/{id}/national-id-claims", bind(&Routes::national_id_claims, "no such citizen"),
      "Every active citizen claiming this citizen's national id (staff with citizens:verify, before verifying one)",
      none,
      s::object({{"citizen_id", s::integer(1)},
                 {"claims", s::array(s::object({{"citizen_id", s::integer(1)},
                                                {"identity_verified", s::boolean()},
                                                {"created_at", s::timestamp()}}))}}));
  table.add_public(Method::get, "/departments", bind(&Routes::list_departments), "Departments", none,
                   s::object({{"items", s::array(department)}}));
  table.add(Method::post, "/departments", bind(&Routes::create_department), "Create a department (admin)",
            s::object({{"code", s::string()}, {"name", s::string()}}), department, 201);
  table.add(Method::patch, "/departments/{code}", bind(&Routes::update_department), "Rename a department (admin)",
            s::object({{"name", s::string()}}), department);
  table.add(Method::post, "/employees", bind(&Routes::create_employee), "Create an employee (admin)",
            s::object({{"email", s::string()},
                       {"password", s::string()},
                       {"name", s::string()},
                       s::optional("department_code", s::string()),
                       s::optional("roles", s::array(s::string()))}),
            employee, 201);
  table.add(Method::post, "/departments/{code}/deactivate", bind(&Routes::deactivate_department),
            "Deactivate a department (admin): it takes no new permit applications; existing ones stay visible and "
            "reviewable",
            none, department);
  table.add(Method::post, "/departments/{code}/reactivate", bind(&Routes::reactivate_department),
            "Reactivate a department (admin)", none, department);
  table.add(Method::get, "/employees", bind(&Routes::list_employees),
            "Employees (admin; ?q= an email or name prefix, ?department= ?role= ?active=true|false ?cursor= "
            "?page_size= ?include=total)",
            none, s::page_of(employee));
  table.add(Method::get, "/employees/{id}", bind(&Routes::get_employee, "no such employee"), "An employee (admin)",
            none, employee);
  table.add(Method::post, "/employees/{id}/roles", bind(&Routes::set_roles, "no such employee"),
            "Replace an employee's roles (admin); ends their sessions, audited, announced (role.changed)",
            s::object({{"roles", s::array(s::string())}}), employee);
  table.add(Method::put, "/employees/{id}/roles", bind(&Routes::set_roles, "no such employee"),
            "Replace an employee's roles (admin; as POST): an unknown role is a 422 naming it",
            s::object({{"roles", s::array(s::string())}}), employee);
  table.add(Method::post, "/employees/{id}/deactivate", bind(&Routes::deactivate_employee, "no such employee"),
            "Off-board an employee (admin): every session of theirs ends at once; not yourself (409)", none, employee);
  table.add(Method::post, "/employees/{id}/reactivate", bind(&Routes::reactivate_employee, "no such employee"),
            "Take an employee back (admin); they sign in again", none, employee);
  table.add(Method::get, "/audit", bind(&Routes::list_audit),
            "The audit log, newest first (admin, or auditor with audit:read; ?actor_id= [?actor_kind=citizen] "
            "?citizen_id= ?action= ?from= ?to= (RFC 3339, from inclusive, to exclusive) ?cursor= ?page_size=)",
            none, s::page_of(audit_row));
}

json audit_json(const store::AuditRow& row) {
  // The actor as an account: "employee:7" -> kind and id (null for "module:revenue", "cli").
  json actor_kind = nullptr, actor_id = nullptr;
  if (auto colon = row.actor.find(':');
      colon != std::string::npos && (row.actor.starts_with("employee:") || row.actor.starts_with("citizen:"))) {
    actor_kind = row.actor.substr(0, colon);
    if (auto id = input::parse_id(std::string_view(row.actor).substr(colon + 1))) actor_id = *id;
  }
  return {{"id", row.id},
          {"at", row.at},
          {"actor", row.actor},
          {"actor_kind", actor_kind},
          {"actor_id", actor_id},
          {"actor_email", nullable(row.actor_email)},
          {"action", row.action},
          {"subject", row.subject},
          {"purpose", nullable(row.purpose)},
          {"correlation_id", nullable(row.correlation_id)},
          {"detail", nullable(row.detail)}};
}

}  // namespace townhall::auth
