#pragma once

// The steps of the saga that bookings and enrollments share as places held for a
// payment (PlaceKind names what differs). Private to the module.

#include <optional>
#include <string>
#include <string_view>

#include "client_digest.hpp"
#include "service_internal.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::parks {

// Bookings and enrollments are places held for a payment with the same payment and
// cancellation fields; what differs between them is named here, so each step of the
// saga (paid, cancelled, released) and the refund policy are written once for both.
template <class Place>
struct PlaceKind;

template <>
struct PlaceKind<store::Booking> {
  static constexpr std::string_view noun = events::kBookingSource;
  static constexpr std::string_view paid_status = "confirmed";
  static constexpr std::string_view requested = events::kBookingRequested;
  static constexpr std::string_view confirmed = events::kBookingConfirmed;
  static constexpr std::string_view cancelled = events::kBookingCancelled;
  static std::optional<store::Booking> find(db::Connection& connection, std::int64_t id, const store::Scope& scope) {
    return store::find_booking(connection, id, scope);
  }
  static void insert(db::Connection& service, store::Booking& booking) { store::insert_booking(service, booking); }
  static void save(db::Connection& service, const store::Booking& booking) { store::update_booking(service, booking); }
  // When its use starts: the refund cutoff counts from it.
  static std::optional<std::string> starts_at(db::Connection&, const store::Booking& booking) {
    return booking.starts_at;
  }
};

template <>
struct PlaceKind<store::Enrollment> {
  static constexpr std::string_view noun = events::kEnrollmentSource;
  static constexpr std::string_view paid_status = "enrolled";
  static constexpr std::string_view requested = events::kEnrollmentRequested;
  static constexpr std::string_view confirmed = events::kEnrollmentConfirmed;
  static constexpr std::string_view cancelled = events::kEnrollmentCancelled;
  static std::optional<store::Enrollment> find(db::Connection& connection, std::int64_t id, const store::Scope& scope) {
    return store::find_enrollment(connection, id, scope);
  }
  static void insert(db::Connection& service, store::Enrollment& enrollment) {
    store::insert_enrollment(service, enrollment);
  }
  static void save(db::Connection& service, const store::Enrollment& enrollment) {
    store::update_enrollment(service, enrollment);
  }
  // The program's first meeting; none for a program created before programs had one.
  static std::optional<std::string> starts_at(db::Connection& connection, const store::Enrollment& enrollment) {
    auto program = store::find_program(connection, enrollment.program_id);
    return program ? program->starts_at : std::nullopt;
  }
};

template <class Place>
std::string label(const Place& place) {
  return std::string(PlaceKind<Place>::noun) + " " + std::to_string(place.id);
}

template <class Place>
Result<Place> ParksService::get_place(const CallContext& context, std::int64_t id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  return read_one(PlaceKind<Place>::noun,
                  [&](db::Connection& reader) { return PlaceKind<Place>::find(reader, id, *scope); });
}

template <class Place>
Result<Unit> ParksService::hold_for_payment(db::Connection& service, Place& place, const std::string& client_address,
                                            std::chrono::system_clock::time_point now, const std::string& correlation) {
  auto client = client_digest(client_digest_key_, client_address);
  if (auto ok = room_for_a_hold(service, place.citizen_id, client); !ok) return ok.error();
  place.status = "pending_payment";
  place.client_digest = client;
  place.hold_expires_at = utc::format(now + settings_.hold);
  PlaceKind<Place>::insert(service, place);
  announce(service, PlaceKind<Place>::requested, place, correlation);
  wake_scheduler();
  return Unit{};
}

// Who cancels, why, and what becomes of a payment (issue 21 §3.1).
struct CancelRecord {
  std::string by;  // citizen | staff | system
  std::optional<std::int64_t> by_id;
  std::string reason;
  std::optional<std::string> refund;  // full | none, for a place paid when cancelled
  bool refund_payment = true;         // what the cancelled event tells revenue
};

inline CancelRecord by_the_system(std::string reason) {
  return {"system", std::nullopt, std::move(reason), std::nullopt, true};
}

// Cancels `place` (already read in this transaction), records who and what was decided,
// and announces it.
template <class Place>
Place cancel(db::Connection& service, Place place, const CancelRecord& record, const std::string& correlation,
             const std::string& causation = {}) {
  auto now = utc::now();
  place.status = "cancelled";
  place.cancel_reason = record.reason;
  place.cancelled_by = record.by;
  place.cancelled_by_id = record.by_id;
  place.cancelled_at = now;
  place.refund = record.refund;
  place.hold_expires_at.reset();
  place.client_digest.reset();  // kept only while the hold is unpaid
  place.event_version += 1;
  place.updated_at = now;
  PlaceKind<Place>::save(service, place);
  announce(service, PlaceKind<Place>::cancelled, place, correlation, causation, record.refund_payment);
  return place;
}

}  // namespace townhall::parks
