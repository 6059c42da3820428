#include "routes.hpp"

#include <limits>
#include <nlohmann/json.hpp>

#include "townhall/platform/json.hpp"
#include "townhall/platform/report.hpp"
#include "townhall/platform/routes.hpp"
#include "townhall/platform/schema.hpp"

namespace townhall::permits {
namespace {

using json = nlohmann::json;
using http::Request;

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

json permit_type_json(const store::PermitTypeVersion& t) {
  return {{"permit_type", t.permit_type},
          {"version", t.version},
          {"fee_cents", t.fee_cents},
          {"currency", t.currency},
          {"inspection_required", t.inspection_required},
          {"active", t.active},
          {"changed_at", t.changed_at}};
}

json permit_type_detail_json(const PermitTypeDetail& detail) {
  auto out = permit_type_json(detail.current);
  if (detail.history) {
    auto versions = json::array();
    for (const auto& v : *detail.history) {
      auto row = permit_type_json(v);
      row["changed_by"] = nullable(v.changed_by);
      versions.push_back(std::move(row));
    }
    out["history"] = std::move(versions);
  }
  return out;
}

// An amount in minor units a fee can be: up to ten billion in major units.
constexpr std::int64_t kMaxFeeCents = 100'000'000'00;

bool valid_type_code(const std::string& code) {
  if (code.empty() || code.size() > 64) return false;
  for (char c : code)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

struct Routes {
  PermitsService& service;

  routes::Reply submit(Request& request) {
    auto body = input::Body::read(request.body, {"permit_type", "description", "property_address", "department_code"});
    NewApplication application;
    application.permit_type = body.required_string("permit_type", kPermitType);
    application.description = body.required_string("description", kDescription);
    application.property_address = body.required_string("property_address", kAddress);
    application.department_code = upper(body.required_string("department_code", kDepartment));
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    co_return routes::created(request, co_await service.submit(context, std::move(application)), application_json);
  }

  routes::Reply list(Request& request, input::Page page) {
    store::ApplicationFilter filter;
    auto status = input::query_choice(request, "status", {"fee_due", "under_review", "approved", "rejected"});
    if (!status) co_return http::problem(status.error());
    filter.status = *status;
    if (auto code = request.query_param("department_code")) {
      if (auto problem = input::check_text(*code, kDepartment))
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'department_code' " + *problem));
      filter.department_code = upper(*code);
    }
    co_return routes::answer_page(service.list_applications(request.call_context(), std::move(filter), page),
                                  application_json);
  }

  routes::Reply get(Request& request, std::int64_t id) {
    co_return routes::answer(service.get_application(request.call_context(), id), application_json);
  }

  routes::Reply decide(Request& request, std::int64_t id) {
    auto decision = input::parse_decision(request.body, kReason);
    if (!decision) co_return http::problem(decision.error());
    auto context = request.call_context();
    auto decided = co_await service.decide(context, id, decision->approve ? Decision::approve : Decision::reject,
                                           std::move(decision->reason));
    co_return routes::answer(decided, application_json);
  }

  routes::Reply schedule(Request& request) {
    auto body = input::Body::read(request.body, {"application_id", "scheduled_for"});
    auto application_id = body.required_int("application_id", 1, std::numeric_limits<std::int64_t>::max());
    auto when = body.required_string("scheduled_for", kTime);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto inspection = co_await service.schedule_inspection(context, application_id, std::move(when));
    co_return routes::answer(inspection, inspection_json, 201);
  }

  routes::Reply list_inspections(Request& request, std::int64_t application_id) {
    auto page = input::parse_page(request);
    if (!page) co_return http::problem(page.error());
    co_return routes::answer_page(service.list_inspections(request.call_context(), application_id, *page),
                                  inspection_json);
  }

  routes::Reply record(Request& request, std::int64_t id) {
    auto body = input::Body::read(request.body, {"result", "notes"});
    auto result = body.required_string("result", {.max_bytes = 16});
    auto notes = body.optional_string("notes", {.max_bytes = 2000, .min_chars = 0, .multiline = true});
    if (body.status() && result != "passed" && result != "failed")
      body.fail("result", "must be \"passed\" or \"failed\"");
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto inspection = co_await service.record_inspection(context, id, result == "passed", std::move(notes));
    co_return routes::answer(inspection, inspection_json);
  }

  routes::Reply get_permit(Request& request, std::int64_t id) {
    co_return routes::answer(service.get_permit(request.call_context(), id), permit_json);
  }

  routes::Reply list_types(Request& request, input::Page page) {
    auto all = input::query_choice(request, "all", {"true", "false"});
    if (!all) co_return http::problem(all.error());
    co_return routes::answer_page(service.list_permit_types(request.call_context(), *all == "true", page),
                                  permit_type_json);
  }

  routes::Reply get_type(Request& request) {
    co_return routes::answer(service.get_permit_type(request.call_context(), std::string(*request.param("code"))),
                             permit_type_detail_json);
  }

  routes::Reply create_type(Request& request) {
    auto body = input::Body::read(request.body, {"permit_type", "fee_cents", "currency", "inspection_required"});
    NewPermitType type;
    type.permit_type = body.required_string("permit_type", kPermitType);
    type.fee_cents = body.required_int("fee_cents", 0, kMaxFeeCents);
    type.currency = routes::optional_currency(body).value_or("USD");
    type.inspection_required = body.optional_bool("inspection_required").value_or(false);
    if (body.status() && !valid_type_code(type.permit_type))
      body.fail("permit_type", "must be 1-64 of a-z, 0-9, '_' and '-'");
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto created = co_await service.create_permit_type(context, std::move(type));
    if (!created) co_return http::problem(created.error());
    co_return routes::created_at(request.path + "/" + created->permit_type, permit_type_json(*created));
  }

  routes::Reply change_type(Request& request) {
    auto body = input::Body::read(request.body, {"fee_cents", "currency", "inspection_required", "active"});
    PermitTypeChange change;
    change.fee_cents = body.optional_int("fee_cents", 0, kMaxFeeCents);
    change.currency = routes::optional_currency(body);
    change.inspection_required = body.optional_bool("inspection_required");
    change.active = body.optional_bool("active");
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    co_return routes::answer(
        co_await service.change_permit_type(context, std::string(*request.param("code")), std::move(change)),
        permit_type_json);
  }

  routes::Reply applications_report(Request& request) {
    auto range = report::parse_range(request);
    if (!range) co_return http::problem(range.error());
    std::optional<std::string> department;
    if (auto code = request.query_param("department_code")) {
      if (auto problem = input::check_text(*code, kDepartment))
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'department_code' " + *problem));
      department = upper(*code);
    }
    auto found = service.applications_report(request.call_context(), range->start, range->end, department);
    if (!found) co_return http::problem(found.error());
    report::Table table{"permits-applications",
                        {"department_code", "status", "applications", "median_hours_to_decision"},
                        {},
                        {{"applications", found->applications},
                         {"decided", found->decided},
                         {"median_hours_to_decision", nullable(found->median_hours_to_decision)}}};
    for (const auto& row : found->rows)
      table.rows.push_back({row.department_code, row.status, row.applications, nullable(row.median_hours_to_decision)});
    co_return report::answer(request, *range, table);
  }

  routes::Reply revoke(Request& request, std::int64_t id) {
    auto body = input::Body::read(request.body, {"reason"});
    auto reason = body.required_string("reason", kReason);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    co_return routes::answer(co_await service.revoke_permit(context, id, std::move(reason)), permit_json);
  }
};

}  // namespace

void add_routes(http::Router& router, const std::string& prefix, PermitsService& service) {
  auto bind = routes::member_binder(std::make_shared<Routes>(Routes{service}));
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
  const routes::RouteTable table(router, prefix);
  const s::Json none;
  table.add(Method::post, "/applications", bind(&Routes::submit), "Submit a permit application (a verified citizen)",
            s::object({{"permit_type", s::string()},
                       {"description", s::string()},
                       {"property_address", s::string()},
                       {"department_code", s::string()}}),
            application, 201);
  table.add(Method::get, "/applications", bind(&Routes::list),
            "Applications: a citizen's own, a department's for its staff (?status= ?department_code= ?cursor= "
            "?page_size= ?include=total)",
            none, s::page_of(application));
  table.add(Method::get, "/applications/{id}", bind(&Routes::get, "no such application"), "An application", none,
            application);
  table.add(Method::post, "/applications/{id}/decision", bind(&Routes::decide, "no such application"),
            "Approve or reject (a reviewer of its department); reject needs a reason",
            s::object({{"decision", s::one_of({"approve", "reject"})}, s::optional("reason", s::string())}),
            application);
  table.add(Method::get, "/applications/{id}/inspections", bind(&Routes::list_inspections, "no such application"),
            "An application's inspections, oldest first (whoever may read the application; ?cursor= ?page_size= "
            "?include=total)",
            none, s::page_of(inspection));
  table.add(Method::post, "/inspections", bind(&Routes::schedule),
            "Schedule an inspection of an open application (an inspector)",
            s::object({{"application_id", s::integer(1)}, {"scheduled_for", s::timestamp()}}), inspection, 201);
  table.add(Method::post, "/inspections/{id}/result", bind(&Routes::record, "no such inspection"),
            "Record an inspection's result",
            s::object({{"result", s::one_of({"passed", "failed"})}, s::optional("notes", s::string())}), inspection);
  table.add(Method::get, "/permits/{id}", bind(&Routes::get_permit, "no such permit"), "A permit", none, permit);
  const auto permit_type = s::object({{"permit_type", s::string()},
                                      {"version", s::integer(1)},
                                      {"fee_cents", s::integer(0)},
                                      {"currency", s::string()},
                                      {"inspection_required", s::boolean()},
                                      {"active", s::boolean()},
                                      {"changed_at", s::timestamp()}});
  auto permit_type_version = permit_type;
  permit_type_version["properties"]["changed_by"] = s::integer_or_null();
  permit_type_version["required"].push_back("changed_by");
  auto permit_type_detail = permit_type;
  permit_type_detail["properties"]["history"] = s::array(permit_type_version);
  table.add_public(Method::get, "/permit-types", bind(&Routes::list_types),
                   "Permit types with their current fees (?all=true adds inactive ones: permits:types; ?cursor= "
                   "?page_size= ?include=total)",
                   none, s::page_of(permit_type));
  table.add_public(Method::get, "/permit-types/{code}", bind(&Routes::get_type),
                   "A permit type (with its versions for permits:types)", none, permit_type_detail);
  table.add(Method::post, "/permit-types", bind(&Routes::create_type), "Create a permit type (permits:types)",
            s::object({{"permit_type", s::string()},
                       {"fee_cents", s::integer(0)},
                       s::optional("currency", s::string()),
                       s::optional("inspection_required", s::boolean())}),
            permit_type, 201);
  table.add(Method::patch, "/permit-types/{code}", bind(&Routes::change_type),
            "Change a permit type's fee, currency, inspection rule or activity: a new version; applications keep "
            "the version they were submitted with (permits:types)",
            s::object({s::optional("fee_cents", s::integer(0)), s::optional("currency", s::string()),
                       s::optional("inspection_required", s::boolean()), s::optional("active", s::boolean())}),
            permit_type);
  table.add(Method::get, "/reports/applications", bind(&Routes::applications_report),
            "Applications submitted from ?from= to ?to= (days, UTC) by department and status, with the median hours "
            "to decision (within 1 % of the exact median plus 0.5 s: read from per-day counts of "
            "decision times in buckets); ?department_code=; a department's staff see theirs; JSON or CSV (Accept: "
            "text/csv)",
            none,
            report::report_of(s::object({{"department_code", s::string()},
                                         {"status", s::string()},
                                         {"applications", s::integer(0)},
                                         {"median_hours_to_decision", s::or_null(s::number())}}),
                              s::object({{"applications", s::integer(0)},
                                         {"decided", s::integer(0)},
                                         {"median_hours_to_decision", s::or_null(s::number())}})));
  table.add(Method::post, "/permits/{id}/revoke", bind(&Routes::revoke, "no such permit"),
            "Revoke a permit (a reviewer of its department)", s::object({{"reason", s::string()}}), permit);
}

}  // namespace townhall::permits
