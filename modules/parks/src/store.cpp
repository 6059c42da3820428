#include "store.hpp"

namespace townhall::parks::store {
namespace {

using db::bind_optional;
using db::optional_int;
using db::optional_text;

constexpr const char* kFacilitySelect =
    "SELECT id, name, kind, capacity, hourly_price_cents, currency, time_zone, opening_hours, is_active, "
    "event_version, created_at, updated_at FROM facilities ";

Facility read_facility(SQLite::Statement& row) {
  Facility f;
  f.id = row.getColumn(0).getInt64();
  f.name = row.getColumn(1).getString();
  f.kind = row.getColumn(2).getString();
  f.capacity = row.getColumn(3).getInt64();
  f.hourly_price_cents = row.getColumn(4).getInt64();
  f.currency = row.getColumn(5).getString();
  f.time_zone = row.getColumn(6).getString();
  f.opening_hours = row.getColumn(7).getString();
  f.is_active = row.getColumn(8).getInt() != 0;
  f.event_version = row.getColumn(9).getInt64();
  f.created_at = row.getColumn(10).getString();
  f.updated_at = row.getColumn(11).getString();
  return f;
}

constexpr const char* kBookingSelect =
    "SELECT id, facility_id, citizen_id, starts_at, ends_at, status, amount_cents, currency, hold_expires_at, "
    "invoice_id, payment_id, cancel_reason, event_version, created_at, updated_at, cancelled_by, cancelled_by_id, "
    "cancelled_at, refund, client_digest FROM bookings ";

Booking read_booking(SQLite::Statement& row) {
  Booking b;
  b.id = row.getColumn(0).getInt64();
  b.facility_id = row.getColumn(1).getInt64();
  b.citizen_id = row.getColumn(2).getInt64();
  b.starts_at = row.getColumn(3).getString();
  b.ends_at = row.getColumn(4).getString();
  b.status = row.getColumn(5).getString();
  b.amount_cents = row.getColumn(6).getInt64();
  b.currency = row.getColumn(7).getString();
  b.hold_expires_at = optional_text(row.getColumn(8));
  b.invoice_id = optional_int(row.getColumn(9));
  b.payment_id = optional_int(row.getColumn(10));
  b.cancel_reason = optional_text(row.getColumn(11));
  b.event_version = row.getColumn(12).getInt64();
  b.created_at = row.getColumn(13).getString();
  b.updated_at = row.getColumn(14).getString();
  b.cancelled_by = optional_text(row.getColumn(15));
  b.cancelled_by_id = optional_int(row.getColumn(16));
  b.cancelled_at = optional_text(row.getColumn(17));
  b.refund = optional_text(row.getColumn(18));
  b.client_digest = optional_text(row.getColumn(19));
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
  p.id = row.getColumn(0).getInt64();
  p.facility_id = optional_int(row.getColumn(1));
  p.name = row.getColumn(2).getString();
  p.schedule = row.getColumn(3).getString();
  p.capacity = row.getColumn(4).getInt64();
  p.price_cents = row.getColumn(5).getInt64();
  p.currency = row.getColumn(6).getString();
  p.is_active = row.getColumn(7).getInt() != 0;
  p.created_at = row.getColumn(8).getString();
  p.updated_at = row.getColumn(9).getString();
  p.enrolled = row.getColumn(10).getInt64();
  p.waitlisted = row.getColumn(11).getInt64();
  p.starts_at = optional_text(row.getColumn(12));
  p.held = row.getColumn(13).getInt64();
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
  e.id = row.getColumn(0).getInt64();
  e.program_id = row.getColumn(1).getInt64();
  e.citizen_id = row.getColumn(2).getInt64();
  e.status = row.getColumn(3).getString();
  e.created_at = row.getColumn(4).getString();
  e.updated_at = row.getColumn(5).getString();
  e.waitlist_position = row.getColumn(6).getInt64();
  e.amount_cents = row.getColumn(7).getInt64();
  e.currency = row.getColumn(8).getString();
  e.hold_expires_at = optional_text(row.getColumn(9));
  e.invoice_id = optional_int(row.getColumn(10));
  e.payment_id = optional_int(row.getColumn(11));
  e.cancel_reason = optional_text(row.getColumn(12));
  e.cancelled_by = optional_text(row.getColumn(13));
  e.cancelled_by_id = optional_int(row.getColumn(14));
  e.cancelled_at = optional_text(row.getColumn(15));
  e.refund = optional_text(row.getColumn(16));
  e.event_version = row.getColumn(17).getInt64();
  e.client_digest = optional_text(row.getColumn(18));
  return e;
}

}  // namespace

// --- facilities ------------------------------------------------------------------------

void insert_facility(db::Connection& connection, Facility& f) {
  auto insert = connection.cached(
      "INSERT INTO facilities (name, kind, capacity, hourly_price_cents, currency, time_zone, opening_hours, "
      "is_active, event_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, f.name);
  insert->bind(2, f.kind);
  insert->bind(3, f.capacity);
  insert->bind(4, f.hourly_price_cents);
  insert->bind(5, f.currency);
  insert->bind(6, f.time_zone);
  insert->bind(7, f.opening_hours);
  insert->bind(8, f.is_active ? 1 : 0);
  insert->bind(9, f.event_version);
  insert->bind(10, f.created_at);
  insert->bind(11, f.updated_at);
  insert->exec();
  f.id = connection.sql().getLastInsertRowid();
}

void update_facility(db::Connection& connection, const Facility& f) {
  auto update = connection.cached(
      "UPDATE facilities SET name = ?, kind = ?, capacity = ?, hourly_price_cents = ?, currency = ?, time_zone = ?, "
      "opening_hours = ?, is_active = ?, event_version = ?, updated_at = ? WHERE id = ?");
  update->bind(1, f.name);
  update->bind(2, f.kind);
  update->bind(3, f.capacity);
  update->bind(4, f.hourly_price_cents);
  update->bind(5, f.currency);
  update->bind(6, f.time_zone);
  update->bind(7, f.opening_hours);
  update->bind(8, f.is_active ? 1 : 0);
  update->bind(9, f.event_version);
  update->bind(10, f.updated_at);
  update->bind(11, f.id);
  update->exec();
}

std::optional<Facility> find_facility(db::Connection& connection, std::int64_t id) {
  auto query = connection.cached(std::string(kFacilitySelect) + "WHERE id = ?");
  query->bind(1, id);
  if (!query->executeStep()) return std::nullopt;
  return read_facility(*query);
}

std::vector<Facility> list_facilities(db::Connection& connection, bool active_only, std::int64_t offset, int limit,
                                      std::int64_t& total) {
  auto count = connection.cached("SELECT count(*) FROM facilities WHERE ?1 = 0 OR is_active = 1");
  count->bind(1, active_only ? 1 : 0);
  count->executeStep();
  total = count->getColumn(0).getInt64();
  auto query =
      connection.cached(std::string(kFacilitySelect) + "WHERE ?1 = 0 OR is_active = 1 ORDER BY id LIMIT ?2 OFFSET ?3");
  query->bind(1, active_only ? 1 : 0);
  query->bind(2, limit);
  query->bind(3, offset);
  std::vector<Facility> out;
  while (query->executeStep()) out.push_back(read_facility(*query));
  return out;
}

// --- bookings --------------------------------------------------------------------------

void insert_booking(db::Connection& connection, Booking& b) {
  auto insert = connection.cached(
      "INSERT INTO bookings (facility_id, citizen_id, starts_at, ends_at, status, amount_cents, currency, "
      "hold_expires_at, event_version, created_at, updated_at, client_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?)");
  insert->bind(1, b.facility_id);
  insert->bind(2, b.citizen_id);
  insert->bind(3, b.starts_at);
  insert->bind(4, b.ends_at);
  insert->bind(5, b.status);
  insert->bind(6, b.amount_cents);
  insert->bind(7, b.currency);
  bind_optional(*insert, 8, b.hold_expires_at);
  insert->bind(9, b.event_version);
  insert->bind(10, b.created_at);
  insert->bind(11, b.updated_at);
  bind_optional(*insert, 12, b.client_digest);
  insert->exec();
  b.id = connection.sql().getLastInsertRowid();
}

void update_booking(db::Connection& connection, const Booking& b) {
  auto update = connection.cached(
      "UPDATE bookings SET status = ?, hold_expires_at = ?, invoice_id = ?, payment_id = ?, cancel_reason = ?, "
      "event_version = ?, updated_at = ?, cancelled_by = ?, cancelled_by_id = ?, cancelled_at = ?, refund = ?, "
      "client_digest = ? WHERE id = ?");
  update->bind(1, b.status);
  bind_optional(*update, 2, b.hold_expires_at);
  bind_optional(*update, 3, b.invoice_id);
  bind_optional(*update, 4, b.payment_id);
  bind_optional(*update, 5, b.cancel_reason);
  update->bind(6, b.event_version);
  update->bind(7, b.updated_at);
  bind_optional(*update, 8, b.cancelled_by);
  bind_optional(*update, 9, b.cancelled_by_id);
  bind_optional(*update, 10, b.cancelled_at);
  bind_optional(*update, 11, b.refund);
  bind_optional(*update, 12, b.client_digest);
  update->bind(13, b.id);
  update->exec();
}

std::optional<Booking> find_booking(db::Connection& connection, std::int64_t id, const Scope& scope) {
  auto query = connection.cached(std::string(kBookingSelect) + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)");
  query->bind(1, id);
  bind_optional(*query, 2, scope.citizen_id);
  if (!query->executeStep()) return std::nullopt;
  return read_booking(*query);
}

std::optional<Booking> find_overlap(db::Connection& connection, std::int64_t facility_id, const std::string& starts_at,
                                    const std::string& ends_at) {
  // Bookings last at most a day: only those starting in the day before can overlap.
  auto query = connection.cached(std::string(kBookingSelect) +
                                 "WHERE facility_id = ?1 AND status <> 'cancelled' AND "
                                 "starts_at > strftime('%Y-%m-%dT%H:%M:%fZ', ?3, '-1 day') AND starts_at < ?2 AND "
                                 "?3 < ends_at LIMIT 1");
  query->bind(1, facility_id);
  query->bind(2, ends_at);
  query->bind(3, starts_at);
  if (!query->executeStep()) return std::nullopt;
  return read_booking(*query);
}

std::vector<Booking> list_bookings(db::Connection& connection, const Scope& scope, const BookingFilter& filter,
                                   std::int64_t offset, int limit, std::int64_t& total) {
  const std::string where =
      "WHERE (?1 IS NULL OR citizen_id = ?1) AND (?2 IS NULL OR facility_id = ?2) AND (?3 IS NULL OR starts_at >= ?3) "
      "AND (?4 IS NULL OR starts_at < ?4) ";
  auto bind = [&](SQLite::Statement& statement) {
    bind_optional(statement, 1, scope.citizen_id);
    bind_optional(statement, 2, filter.facility_id);
    bind_optional(statement, 3, filter.from);
    bind_optional(statement, 4, filter.to);
  };
  auto count = connection.cached("SELECT count(*) FROM bookings " + where);
  bind(*count);
  count->executeStep();
  total = count->getColumn(0).getInt64();
  auto query = connection.cached(std::string(kBookingSelect) + where + "ORDER BY starts_at, id LIMIT ?5 OFFSET ?6");
  bind(*query);
  query->bind(5, limit);
  query->bind(6, offset);
  std::vector<Booking> out;
  while (query->executeStep()) out.push_back(read_booking(*query));
  return out;
}

std::vector<Booking> expired_holds(db::Connection& connection, const std::string& now, int limit) {
  auto query = connection.cached(std::string(kBookingSelect) +
                                 "WHERE status = 'pending_payment' AND hold_expires_at <= ? "
                                 "ORDER BY hold_expires_at LIMIT ?");
  query->bind(1, now);
  query->bind(2, limit);
  std::vector<Booking> out;
  while (query->executeStep()) out.push_back(read_booking(*query));
  return out;
}

std::optional<std::string> next_hold_expiry(db::Connection& connection) {
  auto query = connection.cached(
      "SELECT min(next) FROM (SELECT min(hold_expires_at) AS next FROM bookings WHERE status = 'pending_payment' "
      "UNION ALL SELECT min(hold_expires_at) FROM enrollments WHERE status = 'pending_payment')");
  query->executeStep();
  return optional_text(query->getColumn(0));
}

std::int64_t count_unpaid(db::Connection& connection, std::int64_t citizen_id) {
  auto query = connection.cached(
      "SELECT (SELECT count(*) FROM bookings WHERE citizen_id = ?1 AND status = 'pending_payment') + "
      "(SELECT count(*) FROM enrollments WHERE citizen_id = ?1 AND status = 'pending_payment')");
  query->bind(1, citizen_id);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

std::int64_t count_unpaid_from(db::Connection& connection, const std::string& client_digest) {
  auto query = connection.cached(
      "SELECT (SELECT count(*) FROM bookings WHERE client_digest = ?1 AND status = 'pending_payment') + "
      "(SELECT count(*) FROM enrollments WHERE client_digest = ?1 AND status = 'pending_payment')");
  query->bind(1, client_digest);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

std::optional<std::string> client_digest_key(db::Connection& connection) {
  auto query = connection.cached("SELECT key FROM client_digest_key WHERE id = 1");
  if (!query->executeStep()) return std::nullopt;
  const auto& column = query->getColumn(0);
  return std::string(static_cast<const char*>(column.getBlob()), static_cast<std::size_t>(column.getBytes()));
}

void insert_client_digest_key(db::Connection& connection, const std::string& key) {
  auto insert = connection.cached("INSERT INTO client_digest_key (id, key) VALUES (1, ?)");
  insert->bind(1, key.data(), static_cast<int>(key.size()));
  insert->exec();
}

std::int64_t count_active_of_kind(db::Connection& connection, std::int64_t citizen_id, const std::string& kind,
                                  const std::string& now) {
  auto query = connection.cached(
      "SELECT count(*) FROM bookings b JOIN facilities f ON f.id = b.facility_id "
      "WHERE b.citizen_id = ? AND b.status <> 'cancelled' AND b.ends_at > ? AND f.kind = ?");
  query->bind(1, citizen_id);
  query->bind(2, now);
  query->bind(3, kind);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

// --- programs and enrollments ----------------------------------------------------------

void insert_program(db::Connection& connection, Program& p) {
  auto insert = connection.cached(
      "INSERT INTO programs (facility_id, name, schedule, capacity, price_cents, currency, is_active, created_at, "
      "updated_at, starts_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  bind_optional(*insert, 1, p.facility_id);
  insert->bind(2, p.name);
  insert->bind(3, p.schedule);
  insert->bind(4, p.capacity);
  insert->bind(5, p.price_cents);
  insert->bind(6, p.currency);
  insert->bind(7, p.is_active ? 1 : 0);
  insert->bind(8, p.created_at);
  insert->bind(9, p.updated_at);
  bind_optional(*insert, 10, p.starts_at);
  insert->exec();
  p.id = connection.sql().getLastInsertRowid();
}

std::optional<Program> find_program(db::Connection& connection, std::int64_t id) {
  auto query = connection.cached(std::string(kProgramSelect) + "WHERE p.id = ?");
  query->bind(1, id);
  if (!query->executeStep()) return std::nullopt;
  return read_program(*query);
}

std::vector<Program> list_programs(db::Connection& connection, std::int64_t offset, int limit, std::int64_t& total) {
  auto count = connection.cached("SELECT count(*) FROM programs WHERE is_active = 1");
  count->executeStep();
  total = count->getColumn(0).getInt64();
  auto query =
      connection.cached(std::string(kProgramSelect) + "WHERE p.is_active = 1 ORDER BY p.id LIMIT ?1 OFFSET ?2");
  query->bind(1, limit);
  query->bind(2, offset);
  std::vector<Program> out;
  while (query->executeStep()) out.push_back(read_program(*query));
  return out;
}

void insert_enrollment(db::Connection& connection, Enrollment& e) {
  auto insert = connection.cached(
      "INSERT INTO enrollments (program_id, citizen_id, status, created_at, updated_at, amount_cents, currency, "
      "hold_expires_at, event_version, client_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, e.program_id);
  insert->bind(2, e.citizen_id);
  insert->bind(3, e.status);
  insert->bind(4, e.created_at);
  insert->bind(5, e.updated_at);
  insert->bind(6, e.amount_cents);
  insert->bind(7, e.currency);
  bind_optional(*insert, 8, e.hold_expires_at);
  insert->bind(9, e.event_version);
  bind_optional(*insert, 10, e.client_digest);
  insert->exec();
  e.id = connection.sql().getLastInsertRowid();
}

void update_enrollment(db::Connection& connection, const Enrollment& e) {
  auto update = connection.cached(
      "UPDATE enrollments SET status = ?, updated_at = ?, hold_expires_at = ?, invoice_id = ?, payment_id = ?, "
      "cancel_reason = ?, cancelled_by = ?, cancelled_by_id = ?, cancelled_at = ?, refund = ?, event_version = ?, "
      "amount_cents = ?, currency = ?, client_digest = ? WHERE id = ?");
  update->bind(1, e.status);
  update->bind(2, e.updated_at);
  bind_optional(*update, 3, e.hold_expires_at);
  bind_optional(*update, 4, e.invoice_id);
  bind_optional(*update, 5, e.payment_id);
  bind_optional(*update, 6, e.cancel_reason);
  bind_optional(*update, 7, e.cancelled_by);
  bind_optional(*update, 8, e.cancelled_by_id);
  bind_optional(*update, 9, e.cancelled_at);
  bind_optional(*update, 10, e.refund);
  update->bind(11, e.event_version);
  update->bind(12, e.amount_cents);
  update->bind(13, e.currency);
  bind_optional(*update, 14, e.client_digest);
  update->bind(15, e.id);
  update->exec();
}

std::optional<Enrollment> find_enrollment(db::Connection& connection, std::int64_t id, const Scope& scope) {
  auto query =
      connection.cached(std::string(kEnrollmentSelect) + "WHERE e.id = ?1 AND (?2 IS NULL OR e.citizen_id = ?2)");
  query->bind(1, id);
  bind_optional(*query, 2, scope.citizen_id);
  if (!query->executeStep()) return std::nullopt;
  return read_enrollment(*query);
}

std::optional<Enrollment> find_active_enrollment(db::Connection& connection, std::int64_t program_id,
                                                 std::int64_t citizen_id) {
  auto query = connection.cached(std::string(kEnrollmentSelect) +
                                 "WHERE e.program_id = ? AND e.citizen_id = ? AND e.status <> 'cancelled'");
  query->bind(1, program_id);
  query->bind(2, citizen_id);
  if (!query->executeStep()) return std::nullopt;
  return read_enrollment(*query);
}

std::int64_t count_taken(db::Connection& connection, std::int64_t program_id) {
  auto query = connection.cached(
      "SELECT count(*) FROM enrollments WHERE program_id = ? AND status IN ('enrolled', 'pending_payment')");
  query->bind(1, program_id);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

std::optional<Enrollment> first_waitlisted(db::Connection& connection, std::int64_t program_id) {
  auto query = connection.cached(std::string(kEnrollmentSelect) +
                                 "WHERE e.program_id = ? AND e.status = 'waitlisted' ORDER BY e.id LIMIT 1");
  query->bind(1, program_id);
  if (!query->executeStep()) return std::nullopt;
  return read_enrollment(*query);
}

std::vector<Enrollment> expired_enrollment_holds(db::Connection& connection, const std::string& now, int limit) {
  auto query = connection.cached(std::string(kEnrollmentSelect) +
                                 "WHERE e.status = 'pending_payment' AND e.hold_expires_at <= ? "
                                 "ORDER BY e.hold_expires_at LIMIT ?");
  query->bind(1, now);
  query->bind(2, limit);
  std::vector<Enrollment> out;
  while (query->executeStep()) out.push_back(read_enrollment(*query));
  return out;
}

// --- citizen_refs ----------------------------------------------------------------------

std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id) {
  auto query = connection.cached(
      "SELECT citizen_id, name, email, is_active, event_version, last_synced_at, email_verified, identity_verified "
      "FROM citizen_refs WHERE citizen_id = ?");
  query->bind(1, citizen_id);
  if (!query->executeStep()) return std::nullopt;
  CitizenRef r;
  r.citizen_id = query->getColumn(0).getInt64();
  r.name = optional_text(query->getColumn(1));
  r.email = optional_text(query->getColumn(2));
  r.is_active = query->getColumn(3).getInt() != 0;
  r.event_version = query->getColumn(4).getInt64();
  r.last_synced_at = query->getColumn(5).getString();
  r.email_verified = query->getColumn(6).getInt() != 0;
  r.identity_verified = query->getColumn(7).getInt() != 0;
  return r;
}

}  // namespace townhall::parks::store
