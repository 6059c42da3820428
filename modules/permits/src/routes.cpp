#include "routes.hpp"

#include <limits>
#include <nlohmann/json.hpp>

#include "townhall/platform/json.hpp"
#include "townhall/platform/schema.hpp"

namespace townhall::permits {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using http::Request;
using http::Response;

constexpr input::TextLimits kPermitType{.max_bytes = 64};
constexpr input::TextLimits kDescription{.max_bytes = 2000, .min_chars = 1, .multiline = true};
constexpr input::TextLimits kAddress{.max_bytes = 200};
constexpr input::TextLimits kDepartment{.max_bytes = 32};
constexpr input::TextLimits kReason{.max_bytes = 1000, .min_chars = 1, .multiline = true};
constexpr input::TextLimits kTime{.max_bytes = 32};

std::string upper(std::string text) {
  for (auto& c : text)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return text;
}

json application_json(const store::Application& a) {
  json applicant = nullptr;
  if (a.applicant)
    applicant = {{"name", nullable(a.applicant->name)},
                 {"phone", nullable(a.applicant->phone)},
                 {"synced_at", a.applicant->synced_at}};
  return {{"id", a.id},
          {"citizen_id", a.citizen_id},
          {"permit_type", a.permit_type},
          {"description", a.description},
          {"property_address", a.property_address},
          {"department_code", a.department_code},
          {"status", a.status},
          {"fee_cents", a.fee_cents},
          {"currency", a.currency},
          {"invoice_id", nullable(a.invoice_id)},
          {"decision_reason", nullable(a.decision_reason)},
          {"decided_at", nullable(a.decided_at)},
          {"permit_id", nullable(a.permit_id)},
          {"applicant", applicant},
          {"submitted_at", a.submitted_at},
          {"updated_at", a.updated_at}};
}

json inspection_json(const store::Inspection& i) {
  return {{"id", i.id},         {"application_id", i.application_id}, {"scheduled_for", i.scheduled_for},
          {"status", i.status}, {"notes", nullable(i.notes)},         {"recorded_at", nullable(i.recorded_at)}};
}

struct Routes {
  PermitsService& service;

  asio::awaitable<Response> submit(Request& request) {
    auto body = input::Body::parse(request.body, {"permit_type", "description", "property_address", "department_code"});
    if (!body) co_return http::problem(body.error());
    NewApplication application;
    application.permit_type = body->required_string("permit_type", kPermitType);
    application.description = body->required_string("description", kDescription);
    application.property_address = body->required_string("property_address", kAddress);
    application.department_code = upper(body->required_string("department_code", kDepartment));
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto created = co_await service.submit(context, std::move(application));
    if (!created) co_return http::problem(created.error());
    auto response = json_body(201, application_json(*created));
    response.set_header("Location", request.path + "/" + std::to_string(created->id));
    co_return response;
  }

  asio::awaitable<Response> list(Request& request) {
    auto page = input::parse_page(request);
    if (!page) co_return http::problem(page.error());
    store::ApplicationFilter filter;
    if (auto status = request.query_param("status")) {
      if (*status != "fee_due" && *status != "under_review" && *status != "approved" && *status != "rejected")
        co_return http::problem(make_error(
            Errc::invalid_argument, "query parameter 'status' must be fee_due, under_review, approved or rejected"));
      filter.status = *status;
    }
    if (auto code = request.query_param("department_code")) {
      if (auto problem = input::check_text(*code, kDepartment))
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'department_code' " + *problem));
      filter.department_code = upper(*code);
    }
    auto list = service.list_applications(request.call_context(), std::move(filter), *page);
    if (!list) co_return http::problem(list.error());
    json items = json::array();
    for (const auto& a : list->items) items.push_back(application_json(a));
    co_return json_body(
        200, {{"items", items}, {"page", list->page.number}, {"page_size", list->page.size}, {"total", list->total}});
  }

  asio::awaitable<Response> get(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such application"));
    auto application = service.get_application(request.call_context(), *id);
    if (!application) co_return http::problem(application.error());
    co_return json_body(200, application_json(*application));
  }

  asio::awaitable<Response> decide(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such application"));
    auto body = input::Body::parse(request.body, {"decision", "reason"});
    if (!body) co_return http::problem(body.error());
    auto decision = body->required_string("decision", {.max_bytes = 16});
    auto reason = body->optional_string("reason", kReason);
    if (body->status() && decision != "approve" && decision != "reject")
      body->fail("decision", "must be \"approve\" or \"reject\"");
    if (body->status() && decision == "reject" && !reason) body->fail("reason", "is required to reject");
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto decided = co_await service.decide(context, *id, decision == "approve" ? Decision::approve : Decision::reject,
                                           std::move(reason));
    if (!decided) co_return http::problem(decided.error());
    co_return json_body(200, application_json(*decided));
  }

  asio::awaitable<Response> schedule(Request& request) {
    auto body = input::Body::parse(request.body, {"application_id", "scheduled_for"});
    if (!body) co_return http::problem(body.error());
    auto application_id = body->required_int("application_id", 1, std::numeric_limits<std::int64_t>::max());
    auto when = body->required_string("scheduled_for", kTime);
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto inspection = co_await service.schedule_inspection(context, application_id, std::move(when));
    if (!inspection) co_return http::problem(inspection.error());
    co_return json_body(201, inspection_json(*inspection));
  }

  asio::awaitable<Response> record(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such inspection"));
    auto body = input::Body::parse(request.body, {"result", "notes"});
    if (!body) co_return http::problem(body.error());
    auto result = body->required_string("result", {.max_bytes = 16});
    auto notes = body->optional_string("notes", {.max_bytes = 2000, .min_chars = 0, .multiline = true});
    if (body->status() && result != "passed" && result != "failed")
      body->fail("result", "must be \"passed\" or \"failed\"");
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto inspection = co_await service.record_inspection(context, *id, result == "passed", std::move(notes));
    if (!inspection) co_return http::problem(inspection.error());
    co_return json_body(200, inspection_json(*inspection));
  }

  asio::awaitable<Response> get_permit(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such permit"));
    auto permit = service.get_permit(request.call_context(), *id);
    if (!permit) co_return http::problem(permit.error());
    co_return json_body(200, permit_json(*permit));
  }

  asio::awaitable<Response> revoke(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such permit"));
    auto body = input::Body::parse(request.body, {"reason"});
    if (!body) co_return http::problem(body.error());
    auto reason = body->required_string("reason", kReason);
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto permit = co_await service.revoke_permit(context, *id, std::move(reason));
    if (!permit) co_return http::problem(permit.error());
    co_return json_body(200, permit_json(*permit));
  }
};

// What /openapi.json says of each route (issue 13, item 5); AuthorizationMatrix checks
// every success answer against it.
void document_routes(http::Router& router, const std::string& prefix) {
  using http::Method;
  namespace s = schema;
  const auto application =
      s::object({{"id", s::integer(1)},
                 {"citizen_id", s::integer(1)},
                 {"permit_type", s::string()},
                 {"description", s::string()},
                 {"property_address", s::string()},
                 {"department_code", s::string()},
                 {"status", s::one_of({"fee_due", "under_review", "approved", "rejected"})},
                 {"fee_cents", s::integer(0)},
                 {"currency", s::string()},
                 {"invoice_id", s::integer_or_null()},
                 {"decision_reason", s::string_or_null()},
                 {"decided_at", s::timestamp_or_null()},
                 {"permit_id", s::integer_or_null()},
                 // The applicant as permits' cache knows them (reviewers see it; null until synced).
                 {"applicant",
                  s::or_null(s::object(
                      {{"name", s::string_or_null()}, {"phone", s::string_or_null()}, {"synced_at", s::timestamp()}}))},
                 {"submitted_at", s::timestamp()},
                 {"updated_at", s::timestamp()}});
  const auto inspection = s::object({{"id", s::integer(1)},
                                     {"application_id", s::integer(1)},
                                     {"scheduled_for", s::timestamp()},
                                     {"status", s::one_of({"scheduled", "passed", "failed"})},
                                     {"notes", s::string_or_null()},
                                     {"recorded_at", s::timestamp_or_null()}});
  const auto permit = s::object({{"id", s::integer(1)},
                                 {"application_id", s::integer(1)},
                                 {"citizen_id", s::integer(1)},
                                 {"permit_type", s::string()},
                                 {"department_code", s::string()},
                                 {"status", s::one_of({"active", "revoked"})},
                                 {"issued_at", s::timestamp()},
                                 {"revoked_at", s::timestamp_or_null()},
                                 {"revoke_reason", s::string_or_null()}});
  const s::RouteDocs doc(router, prefix);
  const s::Json none;
  doc(Method::post, "/applications", "Submit a permit application (a verified citizen)",
      s::object({{"permit_type", s::string()},
                 {"description", s::string()},
                 {"property_address", s::string()},
                 {"department_code", s::string()}}),
      application, 201);
  doc(Method::get, "/applications",
      "Applications: a citizen's own, a department's for its staff (?status= ?department_code= ?page= ?page_size=)",
      none, s::page_of(application));
  doc(Method::get, "/applications/{id}", "An application", none, application);
  doc(Method::post, "/applications/{id}/decision",
      "Approve or reject (a reviewer of its department); reject needs a reason",
      s::object({{"decision", s::one_of({"approve", "reject"})}, s::optional("reason", s::string())}), application);
  doc(Method::post, "/inspections", "Schedule an inspection of an open application (an inspector)",
      s::object({{"application_id", s::integer(1)}, {"scheduled_for", s::timestamp()}}), inspection, 201);
  doc(Method::post, "/inspections/{id}/result", "Record an inspection's result",
      s::object({{"result", s::one_of({"passed", "failed"})}, s::optional("notes", s::string())}), inspection);
  doc(Method::get, "/permits/{id}", "A permit", none, permit);
  doc(Method::post, "/permits/{id}/revoke", "Revoke a permit (a reviewer of its department)",
      s::object({{"reason", s::string()}}), permit);
}

}  // namespace

void add_routes(http::Router& router, const std::string& prefix, PermitsService& service) {
  auto routes = std::make_shared<Routes>(Routes{service});
  auto bind = [routes](asio::awaitable<Response> (Routes::*method)(Request&)) {
    return [routes, method](Request& request) { return ((*routes).*method)(request); };
  };
  using http::Method;
  router.add(Method::post, prefix + "/applications", bind(&Routes::submit));
  router.add(Method::get, prefix + "/applications", bind(&Routes::list));
  router.add(Method::get, prefix + "/applications/{id}", bind(&Routes::get));
  router.add(Method::post, prefix + "/applications/{id}/decision", bind(&Routes::decide));
  router.add(Method::post, prefix + "/inspections", bind(&Routes::schedule));
  router.add(Method::post, prefix + "/inspections/{id}/result", bind(&Routes::record));
  router.add(Method::get, prefix + "/permits/{id}", bind(&Routes::get_permit));
  router.add(Method::post, prefix + "/permits/{id}/revoke", bind(&Routes::revoke));
  document_routes(router, prefix);
}

}  // namespace townhall::permits
