// The module's bus subscriptions: citizen_refs, and the payments and invoice refusals of
// revenue that confirm or release a held place.
#include <spdlog/spdlog.h>

#include <charconv>

#include "places.hpp"
#include "townhall/auth/citizen_refs.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::parks {

using json = nlohmann::json;

namespace {

// payment.completed of the place's invoice: confirmed while its hold runs; one cancelled
// meanwhile stays cancelled (revenue refunds the payment when it sees the cancellation of
// a paid invoice).
template <class Place>
bus::Outcome confirm_paid(db::Connection& service, std::optional<Place> place, std::int64_t payment,
                          std::optional<std::int64_t> invoice, const bus::Event& event, const std::string& source_id) {
  if (!place)
    throw bus::PermanentError("payment.completed for unknown " + std::string(PlaceKind<Place>::noun) + " " + source_id);
  if (place->status != "pending_payment") return bus::Outcome::stale;
  place->status = PlaceKind<Place>::paid_status;
  place->payment_id = payment;
  place->invoice_id = invoice;
  place->hold_expires_at.reset();
  place->client_digest.reset();
  place->event_version += 1;
  place->updated_at = utc::now();
  PlaceKind<Place>::save(service, *place);
  announce(service, PlaceKind<Place>::confirmed, *place, event.correlation_id, event.event_id);
  spdlog::info("parks: {} paid (payment {}); {}", label(*place), payment, PlaceKind<Place>::paid_status);
  return bus::Outcome::applied;
}

std::optional<std::int64_t> integer_of(const json& value) {
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    std::int64_t out = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec == std::errc() && end == text.data() + text.size()) return out;
  }
  return std::nullopt;
}

}  // namespace

std::vector<bus::Subscription> ParksService::subscriptions() {
  return {
      auth::CitizenRefs(auth_, "parks", citizen_table()).subscription(),
      // Bookings' and enrollments' (the names predate enrollments; a name is a cursor).
      {"booking_payments",
       {std::string(revenue::events::kPaymentTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_payment_event(event, service); }},
      {"booking_invoices",
       {std::string(revenue::events::kInvoiceTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_invoice_event(event, service); }},
  };
}

// The columns citizen_refs keeps (a priced hold needs a verified email or identity), compared by
// content with what auth holds.
const auth::CitizenRefTable& ParksService::citizen_table() {
  using auth::CitizenField;
  static const auth::CitizenRefTable table({CitizenField::name, CitizenField::email, CitizenField::email_verified,
                                            CitizenField::identity_verified, CitizenField::is_active});
  return table;
}

bus::Outcome ParksService::apply_citizen_event(const bus::Event& event, db::Connection& sync) {
  return citizen_table().apply(event, sync);
}

std::vector<consistency::Cache> ParksService::caches() {
  return {auth::CitizenRefs(auth_, "parks", citizen_table()).cache()};
}

// payment.completed of a booking's or an enrollment's invoice confirms it (confirm_paid).
bus::Outcome ParksService::apply_payment_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != revenue::events::kPaymentCompleted) return bus::Outcome::applied;
  auto paid = revenue::events::payment_of(event);
  const bool booking = paid.pays_for("parks", events::kBookingSource),
             enrollment = paid.pays_for("parks", events::kEnrollmentSource);
  if (!booking && !enrollment) return bus::Outcome::applied;
  auto id = integer_of(json(paid.source_id));
  if (!id)
    throw bus::PermanentError("payment.completed names " + paid.source_type + " '" + paid.source_id + "', not an id");
  const auto payment = paid.id;
  const std::optional<std::int64_t> invoice = paid.invoice_id;
  const auto source_id = std::to_string(*id);
  if (booking)
    return confirm_paid(service, store::find_booking(service, *id, store::Scope::everything()), payment, invoice, event,
                        source_id);
  return confirm_paid(service, store::find_enrollment(service, *id, store::Scope::everything()), payment, invoice,
                      event, source_id);
}

// Revenue refused to open the invoice of a booking or an enrollment (an amount past its
// ceiling that parks' own checks should have stopped): no payment can come, so the place
// is released now rather than held until the hold ends — or forever, as a dead letter
// once left it (issue 21 §3.4).
bus::Outcome ParksService::apply_invoice_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != revenue::events::kInvoiceRejected) return bus::Outcome::applied;
  auto rejection = revenue::events::invoice_rejection_of(event);
  if (rejection.source_module != "parks") return bus::Outcome::applied;
  const bool booking = rejection.source_type == events::kBookingSource,
             enrollment = rejection.source_type == events::kEnrollmentSource;
  if (!booking && !enrollment) return bus::Outcome::applied;
  auto id = integer_of(json(rejection.source_id));
  if (!id)
    throw bus::PermanentError("invoice.rejected names no " + rejection.source_type + " id: " + rejection.source_id);
  auto release = [&](const auto& place) {
    if (!place)
      throw bus::PermanentError("invoice.rejected for unknown " + rejection.source_type + " " + rejection.source_id);
    if (place->status != "pending_payment") return bus::Outcome::stale;
    auto cancelled = cancel(service, *place, by_the_system("revenue cannot invoice it: " + rejection.reason),
                            event.correlation_id, event.event_id);
    released(service, cancelled, event.correlation_id, event.event_id);
    spdlog::warn("parks: {} released: revenue refused its invoice ({})", label(*place), rejection.reason);
    return bus::Outcome::applied;
  };
  if (booking) return release(store::find_booking(service, *id, store::Scope::everything()));
  return release(store::find_enrollment(service, *id, store::Scope::everything()));
}

}  // namespace townhall::parks
