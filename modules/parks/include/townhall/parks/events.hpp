#pragma once

#include <string_view>

// The events parks publishes (DESIGN.md §4). Booking snapshots carry `id`, `citizen_id`,
// `facility_id`, `starts_at`, `ends_at`, `status`, `amount_cents` and `currency`: revenue
// opens the invoice of a booking.requested with an amount and voids or refunds it on
// booking.cancelled (docs/design-notes.md, 26).
namespace townhall::parks::events {

inline constexpr std::string_view kBookingTopic = "gov.parks.booking";
inline constexpr std::string_view kBookingRequested = "booking.requested";
inline constexpr std::string_view kBookingConfirmed = "booking.confirmed";
inline constexpr std::string_view kBookingCancelled = "booking.cancelled";

}  // namespace townhall::parks::events
