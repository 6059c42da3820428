#include "routes.hpp"

#include <nlohmann/json.hpp>

#include "townhall/platform/json.hpp"
#include "townhall/platform/money.hpp"
#include "townhall/platform/schema.hpp"

namespace townhall::revenue {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using http::Request;
using http::Response;

constexpr std::int64_t kMaxId = std::numeric_limits<std::int64_t>::max();
constexpr input::TextLimits kName{.max_bytes = 200};
constexpr input::TextLimits kActivity{.max_bytes = 500, .min_chars = 1, .multiline = true};
constexpr input::TextLimits kReason{.max_bytes = 1000, .min_chars = 1, .multiline = true};

// An Idempotency-Key is the client's: 1-255 visible ASCII characters (a UUID fits).
Result<std::string> idempotency_key(const Request& request) {
  auto key = request.header("Idempotency-Key");
  if (key.empty())
    return make_error(Errc::invalid_argument,
                      "the Idempotency-Key header is required: a fresh unique value (e.g. a UUID) per payment; "
                      "repeat it to retry the same payment safely");
  if (key.size() > 255)
    return make_error(Errc::invalid_argument, "the Idempotency-Key header is at most 255 characters");
  for (char c : key)
    if (c <= 0x20 || c >= 0x7F)
      return make_error(Errc::invalid_argument, "the Idempotency-Key header must be visible ASCII characters");
  return std::string(key);
}

json tax_record_json(const TaxRecordView& view) {
  const auto& r = view.record;
  json out = {{"id", r.id},
              {"citizen_id", r.citizen_id},
              {"tax_year", r.tax_year},
              {"assessed_value_cents", r.assessed_value_cents},
              {"tax_due_cents", r.tax_due_cents},
              {"currency", r.currency},
              {"created_at", r.created_at}};
  if (view.national_id_included) out["national_id"] = nullable(view.national_id);
  return out;
}

struct Routes {
  RevenueService& service;

  asio::awaitable<Response> list_invoices(Request& request) {
    auto page = input::parse_page(request);
    if (!page) co_return http::problem(page.error());
    store::InvoiceFilter filter;
    if (auto status = request.query_param("status")) {
      if (*status != "open" && *status != "paid" && *status != "voided" && *status != "refunded")
        co_return http::problem(
            make_error(Errc::invalid_argument, "query parameter 'status' must be open, paid, voided or refunded"));
      filter.status = *status;
    }
    if (auto citizen = request.query_param("citizen_id")) {
      auto id = input::parse_id(*citizen);
      if (!id)
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'citizen_id' must be an id"));
      filter.citizen_id = *id;
    }
    auto list = service.list_invoices(request.call_context(), filter, *page);
    if (!list) co_return http::problem(list.error());
    co_return json_body(200, listed_json(*list, invoice_json));
  }

  asio::awaitable<Response> get_invoice(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such invoice"));
    auto context = request.call_context();
    auto invoice = service.get_invoice(context, *id);
    if (!invoice) co_return http::problem(invoice.error());
    auto payments = service.payments_of(context, *id);
    if (!payments) co_return http::problem(payments.error());
    auto body = invoice_json(*invoice);
    body["payments"] = json::array();
    for (const auto& payment : *payments) body["payments"].push_back(payment_json(payment, *invoice));
    co_return json_body(200, body);
  }

  asio::awaitable<Response> pay(Request& request) {
    auto key = idempotency_key(request);
    if (!key) co_return http::problem(key.error());
    auto body = input::Body::parse(request.body, {"invoice_id", "amount_cents", "currency", "method"});
    if (!body) co_return http::problem(body.error());
    PaymentRequest payment;
    payment.invoice_id = body->required_int("invoice_id", 1, kMaxId);
    payment.amount_cents = body->required_int("amount_cents", 1, money::kMaxMinorUnits);
    payment.currency = body->optional_string("currency", {.max_bytes = 3});
    if (payment.currency && !money::is_iso4217(*payment.currency))
      body->fail("currency", "must be an ISO 4217 code such as \"USD\"");
    auto method = body->required_object("method", {"type", "token"});
    payment.method_type = method.required_string("type", {.max_bytes = 16});
    payment.token = method.required_string("token", {.max_bytes = 128});
    if (body->status() && payment.method_type != "card") method.fail("type", "must be \"card\"");
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto outcome = co_await service.pay(context, std::move(payment), std::move(*key));
    if (!outcome) co_return http::problem(outcome.error());
    auto invoice = service.get_invoice(context, outcome->payment.invoice_id);
    if (!invoice) co_return http::problem(invoice.error());
    auto shown = payment_json(outcome->payment, *invoice);
    Response response;
    if (outcome->payment.status == "failed") {
      // A declined card is the payment's answer, not a fault: 402 with the payment.
      response = json_body(402, {{"type", "/problems/payment-failed"},
                                 {"title", "Payment failed"},
                                 {"status", 402},
                                 {"detail", outcome->payment.failure_reason.value_or("declined")},
                                 {"payment", shown}});
      response.content_type = "application/problem+json";
    } else {
      // Pending: the provider's answer is not known yet; the same key tells it later.
      response = json_body(outcome->payment.status == "pending" ? 202 : 201, shown);
      response.set_header("Location", "/api/v1/revenue/invoices/" + std::to_string(outcome->payment.invoice_id));
    }
    if (outcome->replayed) response.set_header("Idempotent-Replayed", "true");
    co_return response;
  }

  asio::awaitable<Response> record_tax(Request& request) {
    auto body = input::Body::parse(request.body, {"citizen_id", "tax_year", "assessed_value_cents", "tax_due_cents"});
    if (!body) co_return http::problem(body.error());
    NewTaxRecord record;
    record.citizen_id = body->required_int("citizen_id", 1, kMaxId);
    record.tax_year = body->required_int("tax_year", 1900, 2200);
    record.assessed_value_cents = body->required_int("assessed_value_cents", 0, money::kMaxMinorUnits);
    record.tax_due_cents = body->required_int("tax_due_cents", 0, money::kMaxMinorUnits);
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto created = co_await service.record_tax(request.call_context(), record);
    if (!created) co_return http::problem(created.error());
    auto response = json_body(201, tax_record_json({*created, std::nullopt, false}));
    response.set_header("Location", request.path + "/" + std::to_string(created->id));
    co_return response;
  }

  asio::awaitable<Response> get_tax_record(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such tax record"));
    bool include_national_id = false;
    if (auto include = request.query_param("include")) {
      if (*include != "national_id")
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'include' may be national_id"));
      include_national_id = true;
    }
    auto view = co_await service.get_tax_record(request.call_context(), *id, include_national_id);
    if (!view) co_return http::problem(view.error());
    co_return json_body(200, tax_record_json(*view));
  }

  asio::awaitable<Response> apply_for_license(Request& request) {
    auto body = input::Body::parse(request.body, {"business_name", "activity", "address"});
    if (!body) co_return http::problem(body.error());
    NewLicense license;
    license.business_name = body->required_string("business_name", kName);
    license.activity = body->required_string("activity", kActivity);
    license.address = body->required_string("address", kName);
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto created = co_await service.apply_for_license(request.call_context(), std::move(license));
    if (!created) co_return http::problem(created.error());
    auto response = json_body(201, license_json(*created));
    response.set_header("Location", request.path + "/" + std::to_string(created->id));
    co_return response;
  }

  asio::awaitable<Response> list_licenses(Request& request) {
    auto page = input::parse_page(request);
    if (!page) co_return http::problem(page.error());
    auto list = service.list_licenses(request.call_context(), *page);
    if (!list) co_return http::problem(list.error());
    co_return json_body(200, listed_json(*list, license_json));
  }

  asio::awaitable<Response> get_license(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such business license"));
    auto license = service.get_license(request.call_context(), *id);
    if (!license) co_return http::problem(license.error());
    co_return json_body(200, license_json(*license));
  }

  asio::awaitable<Response> decide_license(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such business license"));
    auto body = input::Body::parse(request.body, {"decision", "reason"});
    if (!body) co_return http::problem(body.error());
    auto decision = body->required_string("decision", {.max_bytes = 16});
    auto reason = body->optional_string("reason", kReason);
    if (body->status() && decision != "approve" && decision != "reject")
      body->fail("decision", "must be \"approve\" or \"reject\"");
    if (body->status() && decision == "reject" && !reason) body->fail("reason", "is required to reject");
    if (auto ok = body->status(); !ok) co_return http::problem(ok.error());
    auto decided = co_await service.decide_license(
        request.call_context(), *id, decision == "approve" ? Decision::approve : Decision::reject, std::move(reason));
    if (!decided) co_return http::problem(decided.error());
    co_return json_body(200, license_json(*decided));
  }

  asio::awaitable<Response> renew_license(Request& request) {
    auto id = input::parse_id(*request.param("id"));
    if (!id) co_return http::problem(make_error(Errc::not_found, "no such business license"));
    if (!request.body.empty() && request.body != "{}")
      co_return http::problem(make_error(Errc::invalid_argument, "a renewal takes no body"));
    auto renewed = co_await service.renew_license(request.call_context(), *id);
    if (!renewed) co_return http::problem(renewed.error());
    co_return json_body(200, license_json(*renewed));
  }

  asio::awaitable<Response> expire_licenses(Request& request) {
    auto sweep = co_await service.expire_licenses(request.call_context());
    if (!sweep) co_return http::problem(sweep.error());
    co_return json_body(200, {{"expired", sweep->expired}, {"lapsed", sweep->lapsed}});
  }
};

// What /openapi.json says of each route (issue 13, item 5); AuthorizationMatrix checks
// every success answer against it.
void document_routes(http::Router& router, const std::string& prefix) {
  using http::Method;
  namespace s = schema;
  std::vector<s::Field> invoice_fields = {
      {"id", s::integer(1)},
      {"citizen_id", s::integer(1)},
      {"source", s::object({{"module", s::string()}, {"type", s::string()}, {"id", s::string()}})},
      {"description", s::string()},
      {"amount_cents", s::integer(0)},
      {"balance_cents", s::integer(0)},
      {"currency", s::string()},
      {"status", s::one_of({"open", "paid", "voided", "refunded"})},
      {"created_at", s::timestamp()},
      {"updated_at", s::timestamp()},
      {"paid_at", s::timestamp_or_null()},
      {"closed_at", s::timestamp_or_null()}};
  const auto invoice = s::object(invoice_fields);
  const auto payment =
      s::object({{"id", s::integer(1)},
                 {"invoice_id", s::integer(1)},
                 {"citizen_id", s::integer(1)},
                 {"amount_cents", s::integer(1)},
                 {"currency", s::string()},
                 {"method", s::object({{"type", s::one_of({"card"})}})},
                 {"status", s::one_of({"pending", "completed", "failed", "refund_pending", "refunded"})},
                 {"failure_reason", s::string_or_null()},
                 {"provider_reference", s::string_or_null()},
                 {"source_module", s::string()},
                 {"source_type", s::string()},
                 {"source_id", s::string()},
                 {"created_at", s::timestamp()},
                 {"completed_at", s::timestamp_or_null()},
                 {"refunded_at", s::timestamp_or_null()}});
  invoice_fields.push_back({"payments", s::array(payment)});
  const auto invoice_with_payments = s::object(invoice_fields);
  const auto tax_record = s::object({{"id", s::integer(1)},
                                     {"citizen_id", s::integer(1)},
                                     {"tax_year", s::integer(1900)},
                                     {"assessed_value_cents", s::integer(0)},
                                     {"tax_due_cents", s::integer(0)},
                                     {"currency", s::string()},
                                     {"created_at", s::timestamp()},
                                     // Only with ?include=national_id (audited in auth).
                                     s::optional("national_id", s::string_or_null())});
  const auto license =
      s::object({{"id", s::integer(1)},
                 {"citizen_id", s::integer(1)},
                 {"business_name", s::string()},
                 {"activity", s::string()},
                 {"address", s::string()},
                 {"status", s::one_of({"applied", "approved_unpaid", "active", "rejected", "expired", "lapsed"})},
                 {"term", s::integer(0)},
                 {"expires_at", s::timestamp_or_null()},
                 {"fee_invoice_id", s::integer_or_null()},
                 {"fee_due_at", s::timestamp_or_null()},
                 {"renewal_invoice_id", s::integer_or_null()},
                 {"decision_reason", s::string_or_null()},
                 {"created_at", s::timestamp()},
                 {"updated_at", s::timestamp()}});
  const s::RouteDocs doc(router, prefix);
  const s::Json none;
  doc(Method::get, "/invoices", "Invoices: a citizen's own, all for revenue staff (?status= ?page= ?page_size=)", none,
      s::page_of(invoice));
  doc(Method::get, "/invoices/{id}", "An invoice with its payments", none, invoice_with_payments);
  doc(Method::post, "/payments",
      "Pay an invoice (its citizen; Idempotency-Key header required): 201 completed, 202 pending, 402 declined "
      "(problem+json carrying the payment)",
      s::object({{"invoice_id", s::integer(1)},
                 {"amount_cents", s::integer(1)},
                 s::optional("currency", s::string()),
                 {"method", s::object({{"type", s::one_of({"card"})}, {"token", s::string()}})}}),
      payment, 201);
  doc(Method::post, "/tax-records", "Record a property tax assessment (revenue staff)",
      s::object({{"citizen_id", s::integer(1)},
                 {"tax_year", s::integer(1900)},
                 {"assessed_value_cents", s::integer(0)},
                 {"tax_due_cents", s::integer(0)}}),
      tax_record, 201);
  doc(Method::get, "/tax-records/{id}", "A tax record (?include=national_id: revenue staff, audited)", none,
      tax_record);
  doc(Method::post, "/business-licenses", "Apply for a business license (a citizen)",
      s::object({{"business_name", s::string()}, {"activity", s::string()}, {"address", s::string()}}), license, 201);
  doc(Method::get, "/business-licenses", "Business licenses: a citizen's own, all for revenue staff", none,
      s::page_of(license));
  doc(Method::get, "/business-licenses/{id}", "A business license", none, license);
  doc(Method::post, "/business-licenses/{id}/decision",
      "Approve or reject (revenue staff); reject needs a reason. Approval invoices the fee (approved_unpaid until "
      "fee_due_at); paying it activates the license",
      s::object({{"decision", s::one_of({"approve", "reject"})}, s::optional("reason", s::string())}), license);
  doc(Method::post, "/business-licenses/{id}/renew",
      "Renew an active or expired license whose current term is paid: invoices the next term's fee (no body)",
      s::object({}), license);
  doc(Method::post, "/business-licenses/expire",
      "Run the daily license job now (revenue staff): expire active licenses past their expiry, lapse approved ones "
      "unpaid past fee_due_at",
      s::object({}), s::object({{"expired", s::integer(0)}, {"lapsed", s::integer(0)}}));
}

}  // namespace

void add_routes(http::Router& router, const std::string& prefix, RevenueService& service) {
  auto routes = std::make_shared<Routes>(Routes{service});
  auto bind = [routes](asio::awaitable<Response> (Routes::*method)(Request&)) {
    return [routes, method](Request& request) { return ((*routes).*method)(request); };
  };
  using http::Method;
  router.add(Method::get, prefix + "/invoices", bind(&Routes::list_invoices));
  router.add(Method::get, prefix + "/invoices/{id}", bind(&Routes::get_invoice));
  router.add(Method::post, prefix + "/payments", bind(&Routes::pay));
  router.add(Method::post, prefix + "/tax-records", bind(&Routes::record_tax));
  router.add(Method::get, prefix + "/tax-records/{id}", bind(&Routes::get_tax_record));
  router.add(Method::post, prefix + "/business-licenses", bind(&Routes::apply_for_license));
  router.add(Method::get, prefix + "/business-licenses", bind(&Routes::list_licenses));
  router.add(Method::get, prefix + "/business-licenses/{id}", bind(&Routes::get_license));
  router.add(Method::post, prefix + "/business-licenses/{id}/decision", bind(&Routes::decide_license));
  router.add(Method::post, prefix + "/business-licenses/{id}/renew", bind(&Routes::renew_license));
  router.add(Method::post, prefix + "/business-licenses/expire", bind(&Routes::expire_licenses));
  document_routes(router, prefix);
}

}  // namespace townhall::revenue
