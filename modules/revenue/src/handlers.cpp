// The module's bus subscriptions: citizen_refs, and the invoices other modules' events open,
// void or refund.
#include <spdlog/spdlog.h>

#include "service_internal.hpp"
#include "townhall/auth/citizen_refs.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::revenue {

namespace {

// Amounts and currencies of other modules' events: a payload this module can never
// invoice is a permanent error (dead letter), not a retry.
void check_money(std::int64_t amount_cents, const std::string& currency, const bus::Event& event) {
  if (!invoiceable(amount_cents, currency))
    throw bus::PermanentError(std::string(event.event_type) + " asks for " + std::to_string(amount_cents) + " " +
                              currency + ": not an amount revenue can invoice");
}

}  // namespace

std::vector<bus::Subscription> RevenueService::subscriptions() {
  return {
      auth::CitizenRefs(auth_, "revenue", citizen_table()).subscription(),
      {"application_fees",
       {std::string(permits::events::kApplicationTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_application_event(event, service); }},
      {"booking_invoices",
       {std::string(parks::events::kBookingTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_parks_event(event, service); }},
      {"enrollment_invoices",
       {std::string(parks::events::kEnrollmentTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_parks_event(event, service); }},
  };
}

// The columns citizen_refs keeps, compared by content with what auth holds.
const auth::CitizenRefTable& RevenueService::citizen_table() {
  using auth::CitizenField;
  static const auth::CitizenRefTable table(
      {CitizenField::name, CitizenField::email, CitizenField::identity_verified, CitizenField::is_active});
  return table;
}

bus::Outcome RevenueService::apply_citizen_event(const bus::Event& event, db::Connection& sync) {
  return citizen_table().apply(event, sync);
}

std::vector<consistency::Cache> RevenueService::caches() {
  return {auth::CitizenRefs(auth_, "revenue", citizen_table()).cache()};
}

// application.submitted with a fee opens the fee invoice (DESIGN §7, permit fee).
bus::Outcome RevenueService::apply_application_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != permits::events::kApplicationSubmitted) return bus::Outcome::applied;
  auto application = permits::events::application_of(event);
  if (application.fee_cents <= 0) return bus::Outcome::applied;
  check_money(application.fee_cents, application.currency, event);
  auto id = std::to_string(application.id);
  auto opened = open_invoice(
      service, {"permits", "application", id}, application.citizen_id, application.fee_cents, application.currency,
      "Permit fee: " + application.permit_type + " (application " + id + ")", event.correlation_id, event.event_id);
  return opened ? bus::Outcome::applied : bus::Outcome::stale;
}

// booking.requested or enrollment.requested with an amount opens its invoice;
// booking.cancelled or enrollment.cancelled voids an open one and refunds a paid one when
// parks' refund decision says so (DESIGN §7, park booking; the payload is parks' contract,
// townhall/parks/events.hpp, read for both as one PricedPlace).
bus::Outcome RevenueService::apply_parks_event(const bus::Event& event, db::Connection& service) {
  auto place = parks::events::priced_place(event);
  if (place.step == parks::events::PricedPlace::Step::other) return bus::Outcome::applied;
  auto id = std::to_string(place.id);
  const auto& type = place.source_type;
  if (place.step == parks::events::PricedPlace::Step::requested) {
    if (place.amount_cents <= 0) return bus::Outcome::applied;
    if (!invoiceable(place.amount_cents, place.currency)) {
      // Not a dead letter: the place is held for this invoice, so parks is told and
      // releases it (issue 21 §3.4). Parks checks the same ceiling before it holds one.
      events::InvoiceRejection rejection{
          "parks",
          type,
          id,
          place.citizen_id,
          place.amount_cents,
          place.currency,
          std::to_string(place.amount_cents) + " " + place.currency + " is not an amount revenue can invoice"};
      bus::NewEvent rejected;
      rejected.topic = events::kInvoiceTopic;
      rejected.event_type = events::kInvoiceRejected;
      rejected.aggregate_type = "invoice_request";
      rejected.aggregate_id = "parks." + type + "." + id;
      rejected.event_version = 1;
      rejected.data = events::event_data(events::invoice_rejection_snapshot(rejection));
      rejected.correlation_id = event.correlation_id;
      rejected.causation_id = event.event_id;
      bus::append(service, std::move(rejected));
      spdlog::warn("revenue: {} {} asks for {} {}: no invoice opened (invoice.rejected)", type, id, place.amount_cents,
                   place.currency);
      return bus::Outcome::applied;
    }
    auto opened = open_invoice(service, {"parks", type, id}, place.citizen_id, place.amount_cents, place.currency,
                               place.description, event.correlation_id, event.event_id);
    return opened ? bus::Outcome::applied : bus::Outcome::stale;
  }
  auto invoice = store::find_invoice_by_source(service, "parks", type, id);
  if (!invoice) return bus::Outcome::applied;  // free
  auto now = utc::now();
  if (invoice->status == "open") {
    void_invoice(service, *invoice, now, event.correlation_id, event.event_id);
    return bus::Outcome::applied;
  }
  if (invoice->status != "paid") return bus::Outcome::stale;
  if (!place.refund_payment) {
    spdlog::info("revenue: {} {} cancelled without a refund (parks' decision); invoice {} stays paid", type, id,
                 invoice->id);
    return bus::Outcome::applied;
  }
  auto payment = store::find_live_payment(service, invoice->id);
  if (!payment || payment->status != "completed") return bus::Outcome::stale;  // a refund is under way
  payment->status = "refund_pending";
  payment->refund_key = processor_key();
  payment->updated_at = now;
  store::update_payment(service, *payment);
  wake_reconciler();
  spdlog::info("revenue: {} {} cancelled; refunding payment {}", type, id, payment->id);
  return bus::Outcome::applied;
}

}  // namespace townhall::revenue
