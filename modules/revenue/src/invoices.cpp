#include <spdlog/spdlog.h>

#include "service_internal.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::revenue {

std::optional<store::Invoice> open_invoice(db::Connection& service, const Source& source, std::int64_t citizen_id,
                                           std::int64_t amount_cents, const std::string& currency,
                                           std::string description, const std::string& correlation,
                                           const std::string& causation) {
  store::Invoice invoice;
  invoice.citizen_id = citizen_id;
  invoice.source_module = source.module;
  invoice.source_type = source.type;
  invoice.source_id = source.id;
  invoice.description = std::move(description);
  invoice.amount_cents = amount_cents;
  invoice.currency = currency;
  invoice.status = "open";
  invoice.created_at = invoice.updated_at = utc::now();
  if (!store::insert_invoice(service, invoice)) return std::nullopt;
  append(service, events::kInvoiceTopic, events::kInvoiceCreated, "invoice", invoice.id, 1, invoice_json(invoice),
         correlation, causation);
  spdlog::info("revenue: invoice {} opened for {} {} {} ({} {})", invoice.id, source.module, source.type, source.id,
               amount_cents, currency);
  return invoice;
}

void void_invoice(db::Connection& service, store::Invoice& invoice, const std::string& now,
                  const std::string& correlation, const std::string& causation) {
  invoice.status = "voided";
  invoice.closed_at = now;
  invoice.updated_at = now;
  invoice.event_version += 1;
  store::update_invoice(service, invoice);
  append(service, events::kInvoiceTopic, events::kInvoiceVoided, "invoice", invoice.id, invoice.event_version,
         invoice_json(invoice), correlation, causation);
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
  return read_page(page, PagedQuery<store::Invoice>{
                             "revenue.invoices", citizen_view(scope->citizen_id),
                             [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                               return store::list_invoices(reader, *scope, filter, after, limit);
                             },
                             [&](db::Connection& reader) { return store::count_invoices(reader, *scope, filter); }});
}

Result<std::vector<store::Payment>> RevenueService::payments_of(const CallContext& context, std::int64_t invoice_id) {
  auto invoice = get_invoice(context, invoice_id);
  if (!invoice) return invoice.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<store::Payment>> {
    return store::payments_of_invoice(reader, invoice_id);
  });
}

}  // namespace townhall::revenue
