#include "routes.hpp"

#include <limits>
#include <nlohmann/json.hpp>

#include "townhall/platform/json.hpp"
#include "townhall/platform/money.hpp"
#include "townhall/platform/schema.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using http::Request;
using http::Response;

constexpr std::int64_t kMaxId = std::numeric_limits<std::int64_t>::max();
constexpr input::TextLimits kName{.max_bytes = 200};
constexpr input::TextLimits kKind{.max_bytes = 64};
constexpr input::TextLimits kTime{.max_bytes = 40};
constexpr input::TextLimits kReason{.max_bytes = 500};

Response created(const Request& request, std::int64_t id, const json& body) {
  auto response = json_body(201, body);
  response.set_header("Location", request.path + "/" + std::to_string(id));
  return response;
}

struct Routes {
  ParksService& service;

  // A facility's fields; `creating` requires the ones a new facility needs (the service
  // says which are missing).
  Result<FacilityInput> facility_input(const Request& request) {
    auto body = input::Body::parse(request.body, {"name", "kind", "capacity", "hourly_price_cents", "currency",
                                                  "time_zone", "opening_hours", "is_active"});
    if (!body) return body.error();
    FacilityInput in;
    in.name = body->optional_string("name", kName);
    in.kind = body->optional_string("kind", kKind);
    in.capacity = body->optional_int("capacity", 1, 100000);
    in.hourly_price_cents = body->optional_int("hourly_price_cents", 0, money::kMaxMinorUnits);
    in.currency = body->optional_string("currency", {.max_bytes = 3});
    if (in.currency && !money::is_iso4217(*in.currency))
      body->fail("currency", "must be an ISO 4217 code such as \"USD\"");
    in.time_zone = body->optional_string("time_zone", {.max_bytes = 64});
    in.is_active = body->optional_bool("is_active");
    if (auto ok = body->status(); !ok) return ok.error();
    if (body->has("opening_hours")) {
      auto hours = parse_opening_hours(json::parse(request.body)["opening_hours"], "opening_hours");
      if (!hours) return hours.error();
      in.opening_hours = *hours;
    }
    return in;
  }

  asio::awaitable<Response> list_facilities(Request& request) {
    auto page = input::parse_page(request);
    if (!page) co_return http::problem(page.error());
    auto list = service.list_facilities(request.call_context(), *page);
    if (!list) co_return http::problem(list.error());
    co_return json_body(200, listed_json(*list, facility_json));
  }

  asio::awaitable<Response> get_facility(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such facility"));
    auto facility = service.get_facility(request.call_context(), *id);
    if (!facility) co_return http::problem(facility.error());
    co_return json_body(200, facility_json(*facility));
  }

  asio::awaitable<Response> create_facility(Request& request) {
    auto in = facility_input(request);
    if (!in) co_return http::problem(in.error());
    auto facility = co_await service.create_facility(request.call_context(), std::move(*in));
    if (!facility) co_return http::problem(facility.error());
    co_return created(request, facility->id, facility_json(*facility));
  }

  asio::awaitable<Response> update_facility(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such facility"));
    auto in = facility_input(request);
    if (!in) co_return http::problem(in.error());
    auto facility = co_await service.update_facility(request.call_context(), *id, std::move(*in));
    if (!facility) co_return http::problem(facility.error());
    co_return json_body(200, facility_json(*facility));
  }

  asio::awaitable<Response> book(Request& request) {
    auto body = input::Body::parse(request.body, {"facility_id", "starts_at", "ends_at"});
    if (!body) co_return http::problem(body.error());
    auto facility = body->required_int("facility_id", 1, kMaxId);
    auto starts = body->required_string("starts_at", kTime);
    auto ends = body->required_string("ends_at", kTime);
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    const input::TimeRules rules{.not_past = true, .max_ahead = service.settings().horizon};
    auto starts_at = input::parse_time("starts_at", starts, rules);
    if (!starts_at) co_return http::problem(starts_at.error());
    auto ends_at = input::parse_time("ends_at", ends, rules);
    if (!ends_at) co_return http::problem(ends_at.error());
    auto booking = co_await service.book(request.call_context(), facility, *starts_at, *ends_at);
    if (!booking) co_return http::problem(booking.error());
    co_return created(request, booking->id, booking_json(*booking));
  }

  asio::awaitable<Response> list_bookings(Request& request) {
    auto page = input::parse_page(request);
    if (!page) co_return http::problem(page.error());
    store::BookingFilter filter;
    if (auto facility = request.query_param("facility_id")) {
      auto id = input::parse_id(*facility);
      if (!id)
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'facility_id' must be an id"));
      filter.facility_id = *id;
    }
    for (const char* bound : {"from", "to"})
      if (auto text = request.query_param(bound)) {
        auto when = input::parse_time(bound, *text);
        if (!when) co_return http::problem(when.error());
        (std::string_view(bound) == "from" ? filter.from : filter.to) = utc::format(*when);
      }
    auto list = service.list_bookings(request.call_context(), std::move(filter), *page);
    if (!list) co_return http::problem(list.error());
    co_return json_body(200, listed_json(*list, booking_json));
  }

  asio::awaitable<Response> get_booking(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such booking"));
    auto booking = service.get_booking(request.call_context(), *id);
    if (!booking) co_return http::problem(booking.error());
    co_return json_body(200, booking_json(*booking));
  }

  asio::awaitable<Response> cancel_booking(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such booking"));
    Cancellation cancellation;
    if (!request.body.empty()) {
      auto body = input::Body::parse(request.body, {"refund", "reason"});
      if (!body) co_return http::problem(body.error());
      cancellation.refund = body->optional_bool("refund");
      cancellation.reason = body->optional_string("reason", kReason);
      if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    }
    auto booking = co_await service.cancel_booking(request.call_context(), *id, std::move(cancellation));
    if (!booking) co_return http::problem(booking.error());
    co_return json_body(200, booking_json(*booking));
  }

  asio::awaitable<Response> list_programs(Request& request) {
    auto page = input::parse_page(request);
    if (!page) co_return http::problem(page.error());
    auto list = service.list_programs(*page);
    if (!list) co_return http::problem(list.error());
    co_return json_body(200, listed_json(*list, program_json));
  }

  asio::awaitable<Response> get_program(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such program"));
    auto program = service.get_program(*id);
    if (!program) co_return http::problem(program.error());
    co_return json_body(200, program_json(*program));
  }

  asio::awaitable<Response> create_program(Request& request) {
    auto body =
        input::Body::parse(request.body, {"facility_id", "name", "schedule", "capacity", "price_cents", "currency"});
    if (!body) co_return http::problem(body.error());
    NewProgram program;
    program.facility_id = body->optional_int("facility_id", 1, kMaxId);
    program.name = body->required_string("name", kName);
    program.schedule = body->required_string("schedule", kName);
    program.capacity = body->required_int("capacity", 1, 100000);
    program.price_cents = body->required_int("price_cents", 0, revenue::kMaxInvoiceCents);
    program.currency = body->optional_string("currency", {.max_bytes = 3});
    if (program.currency && !money::is_iso4217(*program.currency))
      body->fail("currency", "must be an ISO 4217 code such as \"USD\"");
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto created_program = co_await service.create_program(request.call_context(), std::move(program));
    if (!created_program) co_return http::problem(created_program.error());
    co_return created(request, created_program->id, program_json(*created_program));
  }

  asio::awaitable<Response> enroll(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such program"));
    if (!request.body.empty() && request.body != "{}")
      co_return http::problem(make_error(Errc::invalid_argument, "an enrollment takes no body"));
    auto enrollment = co_await service.enroll(request.call_context(), *id);
    if (!enrollment) co_return http::problem(enrollment.error());
    auto response = json_body(201, enrollment_json(*enrollment));
    response.set_header("Location", "/api/v1/parks/enrollments/" + std::to_string(enrollment->id));
    co_return response;
  }

  asio::awaitable<Response> get_enrollment(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such enrollment"));
    auto enrollment = service.get_enrollment(request.call_context(), *id);
    if (!enrollment) co_return http::problem(enrollment.error());
    co_return json_body(200, enrollment_json(*enrollment));
  }

  asio::awaitable<Response> cancel_enrollment(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such enrollment"));
    auto enrollment = co_await service.cancel_enrollment(request.call_context(), *id);
    if (!enrollment) co_return http::problem(enrollment.error());
    co_return json_body(200, enrollment_json(*enrollment));
  }
};

// What /openapi.json says of each route (issue 13, item 5); AuthorizationMatrix checks
// every success answer against it.
void document_routes(http::Router& router, const std::string& prefix) {
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
  const auto booking = s::object({{"id", s::integer(1)},
                                  {"facility_id", s::integer(1)},
                                  {"citizen_id", s::integer(1)},
                                  {"starts_at", s::timestamp()},
                                  {"ends_at", s::timestamp()},
                                  {"status", s::one_of({"pending_payment", "confirmed", "cancelled"})},
                                  {"amount_cents", s::integer(0)},
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
  const auto program = s::object({{"id", s::integer(1)},
                                  {"facility_id", s::integer_or_null()},
                                  {"name", s::string()},
                                  {"schedule", s::string()},
                                  {"capacity", s::integer(1)},
                                  {"enrolled", s::integer(0)},
                                  {"waitlisted", s::integer(0)},
                                  {"price_cents", s::integer(0)},
                                  {"currency", s::string()},
                                  {"created_at", s::timestamp()}});
  const auto enrollment = s::object({{"id", s::integer(1)},
                                     {"program_id", s::integer(1)},
                                     {"citizen_id", s::integer(1)},
                                     {"status", s::one_of({"enrolled", "waitlisted", "cancelled"})},
                                     s::optional("waitlist_position", s::integer(1)),
                                     {"created_at", s::timestamp()},
                                     {"updated_at", s::timestamp()}});
  const s::RouteDocs doc(router, prefix);
  const s::Json none;
  doc(Method::get, "/facilities", "Facilities (?page= ?page_size=)", none, s::page_of(facility));
  doc(Method::get, "/facilities/{id}", "A facility", none, facility);
  doc(Method::post, "/facilities", "Create a facility (parks staff)", new_facility, facility, 201);
  doc(Method::patch, "/facilities/{id}", "Change a facility (parks staff)", facility_patch, facility);
  doc(Method::post, "/bookings",
      "Book a facility (a citizen): pending_payment with a hold and an invoice, or confirmed when free; 409 on overlap",
      s::object({{"facility_id", s::integer(1)}, {"starts_at", s::timestamp()}, {"ends_at", s::timestamp()}}), booking,
      201);
  doc(Method::get, "/bookings", "Bookings: a citizen's own, all for parks staff (?status= ?page= ?page_size=)", none,
      s::page_of(booking));
  doc(Method::get, "/bookings/{id}", "A booking", none, booking);
  doc(Method::del, "/bookings/{id}",
      "Cancel a booking: its citizen until the start (no body; a paid booking is refunded in full until "
      "refund_cutoff_hours before the start, not after), or parks staff at any time (a paid booking needs "
      "{\"refund\": true|false, \"reason\": \"...\"}); the cancelled booking",
      s::object({s::optional("refund", s::boolean()), s::optional("reason", s::string())}), booking);
  doc(Method::get, "/programs", "Programs (?page= ?page_size=)", none, s::page_of(program));
  doc(Method::get, "/programs/{id}", "A program", none, program);
  doc(Method::post, "/programs", "Create a program (parks staff)",
      s::object({s::optional("facility_id", s::integer(1)),
                 {"name", s::string()},
                 {"schedule", s::string()},
                 {"capacity", s::integer(1)},
                 {"price_cents", s::integer(0)},
                 s::optional("currency", s::string())}),
      program, 201);
  doc(Method::post, "/programs/{id}/enrollments", "Enroll (a citizen): enrolled, or waitlisted when full (no body)",
      s::object({}), enrollment, 201);
  doc(Method::get, "/enrollments/{id}", "An enrollment", none, enrollment);
  doc(Method::del, "/enrollments/{id}", "Cancel an enrollment: the cancelled enrollment", none, enrollment);
}

}  // namespace

void add_routes(http::Router& router, const std::string& prefix, ParksService& service) {
  auto routes = std::make_shared<Routes>(Routes{service});
  auto bind = [routes](asio::awaitable<Response> (Routes::*method)(Request&)) {
    return [routes, method](Request& request) { return ((*routes).*method)(request); };
  };
  using http::Access;
  using http::Method;
  router.add(Method::get, prefix + "/facilities", bind(&Routes::list_facilities), Access::public_route);
  router.add(Method::get, prefix + "/facilities/{id}", bind(&Routes::get_facility), Access::public_route);
  router.add(Method::post, prefix + "/facilities", bind(&Routes::create_facility));
  router.add(Method::patch, prefix + "/facilities/{id}", bind(&Routes::update_facility));
  router.add(Method::post, prefix + "/bookings", bind(&Routes::book));
  router.add(Method::get, prefix + "/bookings", bind(&Routes::list_bookings));
  router.add(Method::get, prefix + "/bookings/{id}", bind(&Routes::get_booking));
  router.add(Method::del, prefix + "/bookings/{id}", bind(&Routes::cancel_booking));
  router.add(Method::get, prefix + "/programs", bind(&Routes::list_programs), Access::public_route);
  router.add(Method::get, prefix + "/programs/{id}", bind(&Routes::get_program), Access::public_route);
  router.add(Method::post, prefix + "/programs", bind(&Routes::create_program));
  router.add(Method::post, prefix + "/programs/{id}/enrollments", bind(&Routes::enroll));
  router.add(Method::get, prefix + "/enrollments/{id}", bind(&Routes::get_enrollment));
  router.add(Method::del, prefix + "/enrollments/{id}", bind(&Routes::cancel_enrollment));
  document_routes(router, prefix);
}

}  // namespace townhall::parks
