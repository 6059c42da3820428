#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

// The events parks publishes (DESIGN.md §4), written by parks and read by revenue with the
// same code. A booking event's `snapshot` is the booking as the API shows it; the fields
// below are the contract: revenue opens the invoice of a booking.requested with an amount,
// and on booking.cancelled voids an open invoice and refunds a completed payment only
// when `refund_payment` says so (docs/design-notes.md, 26; issue 21 §3.1). Include it in
// .cpp files only (it brings in nlohmann/json).
namespace townhall::parks::events {

inline constexpr std::string_view kBookingTopic = "gov.parks.booking";
inline constexpr std::string_view kBookingRequested = "booking.requested";
inline constexpr std::string_view kBookingConfirmed = "booking.confirmed";
inline constexpr std::string_view kBookingCancelled = "booking.cancelled";

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
          {"refund_payment", b.refund_payment}};
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
  return b;
}

}  // namespace townhall::parks::events
