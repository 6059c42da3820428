#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "townhall/platform/db.hpp"

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
std::vector<Facility> list_facilities(db::Connection& connection, bool active_only, std::int64_t offset, int limit,
                                      std::int64_t& total);

struct Booking {
  std::int64_t id = 0;
  std::int64_t facility_id = 0;
  std::int64_t citizen_id = 0;
  std::string starts_at, ends_at;
  std::string status;  // pending_payment | confirmed | cancelled
  std::int64_t amount_cents = 0;
  std::string currency;
  std::optional<std::string> hold_expires_at;
  std::optional<std::int64_t> invoice_id, payment_id;
  std::optional<std::string> cancel_reason;
  std::int64_t event_version = 1;
  std::string created_at, updated_at;
  // The cancellation's audit (migrations/parks/0002): citizen | staff | system, the
  // actor's id, when, and full | none for a booking that was paid.
  std::optional<std::string> cancelled_by;
  std::optional<std::int64_t> cancelled_by_id;
  std::optional<std::string> cancelled_at;
  std::optional<std::string> refund;
};
// A citizen sees their own bookings; staff all (citizen_id nullopt).
struct Scope {
  std::optional<std::int64_t> citizen_id;
  static Scope everything() { return {}; }
};
void insert_booking(db::Connection& connection, Booking& booking);  // fills id
void update_booking(db::Connection& connection, const Booking& booking);
std::optional<Booking> find_booking(db::Connection& connection, std::int64_t id, const Scope& scope);
// An active booking of the facility overlapping [starts_at, ends_at), if any.
std::optional<Booking> find_overlap(db::Connection& connection, std::int64_t facility_id, const std::string& starts_at,
                                    const std::string& ends_at);
struct BookingFilter {
  std::optional<std::int64_t> facility_id;
  std::optional<std::string> from, to;  // starts_at within [from, to)
};
std::vector<Booking> list_bookings(db::Connection& connection, const Scope& scope, const BookingFilter& filter,
                                   std::int64_t offset, int limit, std::int64_t& total);
// Pending bookings whose hold ended at or before `now`, and the earliest hold still running.
std::vector<Booking> expired_holds(db::Connection& connection, const std::string& now, int limit);
std::optional<std::string> next_hold_expiry(db::Connection& connection);
std::int64_t count_unpaid(db::Connection& connection, std::int64_t citizen_id);
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
};
void insert_program(db::Connection& connection, Program& program);
std::optional<Program> find_program(db::Connection& connection, std::int64_t id);
std::vector<Program> list_programs(db::Connection& connection, std::int64_t offset, int limit, std::int64_t& total);

struct Enrollment {
  std::int64_t id = 0;
  std::int64_t program_id = 0;
  std::int64_t citizen_id = 0;
  std::string status;  // enrolled | waitlisted | cancelled
  std::string created_at, updated_at;
  std::int64_t waitlist_position = 0;  // 1-based among the waitlisted, when read
};
void insert_enrollment(db::Connection& connection, Enrollment& enrollment);
void update_enrollment(db::Connection& connection, const Enrollment& enrollment);
std::optional<Enrollment> find_enrollment(db::Connection& connection, std::int64_t id, const Scope& scope);
std::optional<Enrollment> find_active_enrollment(db::Connection& connection, std::int64_t program_id,
                                                 std::int64_t citizen_id);
std::int64_t count_enrolled(db::Connection& connection, std::int64_t program_id);
std::optional<Enrollment> first_waitlisted(db::Connection& connection, std::int64_t program_id);

struct CitizenRef {
  std::int64_t citizen_id = 0;
  std::optional<std::string> name, email;
  bool is_active = true;
  std::int64_t event_version = 0;
  std::string last_synced_at;
};
bool upsert_citizen_ref(db::Connection& connection, const CitizenRef& ref);

}  // namespace townhall::parks::store
