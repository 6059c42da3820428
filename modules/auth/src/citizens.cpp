#include <spdlog/spdlog.h>

#include "service_internal.hpp"

namespace townhall::auth {

boost::asio::awaitable<Result<Citizen>> AuthService::register_citizen(const CallContext& context, Registration input) {
  if (auto ok = usable(); !ok) co_return ok.error();
  auto email = input::normalize_email(input.email);
  if (!email) co_return email.error();
  if (auto policy = check_password_policy(input.password, *email); !policy) co_return policy.error();
  std::optional<commands::SealedNationalId> national_id;
  if (input.national_id) {
    auto sealed = seal_national_id(*input.national_id);
    if (!sealed) co_return sealed.error();
    national_id = std::move(*sealed);
  }

  commands::NewCitizen citizen;
  citizen.email = *email;
  citizen.name = std::move(input.name);
  citizen.phone = std::move(input.phone);
  citizen.address = std::move(input.address);
  citizen.city = std::move(input.city);
  citizen.postal_code = std::move(input.postal_code);
  citizen.national_id = std::move(national_id);
  auto hash = [&] { return hash_password(input.password, settings_.password_cost); };
  auto hashed = co_await hash_off_thread(hash);
  if (!hashed) co_return hashed.error();
  citizen.password_hash = std::move(*hashed);

  auto written = co_await writes_.run(
      [&](db::Connection& service) { return commands::register_citizen(service, citizen, write_context(context)); });
  if (written) spdlog::info("auth: citizen {} registered", written->id);
  co_return written;
}

Result<Unit> AuthService::may_read_citizen(const CallContext& context, std::int64_t id) const {
  const auto& principal = context.principal;
  if (context.is_service()) return Unit{};
  if (!principal) return make_error(Errc::forbidden, "an anonymous caller may not read citizens");
  if (principal->is_citizen(id)) return Unit{};
  if (principal->is_citizen()) return make_error(Errc::not_found, "no such citizen");
  if (!principal->has("citizens:read")) return make_error(Errc::forbidden, "needs permission citizens:read");
  return Unit{};
}

boost::asio::awaitable<Result<Citizen>> AuthService::get_citizen(CallContext context, std::int64_t id) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (auto ok = may_read_citizen(context, id); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return deps_.readers.read([&](db::Connection& reader) -> Result<Citizen> {
    auto row = store::find_citizen(reader, id);
    // A deleted citizen is gone for themselves; staff (and modules) still see the record.
    if (!row || (row->deleted_at && context.principal && context.principal->is_citizen()))
      return make_error(Errc::not_found, "no such citizen");
    return row->citizen;
  });
}

boost::asio::awaitable<Result<Citizen>> AuthService::update_citizen(const CallContext& context, std::int64_t id,
                                                                    CitizenPatch patch) {
  const auto& principal = context.principal;
  if (!principal) co_return make_error(Errc::forbidden, "a signed-in principal is required");
  bool self = principal->is_citizen(id);
  bool contact =
      patch.email || patch.name || patch.phone || patch.address || patch.city || patch.postal_code || patch.national_id;
  bool verification = patch.email_verified || patch.identity_verified;
  if (principal->is_citizen() && !self) co_return make_error(Errc::not_found, "no such citizen");
  if (contact && !self && !principal->has("citizens:write"))
    co_return make_error(Errc::forbidden, "needs permission citizens:write");
  if (verification && !principal->has("citizens:verify"))
    co_return make_error(Errc::forbidden,
                         "only staff with citizens:verify may set email_verified or identity_verified");
  if (auto ok = usable(); !ok) co_return ok.error();

  commands::CitizenChange change;
  if (patch.email) {
    auto email = input::normalize_email(*patch.email);
    if (!email) co_return email.error();
    change.email = *email;
  }
  change.name = std::move(patch.name);
  change.phone = std::move(patch.phone);
  change.address = std::move(patch.address);
  change.city = std::move(patch.city);
  change.postal_code = std::move(patch.postal_code);
  change.email_verified = patch.email_verified;
  change.identity_verified = patch.identity_verified;
  // A citizen's own national id changes are bounded (staff's are not): each is audited,
  // and an unbounded stream of them would be a way to probe.
  if (self) change.national_id_changes_per_day = settings_.national_id_changes_per_day;
  if (patch.national_id) {
    if (*patch.national_id) {
      auto sealed = seal_national_id(**patch.national_id);
      if (!sealed) co_return sealed.error();
      change.national_id = std::optional<commands::SealedNationalId>(std::move(*sealed));
    } else {
      change.national_id = std::optional<commands::SealedNationalId>();
    }
  }
  auto written = co_await writes_.run(
      [&](db::Connection& service) { return commands::update_citizen(service, id, change, write_context(context)); });
  co_return written;
}

boost::asio::awaitable<Result<Unit>> AuthService::delete_citizen(const CallContext& context, std::int64_t id) {
  const auto& principal = context.principal;
  if (!principal) co_return make_error(Errc::forbidden, "a signed-in principal is required");
  if (principal->is_citizen() && !principal->is_citizen(id)) co_return make_error(Errc::not_found, "no such citizen");
  if (!principal->is_citizen(id) && !principal->has("citizens:delete"))
    co_return make_error(Errc::forbidden, "needs permission citizens:delete");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run(
      [&](db::Connection& service) { return commands::delete_citizen(service, id, write_context(context)); });
  if (!written) co_return written.error();
  token_cache_.erase_principal(Principal::Kind::citizen, id);
  spdlog::info("auth: citizen {} deleted by {}", id, actor_of(context));
  co_return Unit{};
}

Result<CitizenList> AuthService::list_citizens(const CallContext& context, std::optional<std::string> email,
                                               std::optional<std::string> name, input::Page page) {
  const auto& principal = context.principal;
  if (!principal || !principal->has("citizens:read"))
    return make_error(Errc::forbidden, "needs permission citizens:read");
  store::CitizenFilter filter;
  if (email) {
    auto normalized = input::normalize_email(*email);
    if (!normalized)
      filter.none = true;  // no citizen has an invalid email
    else
      filter.email = *normalized;
  }
  filter.name = std::move(name);
  filter.include_deleted = true;
  return read_page(page, "auth.citizens", "staff", store::citizens(filter));
}

}  // namespace townhall::auth
