#include "routes.hpp"

#include <nlohmann/json.hpp>

#include "townhall/platform/json.hpp"
#include "townhall/platform/money.hpp"
#include "townhall/platform/report.hpp"
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

json billed_tax_record_json(const BilledTaxRecord& record) {
  auto out = events::tax_record_snapshot(record);
  out["invoices"] = json::array();
  for (const auto& invoice : record.invoices) out["invoices"].push_back(invoice_json(invoice));
  return out;
}

json tax_record_json(const TaxRecordView& view) {
  auto out = billed_tax_record_json(view.record);
  if (view.national_id_included) out["national_id"] = nullable(view.national_id);
  return out;
}

// A bill's terms from a body: due_date ("YYYY-MM-DD", checked by the service) and
// instalments (1-12, default 1).
std::optional<BillTerms> bill_terms(input::Body& body, bool required) {
  auto due_date = required ? std::optional(body.required_string("due_date", {.max_bytes = 32}))
                           : body.optional_string("due_date", {.max_bytes = 32});
  auto instalments = body.optional_int("instalments", 1, kMaxInstalments);
  if (!due_date) {
    if (instalments) body.fail("instalments", "needs a due_date");
    return std::nullopt;
  }
  return BillTerms{*due_date, instalments.value_or(1)};
}

bool wants_html(const Request& request) { return request.header("Accept").find("text/html") != std::string_view::npos; }

// Text for an HTML page: every character markup gives a meaning to, escaped.
std::string html_escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// 2500, "USD" -> "25.00 USD".
std::string money_text(std::int64_t cents, const std::string& currency) {
  auto fraction = std::to_string(cents % 100);
  if (fraction.size() < 2) fraction.insert(0, "0");
  return std::to_string(cents / 100) + "." + fraction + " " + currency;
}

// The printable receipt: plain HTML, no script, no style, no external resource, so the
// server's policy (default-src 'none') holds; every value escaped.
http::Response receipt_page(const Receipt& receipt) {
  const auto& p = receipt.payment;
  const auto& i = receipt.invoice;
  std::vector<std::pair<std::string, std::string>> lines = {
      {"Receipt number", "R-" + std::to_string(p.id)},
      {"Paid on", p.completed_at.value_or("")},
      {"Payer", receipt.payer_name.value_or("citizen " + std::to_string(p.citizen_id))},
      {"For", i.description},
      {"Invoice", std::to_string(i.id)},
      {"Amount", money_text(p.amount_cents, p.currency)},
      {"Method", p.method_type},
      {"Provider reference", p.provider_reference.value_or("")},
      {"Status", p.status},
  };
  if (p.refunded_at) lines.push_back({"Refunded on", *p.refunded_at});
  std::string rows;
  for (const auto& [name, value] : lines)
    rows += "<tr><th scope=\"row\">" + html_escaped(name) + "</th><td>" + html_escaped(value) + "</td></tr>\n";
  http::Response response;
  response.content_type = "text/html; charset=utf-8";
  response.body = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Receipt R-" +
                  std::to_string(p.id) + "</title>\n</head>\n<body>\n<main>\n<h1>Payment receipt</h1>\n" +
                  "<p>Town hall revenue office</p>\n<table>\n<tbody>\n" + rows + "</tbody>\n</table>\n" +
                  "</main>\n</body>\n</html>\n";
  response.set_header("Content-Security-Policy",
                      "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  return response;
}

report::Table revenue_table(const RevenueReport& report) {
  report::Table table;
  table.name = "revenue-by-month";
  table.columns = {"month", "source", "currency", "payments", "paid_cents", "refunds", "refunded_cents", "net_cents"};
  std::map<std::string, json> totals;  // by currency
  auto total_of = [&](const std::string& currency) -> json& {
    auto [it, added] = totals.try_emplace(currency, json::object());
    if (added)
      it->second = {{"currency", currency}, {"paid_cents", 0},        {"refunded_cents", 0},
                    {"net_cents", 0},       {"outstanding_cents", 0}, {"outstanding_invoices", 0},
                    {"overdue_cents", 0},   {"overdue_invoices", 0}};
    return it->second;
  };
  for (const auto& row : report.months) {
    auto net = row.paid_cents - row.refunded_cents;
    table.rows.push_back(
        {row.month, row.source, row.currency, row.payments, row.paid_cents, row.refunds, row.refunded_cents, net});
    auto& total = total_of(row.currency);
    total["paid_cents"] = total["paid_cents"].get<std::int64_t>() + row.paid_cents;
    total["refunded_cents"] = total["refunded_cents"].get<std::int64_t>() + row.refunded_cents;
    total["net_cents"] = total["net_cents"].get<std::int64_t>() + net;
  }
  for (const auto& owed : report.outstanding) {
    auto& total = total_of(owed.currency);
    total["outstanding_cents"] = owed.amount_cents;
    total["outstanding_invoices"] = owed.invoices;
    total["overdue_cents"] = owed.overdue_cents;
    total["overdue_invoices"] = owed.overdue_invoices;
  }
  table.totals = {{"currencies", json::array()}};
  for (auto& [currency, total] : totals) table.totals["currencies"].push_back(std::move(total));
  return table;
}

struct Routes {
  RevenueService& service;

  routes::Reply list_invoices(Request& request, input::Page page) {
    store::InvoiceFilter filter;
    auto status = input::query_choice(request, "status", {"open", "overdue", "paid", "voided", "refunded"});
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
    if (!outcome->invoice) {  // a replay: the invoice was not read on the way
      auto invoice = service.get_invoice(context, outcome->payment.invoice_id);
      if (!invoice) co_return http::problem(invoice.error());
      outcome->invoice = std::move(*invoice);
    }
    auto shown = payment_json(outcome->payment, *outcome->invoice);
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
    auto body = input::Body::read(
        request.body, {"citizen_id", "tax_year", "assessed_value_cents", "tax_due_cents", "due_date", "instalments"});
    NewTaxRecord record;
    record.citizen_id = body.required_int("citizen_id", 1, kMaxId);
    record.tax_year = body.required_int("tax_year", 1900, 2200);
    record.assessed_value_cents = body.required_int("assessed_value_cents", 0, money::kMaxMinorUnits);
    record.tax_due_cents = body.required_int("tax_due_cents", 0, money::kMaxMinorUnits);
    record.bill = bill_terms(body, false);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto created = co_await service.record_tax(request.call_context(), std::move(record));
    co_return routes::created(request, created, billed_tax_record_json);
  }

  routes::Reply bill_taxes(Request& request) {
    auto body =
        input::Body::read(request.body, {"tax_year", "tax_record_ids", "citizen_ids", "due_date", "instalments"});
    TaxBillRun run;
    run.tax_year = body.required_int("tax_year", 1900, 2200);
    run.tax_record_ids = body.optional_id_array("tax_record_ids", kMaxTaxBillRun).value_or(std::vector<std::int64_t>{});
    run.citizen_ids = body.optional_id_array("citizen_ids", kMaxTaxBillRun).value_or(std::vector<std::int64_t>{});
    if (auto terms = bill_terms(body, true)) run.terms = std::move(*terms);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto tax_year = run.tax_year;
    auto outcome = co_await service.bill_taxes(request.call_context(), std::move(run));
    co_return routes::answer(outcome, [&](const TaxBillRunOutcome& o) {
      json billed = json::array();
      for (const auto& record : o.billed) billed.push_back(billed_tax_record_json(record));
      return json{{"tax_year", tax_year},
                  {"billed", billed},
                  {"already_billed", o.already_billed},
                  {"nothing_due", o.nothing_due},
                  {"not_found", o.not_found}};
    });
  }

  routes::Reply refund_payment(Request& request, std::int64_t payment_id) {
    auto body = input::Body::read(request.body, {"reason"});
    auto reason = body.required_string("reason", kReason);
    if (auto ok = body.status(); !ok) co_return http::problem(ok.error());
    auto context = request.call_context();
    auto refunded = co_await service.refund_payment(context, payment_id, std::move(reason));
    if (!refunded) co_return http::problem(refunded.error());
    auto invoice = service.get_invoice(context, refunded->invoice_id);
    if (!invoice) co_return http::problem(invoice.error());
    // 202 while the provider has not confirmed the refund yet (the reconciler finishes it).
    co_return json_body(refunded->status == "refunded" ? 200 : 202, payment_json(*refunded, *invoice));
  }

  routes::Reply receipt(Request& request, std::int64_t payment_id) {
    auto found = service.receipt(request.call_context(), payment_id);
    if (!found) co_return http::problem(found.error());
    if (wants_html(request)) co_return receipt_page(*found);
    co_return json_body(200, receipt_json(*found));
  }

  routes::Reply revenue_report(Request& request) {
    auto range = report::parse_range(request);
    if (!range) co_return http::problem(range.error());
    auto found = service.revenue_report(request.call_context(), range->start, range->end);
    if (!found) co_return http::problem(found.error());
    co_return report::answer(request, *range, revenue_table(*found));
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
      {"status", s::one_of({"open", "overdue", "paid", "voided", "refunded"})},
      {"due_date", s::string_or_null()},
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
                                     {"invoices", s::array(invoice)},
                                     // Only with ?include=national_id (audited in auth).
                                     s::optional("national_id", s::string_or_null())});
  const auto receipt =
      s::object({{"receipt_number", s::string()},
                 {"payment_id", s::integer(1)},
                 {"invoice_id", s::integer(1)},
                 {"citizen_id", s::integer(1)},
                 {"payer_name", s::string_or_null()},
                 {"description", s::string()},
                 {"source", s::object({{"module", s::string()}, {"type", s::string()}, {"id", s::string()}})},
                 {"amount_cents", s::integer(1)},
                 {"currency", s::string()},
                 {"method", s::object({{"type", s::one_of({"card"})}})},
                 {"provider_reference", s::string_or_null()},
                 {"status", s::one_of({"completed", "refund_pending", "refunded"})},
                 {"paid_at", s::timestamp()},
                 {"refunded_at", s::timestamp_or_null()}});
  const auto revenue_row = s::object({{"month", s::string()},
                                      {"source", s::string()},
                                      {"currency", s::string()},
                                      {"payments", s::integer(0)},
                                      {"paid_cents", s::integer(0)},
                                      {"refunds", s::integer(0)},
                                      {"refunded_cents", s::integer(0)},
                                      {"net_cents", s::integer()}});
  const auto revenue_totals = s::object({{"currencies", s::array(s::object({{"currency", s::string()},
                                                                            {"paid_cents", s::integer(0)},
                                                                            {"refunded_cents", s::integer(0)},
                                                                            {"net_cents", s::integer()},
                                                                            {"outstanding_cents", s::integer(0)},
                                                                            {"outstanding_invoices", s::integer(0)},
                                                                            {"overdue_cents", s::integer(0)},
                                                                            {"overdue_invoices", s::integer(0)}}))}});
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
  table.add(Method::post, "/payments/{id}/refund", bind(&Routes::refund_payment, "no such payment"),
            "Refund a completed payment in full (a revenue clerk, revenue:manage; the reason is kept): 200 refunded, "
            "202 while the provider confirms it; 409 for a payment not completed, or one of a parks place (cancel "
            "the place in parks)",
            s::object({{"reason", s::string()}}), payment);
  table.add(Method::get, "/payments/{id}/receipt", bind(&Routes::receipt, "no such payment"),
            "The receipt of a completed payment (its payer, revenue staff): JSON, or a printable page with Accept: "
            "text/html; 409 while the payment has not completed",
            none, receipt);
  table.add(Method::post, "/tax-records", bind(&Routes::record_tax),
            "Record a property tax assessment (revenue staff); with due_date (YYYY-MM-DD, not past) its tax due is "
            "billed at once as 1-12 monthly instalments (invoices summing to it exactly)",
            s::object({{"citizen_id", s::integer(1)},
                       {"tax_year", s::integer(1900)},
                       {"assessed_value_cents", s::integer(0)},
                       {"tax_due_cents", s::integer(0)},
                       s::optional("due_date", s::string()),
                       s::optional("instalments", s::integer(1))}),
            tax_record, 201);
  table.add(Method::post, "/tax-bills", bind(&Routes::bill_taxes),
            "The yearly tax bill run (revenue staff): bills the year's records of the citizens or records named (at "
            "most 500), each once; a record billed before is listed in already_billed",
            s::object({{"tax_year", s::integer(1900)},
                       s::optional("tax_record_ids", s::array(s::integer(1))),
                       s::optional("citizen_ids", s::array(s::integer(1))),
                       {"due_date", s::string()},
                       s::optional("instalments", s::integer(1))}),
            s::object({{"tax_year", s::integer(1900)},
                       {"billed", s::array(tax_record)},
                       {"already_billed", s::array(s::integer(1))},
                       {"nothing_due", s::array(s::integer(1))},
                       {"not_found", s::array(s::integer(1))}}));
  table.add(Method::get, "/reports/revenue", bind(&Routes::revenue_report),
            "Revenue by month and source (revenue staff): completed payments minus refunds in ?from=&to= "
            "(YYYY-MM-DD, at most 3660 days), and the outstanding balance of open and overdue invoices now; CSV with "
            "Accept: text/csv",
            none, report::report_of(revenue_row, revenue_totals));
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
