// Cancelling a booking or an enrollment: the refund policy, the cancellation, and what
// the released place frees (a waitlisted enrollment's turn).
#include <spdlog/spdlog.h>

#include "places.hpp"

namespace townhall::parks {

namespace asio = boost::asio;

namespace {

// The refund policy (docs/design-notes.md, "Booking cancellation and refunds"), for
// bookings and enrollments alike. A citizen cancels until the start: a paid place is
// refunded in full until `cutoff` before it, not after; a started or past one is refused,
// since it was (or is being) used. Staff cancel any, a paid one only with an explicit
// decision and reason. One not paid when cancelled refunds whatever payment still
// completes: it bought nothing. A program created before programs had a start has none:
// nothing is known to have begun, so its citizens cancel and are refunded as in time.
template <class Place>
Result<CancelRecord> decide_cancellation(db::Connection& connection, const Place& place, const Principal& principal,
                                         const Cancellation& request, std::chrono::system_clock::time_point now,
                                         std::chrono::hours cutoff) {
  auto starts_text = PlaceKind<Place>::starts_at(connection, place);
  std::optional<std::chrono::system_clock::time_point> starts;
  if (starts_text) {
    auto parsed = utc::parse(*starts_text);
    if (!parsed) return make_error(Errc::internal, label(place) + " has a bad start");
    starts = *parsed;
  }
  const bool paid = place.payment_id.has_value();
  if (principal.is_citizen()) {
    if (starts && now >= *starts)
      return make_error(Errc::conflict,
                        label(place) + " started at " + *starts_text + ": it can no longer be cancelled");
    const bool in_time = !starts || now + cutoff <= *starts;
    CancelRecord record{"citizen", principal.id, "cancelled by the citizen", std::nullopt, !paid || in_time};
    if (paid) record.refund = in_time ? "full" : "none";
    if (paid && !in_time)
      record.reason += " less than " + std::to_string(cutoff.count()) + " hours before the start: no refund";
    return record;
  }
  if (paid && (!request.refund || !request.reason))
    return make_error(Errc::invalid_argument, label(place) +
                                                  " is paid: staff cancel it with a body {\"refund\": true or "
                                                  "false, \"reason\": \"...\"}");
  CancelRecord record{"staff", principal.id, request.reason.value_or("cancelled by staff"), std::nullopt, true};
  if (paid) {
    record.refund = *request.refund ? "full" : "none";
    record.refund_payment = *request.refund;
  }
  return record;
}

}  // namespace

asio::awaitable<Result<store::Booking>> ParksService::cancel_booking(CallContext context, std::int64_t id,
                                                                     Cancellation request) {
  co_return co_await cancel_place<store::Booking>(std::move(context), id, std::move(request));
}

asio::awaitable<Result<store::Enrollment>> ParksService::cancel_enrollment(CallContext context, std::int64_t id,
                                                                           Cancellation request) {
  co_return co_await cancel_place<store::Enrollment>(std::move(context), id, std::move(request));
}

template <class Place>
asio::awaitable<Result<Place>> ParksService::cancel_place(CallContext context, std::int64_t id, Cancellation request) {
  using Kind = PlaceKind<Place>;
  const std::string noun(Kind::noun);
  auto scope = read_scope(context.principal.get());
  if (!scope) co_return scope.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  auto current = deps_.readers.read([&](db::Connection& reader) -> Result<Place> {
    auto found = Kind::find(reader, id, *scope);
    if (!found) return make_error(Errc::not_found, "no such " + noun);
    return *found;
  });
  if (!current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !(principal->is_citizen(current->citizen_id) || is_staff(principal)))
    co_return forbidden("only its citizen or parks staff cancel a " + noun);
  if (principal->is_citizen() && (request.refund || request.reason))
    co_return make_error(Errc::invalid_argument,
                         "field 'refund': only parks staff decide a refund; a citizen's cancellation takes no body");
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<Place> {
    auto place = Kind::find(service, id, store::Scope::everything());
    if (!place) return make_error(Errc::not_found, "no such " + noun);
    if (place->status == "cancelled") return make_error(Errc::conflict, label(*place) + " is already cancelled");
    auto record = decide_cancellation(service, *place, *principal, request, std::chrono::system_clock::now(),
                                      settings_.refund_cutoff);
    if (!record) return record.error();
    auto cancelled = cancel(service, *place, *record, context.correlation_id);
    released(service, cancelled, context.correlation_id, {});
    return cancelled;
  });
  // The audit line: who, the decision and why (the row records the same).
  if (written)
    spdlog::info("parks: {} cancelled by {} {}; refund: {}; reason: {}", label(*written), *written->cancelled_by,
                 principal->id, written->refund.value_or("nothing was paid"), *written->cancel_reason);
  co_return written;
}

void ParksService::released(db::Connection&, const store::Booking&, const std::string&, const std::string&) {}

void ParksService::released(db::Connection& service, const store::Enrollment& enrollment,
                            const std::string& correlation, const std::string& causation) {
  fill_from_waitlist(service, enrollment.program_id, correlation, causation);
}

void ParksService::fill_from_waitlist(db::Connection& service, std::int64_t program_id, const std::string& correlation,
                                      const std::string& causation) {
  auto program = store::find_program(service, program_id);
  if (!program) return;
  while (store::count_taken(service, program_id) < program->capacity) {
    auto next = store::first_waitlisted(service, program_id);
    if (!next) return;
    auto now = std::chrono::system_clock::now();
    next->amount_cents = program->price_cents;  // what the place costs now
    next->currency = program->currency;
    next->updated_at = utc::format(now);
    next->event_version += 1;
    if (next->amount_cents > 0) {
      // Offered, not given: held for a payment with its own deadline, like any priced place.
      next->status = "pending_payment";
      next->hold_expires_at = utc::format(now + settings_.hold);
      store::update_enrollment(service, *next);
      announce(service, events::kEnrollmentRequested, *next, correlation, causation);
      announce_promotion(service, *next, program->name, correlation, causation);
      wake_scheduler();
      spdlog::info("parks: enrollment {} offered a place in program {} from the waitlist, held until {}", next->id,
                   program_id, *next->hold_expires_at);
    } else {
      next->status = "enrolled";
      store::update_enrollment(service, *next);
      announce(service, events::kEnrollmentConfirmed, *next, correlation, causation);
      announce_promotion(service, *next, program->name, correlation, causation);
      spdlog::info("parks: enrollment {} promoted from the waitlist of program {}", next->id, program_id);
    }
  }
}

}  // namespace townhall::parks
