// What revenue tells about money received: a payment's receipt, and the revenue report
// (money by month and source, net of refunds, and what is still owed).
#include <map>
#include <tuple>

#include "service_internal.hpp"

namespace townhall::revenue {

namespace {

// What an invoice's source is, as a finance officer names it.
std::string source_label(const std::string& module, const std::string& type) {
  if (module == "permits" && type == "application") return "permit_fee";
  if (module == "revenue" && type == "business_license") return "license_fee";
  if (module == "revenue" && type == "tax_record") return "property_tax";
  if (module == "parks" && (type == "booking" || type == "enrollment")) return type;
  return module + "." + type;
}

}  // namespace

Result<Receipt> RevenueService::receipt(const CallContext& context, std::int64_t payment_id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<Receipt> {
    // Another citizen's payment is no such payment: nothing tells that it exists.
    auto payment = store::find_payment(reader, payment_id, *scope);
    if (!payment) return make_error(Errc::not_found, "no such payment");
    if (!payment->completed_at)
      return make_error(Errc::conflict, "payment " + std::to_string(payment_id) + " is " + payment->status +
                                            "; a receipt is issued once a payment completes");
    auto invoice = store::find_invoice(reader, payment->invoice_id, store::Scope::everything());
    if (!invoice)
      return make_error(Errc::internal, "the invoice of payment " + std::to_string(payment_id) + " is gone");
    auto payer = store::find_citizen_ref(reader, payment->citizen_id);
    return Receipt{*payment, *invoice, payer ? payer->name : std::nullopt};
  });
}

Result<RevenueReport> RevenueService::revenue_report(const CallContext& context, const std::string& start,
                                                     const std::string& end) {
  const auto* principal = context.principal.get();
  if (!principal || principal->is_citizen() || !principal->has("revenue:read"))
    return forbidden("needs permission revenue:read");
  if (auto ok = usable(); !ok) return ok.error();
  // start and end are midnights (report::Range): their days bound revenue_days.
  const auto first_day = start.substr(0, 10), end_day = end.substr(0, 10);
  return deps_.readers.read([&](db::Connection& reader) -> Result<RevenueReport> {
    // One row per month, source and currency: payments received and refunds made in it,
    // summed from the days (migration 0009).
    std::map<std::tuple<std::string, std::string, std::string>, RevenueByMonth> rows;
    for (const auto& money : store::money_by_day(reader, first_day, end_day)) {
      auto source = source_label(money.source_module, money.source_type);
      auto month = money.day.substr(0, 7);
      auto& row = rows[{month, source, money.currency}];
      row.month = month;
      row.source = source;
      row.currency = money.currency;
      row.payments += money.payments;
      row.paid_cents += money.paid_cents;
      row.refunds += money.refunds;
      row.refunded_cents += money.refunded_cents;
    }
    RevenueReport report;
    for (auto& [key, row] : rows) report.months.push_back(std::move(row));
    report.outstanding = store::outstanding(reader);
    return report;
  });
}

}  // namespace townhall::revenue
