#include "routes.hpp"

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

#include "townhall/platform/json.hpp"
#include "townhall/platform/money.hpp"
#include "townhall/platform/report.hpp"
#include "townhall/platform/routes.hpp"
#include "townhall/platform/schema.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {
namespace {

using json = nlohmann::json;
using http::Request;

constexpr std::int64_t kMaxId = std::numeric_limits<std::int64_t>::max();
constexpr input::TextLimits kName{.max_bytes = 200};
constexpr input::TextLimits kKind{.max_bytes = 64};
constexpr input::TextLimits kTime{.max_bytes = 40};
constexpr input::TextLimits kReason{.max_bytes = 500};

struct Routes {
  ParksService& service;

  // A facility's fields; `creating` requires the ones a new facility needs (the service
  // says which are missing).
  Result<FacilityInput> facility_input(const Request& request) {
    auto body = input::Body::read(request.body, {"name", "kind", "capacity", "hourly_price_cents", "currency",
                                                 "time_zone", "opening_hours", "is_active"});
    FacilityInput in;
    in.name = body.optional_string("name", kName);
    in.kind = body.optional_string("kind", kKind);
    in.capacity = body.optional_int("capacity", 1, 100000);
    in.hourly_price_cents = body.optional_int("hourly_price_cents", 0, money::kMaxMinorUnits);
    in.currency = routes::optional_currency(body);
    in.time_zone = body.optional_string("time_zone", {.max_bytes = 64});
    in.is_active = body.optional_bool("is_active");
    if (auto ok = body.status(); !ok) return ok.error();
    if (body.has("opening_hours")) {
      auto hours = parse_opening_hours(json::parse(request.body)["opening_hours"], "opening_hours");
      if (!hours) return hours.error();
      in.opening_hours = *hours;
    }
    return in;
  }

  routes::Reply list_facilities(Request& request, input::Page page) {
    co_return routes::answer_page(service.list_facilities(request.call_context(), page), facility_json);
  }

  routes::Reply get_facility(Request& request, std::int64_t id) {
    co_return routes::answer(service.get_facility(request.call_context(), id), facility_json);
  }

  routes::Reply facility_availability(Request& request, std::int64_t id) {
    auto from = report::query_day(request, "from");
    if (!from) co_return http::problem(from.error());
    int days = 7;
    if (auto text = request.query_param("days")) {
      auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), days);
      if (error != std::errc{} || end != text->data() + text->size() || days < 1 || days > kMaxAvailabilityDays)
        co_return http::problem(make_error(
            Errc::invalid_argument, "query parameter 'days' must be 1 to " + std::to_string(kMaxAvailabilityDays)));
    }
    co_return routes::answer(service.availability(request.call_context(), id, *from, days), availability_json);
  }

  routes::Reply create_facility(Request& request) {
    auto in = facility_input(request);
    if (!in) co_return http::problem(in.error());
    auto facility = co_await service.create_facility(request.call_context(), std::move(*in));
    co_return routes::created(request, facility, facility_json);
  }

  routes::Reply update_facility(Request& request, std::int64_t id) {
    auto in = facility_input(request);
    if (!in) co_return http::problem(in.error());
    co_return routes::answer(co_await service.update_facility(request.call_context(), id, std::move(*in)),
                             facility_json);
  }

  routes::Reply book(Request& request) {
    auto body = input::Body::read(request.body, {"facility_id", "starts_at", "ends_at"});
    auto facility = body.required_int("facility_id", 1, kMaxId);
    auto starts = body.required_string("starts_at", kTime);
    auto ends = body.required_string("ends_at", kTime);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    const input::TimeRules rules{.not_past = true, .max_ahead = service.settings().horizon};
    auto starts_at = input::parse_time("starts_at", starts, rules);
    if (!starts_at) co_return http::problem(starts_at.error());
    auto ends_at = input::parse_time("ends_at", ends, rules);
    if (!ends_at) co_return http::problem(ends_at.error());
    auto booking = co_await service.book(request.call_context(), facility, *starts_at, *ends_at, request.client_ip);
    co_return routes::created(request, booking, booking_json);
  }

  routes::Reply list_bookings(Request& request, input::Page page) {
    store::BookingFilter filter;
    auto facility = input::query_id(request, "facility_id");
    if (!facility) co_return http::problem(facility.error());
    filter.facility_id = *facility;
    for (const char* bound : {"from", "to"})
      if (auto text = request.query_param(bound)) {
        auto when = input::parse_time(bound, *text);
        if (!when) co_return http::problem(when.error());
        (std::string_view(bound) == "from" ? filter.from : filter.to) = utc::format(*when);
      }
    co_return routes::answer_page(service.list_bookings(request.call_context(), std::move(filter), page), booking_json);
  }

  routes::Reply get_booking(Request& request, std::int64_t id) {
    co_return routes::answer(service.get_booking(request.call_context(), id), booking_json);
  }

  // A cancellation's optional body: parks staff's refund decision and reason.
  static Result<Cancellation> cancellation_of(const Request& request) {
    Cancellation cancellation;
    if (request.body.empty()) return cancellation;
    auto body = input::Body::read(request.body, {"refund", "reason"});
    cancellation.refund = body.optional_bool("refund");
    cancellation.reason = body.optional_string("reason", kReason);
    if (auto ok = body.status(); !ok) return ok.error();
    return cancellation;
  }

  routes::Reply mark_no_show(Request& request, std::int64_t id) {
    co_return routes::answer(co_await service.mark_no_show(request.call_context(), id), booking_json);
  }

  routes::Reply utilisation_report(Request& request) {
    auto range = report::parse_range(request);
    if (!range) co_return http::problem(range.error());
    auto facility = input::query_id(request, "facility_id");
    if (!facility) co_return http::problem(facility.error());
    auto found = service.utilisation_report(request.call_context(), range->from, range->to, *facility);
    if (!found) co_return http::problem(found.error());
    report::Table table{"parks-utilisation",
                        {"facility_id", "facility", "week", "open_hours", "booked_hours", "utilisation", "bookings",
                         "no_shows", "cancelled_by_citizen", "cancelled_by_staff", "expired"},
                        {},
                        json::object()};
    double open = 0, booked = 0;
    std::int64_t bookings = 0, no_shows = 0, cancelled = 0, expired = 0;
    for (const auto& row : *found) {
      json utilisation = nullptr;  // a week the facility is closed has none
      if (row.open_hours > 0) utilisation = row.booked_hours / row.open_hours;
      table.rows.push_back({row.facility_id, row.facility, row.week, row.open_hours, row.booked_hours, utilisation,
                            row.bookings, row.no_shows, row.cancelled_by_citizen, row.cancelled_by_staff, row.expired});
      open += row.open_hours;
      booked += row.booked_hours;
      bookings += row.bookings;
      no_shows += row.no_shows;
      cancelled += row.cancelled_by_citizen + row.cancelled_by_staff;
      expired += row.expired;
    }
    table.totals = {{"open_hours", open},
                    {"booked_hours", booked},
                    {"utilisation", open > 0 ? json(booked / open) : json(nullptr)},
                    {"bookings", bookings},
                    {"no_shows", no_shows},
                    {"cancelled", cancelled},
                    {"expired", expired}};
    co_return report::answer(request, *range, table);
  }

  routes::Reply cancel_booking(Request& request, std::int64_t id) {
    auto cancellation = cancellation_of(request);
    if (!cancellation) co_return http::problem(cancellation.error());
    auto booking = co_await service.cancel_booking(request.call_context(), id, std::move(*cancellation));
    co_return routes::answer(booking, booking_json);
  }

  routes::Reply list_programs(Request&, input::Page page) {
    co_return routes::answer_page(service.list_programs(page), program_json);
  }

  routes::Reply get_program(Request&, std::int64_t id) {
    co_return routes::answer(service.get_program(id), program_json);
  }

  routes::Reply create_program(Request& request) {
    auto body = input::Body::read(
        request.body, {"facility_id", "name", "schedule", "capacity", "price_cents", "currency", "starts_at"});
    NewProgram program;
    program.facility_id = body.optional_int("facility_id", 1, kMaxId);
    program.name = body.required_string("name", kName);
    program.schedule = body.required_string("schedule", kName);
    program.capacity = body.required_int("capacity", 1, 100000);
    program.price_cents = body.required_int("price_cents", 0, revenue::kMaxInvoiceCents);
    program.currency = routes::optional_currency(body);
    auto starts = body.optional_string("starts_at", kTime);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    if (starts) {
      auto starts_at =
          input::parse_time("starts_at", *starts, {.not_past = true, .max_ahead = service.settings().horizon});
      if (!starts_at) co_return http::problem(starts_at.error());
      program.starts_at = *starts_at;
    }
    auto created = co_await service.create_program(request.call_context(), std::move(program));
    co_return routes::created(request, created, program_json);
  }

  routes::Reply enroll(Request& request, std::int64_t id) {
    if (auto empty = input::no_body(request, "an enrollment"); !empty) co_return http::problem(empty.error());
    auto enrollment = co_await service.enroll(request.call_context(), id, request.client_ip);
    if (!enrollment) co_return http::problem(enrollment.error());
    co_return routes::created_at("/api/v1/parks/enrollments/" + std::to_string(enrollment->id),
                                 enrollment_json(*enrollment));
  }

  routes::Reply list_enrollments(Request& request, input::Page page) {
    store::EnrollmentFilter filter;
    auto program = input::query_id(request, "program_id");
    if (!program) co_return http::problem(program.error());
    filter.program_id = *program;
    co_return routes::answer_page(service.list_enrollments(request.call_context(), std::move(filter), page),
                                  enrollment_json);
  }

  routes::Reply get_enrollment(Request& request, std::int64_t id) {
    co_return routes::answer(service.get_enrollment(request.call_context(), id), enrollment_json);
  }

  routes::Reply cancel_enrollment(Request& request, std::int64_t id) {
    auto cancellation = cancellation_of(request);
    if (!cancellation) co_return http::problem(cancellation.error());
    auto enrollment = co_await service.cancel_enrollment(request.call_context(), id, std::move(*cancellation));
    co_return routes::answer(enrollment, enrollment_json);
  }
};

}  // namespace

void add_routes(http::Router& router, const std::string& prefix, ParksService& service) {
  auto bind = routes::member_binder(std::make_shared<Routes>(Routes{service}));
  using http::Method;
  namespace s = schema;
  // Weekday (mon..sun) to {open, close} ("HH:MM", on the hour or half hour); a day left
  // out is closed.
  s::Json hours = {{"type", "object"},
                   {"additionalProperties", s::object({{"open", s::string()}, {"close", s::string()}})}};
  std::vector<s::Field> facility_fields = {{"name", s::string()},
                                           {"kind", s::string()},
                                           {"capacity", s::integer(1)},
                                           {"hourly_price_cents", s::integer(0)},
                                           s::optional("currency", s::string()),
                                           {"time_zone", s::string()},
                                           {"opening_hours", hours},
                                           s::optional("is_active", s::boolean())};
  const auto new_facility = s::object(facility_fields);
  for (auto& field : facility_fields) field.required = false;
  const auto facility_patch = s::object(facility_fields);
  const auto facility = s::object({{"id", s::integer(1)},
                                   {"name", s::string()},
                                   {"kind", s::string()},
                                   {"capacity", s::integer(1)},
                                   {"hourly_price_cents", s::integer(0)},
                                   {"currency", s::string()},
                                   {"time_zone", s::string()},
                                   {"opening_hours", hours},
                                   {"is_active", s::boolean()},
                                   {"created_at", s::timestamp()},
                                   {"updated_at", s::timestamp()}});
  // What a booking and an enrollment both show after their own fields: price, hold,
  // payment and cancellation.
  const auto priced_place = [](std::vector<s::Field> fields) {
    fields.insert(fields.end(), {{"amount_cents", s::integer(0)},
                                 {"currency", s::string()},
                                 {"hold_expires_at", s::timestamp_or_null()},
                                 {"invoice_id", s::integer_or_null()},
                                 {"payment_id", s::integer_or_null()},
                                 {"cancel_reason", s::string_or_null()},
                                 {"cancelled_by", s::string_or_null()},
                                 {"cancelled_at", s::timestamp_or_null()},
                                 {"refund", s::string_or_null()},
                                 {"created_at", s::timestamp()},
                                 {"updated_at", s::timestamp()}});
    return s::object(std::move(fields));
  };
  const auto booking = priced_place({{"id", s::integer(1)},
                                     {"facility_id", s::integer(1)},
                                     {"citizen_id", s::integer(1)},
                                     {"starts_at", s::timestamp()},
                                     {"ends_at", s::timestamp()},
                                     {"status", s::one_of({"pending_payment", "confirmed", "cancelled"})},
                                     {"no_show_at", s::timestamp_or_null()}});
  const auto program = s::object({{"id", s::integer(1)},
                                  {"facility_id", s::integer_or_null()},
                                  {"name", s::string()},
                                  {"schedule", s::string()},
                                  {"capacity", s::integer(1)},
                                  {"enrolled", s::integer(0)},
                                  {"waitlisted", s::integer(0)},
                                  {"held", s::integer(0)},
                                  {"price_cents", s::integer(0)},
                                  {"currency", s::string()},
                                  {"starts_at", s::timestamp_or_null()},
                                  {"created_at", s::timestamp()}});
  const auto enrollment =
      priced_place({{"id", s::integer(1)},
                    {"program_id", s::integer(1)},
                    {"citizen_id", s::integer(1)},
                    {"status", s::one_of({"pending_payment", "enrolled", "waitlisted", "cancelled"})},
                    s::optional("waitlist_position", s::integer(1))});
  const routes::RouteTable table(router, prefix);
  const s::Json none;
  table.add_public(Method::get, "/facilities", bind(&Routes::list_facilities),
                   "Facilities (?cursor= ?page_size= ?include=total)", none, s::page_of(facility));
  table.add_public(Method::get, "/facilities/{id}", bind(&Routes::get_facility, "no such facility"), "A facility", none,
                   facility);
  table.add_public(
      Method::get, "/facilities/{id}/availability", bind(&Routes::facility_availability, "no such facility"),
      "A facility's bookable hours for ?days= (1-14, default 7) local days from ?from=YYYY-MM-DD (default today in "
      "its zone): one slot per whole opening hour, free, taken or past",
      none,
      s::object({{"facility_id", s::integer(1)},
                 {"time_zone", s::string()},
                 {"from", s::string()},
                 {"days", s::array(s::object(
                              {{"date", s::string()},
                               {"slots", s::array(s::object({{"start", s::timestamp()},
                                                             {"end", s::timestamp()},
                                                             {"local_start", s::string()},
                                                             {"state", s::one_of({"free", "taken", "past"})}}))}}))}}));
  table.add(Method::post, "/facilities", bind(&Routes::create_facility), "Create a facility (parks staff)",
            new_facility, facility, 201);
  table.add(Method::patch, "/facilities/{id}", bind(&Routes::update_facility, "no such facility"),
            "Change a facility (parks staff)", facility_patch, facility);
  table.add(
      Method::post, "/bookings", bind(&Routes::book),
      "Book a facility (a citizen): pending_payment with a hold and an invoice, or confirmed when free; 409 on overlap",
      s::object({{"facility_id", s::integer(1)}, {"starts_at", s::timestamp()}, {"ends_at", s::timestamp()}}), booking,
      201);
  table.add(Method::get, "/bookings", bind(&Routes::list_bookings),
            "Bookings: a citizen's own, all for parks staff (?status= ?cursor= ?page_size= ?include=total)", none,
            s::page_of(booking));
  table.add(Method::get, "/bookings/{id}", bind(&Routes::get_booking, "no such booking"), "A booking", none, booking);
  table.add(Method::del, "/bookings/{id}", bind(&Routes::cancel_booking, "no such booking"),
            "Cancel a booking: its citizen until the start (no body; a paid booking is refunded in full until "
            "refund_cutoff_hours before the start, not after), or parks staff at any time (a paid booking needs "
            "{\"refund\": true|false, \"reason\": \"...\"}); the cancelled booking",
            s::object({s::optional("refund", s::boolean()), s::optional("reason", s::string())}), booking);
  table.add(Method::post, "/bookings/{id}/no-show", bind(&Routes::mark_no_show, "no such booking"),
            "Mark a confirmed booking whose start has passed as a no-show (parks staff; once)", none, booking);
  table.add(Method::get, "/reports/utilisation", bind(&Routes::utilisation_report),
            "Utilisation per facility and week (Monday, in its zone) from ?from= to ?to= (days in each facility's "
            "zone), with no-shows and cancellations; ?facility_id=; parks staff; JSON or CSV (Accept: text/csv)",
            none,
            report::report_of(s::object({{"facility_id", s::integer(1)},
                                         {"facility", s::string()},
                                         {"week", s::string()},
                                         {"open_hours", s::number()},
                                         {"booked_hours", s::number()},
                                         {"utilisation", s::or_null(s::number())},
                                         {"bookings", s::integer(0)},
                                         {"no_shows", s::integer(0)},
                                         {"cancelled_by_citizen", s::integer(0)},
                                         {"cancelled_by_staff", s::integer(0)},
                                         {"expired", s::integer(0)}}),
                              s::object({{"open_hours", s::number()},
                                         {"booked_hours", s::number()},
                                         {"utilisation", s::or_null(s::number())},
                                         {"bookings", s::integer(0)},
                                         {"no_shows", s::integer(0)},
                                         {"cancelled", s::integer(0)},
                                         {"expired", s::integer(0)}})));
  table.add_public(Method::get, "/programs", bind(&Routes::list_programs),
                   "Programs (?cursor= ?page_size= ?include=total)", none, s::page_of(program));
  table.add_public(Method::get, "/programs/{id}", bind(&Routes::get_program, "no such program"), "A program", none,
                   program);
  table.add(Method::post, "/programs", bind(&Routes::create_program),
            "Create a program (parks staff; a priced one needs starts_at, its first meeting)",
            s::object({s::optional("facility_id", s::integer(1)),
                       {"name", s::string()},
                       {"schedule", s::string()},
                       {"capacity", s::integer(1)},
                       {"price_cents", s::integer(0)},
                       s::optional("currency", s::string()),
                       s::optional("starts_at", s::timestamp())}),
            program, 201);
  table.add(Method::post, "/programs/{id}/enrollments", bind(&Routes::enroll, "no such program"),
            "Enroll (a citizen; no body): enrolled when free, pending_payment with a hold and an invoice when priced, "
            "waitlisted when every place is taken or held",
            s::object({}), enrollment, 201);
  table.add(Method::get, "/enrollments", bind(&Routes::list_enrollments),
            "Enrollments: a citizen's own, all for parks staff (?program_id= ?cursor= ?page_size= ?include=total)",
            none, s::page_of(enrollment));
  table.add(Method::get, "/enrollments/{id}", bind(&Routes::get_enrollment, "no such enrollment"), "An enrollment",
            none, enrollment);
  table.add(Method::del, "/enrollments/{id}", bind(&Routes::cancel_enrollment, "no such enrollment"),
            "Cancel an enrollment: the booking's refund policy, counted from the program's start (parks staff send "
            "{\"refund\": true|false, \"reason\": \"...\"} for a paid one); a released place goes to the waitlist; the "
            "cancelled enrollment",
            s::object({s::optional("refund", s::boolean()), s::optional("reason", s::string())}), enrollment);
}

}  // namespace townhall::parks
