// Departments and employees (auth:admin).
#include <spdlog/spdlog.h>

#include "service_internal.hpp"

namespace townhall::auth {

boost::asio::awaitable<Result<store::Department>> AuthService::create_department(const CallContext& context,
                                                                                 std::string code, std::string name) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) {
    return commands::create_department(service, code, name, write_context(context));
  });
  co_return written;
}

boost::asio::awaitable<Result<store::Department>> AuthService::update_department(const CallContext& context,
                                                                                 std::string code, std::string name) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) {
    return commands::update_department(service, code, name, write_context(context));
  });
  co_return written;
}

Result<std::vector<store::Department>> AuthService::list_departments() {
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read(
      [](db::Connection& reader) -> Result<std::vector<store::Department>> { return store::list_departments(reader); });
}

boost::asio::awaitable<Result<commands::Employee>> AuthService::create_employee(const CallContext& context,
                                                                                NewStaff input) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto email = input::normalize_email(input.email);
  if (!email) co_return email.error();
  if (auto policy = check_password_policy(input.password, *email); !policy) co_return policy.error();
  commands::NewEmployee employee{
      *email, {}, std::move(input.name), std::move(input.department_code), std::move(input.roles)};
  auto hash = [&] { return hash_password(input.password, settings_.password_cost); };
  auto hashed = co_await hash_off_thread(hash);
  if (!hashed) co_return hashed.error();
  employee.password_hash = std::move(*hashed);
  auto written = co_await writes_.run(
      [&](db::Connection& service) { return commands::create_employee(service, employee, write_context(context)); });
  co_return written;
}

boost::asio::awaitable<Result<commands::Employee>> AuthService::set_employee_roles(const CallContext& context,
                                                                                   std::int64_t id,
                                                                                   std::vector<std::string> roles) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) {
    return commands::set_employee_roles(service, id, roles, write_context(context));
  });
  if (!written) co_return written;
  // Sessions were revoked in the same transaction; forget cached principals too.
  token_cache_.erase_principal(Principal::Kind::employee, id);
  spdlog::info("auth: roles of employee {} set by {}", id, actor_of(context));
  co_return written;
}

Result<commands::Employee> AuthService::get_employee(const CallContext& context, std::int64_t id) {
  const auto& principal = context.principal;
  if (!principal || principal->is_citizen()) return make_error(Errc::not_found, "no such employee");
  if (!(principal->is_employee() && principal->id == id) && !principal->has("auth:admin"))
    return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) { return commands::get_employee(reader, id); });
}

Result<EmployeeList> AuthService::list_employees(const CallContext& context, EmployeeQuery query, input::Page page) {
  if (!context.principal || !context.principal->has("auth:admin"))
    return make_error(Errc::forbidden, "needs permission auth:admin");
  auto rows =
      store::employees({std::move(query.q), std::move(query.department_code), std::move(query.role), query.active});
  return read_page(page, PagedQuery<commands::Employee>{
                             "auth.employees", "staff",
                             [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                               std::vector<commands::Employee> out;
                               for (auto& row : rows.rows(reader, after, limit))
                                 out.push_back({row.id, row.email, row.name, row.department_code, row.is_active,
                                                store::roles_of(reader, Principal::Kind::employee, row.id),
                                                row.event_version, row.created_at, row.updated_at});
                               return out;
                             },
                             [&](db::Connection& reader) { return rows.count(reader); }});
}

boost::asio::awaitable<Result<commands::Employee>> AuthService::set_employee_active(const CallContext& context,
                                                                                    std::int64_t id, bool active) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (!active && context.principal->is_employee() && context.principal->id == id)
    co_return make_error(Errc::conflict, "you cannot deactivate your own account; another administrator must do it");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) {
    return commands::set_employee_active(service, id, active, write_context(context));
  });
  if (!written) co_return written;
  // The sessions were revoked in the same transaction; a token the cache holds is
  // refused from now on too (an authentication that read the old row before the commit
  // cannot cache it after this: the cache's generation moved).
  if (!active) token_cache_.erase_principal(Principal::Kind::employee, id);
  spdlog::info("auth: employee {} {} by {}", id, active ? "reactivated" : "deactivated", actor_of(context));
  co_return written;
}

boost::asio::awaitable<Result<store::Department>> AuthService::set_department_active(const CallContext& context,
                                                                                     std::string code, bool active) {
  if (!context.principal || !context.principal->has("auth:admin"))
    co_return make_error(Errc::forbidden, "needs permission auth:admin");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) {
    return commands::set_department_active(service, code, active, write_context(context));
  });
  if (written)
    spdlog::info("auth: department {} {} by {}", code, active ? "reactivated" : "deactivated", actor_of(context));
  co_return written;
}

Result<std::vector<store::NationalIdClaim>> AuthService::national_id_claims(const CallContext& context,
                                                                            std::int64_t id) {
  const auto& principal = context.principal;
  if (!principal || principal->is_citizen()) return make_error(Errc::not_found, "no such citizen");
  if (!principal->has("citizens:verify")) return make_error(Errc::forbidden, "needs permission citizens:verify");
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<store::NationalIdClaim>> {
    auto row = store::find_citizen(reader, id);
    if (!row || row->deleted_at) return make_error(Errc::not_found, "no such citizen");
    return store::national_id_claims(reader, id);
  });
}

}  // namespace townhall::auth
