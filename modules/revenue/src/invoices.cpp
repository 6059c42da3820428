#include <spdlog/spdlog.h>

#include "service_internal.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::revenue {

namespace asio = boost::asio;

std::optional<store::Invoice> open_invoice(db::Connection& service, const Source& source, std::int64_t citizen_id,
                                           std::int64_t amount_cents, const std::string& currency,
                                           std::string description, const std::string& correlation,
                                           const std::string& causation, const InvoiceLink& link) {
  store::Invoice invoice;
  invoice.citizen_id = citizen_id;
  invoice.source_module = source.module;
  invoice.source_type = source.type;
  invoice.source_id = source.id;
  invoice.description = std::move(description);
  invoice.amount_cents = amount_cents;
  invoice.currency = currency;
  invoice.status = "open";
  invoice.due_date = link.due_date;
  invoice.tax_record_id = link.tax_record_id;
  invoice.created_at = invoice.updated_at = utc::now();
  if (!store::insert_invoice(service, invoice)) return std::nullopt;
  append(service, events::kInvoiceTopic, events::kInvoiceCreated, "invoice", invoice.id, 1, invoice_json(invoice),
         correlation, causation);
  spdlog::info("revenue: invoice {} opened for {} {} {} ({} {})", invoice.id, source.module, source.type, source.id,
               amount_cents, currency);
  return invoice;
}

void save_invoice(db::Connection& service, store::Invoice& invoice, const std::string& now) {
  invoice.updated_at = now;
  invoice.event_version += 1;
  store::update_invoice(service, invoice);
}

void void_invoice(db::Connection& service, store::Invoice& invoice, const std::string& now,
                  const std::string& correlation, const std::string& causation) {
  invoice.status = "voided";
  invoice.closed_at = now;
  save_invoice(service, invoice, now);
  append(service, events::kInvoiceTopic, events::kInvoiceVoided, "invoice", invoice.id, invoice.event_version,
         invoice_json(invoice), correlation, causation);
}

std::int64_t mark_overdue_invoices(db::Connection& service, const std::string& today, const std::string& correlation) {
  std::int64_t marked = 0;
  auto now = utc::now();
  for (auto& invoice : store::invoices_past_due(service, today, 10000)) {
    // A payment being charged right now decides: paid, it was in time; failed, it is
    // overdue at the next run.
    if (store::find_live_payment(service, invoice.id)) continue;
    invoice.overdue_at = now;
    save_invoice(service, invoice, now);
    append(service, events::kInvoiceTopic, events::kInvoiceOverdue, "invoice", invoice.id, invoice.event_version,
           invoice_json(invoice), correlation);
    ++marked;
  }
  if (marked > 0) spdlog::info("revenue: {} invoice(s) past their due date marked overdue", marked);
  return marked;
}

asio::awaitable<Result<std::int64_t>> RevenueService::mark_overdue(CallContext context) {
  if (!context.is_service() && (!context.principal || !context.principal->has("revenue:manage")))
    co_return forbidden("needs permission revenue:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<std::int64_t> {
    return mark_overdue_invoices(service, utc_today(), context.correlation_id);
  });
}

asio::awaitable<void> RevenueService::overdue_loop() {
  return run_periodic(deps_.gate, *overdue_timer_, settings_.overdue_interval, "overdue invoice job", overdue_done_,
                      [this] { return mark_overdue(CallContext::as_service("revenue", "overdue-invoices")); });
}

Result<store::Invoice> RevenueService::get_invoice(const CallContext& context, std::int64_t id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  return read_one("invoice", [&](db::Connection& reader) { return store::find_invoice(reader, id, *scope); });
}

Result<Listed<store::Invoice>> RevenueService::list_invoices(const CallContext& context, store::InvoiceFilter filter,
                                                             input::Page page) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  return read_page(page, "revenue.invoices", citizen_view(scope->citizen_id), store::invoices(*scope, filter));
}

Result<std::vector<store::Payment>> RevenueService::payments_of(const CallContext& context, std::int64_t invoice_id) {
  auto invoice = get_invoice(context, invoice_id);
  if (!invoice) return invoice.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<store::Payment>> {
    return store::payments_of_invoice(reader, invoice_id);
  });
}

}  // namespace townhall::revenue
