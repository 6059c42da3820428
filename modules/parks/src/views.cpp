// The records as the API shows them (and as their events carry them).
#include "service.hpp"
#include "townhall/platform/json_fields.hpp"

namespace townhall::parks {

using json = nlohmann::json;

json facility_json(const store::Facility& f) {
  auto hours = parse_opening_hours(json::parse(f.opening_hours, nullptr, false), "opening_hours");
  return json_fields("id", f.id, "name", f.name, "kind", f.kind, "capacity", f.capacity, "hourly_price_cents",
                     f.hourly_price_cents, "currency", f.currency, "time_zone", f.time_zone, "opening_hours",
                     hours ? opening_hours_json(*hours) : json::object(), "is_active", f.is_active, "created_at",
                     f.created_at, "updated_at", f.updated_at);
}

json availability_json(const Availability& a) {
  json days = json::array();
  for (const auto& day : a.days) {
    json slots = json::array();
    for (const auto& slot : day.slots)
      slots.push_back(
          json_fields("start", slot.start, "end", slot.end, "local_start", slot.local_start, "state", slot.state));
    days.push_back(json_fields("date", day.date, "slots", std::move(slots)));
  }
  return json_fields("facility_id", a.facility_id, "time_zone", a.time_zone, "from", a.from, "days", std::move(days));
}

json booking_json(const store::Booking& b) {
  return json_fields("id", b.id, "facility_id", b.facility_id, "citizen_id", b.citizen_id, "starts_at", b.starts_at,
                     "ends_at", b.ends_at, "status", b.status, "amount_cents", b.amount_cents, "currency", b.currency,
                     "hold_expires_at", b.hold_expires_at, "invoice_id", b.invoice_id, "payment_id", b.payment_id,
                     "cancel_reason", b.cancel_reason, "cancelled_by", b.cancelled_by, "cancelled_at", b.cancelled_at,
                     "refund", b.refund, "no_show_at", b.no_show_at, "created_at", b.created_at, "updated_at",
                     b.updated_at);
}

json program_json(const store::Program& p) {
  return json_fields("id", p.id, "facility_id", p.facility_id, "name", p.name, "schedule", p.schedule, "capacity",
                     p.capacity, "enrolled", p.enrolled, "waitlisted", p.waitlisted, "held", p.held, "price_cents",
                     p.price_cents, "currency", p.currency, "starts_at", p.starts_at, "created_at", p.created_at);
}

json enrollment_json(const store::Enrollment& e) {
  auto out = json_fields("id", e.id, "program_id", e.program_id, "citizen_id", e.citizen_id, "status", e.status,
                         "amount_cents", e.amount_cents, "currency", e.currency, "hold_expires_at", e.hold_expires_at,
                         "invoice_id", e.invoice_id, "payment_id", e.payment_id, "cancel_reason", e.cancel_reason,
                         "cancelled_by", e.cancelled_by, "cancelled_at", e.cancelled_at, "refund", e.refund,
                         "created_at", e.created_at, "updated_at", e.updated_at);
  if (e.status == "waitlisted") out["waitlist_position"] = e.waitlist_position;
  return out;
}

}  // namespace townhall::parks
