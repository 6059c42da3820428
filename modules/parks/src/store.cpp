#include "store.hpp"

#include "townhall/platform/row.hpp"

namespace townhall::parks::store {
namespace {

using db::all_rows;
using db::first_row;
using db::read_columns;
using db::single_int;

constexpr const char* kFacilitySelect =
    "SELECT id, name, kind, capacity, hourly_price_cents, currency, time_zone, opening_hours, is_active, "
    "event_version, created_at, updated_at FROM facilities ";

Facility read_facility(SQLite::Statement& row) {
  Facility f;
  read_columns(row, f.id, f.name, f.kind, f.capacity, f.hourly_price_cents, f.currency, f.time_zone, f.opening_hours,
               f.is_active, f.event_version, f.created_at, f.updated_at);
  return f;
}

constexpr const char* kBookingSelect =
    "SELECT id, facility_id, citizen_id, starts_at, ends_at, status, amount_cents, currency, hold_expires_at, "
    "invoice_id, payment_id, cancel_reason, event_version, created_at, updated_at, cancelled_by, cancelled_by_id, "
    "cancelled_at, refund, client_digest FROM bookings ";

Booking read_booking(SQLite::Statement& row) {
  Booking b;
  read_columns(row, b.id, b.facility_id, b.citizen_id, b.starts_at, b.ends_at, b.status, b.amount_cents, b.currency,
               b.hold_expires_at, b.invoice_id, b.payment_id, b.cancel_reason, b.event_version, b.created_at,
               b.updated_at, b.cancelled_by, b.cancelled_by_id, b.cancelled_at, b.refund, b.client_digest);
  return b;
}

constexpr const char* kProgramSelect =
    "SELECT p.id, p.facility_id, p.name, p.schedule, p.capacity, p.price_cents, p.currency, p.is_active, "
    "p.created_at, p.updated_at, "
    "(SELECT count(*) FROM enrollments e WHERE e.program_id = p.id AND e.status = 'enrolled'), "
    "(SELECT count(*) FROM enrollments e WHERE e.program_id = p.id AND e.status = 'waitlisted'), p.starts_at, "
    "(SELECT count(*) FROM enrollments e WHERE e.program_id = p.id AND e.status = 'pending_payment') FROM programs p ";

Program read_program(SQLite::Statement& row) {
  Program p;
  read_columns(row, p.id, p.facility_id, p.name, p.schedule, p.capacity, p.price_cents, p.currency, p.is_active,
               p.created_at, p.updated_at, p.enrolled, p.waitlisted, p.starts_at, p.held);
  return p;
}

constexpr const char* kEnrollmentSelect =
    "SELECT e.id, e.program_id, e.citizen_id, e.status, e.created_at, e.updated_at, "
    "CASE WHEN e.status = 'waitlisted' THEN (SELECT count(*) FROM enrollments w WHERE w.program_id = e.program_id "
    "AND w.status = 'waitlisted' AND w.id <= e.id) ELSE 0 END, e.amount_cents, e.currency, e.hold_expires_at, "
    "e.invoice_id, e.payment_id, e.cancel_reason, e.cancelled_by, e.cancelled_by_id, e.cancelled_at, e.refund, "
    "e.event_version, e.client_digest FROM enrollments e ";

Enrollment read_enrollment(SQLite::Statement& row) {
  Enrollment e;
  read_columns(row, e.id, e.program_id, e.citizen_id, e.status, e.created_at, e.updated_at, e.waitlist_position,
               e.amount_cents, e.currency, e.hold_expires_at, e.invoice_id, e.payment_id, e.cancel_reason,
               e.cancelled_by, e.cancelled_by_id, e.cancelled_at, e.refund, e.event_version, e.client_digest);
  return e;
}

CitizenRef read_citizen_ref(SQLite::Statement& row) {
  CitizenRef r;
  read_columns(row, r.citizen_id, r.name, r.email, r.is_active, r.event_version, r.last_synced_at, r.email_verified,
               r.identity_verified);
  return r;
}

}  // namespace

// --- facilities ------------------------------------------------------------------------

void insert_facility(db::Connection& connection, Facility& f) {
  f.id = db::insert(
      connection,
      "INSERT INTO facilities (name, kind, capacity, hourly_price_cents, currency, time_zone, opening_hours, "
      "is_active, event_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      f.name, f.kind, f.capacity, f.hourly_price_cents, f.currency, f.time_zone, f.opening_hours, f.is_active,
      f.event_version, f.created_at, f.updated_at);
}

void update_facility(db::Connection& connection, const Facility& f) {
  db::execute(
      connection,
      "UPDATE facilities SET name = ?, kind = ?, capacity = ?, hourly_price_cents = ?, currency = ?, time_zone = ?, "
      "opening_hours = ?, is_active = ?, event_version = ?, updated_at = ? WHERE id = ?",
      f.name, f.kind, f.capacity, f.hourly_price_cents, f.currency, f.time_zone, f.opening_hours, f.is_active,
      f.event_version, f.updated_at, f.id);
}

std::optional<Facility> find_facility(db::Connection& connection, std::int64_t id) {
  return first_row(connection, std::string(kFacilitySelect) + "WHERE id = ?", read_facility, id);
}

std::vector<Facility> list_facilities(db::Connection& connection, bool active_only, std::int64_t offset, int limit,
                                      std::int64_t& total) {
  total = single_int(connection, "SELECT count(*) FROM facilities WHERE ?1 = 0 OR is_active = 1", active_only);
  return all_rows(connection,
                  std::string(kFacilitySelect) + "WHERE ?1 = 0 OR is_active = 1 ORDER BY id LIMIT ?2 OFFSET ?3",
                  read_facility, active_only, limit, offset);
}

// --- bookings --------------------------------------------------------------------------

void insert_booking(db::Connection& connection, Booking& b) {
  b.id =
      db::insert(connection,
                 "INSERT INTO bookings (facility_id, citizen_id, starts_at, ends_at, status, amount_cents, currency, "
                 "hold_expires_at, event_version, created_at, updated_at, client_digest) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 b.facility_id, b.citizen_id, b.starts_at, b.ends_at, b.status, b.amount_cents, b.currency,
                 b.hold_expires_at, b.event_version, b.created_at, b.updated_at, b.client_digest);
}

void update_booking(db::Connection& connection, const Booking& b) {
  db::execute(connection,
              "UPDATE bookings SET status = ?, hold_expires_at = ?, invoice_id = ?, payment_id = ?, cancel_reason = ?, "
              "event_version = ?, updated_at = ?, cancelled_by = ?, cancelled_by_id = ?, cancelled_at = ?, refund = ?, "
              "client_digest = ? WHERE id = ?",
              b.status, b.hold_expires_at, b.invoice_id, b.payment_id, b.cancel_reason, b.event_version, b.updated_at,
              b.cancelled_by, b.cancelled_by_id, b.cancelled_at, b.refund, b.client_digest, b.id);
}

std::optional<Booking> find_booking(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, std::string(kBookingSelect) + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
                   read_booking, id, scope.citizen_id);
}

std::optional<Booking> find_overlap(db::Connection& connection, std::int64_t facility_id, const std::string& starts_at,
                                    const std::string& ends_at) {
  // Bookings last at most a day: only those starting in the day before can overlap.
  return first_row(connection,
                   std::string(kBookingSelect) +
                       "WHERE facility_id = ?1 AND status <> 'cancelled' AND "
                       "starts_at > strftime('%Y-%m-%dT%H:%M:%fZ', ?3, '-1 day') AND starts_at < ?2 AND "
                       "?3 < ends_at LIMIT 1",
                   read_booking, facility_id, ends_at, starts_at);
}

std::vector<Booking> list_bookings(db::Connection& connection, const Scope& scope, const BookingFilter& filter,
                                   std::int64_t offset, int limit, std::int64_t& total) {
  const std::string where =
      "WHERE (?1 IS NULL OR citizen_id = ?1) AND (?2 IS NULL OR facility_id = ?2) AND (?3 IS NULL OR starts_at >= ?3) "
      "AND (?4 IS NULL OR starts_at < ?4) ";
  total = single_int(connection, "SELECT count(*) FROM bookings " + where, scope.citizen_id, filter.facility_id,
                     filter.from, filter.to);
  return all_rows(connection, std::string(kBookingSelect) + where + "ORDER BY starts_at, id LIMIT ?5 OFFSET ?6",
                  read_booking, scope.citizen_id, filter.facility_id, filter.from, filter.to, limit, offset);
}

std::vector<Booking> expired_holds(db::Connection& connection, const std::string& now, int limit) {
  return all_rows(connection,
                  std::string(kBookingSelect) +
                      "WHERE status = 'pending_payment' AND hold_expires_at <= ? "
                      "ORDER BY hold_expires_at LIMIT ?",
                  read_booking, now, limit);
}

std::optional<std::string> next_hold_expiry(db::Connection& connection) {
  auto query = connection.cached(
      "SELECT min(next) FROM (SELECT min(hold_expires_at) AS next FROM bookings WHERE status = 'pending_payment' "
      "UNION ALL SELECT min(hold_expires_at) FROM enrollments WHERE status = 'pending_payment')");
  query->executeStep();
  return db::optional_text(query->getColumn(0));
}

std::int64_t count_unpaid(db::Connection& connection, std::int64_t citizen_id) {
  return single_int(connection,
                    "SELECT (SELECT count(*) FROM bookings WHERE citizen_id = ?1 AND status = 'pending_payment') + "
                    "(SELECT count(*) FROM enrollments WHERE citizen_id = ?1 AND status = 'pending_payment')",
                    citizen_id);
}

std::int64_t count_unpaid_from(db::Connection& connection, const std::string& client_digest) {
  return single_int(connection,
                    "SELECT (SELECT count(*) FROM bookings WHERE client_digest = ?1 AND status = 'pending_payment') + "
                    "(SELECT count(*) FROM enrollments WHERE client_digest = ?1 AND status = 'pending_payment')",
                    client_digest);
}

std::optional<std::string> client_digest_key(db::Connection& connection) {
  return first_row(connection, "SELECT key FROM client_digest_key WHERE id = 1", db::text_column);  // BLOB bytes
}

void insert_client_digest_key(db::Connection& connection, const std::string& key) {
  db::execute(connection, "INSERT INTO client_digest_key (id, key) VALUES (1, ?)", db::blob(key));
}

std::int64_t count_active_of_kind(db::Connection& connection, std::int64_t citizen_id, const std::string& kind,
                                  const std::string& now) {
  return single_int(connection,
                    "SELECT count(*) FROM bookings b JOIN facilities f ON f.id = b.facility_id "
                    "WHERE b.citizen_id = ? AND b.status <> 'cancelled' AND b.ends_at > ? AND f.kind = ?",
                    citizen_id, now, kind);
}

// --- programs and enrollments ----------------------------------------------------------

void insert_program(db::Connection& connection, Program& p) {
  p.id = db::insert(
      connection,
      "INSERT INTO programs (facility_id, name, schedule, capacity, price_cents, currency, is_active, created_at, "
      "updated_at, starts_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      p.facility_id, p.name, p.schedule, p.capacity, p.price_cents, p.currency, p.is_active, p.created_at, p.updated_at,
      p.starts_at);
}

std::optional<Program> find_program(db::Connection& connection, std::int64_t id) {
  return first_row(connection, std::string(kProgramSelect) + "WHERE p.id = ?", read_program, id);
}

std::vector<Program> list_programs(db::Connection& connection, std::int64_t offset, int limit, std::int64_t& total) {
  total = single_int(connection, "SELECT count(*) FROM programs WHERE is_active = 1");
  return all_rows(connection, std::string(kProgramSelect) + "WHERE p.is_active = 1 ORDER BY p.id LIMIT ?1 OFFSET ?2",
                  read_program, limit, offset);
}

void insert_enrollment(db::Connection& connection, Enrollment& e) {
  e.id = db::insert(
      connection,
      "INSERT INTO enrollments (program_id, citizen_id, status, created_at, updated_at, amount_cents, currency, "
      "hold_expires_at, event_version, client_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      e.program_id, e.citizen_id, e.status, e.created_at, e.updated_at, e.amount_cents, e.currency, e.hold_expires_at,
      e.event_version, e.client_digest);
}

void update_enrollment(db::Connection& connection, const Enrollment& e) {
  db::execute(
      connection,
      "UPDATE enrollments SET status = ?, updated_at = ?, hold_expires_at = ?, invoice_id = ?, payment_id = ?, "
      "cancel_reason = ?, cancelled_by = ?, cancelled_by_id = ?, cancelled_at = ?, refund = ?, event_version = ?, "
      "amount_cents = ?, currency = ?, client_digest = ? WHERE id = ?",
      e.status, e.updated_at, e.hold_expires_at, e.invoice_id, e.payment_id, e.cancel_reason, e.cancelled_by,
      e.cancelled_by_id, e.cancelled_at, e.refund, e.event_version, e.amount_cents, e.currency, e.client_digest, e.id);
}

std::optional<Enrollment> find_enrollment(db::Connection& connection, std::int64_t id, const Scope& scope) {
  return first_row(connection, std::string(kEnrollmentSelect) + "WHERE e.id = ?1 AND (?2 IS NULL OR e.citizen_id = ?2)",
                   read_enrollment, id, scope.citizen_id);
}

std::optional<Enrollment> find_active_enrollment(db::Connection& connection, std::int64_t program_id,
                                                 std::int64_t citizen_id) {
  return first_row(
      connection,
      std::string(kEnrollmentSelect) + "WHERE e.program_id = ? AND e.citizen_id = ? AND e.status <> 'cancelled'",
      read_enrollment, program_id, citizen_id);
}

std::int64_t count_taken(db::Connection& connection, std::int64_t program_id) {
  return single_int(
      connection, "SELECT count(*) FROM enrollments WHERE program_id = ? AND status IN ('enrolled', 'pending_payment')",
      program_id);
}

std::optional<Enrollment> first_waitlisted(db::Connection& connection, std::int64_t program_id) {
  return first_row(
      connection,
      std::string(kEnrollmentSelect) + "WHERE e.program_id = ? AND e.status = 'waitlisted' ORDER BY e.id LIMIT 1",
      read_enrollment, program_id);
}

std::vector<Enrollment> expired_enrollment_holds(db::Connection& connection, const std::string& now, int limit) {
  return all_rows(connection,
                  std::string(kEnrollmentSelect) +
                      "WHERE e.status = 'pending_payment' AND e.hold_expires_at <= ? "
                      "ORDER BY e.hold_expires_at LIMIT ?",
                  read_enrollment, now, limit);
}

// --- citizen_refs ----------------------------------------------------------------------

std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id) {
  return first_row(
      connection,
      "SELECT citizen_id, name, email, is_active, event_version, last_synced_at, email_verified, identity_verified "
      "FROM citizen_refs WHERE citizen_id = ?",
      read_citizen_ref, citizen_id);
}

}  // namespace townhall::parks::store
