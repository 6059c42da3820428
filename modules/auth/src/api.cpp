// What other modules read through auth::Api besides authenticate and get_citizen
// (sessions.cpp, citizens.cpp): national ids for one response, and citizens and
// departments in bulk for their caches.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "service_internal.hpp"

namespace townhall::auth {

namespace {

// Reads other modules make of citizens in bulk: a module as itself, or staff who may read
// any citizen. Never anonymous.
Result<Unit> may_read_citizens(const CallContext& context) {
  if (context.is_service()) return Unit{};
  if (!context.principal) return make_error(Errc::forbidden, "an anonymous caller may not read citizens");
  if (!context.principal->has("citizens:read")) return make_error(Errc::forbidden, "needs permission citizens:read");
  return Unit{};
}

}  // namespace

boost::asio::awaitable<Result<std::optional<std::string>>> AuthService::get_sensitive(CallContext context,
                                                                                      std::int64_t id,
                                                                                      std::string purpose) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  const auto& principal = context.principal;
  if (!principal) co_return make_error(Errc::forbidden, "reading a national id needs a principal to audit");
  if (principal->is_citizen() && !principal->is_citizen(id)) co_return make_error(Errc::not_found, "no such citizen");
  if (!principal->is_citizen(id) && !principal->has("citizens:sensitive"))
    co_return make_error(Errc::forbidden, "needs permission citizens:sensitive");
  if (auto problem = input::check_text(purpose, {.max_bytes = 200}))
    co_return make_error(Errc::invalid_argument, "purpose " + *problem);
  if (auto ok = usable(); !ok) co_return ok.error();
  if (auto ok = key_usable(); !ok) co_return ok.error();
  auto sealed = co_await writes_.run([&](db::Connection& service) {
    return commands::read_sealed_national_id(service, id, purpose, write_context(context));
  });
  if (!sealed) co_return sealed.error();
  if (!*sealed) co_return std::optional<std::string>();
  auto opened = secrets_->open(**sealed);
  if (!opened) {  // the key passed its check: this row's sealed value itself is damaged
    spdlog::error("auth: the sealed national id of citizen {} does not open with the checked key (damaged row)", id);
    co_return make_error(Errc::unavailable,
                         "the national id of this citizen cannot be read: its sealed value in auth.db is damaged "
                         "(restore auth.db from a backup)");
  }
  co_return std::optional<std::string>(std::move(*opened));
}

boost::asio::awaitable<Result<std::vector<CitizenVersion>>> AuthService::citizen_versions(CallContext context,
                                                                                          std::int64_t after_id,
                                                                                          int limit,
                                                                                          CitizenFields fields) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (auto ok = may_read_citizens(context); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<CitizenVersion>> {
    return store::citizen_versions(reader, after_id, std::clamp(limit, 1, 1000), fields);
  });
}

boost::asio::awaitable<Result<consistency::Digest>> AuthService::citizen_digest(CallContext context,
                                                                                std::int64_t from_id,
                                                                                std::int64_t to_id,
                                                                                CitizenFields fields) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (auto ok = may_read_citizens(context); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return deps_.readers.read([&](db::Connection& reader) -> Result<consistency::Digest> {
    return store::citizen_digest(reader, from_id, to_id, fields);
  });
}

boost::asio::awaitable<Result<CitizenChanges>> AuthService::citizens_since(CallContext context, std::int64_t change_seq,
                                                                           int limit) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (auto ok = may_read_citizens(context); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return deps_.readers.read([&](db::Connection& reader) -> Result<CitizenChanges> {
    return store::citizens_since(reader, change_seq, std::clamp(limit, 1, 1000));
  });
}

boost::asio::awaitable<Result<std::vector<DepartmentRef>>> AuthService::departments(CallContext context) {
  if (auto ok = not_before_deadline(context); !ok) co_return ok.error();
  if (context.anonymous()) co_return make_error(Errc::forbidden, "an anonymous caller may not list departments");
  auto listed = list_departments();
  if (!listed) co_return listed.error();
  std::vector<DepartmentRef> out;
  for (const auto& d : *listed) out.push_back({d.code, d.name, d.event_version, d.is_active});
  co_return out;
}

}  // namespace townhall::auth
