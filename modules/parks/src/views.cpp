// The records as the API shows them (and as their events carry them).
#include "service.hpp"
#include "townhall/platform/json.hpp"

namespace townhall::parks {

using json = nlohmann::json;

json facility_json(const store::Facility& f) {
  auto hours = parse_opening_hours(json::parse(f.opening_hours, nullptr, false), "opening_hours");
  return {{"id", f.id},
          {"name", f.name},
          {"kind", f.kind},
          {"capacity", f.capacity},
          {"hourly_price_cents", f.hourly_price_cents},
          {"currency", f.currency},
          {"time_zone", f.time_zone},
          {"opening_hours", hours ? opening_hours_json(*hours) : json::object()},
          {"is_active", f.is_active},
          {"created_at", f.created_at},
          {"updated_at", f.updated_at}};
}

json booking_json(const store::Booking& b) {
  return {{"id", b.id},
          {"facility_id", b.facility_id},
          {"citizen_id", b.citizen_id},
          {"starts_at", b.starts_at},
          {"ends_at", b.ends_at},
          {"status", b.status},
          {"amount_cents", b.amount_cents},
          {"currency", b.currency},
          {"hold_expires_at", nullable(b.hold_expires_at)},
          {"invoice_id", nullable(b.invoice_id)},
          {"payment_id", nullable(b.payment_id)},
          {"cancel_reason", nullable(b.cancel_reason)},
          {"cancelled_by", nullable(b.cancelled_by)},
          {"cancelled_at", nullable(b.cancelled_at)},
          {"refund", nullable(b.refund)},
          {"created_at", b.created_at},
          {"updated_at", b.updated_at}};
}

json program_json(const store::Program& p) {
  return {{"id", p.id},
          {"facility_id", nullable(p.facility_id)},
          {"name", p.name},
          {"schedule", p.schedule},
          {"capacity", p.capacity},
          {"enrolled", p.enrolled},
          {"waitlisted", p.waitlisted},
          {"held", p.held},
          {"price_cents", p.price_cents},
          {"currency", p.currency},
          {"starts_at", nullable(p.starts_at)},
          {"created_at", p.created_at}};
}

json enrollment_json(const store::Enrollment& e) {
  json out = {{"id", e.id},
              {"program_id", e.program_id},
              {"citizen_id", e.citizen_id},
              {"status", e.status},
              {"amount_cents", e.amount_cents},
              {"currency", e.currency},
              {"hold_expires_at", nullable(e.hold_expires_at)},
              {"invoice_id", nullable(e.invoice_id)},
              {"payment_id", nullable(e.payment_id)},
              {"cancel_reason", nullable(e.cancel_reason)},
              {"cancelled_by", nullable(e.cancelled_by)},
              {"cancelled_at", nullable(e.cancelled_at)},
              {"refund", nullable(e.refund)},
              {"created_at", e.created_at},
              {"updated_at", e.updated_at}};
  if (e.status == "waitlisted") out["waitlist_position"] = e.waitlist_position;
  return out;
}

}  // namespace townhall::parks
