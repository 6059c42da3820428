#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "townhall/parks/events.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/page_cursor.hpp"
#include "townhall/platform/row.hpp"

// parks.db's SQL, one function per statement; no transactions.
namespace townhall::parks::store {

struct Facility {
  std::int64_t id = 0;
  std::string name, kind;
  std::int64_t capacity = 1;
  std::int64_t hourly_price_cents = 0;
  std::string currency;
  std::string time_zone;
  std::string opening_hours;  // JSON, see migrations/parks/0001_parks.sql
  bool is_active = true;
  std::int64_t event_version = 1;
  std::string created_at, updated_at;
};
void insert_facility(db::Connection& connection, Facility& facility);  // fills id
void update_facility(db::Connection& connection, const Facility& facility);
std::optional<Facility> find_facility(db::Connection& connection, std::int64_t id);
// In id order: up to `limit` facilities past `after` (keyset pagination).
std::vector<Facility> list_facilities(db::Connection& connection, bool active_only,
                                      const std::optional<PageAfter>& after, int limit);
std::int64_t count_facilities(db::Connection& connection, bool active_only);

// A booking row: what its events carry (the contract's snapshot, whose refund_payment is
// an event's decision, not a column) and its bookkeeping.
struct Booking : events::BookingSnapshot {
  std::optional<std::string> hold_expires_at;
  std::optional<std::int64_t> invoice_id, payment_id;
  std::int64_t event_version = 1;
  std::string created_at, updated_at;
  // The cancellation's audit (migrations/parks/0002): citizen | staff | system, the
  // actor's id, when, and full | none for a booking that was paid.
  std::optional<std::string> cancelled_by;
  std::optional<std::int64_t> cancelled_by_id;
  std::optional<std::string> cancelled_at;
  std::optional<std::string> refund;
  // The keyed digest of the client that made the hold (client_digest.hpp), kept only
  // while it is unpaid (migrations/parks/0004).
  std::optional<std::string> client_digest;
  std::optional<std::string> no_show_at;  // marked by parks staff after the start (migrations/parks/0006)
};
// A citizen sees their own bookings; staff all (citizen_id nullopt).
struct Scope {
  std::optional<std::int64_t> citizen_id;
  static Scope everything() { return {}; }
};
void insert_booking(db::Connection& connection, Booking& booking);  // fills id
void update_booking(db::Connection& connection, const Booking& booking);
std::optional<Booking> find_booking(db::Connection& connection, std::int64_t id, const Scope& scope);

// Reports (issue 26.3), from the per-day sums migration 0008's triggers keep (issue 24:
// days, not bookings, are read): a facility's local day.
struct BookingDay {
  std::int64_t facility_id = 0;
  std::string day;  // "YYYY-MM-DD" in the facility's zone
  std::int64_t bookings = 0, booked_ms = 0, no_shows = 0;
  std::int64_t cancelled_by_citizen = 0, cancelled_by_staff = 0, expired = 0;
};
// The days [first_day, last_day] (both included), of one facility or all.
void each_booking_day(db::Connection& connection, const std::string& first_day, const std::string& last_day,
                      std::optional<std::int64_t> facility_id, const std::function<void(const BookingDay&)>& use);
// What booking_days should hold, computed from the bookings (the consistency check's
// side; reads every booking): its columns in table order.
extern const char* const kBookingDaysFromRows;
// Sets bookings.local_day, the start's day in the facility's zone, for every booking of
// `facility_id` (its zone changed), or, without one, for every booking that has none (rows
// an older version wrote). The number of bookings set.
std::int64_t set_local_days(db::Connection& connection, std::optional<std::int64_t> facility_id);
// The start and end of every held or confirmed booking of a facility that overlaps
// [start, end) (bookings last at most a day), in start order.
void each_active_booking(db::Connection& connection, std::int64_t facility_id, const std::string& start,
                         const std::string& end,
                         const std::function<void(const std::string& starts_at, const std::string& ends_at)>& use);
// Marks a confirmed booking a no-show; false when it is not confirmed or already marked.
bool mark_no_show(db::Connection& connection, std::int64_t id, std::int64_t by, const std::string& at);
// An active booking of the facility overlapping [starts_at, ends_at), if any.
std::optional<Booking> find_overlap(db::Connection& connection, std::int64_t facility_id, const std::string& starts_at,
                                    const std::string& ends_at);
struct BookingFilter {
  std::optional<std::int64_t> facility_id;
  std::optional<std::string> from, to;  // starts_at within [from, to)
};
// The bookings in `scope` that `filter` keeps, in (starts_at, id) order (a cursor's key is
// a starts_at).
db::KeysetList<Booking> bookings(const Scope& scope, const BookingFilter& filter);
// Pending bookings whose hold ended at or before `now`, and the earliest hold still
// running, of a booking or an enrollment.
std::vector<Booking> expired_holds(db::Connection& connection, const std::string& now, int limit);
std::optional<std::string> next_hold_expiry(db::Connection& connection);
// The citizen's places held unpaid: bookings and enrollments pending_payment.
std::int64_t count_unpaid(db::Connection& connection, std::int64_t citizen_id);
// The places held unpaid from the client with this digest.
std::int64_t count_unpaid_from(db::Connection& connection, const std::string& client_digest);
// The key of client digests (nullopt before the module first made one), and storing it.
std::optional<std::string> client_digest_key(db::Connection& connection);
void insert_client_digest_key(db::Connection& connection, const std::string& key);
// The citizen's bookings not cancelled and not yet ended (ends_at after `now`) at
// facilities of `kind`, free and priced alike.
std::int64_t count_active_of_kind(db::Connection& connection, std::int64_t citizen_id, const std::string& kind,
                                  const std::string& now);

struct Program {
  std::int64_t id = 0;
  std::optional<std::int64_t> facility_id;
  std::string name, schedule;
  std::int64_t capacity = 1;
  std::int64_t price_cents = 0;
  std::string currency;
  bool is_active = true;
  std::string created_at, updated_at;
  std::int64_t enrolled = 0, waitlisted = 0;  // counts, when read
  std::optional<std::string> starts_at;       // the first meeting; the refund cutoff counts from it
  std::int64_t held = 0;                      // places held pending_payment, when read
};
void insert_program(db::Connection& connection, Program& program);
std::optional<Program> find_program(db::Connection& connection, std::int64_t id);
// Active programs in id order: up to `limit` past `after`.
std::vector<Program> list_programs(db::Connection& connection, const std::optional<PageAfter>& after, int limit);
std::int64_t count_programs(db::Connection& connection);

// A place in a program. In a priced one it is held pending_payment (as a booking holds
// its slot, with the booking's payment and cancellation columns: migrations/parks/0003).
// An enrollment row: its events' snapshot (refund_payment as a booking's) and the rest.
struct Enrollment : events::EnrollmentSnapshot {
  std::string created_at, updated_at;
  std::int64_t waitlist_position = 0;  // 1-based among the waitlisted, when read
  std::optional<std::string> hold_expires_at;
  std::optional<std::int64_t> invoice_id, payment_id;
  std::optional<std::string> cancel_reason;
  std::optional<std::string> cancelled_by;
  std::optional<std::int64_t> cancelled_by_id;
  std::optional<std::string> cancelled_at;
  std::optional<std::string> refund;
  std::int64_t event_version = 1;
  std::optional<std::string> client_digest;  // as a booking's
};
void insert_enrollment(db::Connection& connection, Enrollment& enrollment);
void update_enrollment(db::Connection& connection, const Enrollment& enrollment);
std::optional<Enrollment> find_enrollment(db::Connection& connection, std::int64_t id, const Scope& scope);
std::optional<Enrollment> find_active_enrollment(db::Connection& connection, std::int64_t program_id,
                                                 std::int64_t citizen_id);
struct EnrollmentFilter {
  std::optional<std::int64_t> program_id;
};
// The enrollments in `scope` that `filter` keeps, in id order.
db::KeysetList<Enrollment> enrollments(const Scope& scope, const EnrollmentFilter& filter);
// Places taken: enrolled and held pending_payment (what capacity bounds).
std::int64_t count_taken(db::Connection& connection, std::int64_t program_id);
std::optional<Enrollment> first_waitlisted(db::Connection& connection, std::int64_t program_id);
std::vector<Enrollment> expired_enrollment_holds(db::Connection& connection, const std::string& now, int limit);

struct CitizenRef {
  std::int64_t citizen_id = 0;
  std::optional<std::string> name, email;
  bool is_active = true;
  std::int64_t event_version = 0;
  std::string last_synced_at;
  bool email_verified = false, identity_verified = false;  // a priced hold needs one
};
std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id);

}  // namespace townhall::parks::store
