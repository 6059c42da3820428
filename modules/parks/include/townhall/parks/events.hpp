#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "townhall/bus/payload.hpp"
#include "townhall/platform/json_fields.hpp"

// The events parks publishes (DESIGN.md §4), written by parks and read by revenue and
// notify with the same code. Each event's data is {"schema_version": N, "snapshot":
// {...}}; a booking or enrollment event's `snapshot` is the record as the API shows it;
// the fields below are the contract: revenue opens the invoice of a booking.requested or
// enrollment.requested with an amount, and on booking.cancelled or enrollment.cancelled
// voids an open invoice and refunds a completed payment only when `refund_payment` says
// so (docs/design-notes.md, 26 and 36; issue 21 §3.1, issue 28 §3). Include it in .cpp
// files only (it brings in nlohmann/json).
namespace townhall::parks::events {

inline constexpr std::string_view kBookingTopic = "gov.parks.booking";
inline constexpr std::string_view kBookingRequested = "booking.requested";
inline constexpr std::string_view kBookingConfirmed = "booking.confirmed";
inline constexpr std::string_view kBookingCancelled = "booking.cancelled";

// An enrollment in a priced program holds its place like a booking holds its slot.
inline constexpr std::string_view kEnrollmentTopic = "gov.parks.enrollment";
inline constexpr std::string_view kEnrollmentRequested = "enrollment.requested";
inline constexpr std::string_view kEnrollmentConfirmed = "enrollment.confirmed";
inline constexpr std::string_view kEnrollmentCancelled = "enrollment.cancelled";
// A waitlisted enrollment was given a place that freed up: notify tells its citizen.
// Written in the same transaction after the place's own event (enrollment.confirmed in a
// free program, enrollment.requested with its hold in a priced one), which revenue reads;
// revenue ignores this one.
inline constexpr std::string_view kEnrollmentPromoted = "enrollment.promoted";

// The `source_type` of the invoice revenue opens for each (source_module "parks"); its
// payment and invoice events name it back.
inline constexpr std::string_view kBookingSource = "booking";
inline constexpr std::string_view kEnrollmentSource = "enrollment";

inline constexpr std::array kTopics{kBookingTopic, kEnrollmentTopic};
// The payload version parks writes; its consumers know it.
inline constexpr int kSchemaVersion = 1;

inline nlohmann::json event_data(nlohmann::json snapshot) {
  return bus::snapshot_data(kSchemaVersion, std::move(snapshot));
}

// The cancel_reason of a place whose payment hold ran out (booking.cancelled and
// enrollment.cancelled): notify tells the citizen it expired rather than was cancelled.
inline constexpr std::string_view kHoldExpiredReason = "the payment hold expired";

struct BookingSnapshot {
  std::int64_t id = 0;
  std::int64_t facility_id = 0;
  std::int64_t citizen_id = 0;
  std::string starts_at, ends_at;
  std::string status;  // pending_payment | confirmed | cancelled
  std::int64_t amount_cents = 0;
  std::string currency;
  // booking.cancelled: whether a completed payment of the booking's invoice is refunded
  // (the refund policy, or parks staff's decision). True for a booking not known to be
  // paid when cancelled: a payment racing the cancellation bought nothing.
  bool refund_payment = true;
  std::optional<std::string> cancel_reason;  // booking.cancelled: why (kHoldExpiredReason, ...)
};

// The contract's fields, to merge into an event's snapshot.
inline nlohmann::json booking_snapshot(const BookingSnapshot& b) {
  return json_fields("id", b.id, "facility_id", b.facility_id, "citizen_id", b.citizen_id, "starts_at", b.starts_at,
                     "ends_at", b.ends_at, "status", b.status, "amount_cents", b.amount_cents, "currency", b.currency,
                     "refund_payment", b.refund_payment, "cancel_reason", b.cancel_reason);
}

// Strict: every field booking_snapshot writes, with its type, else bus::PermanentError.
// One allowance, for a payload without a schema_version (written before versions): one
// written before `refund_payment` existed (f539903) refunds, as every cancellation did then.
inline BookingSnapshot booking_of(const bus::Event& event) {
  auto payload = bus::payload_of(event, {kSchemaVersion});
  auto s = payload.object("snapshot");
  bool before_refund_payment = !payload.has(bus::kSchemaVersionField) && !s.has("refund_payment");
  return {s.positive("id"),
          s.positive("facility_id"),
          s.positive("citizen_id"),
          s.text("starts_at"),
          s.text("ends_at"),
          s.text("status"),
          s.integer("amount_cents"),
          s.text("currency"),
          before_refund_payment || s.flag("refund_payment"),
          s.nullable_text("cancel_reason")};
}

struct EnrollmentSnapshot {
  std::int64_t id = 0;
  std::int64_t program_id = 0;
  std::int64_t citizen_id = 0;
  std::string status;  // pending_payment | enrolled | waitlisted | cancelled
  std::int64_t amount_cents = 0;
  std::string currency;
  bool refund_payment = true;  // enrollment.cancelled: as a booking's
};

inline nlohmann::json enrollment_snapshot(const EnrollmentSnapshot& e) {
  return json_fields("id", e.id, "program_id", e.program_id, "citizen_id", e.citizen_id, "status", e.status,
                     "amount_cents", e.amount_cents, "currency", e.currency, "refund_payment", e.refund_payment);
}

// Strict, as booking_of (every enrollment event ever written has every field).
inline EnrollmentSnapshot enrollment_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  return {s.positive("id"),          s.positive("program_id"), s.positive("citizen_id"), s.text("status"),
          s.integer("amount_cents"), s.text("currency"),       s.flag("refund_payment")};
}

// enrollment.promoted's snapshot: the enrollment's contract, what the citizen is told the
// place is in, and (priced) until when it is held for the payment.
struct PromotionSnapshot {
  EnrollmentSnapshot enrollment;  // status: enrolled | pending_payment
  std::string program_name;
  std::optional<std::string> hold_expires_at;  // pending_payment: pay by then
};

inline nlohmann::json promotion_snapshot(const PromotionSnapshot& p) {
  auto snapshot = enrollment_snapshot(p.enrollment);
  snapshot.update(json_fields("program_name", p.program_name, "hold_expires_at", p.hold_expires_at));
  return snapshot;
}

// Strict, as enrollment_of.
inline PromotionSnapshot promotion_of(const bus::Event& event) {
  auto s = bus::payload_of(event, {kSchemaVersion}).object("snapshot");
  return {enrollment_of(event), s.text("program_name"), s.nullable_text("hold_expires_at")};
}

// What revenue does with an event of either topic: a place parks holds for a payment (a
// booking's slot, an enrollment's place) asks for its invoice, or was cancelled. One
// reading of both contracts, so revenue handles them with one piece of code.
struct PricedPlace {
  enum class Step { requested, cancelled, other };
  Step step = Step::other;
  std::string source_type;  // kBookingSource | kEnrollmentSource
  std::int64_t id = 0;
  std::int64_t citizen_id = 0;
  std::int64_t amount_cents = 0;
  std::string currency;
  bool refund_payment = true;
  std::string description;  // the invoice's
};

// Step::other for an event revenue has nothing to do with (a confirmation, another
// topic); throws bus::PermanentError when a requested or cancelled event's payload breaks
// its contract.
inline PricedPlace priced_place(const bus::Event& event) {
  using Step = PricedPlace::Step;
  const bool booking = event.topic == kBookingTopic, enrollment = event.topic == kEnrollmentTopic;
  const auto& type = event.event_type;
  Step step = Step::other;
  if ((booking && type == kBookingRequested) || (enrollment && type == kEnrollmentRequested)) step = Step::requested;
  if ((booking && type == kBookingCancelled) || (enrollment && type == kEnrollmentCancelled)) step = Step::cancelled;
  if (step == Step::other) return {};
  auto place = [&](const auto& snapshot, std::string_view source, std::string description) {
    return PricedPlace{step,
                       std::string(source),
                       snapshot.id,
                       snapshot.citizen_id,
                       snapshot.amount_cents,
                       snapshot.currency,
                       snapshot.refund_payment,
                       std::move(description)};
  };
  if (booking) {
    auto b = booking_of(event);
    return place(b, kBookingSource, "Facility booking " + std::to_string(b.id));
  }
  auto e = enrollment_of(event);
  return place(e, kEnrollmentSource,
               "Program enrollment " + std::to_string(e.id) + " (program " + std::to_string(e.program_id) + ")");
}

}  // namespace townhall::parks::events
