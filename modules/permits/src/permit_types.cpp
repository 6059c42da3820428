// Permit types and their fees as permits' own data (issue 26.5): seeded from the
// registry on the first start, then changed by administrators, each change a version.
#include <spdlog/spdlog.h>

#include "service.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::permits {
namespace {

// More types than a municipality has; keeps the catalogue a page and a list in a message.
constexpr std::int64_t kMaxTypes = 200;

Result<Unit> may_manage(const CallContext& context) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->has(kManageTypes))
    return make_error(Errc::forbidden, std::string("needs permission ") + kManageTypes);
  return Unit{};
}

}  // namespace

void PermitsService::seed_permit_types() {
  auto seeded = writes_.call([&](db::Connection& service) -> Result<std::int64_t> {
    if (store::count_permit_types(service, true) > 0) return 0;
    auto now = utc::now();
    for (const auto& [name, type] : settings_.permit_types)
      store::insert_permit_type_version(
          service, {name, 1, type.fee_cents, type.currency, type.inspection_required, true, std::nullopt, now});
    return static_cast<std::int64_t>(settings_.permit_types.size());
  });
  if (!seeded) throw std::runtime_error("permits: seeding permit types failed: " + seeded.error().message);
  if (*seeded > 0)
    spdlog::info("permits: {} permit types seeded from the registry; from now on they are changed through the API",
                 *seeded);
}

Result<PermitTypeList> PermitsService::list_permit_types(const CallContext& context, bool all, input::Page page) {
  if (all)
    if (auto ok = may_manage(context); !ok) return ok.error();
  return read_page(page, PagedQuery<store::PermitTypeVersion>{
                             all ? "permits.types.all" : "permits.types", "all",
                             [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                               return store::list_permit_types(reader, all, after, limit);
                             },
                             [&](db::Connection& reader) { return store::count_permit_types(reader, all); },
                             [](const store::PermitTypeVersion& t) { return t.permit_type; }});
}

Result<PermitTypeDetail> PermitsService::get_permit_type(const CallContext& context, const std::string& permit_type) {
  const bool manager = static_cast<bool>(may_manage(context));
  return deps_.readers.read([&](db::Connection& reader) -> Result<PermitTypeDetail> {
    auto current = store::find_permit_type(reader, permit_type);
    if (!current || (!current->active && !manager)) return make_error(Errc::not_found, "no such permit type");
    PermitTypeDetail detail{*current, std::nullopt};
    if (manager) detail.history = store::permit_type_history(reader, permit_type);
    return detail;
  });
}

boost::asio::awaitable<Result<store::PermitTypeVersion>> PermitsService::create_permit_type(const CallContext& context,
                                                                                            NewPermitType input) {
  if (auto ok = may_manage(context); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::PermitTypeVersion> {
    if (store::find_permit_type(service, input.permit_type))
      return make_error(Errc::conflict, "permit type '" + input.permit_type + "' exists; change it with PATCH");
    if (store::count_permit_types(service, true) >= kMaxTypes)
      return make_error(Errc::unprocessable, "at most " + std::to_string(kMaxTypes) + " permit types");
    store::PermitTypeVersion type{input.permit_type,         1,    input.fee_cents,       input.currency,
                                  input.inspection_required, true, context.principal->id, utc::now()};
    store::insert_permit_type_version(service, type);
    return type;
  });
  if (written)
    spdlog::info("permits: permit type {} created by employee {} (fee {} {})", written->permit_type,
                 context.principal->id, written->fee_cents, written->currency);
  co_return written;
}

boost::asio::awaitable<Result<store::PermitTypeVersion>> PermitsService::change_permit_type(
    const CallContext& context, const std::string& permit_type, PermitTypeChange change) {
  if (auto ok = may_manage(context); !ok) co_return ok.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  bool versioned = false;
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::PermitTypeVersion> {
    auto current = store::find_permit_type(service, permit_type);
    if (!current) return make_error(Errc::not_found, "no such permit type");
    auto next = *current;
    if (change.fee_cents) next.fee_cents = *change.fee_cents;
    if (change.currency) next.currency = *change.currency;
    if (change.inspection_required) next.inspection_required = *change.inspection_required;
    if (change.active) next.active = *change.active;
    if (next.fee_cents == current->fee_cents && next.currency == current->currency &&
        next.inspection_required == current->inspection_required && next.active == current->active)
      return *current;  // nothing changes: no new version
    next.version = current->version + 1;
    next.changed_by = context.principal->id;
    next.changed_at = utc::now();
    store::insert_permit_type_version(service, next);
    versioned = true;
    return next;
  });
  if (written && versioned)
    spdlog::info("permits: permit type {} is at version {} (employee {}): fee {} {}, inspection {}, {}", permit_type,
                 written->version, context.principal->id, written->fee_cents, written->currency,
                 written->inspection_required ? "required" : "not required", written->active ? "active" : "inactive");
  co_return written;
}

}  // namespace townhall::permits
