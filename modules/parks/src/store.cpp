#include "store.hpp"

#include <date/tz.h>

#include "townhall/platform/row.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::parks::store {
namespace {

using db::all_rows, db::first_row, db::single_int;

// The day `starts_at` (UTC text) falls on in `time_zone`; nullopt when either is unreadable
// (such a booking counts in no report day; the check still compares the sums with it).
std::optional<std::string> local_day(const std::string& time_zone, const std::string& starts_at) {
  auto at = utc::parse(starts_at);
  if (!at) return std::nullopt;
  try {
    auto local = date::locate_zone(time_zone)->to_local(*at);
    return date::format("%F", date::floor<date::days>(local));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// parks.db's rows as the selects below read them, each column beside its member.
constexpr auto kFacilities = db::columns<Facility>(
    "facilities", "id", &Facility::id, "name", &Facility::name, "kind", &Facility::kind, "capacity",
    &Facility::capacity, "hourly_price_cents", &Facility::hourly_price_cents, "currency", &Facility::currency,
    "time_zone", &Facility::time_zone, "opening_hours", &Facility::opening_hours, "is_active", &Facility::is_active,
    "event_version", &Facility::event_version, "created_at", &Facility::created_at, "updated_at",
    &Facility::updated_at);

constexpr auto kBookings = db::columns<Booking>(
    "bookings", "id", &Booking::id, "facility_id", &Booking::facility_id, "citizen_id", &Booking::citizen_id,
    "starts_at", &Booking::starts_at, "ends_at", &Booking::ends_at, "status", &Booking::status, "amount_cents",
    &Booking::amount_cents, "currency", &Booking::currency, "hold_expires_at", &Booking::hold_expires_at, "invoice_id",
    &Booking::invoice_id, "payment_id", &Booking::payment_id, "cancel_reason", &Booking::cancel_reason, "event_version",
    &Booking::event_version, "created_at", &Booking::created_at, "updated_at", &Booking::updated_at, "cancelled_by",
    &Booking::cancelled_by, "cancelled_by_id", &Booking::cancelled_by_id, "cancelled_at", &Booking::cancelled_at,
    "refund", &Booking::refund, "client_digest", &Booking::client_digest, "no_show_at", &Booking::no_show_at);

// A program with the counts of its places by state.
constexpr auto kPrograms = db::columns<Program>(
    "programs p", "p.id", &Program::id, "p.facility_id", &Program::facility_id, "p.name", &Program::name, "p.schedule",
    &Program::schedule, "p.capacity", &Program::capacity, "p.price_cents", &Program::price_cents, "p.currency",
    &Program::currency, "p.is_active", &Program::is_active, "p.created_at", &Program::created_at, "p.updated_at",
    &Program::updated_at, "(SELECT count(*) FROM enrollments e WHERE e.program_id = p.id AND e.status = 'enrolled')",
    &Program::enrolled, "(SELECT count(*) FROM enrollments e WHERE e.program_id = p.id AND e.status = 'waitlisted')",
    &Program::waitlisted, "p.starts_at", &Program::starts_at,
    "(SELECT count(*) FROM enrollments e WHERE e.program_id = p.id AND e.status = 'pending_payment')", &Program::held);

// An enrollment with its place in the waitlist (0 when not waitlisted).
constexpr auto kEnrollments = db::columns<Enrollment>(
    "enrollments e", "e.id", &Enrollment::id, "e.program_id", &Enrollment::program_id, "e.citizen_id",
    &Enrollment::citizen_id, "e.status", &Enrollment::status, "e.created_at", &Enrollment::created_at, "e.updated_at",
    &Enrollment::updated_at,
    "CASE WHEN e.status = 'waitlisted' THEN (SELECT count(*) FROM enrollments w WHERE w.program_id = e.program_id "
    "AND w.status = 'waitlisted' AND w.id <= e.id) ELSE 0 END",
    &Enrollment::waitlist_position, "e.amount_cents", &Enrollment::amount_cents, "e.currency", &Enrollment::currency,
    "e.hold_expires_at", &Enrollment::hold_expires_at, "e.invoice_id", &Enrollment::invoice_id, "e.payment_id",
    &Enrollment::payment_id, "e.cancel_reason", &Enrollment::cancel_reason, "e.cancelled_by", &Enrollment::cancelled_by,
    "e.cancelled_by_id", &Enrollment::cancelled_by_id, "e.cancelled_at", &Enrollment::cancelled_at, "e.refund",
    &Enrollment::refund, "e.event_version", &Enrollment::event_version, "e.client_digest", &Enrollment::client_digest);

constexpr auto kCitizenRefs =
    db::columns<CitizenRef>("citizen_refs", "citizen_id", &CitizenRef::citizen_id, "name", &CitizenRef::name, "email",
                            &CitizenRef::email, "is_active", &CitizenRef::is_active, "event_version",
                            &CitizenRef::event_version, "last_synced_at", &CitizenRef::last_synced_at, "email_verified",
                            &CitizenRef::email_verified, "identity_verified", &CitizenRef::identity_verified);

// Places (`alias`: the select's table alias and a dot) whose payment hold ended by `now`,
// the oldest first.
template <class Columns>
auto expired(db::Connection& connection, const Columns& columns, const std::string& alias, const std::string& now,
             int limit) {
  return all_rows(connection,
                  columns.select() + "WHERE " + alias + "status = 'pending_payment' AND " + alias +
                      "hold_expires_at <= ? ORDER BY " + alias + "hold_expires_at LIMIT ?",
                  columns.reader(), now, limit);
}

}  // namespace

// --- facilities ------------------------------------------------------------------------

void insert_facility(db::Connection& connection, Facility& f) {
  f.id = db::insert_row(connection, "facilities", "name", f.name, "kind", f.kind, "capacity", f.capacity,
                        "hourly_price_cents", f.hourly_price_cents, "currency", f.currency, "time_zone", f.time_zone,
                        "opening_hours", f.opening_hours, "is_active", f.is_active, "event_version", f.event_version,
                        "created_at", f.created_at, "updated_at", f.updated_at);
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
  return first_row(connection, kFacilities.select() + "WHERE id = ?", kFacilities.reader(), id);
}

std::vector<Facility> list_facilities(db::Connection& connection, bool active_only,
                                      const std::optional<PageAfter>& after, int limit) {
  db::Filter where;
  if (active_only) where.add("is_active = 1");
  if (after) where.add("id > ?", {after->id});
  return db::filtered_rows(connection, kFacilities.select(), where, "ORDER BY id", limit, kFacilities.reader());
}

std::int64_t count_facilities(db::Connection& connection, bool active_only) {
  db::Filter where;
  if (active_only) where.add("is_active = 1");
  return db::filtered_count(connection, "FROM facilities", where);
}

// --- bookings --------------------------------------------------------------------------

void insert_booking(db::Connection& connection, Booking& b) {
  // The report's day (migration 0008), in the facility's zone: one row by its key.
  std::optional<std::string> day;
  if (auto facility = find_facility(connection, b.facility_id)) day = local_day(facility->time_zone, b.starts_at);
  b.id =
      db::insert_row(connection, "bookings", "facility_id", b.facility_id, "citizen_id", b.citizen_id, "starts_at",
                     b.starts_at, "ends_at", b.ends_at, "status", b.status, "amount_cents", b.amount_cents, "currency",
                     b.currency, "hold_expires_at", b.hold_expires_at, "event_version", b.event_version, "created_at",
                     b.created_at, "updated_at", b.updated_at, "client_digest", b.client_digest, "local_day", day);
}

std::int64_t set_local_days(db::Connection& connection, std::optional<std::int64_t> facility_id) {
  auto rows = facility_id ? connection.prepare(
                                "SELECT b.id, b.starts_at, f.time_zone FROM bookings b JOIN facilities f ON f.id = "
                                "b.facility_id WHERE b.facility_id = ?")
                          : connection.prepare(
                                "SELECT b.id, b.starts_at, f.time_zone FROM bookings b JOIN facilities f ON f.id = "
                                "b.facility_id WHERE b.local_day IS NULL");
  if (facility_id) db::bind_params(rows, *facility_id);
  std::vector<std::pair<std::int64_t, std::optional<std::string>>> days;
  while (rows.executeStep())
    days.emplace_back(rows.getColumn(0).getInt64(),
                      local_day(rows.getColumn(2).getString(), rows.getColumn(1).getString()));
  rows.reset();
  for (const auto& [id, day] : days) db::execute(connection, "UPDATE bookings SET local_day = ? WHERE id = ?", day, id);
  return static_cast<std::int64_t>(days.size());
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
  return first_row(connection, kBookings.select() + "WHERE id = ?1 AND (?2 IS NULL OR citizen_id = ?2)",
                   kBookings.reader(), id, scope.citizen_id);
}

std::optional<Booking> find_overlap(db::Connection& connection, std::int64_t facility_id, const std::string& starts_at,
                                    const std::string& ends_at) {
  // Bookings last at most a day: only those starting in the day before can overlap.
  return first_row(connection,
                   kBookings.select() +
                       "WHERE facility_id = ?1 AND status <> 'cancelled' AND "
                       "starts_at > strftime('%Y-%m-%dT%H:%M:%fZ', ?3, '-1 day') AND starts_at < ?2 AND "
                       "?3 < ends_at LIMIT 1",
                   kBookings.reader(), facility_id, ends_at, starts_at);
}

db::KeysetList<Booking> bookings(const Scope& scope, const BookingFilter& filter) {
  db::KeysetList<Booking> list{.select = kBookings.select(),
                               .from = "FROM bookings",
                               .past = "(starts_at, id) > (?, ?)",
                               .order = "ORDER BY starts_at, id",
                               .read = kBookings.reader(),
                               .key_of = [](const Booking& booking) { return booking.starts_at; }};
  list.where.add_if(scope.citizen_id, "citizen_id = ?");
  list.where.add_if(filter.facility_id, "facility_id = ?");
  list.where.add_if(filter.from, "starts_at >= ?");
  list.where.add_if(filter.to, "starts_at < ?");
  return list;
}

std::vector<Booking> expired_holds(db::Connection& connection, const std::string& now, int limit) {
  return expired(connection, kBookings, "", now, limit);
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
  p.id = db::insert_row(connection, "programs", "facility_id", p.facility_id, "name", p.name, "schedule", p.schedule,
                        "capacity", p.capacity, "price_cents", p.price_cents, "currency", p.currency, "is_active",
                        p.is_active, "created_at", p.created_at, "updated_at", p.updated_at, "starts_at", p.starts_at);
}

std::optional<Program> find_program(db::Connection& connection, std::int64_t id) {
  return first_row(connection, kPrograms.select() + "WHERE p.id = ?", kPrograms.reader(), id);
}

std::vector<Program> list_programs(db::Connection& connection, const std::optional<PageAfter>& after, int limit) {
  db::Filter where;
  where.add("p.is_active = 1");
  if (after) where.add("p.id > ?", {after->id});
  return db::filtered_rows(connection, kPrograms.select(), where, "ORDER BY p.id", limit, kPrograms.reader());
}

std::int64_t count_programs(db::Connection& connection) {
  return db::filtered_count(connection, "FROM programs", db::Filter().add("is_active = 1"));
}

void insert_enrollment(db::Connection& connection, Enrollment& e) {
  e.id = db::insert_row(connection, "enrollments", "program_id", e.program_id, "citizen_id", e.citizen_id, "status",
                        e.status, "created_at", e.created_at, "updated_at", e.updated_at, "amount_cents",
                        e.amount_cents, "currency", e.currency, "hold_expires_at", e.hold_expires_at, "event_version",
                        e.event_version, "client_digest", e.client_digest);
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
  return first_row(connection, kEnrollments.select() + "WHERE e.id = ?1 AND (?2 IS NULL OR e.citizen_id = ?2)",
                   kEnrollments.reader(), id, scope.citizen_id);
}

std::optional<Enrollment> find_active_enrollment(db::Connection& connection, std::int64_t program_id,
                                                 std::int64_t citizen_id) {
  return first_row(connection,
                   kEnrollments.select() + "WHERE e.program_id = ? AND e.citizen_id = ? AND e.status <> 'cancelled'",
                   kEnrollments.reader(), program_id, citizen_id);
}

db::KeysetList<Enrollment> enrollments(const Scope& scope, const EnrollmentFilter& filter) {
  db::KeysetList<Enrollment> list{.select = kEnrollments.select(),
                                  .from = "FROM enrollments e",
                                  .past = "e.id > ?",
                                  .order = "ORDER BY e.id",
                                  .read = kEnrollments.reader()};
  list.where.add_if(scope.citizen_id, "e.citizen_id = ?");
  list.where.add_if(filter.program_id, "e.program_id = ?");
  return list;
}

std::int64_t count_taken(db::Connection& connection, std::int64_t program_id) {
  return single_int(
      connection, "SELECT count(*) FROM enrollments WHERE program_id = ? AND status IN ('enrolled', 'pending_payment')",
      program_id);
}

std::optional<Enrollment> first_waitlisted(db::Connection& connection, std::int64_t program_id) {
  return first_row(connection,
                   kEnrollments.select() + "WHERE e.program_id = ? AND e.status = 'waitlisted' ORDER BY e.id LIMIT 1",
                   kEnrollments.reader(), program_id);
}

std::vector<Enrollment> expired_enrollment_holds(db::Connection& connection, const std::string& now, int limit) {
  return expired(connection, kEnrollments, "e.", now, limit);
}

// --- citizen_refs ----------------------------------------------------------------------

std::optional<CitizenRef> find_citizen_ref(db::Connection& connection, std::int64_t citizen_id) {
  return first_row(connection, kCitizenRefs.select() + "WHERE citizen_id = ?", kCitizenRefs.reader(), citizen_id);
}

void each_booking_day(db::Connection& connection, const std::string& first_day, const std::string& last_day,
                      std::optional<std::int64_t> facility_id, const std::function<void(const BookingDay&)>& use) {
  // Two statements, not "?3 IS NULL OR": a facility's report searches its own days by key.
  constexpr const char* kColumns =
      "SELECT facility_id, day, bookings, booked_ms, no_shows, cancelled_by_citizen, cancelled_by_staff, expired "
      "FROM booking_days ";
  auto query = facility_id
                   ? connection.prepare(std::string(kColumns) + "WHERE facility_id = ?3 AND day >= ?1 AND day <= ?2")
                   : connection.prepare(std::string(kColumns) + "WHERE day >= ?1 AND day <= ?2");
  if (facility_id)
    db::bind_params(query, first_day, last_day, *facility_id);
  else
    db::bind_params(query, first_day, last_day);
  BookingDay row;
  while (query.executeStep()) {
    db::read_columns(query, row.facility_id, row.day, row.bookings, row.booked_ms, row.no_shows,
                     row.cancelled_by_citizen, row.cancelled_by_staff, row.expired);
    use(row);
  }
}

// Migration 0008's sums, over the rows.
const char* const kBookingDaysFromRows =
    "SELECT facility_id, local_day, sum(status = 'confirmed'), sum(CASE WHEN status = 'confirmed' THEN "
    "CAST(round((julianday(ends_at) - julianday(starts_at)) * 86400000.0) AS INTEGER) ELSE 0 END), "
    "sum(status = 'confirmed' AND no_show_at IS NOT NULL), sum(status = 'cancelled' AND cancelled_by IS 'citizen'), "
    "sum(status = 'cancelled' AND cancelled_by IS 'staff'), sum(status = 'cancelled' AND cancelled_by IS NOT "
    "'citizen' AND cancelled_by IS NOT 'staff') FROM bookings WHERE local_day IS NOT NULL AND status IN "
    "('confirmed', 'cancelled') GROUP BY 1, 2";

void each_active_booking(db::Connection& connection, std::int64_t facility_id, const std::string& start,
                         const std::string& end,
                         const std::function<void(const std::string& starts_at, const std::string& ends_at)>& use) {
  auto query = connection.prepare(
      "SELECT starts_at, ends_at FROM bookings WHERE facility_id = ?1 AND status <> 'cancelled' AND "
      "starts_at > strftime('%Y-%m-%dT%H:%M:%fZ', ?2, '-1 day') AND starts_at < ?3 AND ?2 < ends_at "
      "ORDER BY starts_at");
  db::bind_params(query, facility_id, start, end);
  std::string starts_at, ends_at;
  while (query.executeStep()) {
    db::read_columns(query, starts_at, ends_at);
    use(starts_at, ends_at);
  }
}

bool mark_no_show(db::Connection& connection, std::int64_t id, std::int64_t by, const std::string& at) {
  return db::execute(connection,
                     "UPDATE bookings SET no_show_at = ?, no_show_by = ? WHERE id = ? AND status = 'confirmed' AND "
                     "no_show_at IS NULL",
                     at, by, id) > 0;
}

}  // namespace townhall::parks::store
