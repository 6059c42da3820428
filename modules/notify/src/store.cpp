#include "store.hpp"

#include "townhall/platform/row.hpp"

namespace townhall::notify::store {
namespace {

// notify.db's rows: what each select reads, column name beside member.
constexpr auto kNotifications =
    db::columns<Notification>("notifications", "id", &Notification::id, "citizen_id", &Notification::citizen_id, "kind",
                              &Notification::kind, "title", &Notification::title, "body", &Notification::body,
                              "created_at", &Notification::created_at, "read_at", &Notification::read_at);

constexpr auto kDeliveries = db::columns<Delivery>(
    "deliveries", "id", &Delivery::id, "notification_id", &Delivery::notification_id, "secret_ref",
    &Delivery::secret_ref, "message_id", &Delivery::message_id, "to_address", &Delivery::to_address, "subject",
    &Delivery::subject, "body", &Delivery::body, "status", &Delivery::status, "attempts", &Delivery::attempts,
    "next_attempt_at", &Delivery::next_attempt_at, "last_error", &Delivery::last_error, "created_at",
    &Delivery::created_at, "sent_at", &Delivery::sent_at);

constexpr auto kReminders = db::columns<LicenseReminder>(
    "license_reminders", "license_id", &LicenseReminder::license_id, "citizen_id", &LicenseReminder::citizen_id,
    "business_name", &LicenseReminder::business_name, "term", &LicenseReminder::term, "expires_at",
    &LicenseReminder::expires_at, "due_at", &LicenseReminder::due_at);

// The first column of the first row, when it is not NULL.
std::optional<std::string> optional_first(db::Connection& connection, std::string_view sql, std::int64_t param) {
  auto value = db::first_row(
      connection, sql, [](SQLite::Statement& row) { return db::optional_text(row.getColumn(0)); }, param);
  return value ? *value : std::nullopt;
}

}  // namespace

std::optional<std::int64_t> insert_notification(db::Connection& connection, const Notification& n,
                                                const std::string& source_event) {
  auto inserted = db::execute(
      connection,
      "INSERT INTO notifications (citizen_id, kind, title, body, source_event, created_at) VALUES (?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (source_event, citizen_id, kind) DO NOTHING",
      n.citizen_id, n.kind, n.title, n.body, source_event, n.created_at);
  if (inserted == 0) return std::nullopt;
  return connection.sql().getLastInsertRowid();
}

std::vector<Notification> list_inbox(db::Connection& connection, std::int64_t citizen_id, std::int64_t before,
                                     int limit, bool unread_only) {
  return db::all_rows(connection,
                      kNotifications.select() +
                          "WHERE citizen_id = ?1 AND (?2 = 0 OR id < ?2) AND (?3 = 0 OR read_at IS NULL) "
                          "ORDER BY id DESC LIMIT ?4",
                      kNotifications.reader(), citizen_id, before, unread_only, limit);
}

std::int64_t count_unread(db::Connection& connection, std::int64_t citizen_id) {
  return db::single_int(connection, "SELECT count(*) FROM notifications WHERE citizen_id = ? AND read_at IS NULL",
                        citizen_id);
}

std::optional<Notification> find_notification(db::Connection& connection, std::int64_t citizen_id, std::int64_t id) {
  return db::first_row(connection, kNotifications.select() + "WHERE id = ? AND citizen_id = ?", kNotifications.reader(),
                       id, citizen_id);
}

void mark_read(db::Connection& connection, std::int64_t citizen_id, std::int64_t id, const std::string& now) {
  db::execute(connection, "UPDATE notifications SET read_at = ? WHERE id = ? AND citizen_id = ? AND read_at IS NULL",
              now, id, citizen_id);
}

std::map<std::string, bool> email_preferences(db::Connection& connection, std::int64_t citizen_id) {
  auto rows = db::all_rows(
      connection, "SELECT kind, email FROM preferences WHERE citizen_id = ?",
      [](SQLite::Statement& row) {
        return std::pair{row.getColumn(0).getString(), row.getColumn(1).getInt() != 0};
      },
      citizen_id);
  return {rows.begin(), rows.end()};
}

bool wants_email(db::Connection& connection, std::int64_t citizen_id, const std::string& kind) {
  auto email = db::first_row(connection, "SELECT email FROM preferences WHERE citizen_id = ? AND kind = ?",
                             db::int_column, citizen_id, kind);
  return !email || *email != 0;
}

void set_email_preference(db::Connection& connection, std::int64_t citizen_id, const std::string& kind, bool email,
                          const std::string& now) {
  db::execute(connection,
              "INSERT INTO preferences (citizen_id, kind, email, updated_at) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (citizen_id, kind) DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at",
              citizen_id, kind, email, now);
}

std::optional<std::string> mail_address(db::Connection& connection, std::int64_t citizen_id) {
  return optional_first(connection,
                        "SELECT email FROM citizen_refs WHERE citizen_id = ? AND is_active = 1 AND "
                        "email_verified = 1 AND email IS NOT NULL AND email <> ''",
                        citizen_id);
}

void insert_delivery(db::Connection& connection, const Delivery& d) {
  db::execute(connection,
              "INSERT INTO deliveries (notification_id, secret_ref, message_id, to_address, subject, body, status, "
              "attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) "
              "ON CONFLICT (message_id) DO NOTHING",
              d.notification_id, d.secret_ref, d.message_id, d.to_address, d.subject, d.body, d.next_attempt_at,
              d.created_at);
}

std::vector<Delivery> due_deliveries(db::Connection& connection, const std::string& now, int limit) {
  return db::all_rows(connection,
                      kDeliveries.select() +
                          "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id "
                          "LIMIT ?",
                      kDeliveries.reader(), now, limit);
}

std::optional<std::string> next_delivery_at(db::Connection& connection) {
  auto next = db::first_row(connection, "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'",
                            [](SQLite::Statement& row) { return db::optional_text(row.getColumn(0)); });
  return next ? *next : std::nullopt;
}

bool mark_sent(db::Connection& connection, std::int64_t id, std::int64_t attempts, const std::string& now) {
  return db::execute(connection,
                     "UPDATE deliveries SET status = 'sent', attempts = ?, sent_at = ?, last_error = NULL "
                     "WHERE id = ? AND status = 'pending'",
                     attempts, now, id) > 0;
}

bool mark_attempt_failed(db::Connection& connection, std::int64_t id, std::int64_t attempts, const std::string& error,
                         const std::optional<std::string>& next_attempt_at) {
  return db::execute(connection,
                     "UPDATE deliveries SET attempts = ?1, last_error = ?2, "
                     "status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END, "
                     "next_attempt_at = coalesce(?3, next_attempt_at) WHERE id = ?4 AND status = 'pending'",
                     attempts, error, next_attempt_at, id) > 0;
}

void upsert_reminder(db::Connection& connection, const LicenseReminder& r) {
  db::execute(connection,
              "INSERT INTO license_reminders (license_id, citizen_id, business_name, term, expires_at, due_at) "
              "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (license_id) DO UPDATE SET citizen_id = excluded.citizen_id, "
              "business_name = excluded.business_name, term = excluded.term, expires_at = excluded.expires_at, "
              "due_at = excluded.due_at WHERE excluded.term >= license_reminders.term",
              r.license_id, r.citizen_id, r.business_name, r.term, r.expires_at, r.due_at);
}

void delete_reminder(db::Connection& connection, std::int64_t license_id, std::optional<std::int64_t> term) {
  db::execute(connection, "DELETE FROM license_reminders WHERE license_id = ?1 AND (?2 IS NULL OR term = ?2)",
              license_id, term);
}

std::vector<LicenseReminder> due_reminders(db::Connection& connection, const std::string& now, int limit) {
  return db::all_rows(connection, kReminders.select() + "WHERE due_at <= ? ORDER BY due_at LIMIT ?",
                      kReminders.reader(), now, limit);
}

std::optional<std::string> next_reminder_at(db::Connection& connection) {
  auto next = db::first_row(connection, "SELECT min(due_at) FROM license_reminders",
                            [](SQLite::Statement& row) { return db::optional_text(row.getColumn(0)); });
  return next ? *next : std::nullopt;
}

}  // namespace townhall::notify::store
