#include "routes.hpp"

#include <nlohmann/json.hpp>

#include "townhall/platform/json.hpp"
#include "townhall/platform/money.hpp"
#include "townhall/platform/routes.hpp"
#include "townhall/platform/schema.hpp"

namespace townhall::revenue {
namespace {

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
  auto out = events::tax_record_snapshot(view.record);
  if (view.national_id_included) out["national_id"] = nullable(view.national_id);
  return out;
}

struct Routes {
  RevenueService& service;

  routes::Reply list_invoices(Request& request, input::Page page) {
    store::InvoiceFilter filter;
    auto status = input::query_choice(request, "status", {"open", "paid", "voided", "refunded"});
    if (!status) co_return http::problem(status.error());
    filter.status = *status;
    auto citizen = input::query_id(request, "citizen_id");
    if (!citizen) co_return http::problem(citizen.error());
    filter.citizen_id = *citizen;
    co_return routes::answer_page(service.list_invoices(request.call_context(), filter, page), invoice_json);
  }

  routes::Reply get_invoice(Request& request, std::int64_t id) {
    auto context = request.call_context();
    auto invoice = service.get_invoice(context, id);
    if (!invoice) co_return http::problem(invoice.error());
    auto payments = service.payments_of(context, id);
    if (!payments) co_return http::problem(payments.error());
    auto body = invoice_json(*invoice);
    body["payments"] = json::array();
    for (const auto& payment : *payments) body["payments"].push_back(payment_json(payment, *invoice));
    co_return json_body(200, body);
  }

  routes::Reply pay(Request& request) {
    auto key = idempotency_key(request);
    if (!key) co_return http::problem(key.error());
    auto body = input::Body::read(request.body, {"invoice_id", "amount_cents", "currency", "method"});
    PaymentRequest payment;
    payment.invoice_id = body.required_int("invoice_id", 1, kMaxId);
    payment.amount_cents = body.required_int("amount_cents", 1, money::kMaxMinorUnits);
    payment.currency = routes::optional_currency(body);
    auto method = body.required_object("method", {"type", "token"});
    payment.method_type = method.required_string("type", {.max_bytes = 16});
    payment.token = method.required_string("token", {.max_bytes = 128});
    if (body.status() && payment.method_type != "card") method.fail("type", "must be \"card\"");
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
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

  routes::Reply record_tax(Request& request) {
    auto body = input::Body::read(request.body, {"citizen_id", "tax_year", "assessed_value_cents", "tax_due_cents"});
    NewTaxRecord record;
    record.citizen_id = body.required_int("citizen_id", 1, kMaxId);
    record.tax_year = body.required_int("tax_year", 1900, 2200);
    record.assessed_value_cents = body.required_int("assessed_value_cents", 0, money::kMaxMinorUnits);
    record.tax_due_cents = body.required_int("tax_due_cents", 0, money::kMaxMinorUnits);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto created = co_await service.record_tax(request.call_context(), record);
    co_return routes::created(request, created, [](const store::TaxRecord& r) {
      return tax_record_json({r, std::nullopt, false});
    });
  }

  routes::Reply get_tax_record(Request& request, std::int64_t id) {
    bool include_national_id = false;
    if (auto include = request.query_param("include")) {
      if (*include != "national_id")
        co_return http::problem(make_error(Errc::invalid_argument, "query parameter 'include' may be national_id"));
      include_national_id = true;
    }
    auto view = co_await service.get_tax_record(request.call_context(), id, include_national_id);
    co_return routes::answer(view, tax_record_json);
  }

  routes::Reply apply_for_license(Request& request) {
    auto body = input::Body::read(request.body, {"business_name", "activity", "address"});
    NewLicense license;
    license.business_name = body.required_string("business_name", kName);
    license.activity = body.required_string("activity", kActivity);
    license.address = body.required_string("address", kName);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto created = co_await service.apply_for_license(request.call_context(), std::move(license));
    co_return routes::created(request, created, license_json);
  }

  routes::Reply list_licenses(Request& request, input::Page page) {
    co_return routes::answer_page(service.list_licenses(request.call_context(), page), license_json);
  }

  routes::Reply get_license(Request& request, std::int64_t id) {
    co_return routes::answer(service.get_license(request.call_context(), id), license_json);
  }

  routes::Reply decide_license(Request& request, std::int64_t id) {
    auto decision = input::parse_decision(request.body, kReason);
    if (!decision) co_return http::problem(decision.error());
    auto decided = co_await service.decide_license(request.call_context(), id,
                                                   decision->approve ? Decision::approve : Decision::reject,
                                                   std::move(decision->reason));
    co_return routes::answer(decided, license_json);
  }

  routes::Reply renew_license(Request& request, std::int64_t id) {
    if (auto empty = input::no_body(request, "a renewal"); !empty) co_return http::problem(empty.error());
    co_return routes::answer(co_await service.renew_license(request.call_context(), id), license_json);
  }

  routes::Reply expire_licenses(Request& request) {
    auto sweep = co_await service.expire_licenses(request.call_context());
    if (!sweep) co_return http::problem(sweep.error());
    co_return json_body(200, {{"expired", sweep->expired}, {"lapsed", sweep->lapsed}});
  }
};

}  // namespace

void add_routes(http::Router& router, const std::string& prefix, RevenueService& service) {
  auto bind = routes::member_binder(std::make_shared<Routes>(Routes{service}));
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
  const routes::RouteTable table(router, prefix);
  const s::Json none;
  table.add(Method::get, "/invoices", bind(&Routes::list_invoices),
            "Invoices: a citizen's own, all for revenue staff (?status= ?cursor= ?page_size= ?include=total)", none,
            s::page_of(invoice));
  table.add(Method::get, "/invoices/{id}", bind(&Routes::get_invoice, "no such invoice"),
            "An invoice with its payments", none, invoice_with_payments);
  table.add(Method::post, "/payments", bind(&Routes::pay),
            "Pay an invoice (its citizen; Idempotency-Key header required): 201 completed, 202 pending, 402 declined "
            "(problem+json carrying the payment)",
            s::object({{"invoice_id", s::integer(1)},
                       {"amount_cents", s::integer(1)},
                       s::optional("currency", s::string()),
                       {"method", s::object({{"type", s::one_of({"card"})}, {"token", s::string()}})}}),
            payment, 201);
  table.add(Method::post, "/tax-records", bind(&Routes::record_tax), "Record a property tax assessment (revenue staff)",
            s::object({{"citizen_id", s::integer(1)},
                       {"tax_year", s::integer(1900)},
                       {"assessed_value_cents", s::integer(0)},
                       {"tax_due_cents", s::integer(0)}}),
            tax_record, 201);
  table.add(Method::get, "/tax-records/{id}", bind(&Routes::get_tax_record, "no such tax record"),
            "A tax record (?include=national_id: revenue staff, audited)", none, tax_record);
  table.add(
      Method::post, "/business-licenses", bind(&Routes::apply_for_license), "Apply for a business license (a citizen)",
      s::object({{"business_name", s::string()}, {"activity", s::string()}, {"address", s::string()}}), license, 201);
  table.add(Method::get, "/business-licenses", bind(&Routes::list_licenses),
            "Business licenses: a citizen's own, all for revenue staff", none, s::page_of(license));
  table.add(Method::get, "/business-licenses/{id}", bind(&Routes::get_license, "no such business license"),
            "A business license", none, license);
  table.add(
      Method::post, "/business-licenses/{id}/decision", bind(&Routes::decide_license, "no such business license"),
      "Approve or reject (revenue staff); reject needs a reason. Approval invoices the fee (approved_unpaid until "
      "fee_due_at); paying it activates the license",
      s::object({{"decision", s::one_of({"approve", "reject"})}, s::optional("reason", s::string())}), license);
  table.add(Method::post, "/business-licenses/{id}/renew", bind(&Routes::renew_license, "no such business license"),
            "Renew an active or expired license whose current term is paid: invoices the next term's fee (no body)",
            s::object({}), license);
  table.add(
      Method::post, "/business-licenses/expire", bind(&Routes::expire_licenses),
      "Run the daily license job now (revenue staff): expire active licenses past their expiry, lapse approved ones "
      "unpaid past fee_due_at",
      s::object({}), s::object({{"expired", s::integer(0)}, {"lapsed", s::integer(0)}}));
}

}  // namespace townhall::revenue
