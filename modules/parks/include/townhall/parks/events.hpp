#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

// The events parks publishes (DESIGN.md §4), written by parks and read by revenue with the
// same code. A booking or enrollment event's `snapshot` is the record as the API shows it;
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

// The `source_type` of the invoice revenue opens for each (source_module "parks"); its
// payment and invoice events name it back.
inline constexpr std::string_view kBookingSource = "booking";
inline constexpr std::string_view kEnrollmentSource = "enrollment";

inline constexpr std::array kTopics{kBookingTopic, kEnrollmentTopic};

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
  return {{"id", b.id},
          {"facility_id", b.facility_id},
          {"citizen_id", b.citizen_id},
          {"starts_at", b.starts_at},
          {"ends_at", b.ends_at},
          {"status", b.status},
          {"amount_cents", b.amount_cents},
          {"currency", b.currency},
          {"refund_payment", b.refund_payment},
          {"cancel_reason", b.cancel_reason ? nlohmann::json(*b.cancel_reason) : nlohmann::json(nullptr)}};
}

// Throws nlohmann::json::exception when a required field is missing or mistyped (the bus
// dead-letters such an event at once). An event written before `refund_payment` existed
// refunds, as every cancellation did then.
inline BookingSnapshot booking_from_snapshot(const nlohmann::json& snapshot) {
  BookingSnapshot b;
  b.id = snapshot.at("id").get<std::int64_t>();
  b.facility_id = snapshot.value("facility_id", std::int64_t{0});
  b.citizen_id = snapshot.at("citizen_id").get<std::int64_t>();
  b.starts_at = snapshot.value("starts_at", std::string());
  b.ends_at = snapshot.value("ends_at", std::string());
  b.status = snapshot.value("status", std::string());
  b.amount_cents = snapshot.at("amount_cents").get<std::int64_t>();
  b.currency = snapshot.at("currency").get<std::string>();
  b.refund_payment = snapshot.value("refund_payment", true);
  if (auto reason = snapshot.find("cancel_reason"); reason != snapshot.end() && reason->is_string())
    b.cancel_reason = reason->get<std::string>();
  return b;
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
  return {{"id", e.id},
          {"program_id", e.program_id},
          {"citizen_id", e.citizen_id},
          {"status", e.status},
          {"amount_cents", e.amount_cents},
          {"currency", e.currency},
          {"refund_payment", e.refund_payment}};
}

// Throws nlohmann::json::exception when a field is missing or mistyped.
inline EnrollmentSnapshot enrollment_from_snapshot(const nlohmann::json& snapshot) {
  return {snapshot.at("id").get<std::int64_t>(),           snapshot.at("program_id").get<std::int64_t>(),
          snapshot.at("citizen_id").get<std::int64_t>(),   snapshot.at("status").get<std::string>(),
          snapshot.at("amount_cents").get<std::int64_t>(), snapshot.at("currency").get<std::string>(),
          snapshot.at("refund_payment").get<bool>()};
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
// topic); throws nlohmann::json::exception when a requested or cancelled event's snapshot
// breaks its contract.
inline PricedPlace priced_place(std::string_view topic, std::string_view event_type, const nlohmann::json& snapshot) {
  PricedPlace place;
  if (topic == kBookingTopic && (event_type == kBookingRequested || event_type == kBookingCancelled)) {
    auto b = booking_from_snapshot(snapshot);
    place = {event_type == kBookingRequested ? PricedPlace::Step::requested : PricedPlace::Step::cancelled,
             std::string(kBookingSource),
             b.id,
             b.citizen_id,
             b.amount_cents,
             b.currency,
             b.refund_payment,
             "Facility booking " + std::to_string(b.id)};
  } else if (topic == kEnrollmentTopic && (event_type == kEnrollmentRequested || event_type == kEnrollmentCancelled)) {
    auto e = enrollment_from_snapshot(snapshot);
    place = {event_type == kEnrollmentRequested ? PricedPlace::Step::requested : PricedPlace::Step::cancelled,
             std::string(kEnrollmentSource),
             e.id,
             e.citizen_id,
             e.amount_cents,
             e.currency,
             e.refund_payment,
             "Program enrollment " + std::to_string(e.id) + " (program " + std::to_string(e.program_id) + ")"};
  }
  return place;
}

}  // namespace townhall::parks::events
