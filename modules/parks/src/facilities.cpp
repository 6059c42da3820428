#include "service_internal.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {

namespace asio = boost::asio;

Result<Listed<store::Facility>> ParksService::list_facilities(const CallContext& context, input::Page page) {
  bool active_only = !is_staff(context.principal.get());
  return read_page(page, PagedQuery<store::Facility>{
                             "parks.facilities", active_only ? "public" : "staff",
                             [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                               return store::list_facilities(reader, active_only, after, limit);
                             },
                             [&](db::Connection& reader) { return store::count_facilities(reader, active_only); }});
}

Result<store::Facility> ParksService::get_facility(const CallContext& context, std::int64_t id) {
  if (auto ok = usable(); !ok) return ok.error();
  bool staff = is_staff(context.principal.get());
  return deps_.readers.read([&](db::Connection& reader) -> Result<store::Facility> {
    auto facility = store::find_facility(reader, id);
    if (!facility || (!facility->is_active && !staff)) return make_error(Errc::not_found, "no such facility");
    return *facility;
  });
}

namespace {

// Applies `input` to `f`; the first problem, or Unit. A new facility needs every field.
// A price is checked against revenue's ceiling for the longest booking, so every booking
// it allows is an amount revenue invoices (issue 21 §3.4).
Result<Unit> apply_facility_input(store::Facility& f, const FacilityInput& input, bool creating,
                                  const std::string& default_currency, std::chrono::hours max_booking) {
  auto missing = [](const char* field) {
    return make_error(Errc::invalid_argument, std::string("field '") + field + "': is required");
  };
  if (creating && !input.name) return missing("name");
  if (creating && !input.kind) return missing("kind");
  if (creating && !input.capacity) return missing("capacity");
  if (creating && !input.hourly_price_cents) return missing("hourly_price_cents");
  if (creating && !input.time_zone) return missing("time_zone");
  if (creating && !input.opening_hours) return missing("opening_hours");
  if (input.name) f.name = *input.name;
  if (input.kind) f.kind = *input.kind;
  if (input.capacity) f.capacity = *input.capacity;
  if (input.hourly_price_cents) {
    const auto ceiling = revenue::kMaxInvoiceCents / max_booking.count();
    if (*input.hourly_price_cents > ceiling)
      return make_error(Errc::invalid_argument, "field 'hourly_price_cents': at most " + std::to_string(ceiling) +
                                                    ", so that a booking of " + std::to_string(max_booking.count()) +
                                                    " hours stays within what revenue can invoice (" +
                                                    std::to_string(revenue::kMaxInvoiceCents) + ")");
    f.hourly_price_cents = *input.hourly_price_cents;
  }
  if (input.currency) f.currency = *input.currency;
  if (creating && !input.currency) f.currency = default_currency;
  if (input.time_zone) {
    if (!known_time_zone(*input.time_zone))
      return make_error(Errc::invalid_argument,
                        "field 'time_zone': unknown time zone; use an IANA name such as \"America/New_York\"");
    f.time_zone = *input.time_zone;
  }
  if (input.opening_hours) f.opening_hours = opening_hours_json(*input.opening_hours).dump();
  if (input.is_active) f.is_active = *input.is_active;
  return Unit{};
}

}  // namespace

asio::awaitable<Result<store::Facility>> ParksService::create_facility(CallContext context, FacilityInput input) {
  if (!is_staff(context.principal.get())) co_return forbidden("needs permission parks:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  store::Facility facility;
  if (auto ok = apply_facility_input(facility, input, true, settings_.currency, settings_.max_booking); !ok)
    co_return ok.error();
  facility.created_at = facility.updated_at = utc::now();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Facility> {
    store::insert_facility(service, facility);
    return facility;
  });
}

asio::awaitable<Result<store::Facility>> ParksService::update_facility(CallContext context, std::int64_t id,
                                                                       FacilityInput input) {
  if (!is_staff(context.principal.get())) co_return forbidden("needs permission parks:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Facility> {
    auto facility = store::find_facility(service, id);
    if (!facility) return make_error(Errc::not_found, "no such facility");
    const auto zone = facility->time_zone;
    if (auto ok = apply_facility_input(*facility, input, false, settings_.currency, settings_.max_booking); !ok)
      return ok.error();
    facility->event_version += 1;
    facility->updated_at = utc::now();
    store::update_facility(service, *facility);
    // Its bookings' report days are its zone's (migration 0008): moved with it.
    if (facility->time_zone != zone) store::set_local_days(service, facility->id);
    return *facility;
  });
}

}  // namespace townhall::parks
