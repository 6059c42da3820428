#include <spdlog/spdlog.h>

#include "places.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {

namespace asio = boost::asio;

asio::awaitable<Result<store::Program>> ParksService::create_program(CallContext context, NewProgram input) {
  if (!is_staff(context.principal.get())) co_return forbidden("needs permission parks:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  if (input.price_cents > 0 && !input.starts_at)
    co_return make_error(Errc::invalid_argument,
                         "field 'starts_at': is required for a priced program (the refund cutoff counts from it)");
  const auto currency = input.currency.value_or(settings_.currency);
  if (input.price_cents > 0 && !revenue::invoiceable(input.price_cents, currency))
    co_return make_error(Errc::invalid_argument, "field 'price_cents': " + std::to_string(input.price_cents) + " " +
                                                     currency + " is more than revenue can invoice");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Program> {
    if (input.facility_id && !store::find_facility(service, *input.facility_id))
      return make_error(Errc::unprocessable, "unknown facility_id " + std::to_string(*input.facility_id));
    auto now = utc::now();
    store::Program program{0,
                           input.facility_id,
                           input.name,
                           input.schedule,
                           input.capacity,
                           input.price_cents,
                           currency,
                           true,
                           now,
                           now,
                           0,
                           0,
                           input.starts_at ? std::optional(utc::format(*input.starts_at)) : std::nullopt};
    store::insert_program(service, program);
    return program;
  });
}

Result<Listed<store::Program>> ParksService::list_programs(input::Page page) {
  return read_page(
      page, PagedQuery<store::Program>{"parks.programs", "all",
                                       [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                                         return store::list_programs(reader, after, limit);
                                       },
                                       [](db::Connection& reader) { return store::count_programs(reader); }});
}

Result<store::Program> ParksService::get_program(std::int64_t id) {
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<store::Program> {
    auto program = store::find_program(reader, id);
    if (!program || !program->is_active) return make_error(Errc::not_found, "no such program");
    return *program;
  });
}

asio::awaitable<Result<store::Enrollment>> ParksService::enroll(CallContext context, std::int64_t program_id,
                                                                std::string client_address) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("parks:book"))
    co_return forbidden("only citizens enroll in programs");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Enrollment> {
    auto program = store::find_program(service, program_id);
    if (!program || !program->is_active) return make_error(Errc::not_found, "no such program");
    if (auto existing = store::find_active_enrollment(service, program_id, principal->id))
      return make_error(Errc::conflict, "already " + existing->status + " in program " + std::to_string(program_id) +
                                            " (enrollment " + std::to_string(existing->id) + ")");
    const bool priced = program->price_cents > 0;
    // A waitlisted place in a priced program is offered held later: the same rule.
    if (priced)
      if (auto ok = may_pay_for_places(service, principal->id); !ok) return ok.error();
    if (priced && !revenue::invoiceable(program->price_cents, program->currency))
      return make_error(Errc::unprocessable, "program " + std::to_string(program_id) +
                                                 " costs more than revenue can "
                                                 "invoice");
    auto now = std::chrono::system_clock::now();
    store::Enrollment enrollment;
    enrollment.program_id = program_id;
    enrollment.citizen_id = principal->id;
    enrollment.amount_cents = program->price_cents;
    enrollment.currency = program->currency;
    enrollment.created_at = enrollment.updated_at = utc::format(now);
    // Capacity counts the places held for a payment, in this write transaction (the
    // file's trigger holds it too).
    if (store::count_taken(service, program_id) >= program->capacity) {
      enrollment.status = "waitlisted";
      store::insert_enrollment(service, enrollment);
    } else if (!priced) {
      enrollment.status = "enrolled";
      store::insert_enrollment(service, enrollment);
      announce(service, events::kEnrollmentConfirmed, enrollment, context.correlation_id);
    } else {
      if (auto ok = hold_for_payment(service, enrollment, client_address, now, context.correlation_id); !ok)
        return ok.error();
    }
    return *store::find_enrollment(service, enrollment.id, store::Scope::everything());
  });
  if (written)
    spdlog::info("parks: enrollment {} in program {} by citizen {} ({})", written->id, program_id, principal->id,
                 written->status);
  co_return written;
}

Result<store::Enrollment> ParksService::get_enrollment(const CallContext& context, std::int64_t id) {
  return get_place<store::Enrollment>(context, id);
}

Result<Listed<store::Enrollment>> ParksService::list_enrollments(const CallContext& context,
                                                                 store::EnrollmentFilter filter, input::Page page) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  return read_page(page, "parks.enrollments", citizen_view(scope->citizen_id), store::enrollments(*scope, filter));
}

}  // namespace townhall::parks
