#include <spdlog/spdlog.h>

#include "places.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {

namespace asio = boost::asio;
using json = nlohmann::json;

asio::awaitable<Result<store::Booking>> ParksService::book(CallContext context, std::int64_t facility_id,
                                                           std::chrono::system_clock::time_point starts_at,
                                                           std::chrono::system_clock::time_point ends_at,
                                                           std::string client_address) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("parks:book"))
    co_return forbidden("only citizens book facilities");
  if (auto ok = usable(); !ok) co_return ok.error();
  if (ends_at <= starts_at) co_return make_error(Errc::invalid_argument, "ends_at must be after starts_at");
  if (ends_at - starts_at > settings_.max_booking)
    co_return make_error(Errc::unprocessable,
                         "a booking lasts at most " + std::to_string(settings_.max_booking.count()) + " hours");
  auto facility = deps_.readers.read([&](db::Connection& reader) -> Result<store::Facility> {
    auto found = store::find_facility(reader, facility_id);
    if (!found || !found->is_active)
      return make_error(Errc::unprocessable, "unknown facility_id " + std::to_string(facility_id));
    return *found;
  });
  if (!facility) co_return facility.error();
  auto week = parse_opening_hours(json::parse(facility->opening_hours, nullptr, false), "opening_hours");
  if (!week) co_return make_error(Errc::internal, "facility " + std::to_string(facility_id) + " has bad hours");
  if (auto ok = check_slot(facility->time_zone, *week, starts_at, ends_at); !ok) co_return ok.error();
  auto hours = std::chrono::duration_cast<std::chrono::hours>(ends_at - starts_at).count();
  // A facility priced before max_booking_hours grew could still ask for more than revenue
  // invoices: refused here rather than held with an invoice that never opens.
  const auto amount = facility->hourly_price_cents * hours;
  if (amount > 0 && !revenue::invoiceable(amount, facility->currency))
    co_return make_error(Errc::unprocessable, "this booking would cost " + std::to_string(amount) + " " +
                                                  facility->currency + ", more than revenue can invoice");

  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Booking> {
    // Checked here, in the write transaction (the file's trigger holds it too).
    auto start_text = utc::format(starts_at), end_text = utc::format(ends_at);
    if (auto taken = store::find_overlap(service, facility_id, start_text, end_text))
      return make_error(Errc::conflict, "the facility is booked from " + taken->starts_at + " to " + taken->ends_at);
    auto now = std::chrono::system_clock::now();
    // Free bookings are confirmed at once, so without a cap one fresh account could block
    // a free facility for the whole horizon (issue 21 §3.3; OWASP API6). Counted per
    // facility kind, free and priced alike, in this transaction.
    if (store::count_active_of_kind(service, principal->id, facility->kind, utc::format(now)) >=
        settings_.max_active_per_kind)
      return make_error(Errc::conflict, "you hold " + std::to_string(settings_.max_active_per_kind) + " bookings of " +
                                            facility->kind +
                                            " facilities that have not ended; cancel one before booking another");
    store::Booking booking;
    booking.facility_id = facility_id;
    booking.citizen_id = principal->id;
    booking.starts_at = start_text;
    booking.ends_at = end_text;
    booking.amount_cents = amount;
    booking.currency = facility->currency;
    booking.created_at = booking.updated_at = utc::format(now);
    if (booking.amount_cents == 0) {
      booking.status = "confirmed";
      store::insert_booking(service, booking);
      announce(service, events::kBookingConfirmed, booking, context.correlation_id);
    } else {
      if (auto ok = may_pay_for_places(service, principal->id); !ok) return ok.error();
      if (auto ok = hold_for_payment(service, booking, client_address, now, context.correlation_id); !ok)
        return ok.error();
    }
    return booking;
  });
  if (written)
    spdlog::info("parks: booking {} of facility {} by citizen {} ({})", written->id, facility_id, principal->id,
                 written->status);
  co_return written;
}

Result<store::Booking> ParksService::get_booking(const CallContext& context, std::int64_t id) {
  return get_place<store::Booking>(context, id);
}

Result<Listed<store::Booking>> ParksService::list_bookings(const CallContext& context, store::BookingFilter filter,
                                                           input::Page page) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  return read_page(page, "parks.bookings", citizen_view(scope->citizen_id), store::bookings(*scope, filter));
}

}  // namespace townhall::parks
