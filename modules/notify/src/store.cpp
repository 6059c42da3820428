#include "store.hpp"

namespace townhall::notify::store {
namespace {

using db::bind_optional;
using db::optional_text;

constexpr const char* kNotificationSelect =
    "SELECT id, citizen_id, kind, title, body, created_at, read_at FROM notifications ";

Notification read_notification(SQLite::Statement& row) {
  return {row.getColumn(0).getInt64(),    row.getColumn(1).getInt64(),  row.getColumn(2).getString(),
          row.getColumn(3).getString(),   row.getColumn(4).getString(), row.getColumn(5).getString(),
          optional_text(row.getColumn(6))};
}

constexpr const char* kDeliverySelect =
    "SELECT id, notification_id, message_id, to_address, subject, body, status, attempts, next_attempt_at, "
    "last_error, created_at, sent_at FROM deliveries ";

Delivery read_delivery(SQLite::Statement& row) {
  Delivery d;
  d.id = row.getColumn(0).getInt64();
  d.notification_id = row.getColumn(1).getInt64();
  d.message_id = row.getColumn(2).getString();
  d.to_address = row.getColumn(3).getString();
  d.subject = row.getColumn(4).getString();
  d.body = row.getColumn(5).getString();
  d.status = row.getColumn(6).getString();
  d.attempts = row.getColumn(7).getInt64();
  d.next_attempt_at = row.getColumn(8).getString();
  d.last_error = optional_text(row.getColumn(9));
  d.created_at = row.getColumn(10).getString();
  d.sent_at = optional_text(row.getColumn(11));
  return d;
}

std::optional<std::string> first_text(db::CachedStatement& query) {
  if (!query->executeStep() || query->getColumn(0).isNull()) return std::nullopt;
  return query->getColumn(0).getString();
}

}  // namespace

std::optional<std::int64_t> insert_notification(db::Connection& connection, const Notification& n,
                                                const std::string& source_event) {
  auto insert = connection.cached(
      "INSERT INTO notifications (citizen_id, kind, title, body, source_event, created_at) VALUES (?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (source_event, citizen_id, kind) DO NOTHING");
  insert->bind(1, n.citizen_id);
  insert->bind(2, n.kind);
  insert->bind(3, n.title);
  insert->bind(4, n.body);
  insert->bind(5, source_event);
  insert->bind(6, n.created_at);
  if (insert->exec() == 0) return std::nullopt;
  return connection.sql().getLastInsertRowid();
}

std::vector<Notification> list_inbox(db::Connection& connection, std::int64_t citizen_id, std::int64_t before,
                                     int limit, bool unread_only) {
  auto query = connection.cached(std::string(kNotificationSelect) +
                                 "WHERE citizen_id = ?1 AND (?2 = 0 OR id < ?2) AND (?3 = 0 OR read_at IS NULL) "
                                 "ORDER BY id DESC LIMIT ?4");
  query->bind(1, citizen_id);
  query->bind(2, before);
  query->bind(3, unread_only ? 1 : 0);
  query->bind(4, limit);
  std::vector<Notification> out;
  while (query->executeStep()) out.push_back(read_notification(*query));
  return out;
}

std::int64_t count_unread(db::Connection& connection, std::int64_t citizen_id) {
  auto query = connection.cached("SELECT count(*) FROM notifications WHERE citizen_id = ? AND read_at IS NULL");
  query->bind(1, citizen_id);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

std::optional<Notification> find_notification(db::Connection& connection, std::int64_t citizen_id, std::int64_t id) {
  auto query = connection.cached(std::string(kNotificationSelect) + "WHERE id = ? AND citizen_id = ?");
  query->bind(1, id);
  query->bind(2, citizen_id);
  if (!query->executeStep()) return std::nullopt;
  return read_notification(*query);
}

void mark_read(db::Connection& connection, std::int64_t citizen_id, std::int64_t id, const std::string& now) {
  auto update =
      connection.cached("UPDATE notifications SET read_at = ? WHERE id = ? AND citizen_id = ? AND read_at IS NULL");
  update->bind(1, now);
  update->bind(2, id);
  update->bind(3, citizen_id);
  update->exec();
}

std::map<std::string, bool> email_preferences(db::Connection& connection, std::int64_t citizen_id) {
  auto query = connection.cached("SELECT kind, email FROM preferences WHERE citizen_id = ?");
  query->bind(1, citizen_id);
  std::map<std::string, bool> out;
  while (query->executeStep()) out[query->getColumn(0).getString()] = query->getColumn(1).getInt() != 0;
  return out;
}

bool wants_email(db::Connection& connection, std::int64_t citizen_id, const std::string& kind) {
  auto query = connection.cached("SELECT email FROM preferences WHERE citizen_id = ? AND kind = ?");
  query->bind(1, citizen_id);
  query->bind(2, kind);
  return !query->executeStep() || query->getColumn(0).getInt() != 0;
}

void set_email_preference(db::Connection& connection, std::int64_t citizen_id, const std::string& kind, bool email,
                          const std::string& now) {
  auto upsert = connection.cached(
      "INSERT INTO preferences (citizen_id, kind, email, updated_at) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (citizen_id, kind) DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at");
  upsert->bind(1, citizen_id);
  upsert->bind(2, kind);
  upsert->bind(3, email ? 1 : 0);
  upsert->bind(4, now);
  upsert->exec();
}

std::optional<std::string> mail_address(db::Connection& connection, std::int64_t citizen_id) {
  auto query = connection.cached(
      "SELECT email FROM citizen_refs WHERE citizen_id = ? AND is_active = 1 AND email_verified = 1 AND "
      "email IS NOT NULL AND email <> ''");
  query->bind(1, citizen_id);
  return first_text(query);
}

void insert_delivery(db::Connection& connection, const Delivery& d) {
  auto insert = connection.cached(
      "INSERT INTO deliveries (notification_id, message_id, to_address, subject, body, status, attempts, "
      "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)");
  insert->bind(1, d.notification_id);
  insert->bind(2, d.message_id);
  insert->bind(3, d.to_address);
  insert->bind(4, d.subject);
  insert->bind(5, d.body);
  insert->bind(6, d.next_attempt_at);
  insert->bind(7, d.created_at);
  insert->exec();
}

std::vector<Delivery> due_deliveries(db::Connection& connection, const std::string& now, int limit) {
  auto query = connection.cached(std::string(kDeliverySelect) +
                                 "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id "
                                 "LIMIT ?");
  query->bind(1, now);
  query->bind(2, limit);
  std::vector<Delivery> out;
  while (query->executeStep()) out.push_back(read_delivery(*query));
  return out;
}

std::optional<std::string> next_delivery_at(db::Connection& connection) {
  auto query = connection.cached("SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'");
  return first_text(query);
}

std::optional<Delivery> find_delivery(db::Connection& connection, std::int64_t id) {
  auto query = connection.cached(std::string(kDeliverySelect) + "WHERE id = ?");
  query->bind(1, id);
  if (!query->executeStep()) return std::nullopt;
  return read_delivery(*query);
}

bool mark_sent(db::Connection& connection, std::int64_t id, std::int64_t attempts, const std::string& now) {
  auto update = connection.cached(
      "UPDATE deliveries SET status = 'sent', attempts = ?, sent_at = ?, last_error = NULL "
      "WHERE id = ? AND status = 'pending'");
  update->bind(1, attempts);
  update->bind(2, now);
  update->bind(3, id);
  return update->exec() > 0;
}

bool mark_attempt_failed(db::Connection& connection, std::int64_t id, std::int64_t attempts, const std::string& error,
                         const std::optional<std::string>& next_attempt_at) {
  auto update = connection.cached(
      "UPDATE deliveries SET attempts = ?1, last_error = ?2, "
      "status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END, "
      "next_attempt_at = coalesce(?3, next_attempt_at) WHERE id = ?4 AND status = 'pending'");
  update->bind(1, attempts);
  update->bind(2, error);
  bind_optional(*update, 3, next_attempt_at);
  update->bind(4, id);
  return update->exec() > 0;
}

std::int64_t count_deliveries(db::Connection& connection, const std::string& status) {
  auto query = connection.cached("SELECT count(*) FROM deliveries WHERE status = ?");
  query->bind(1, status);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

void upsert_reminder(db::Connection& connection, const LicenseReminder& r) {
  auto upsert = connection.cached(
      "INSERT INTO license_reminders (license_id, citizen_id, business_name, term, expires_at, due_at) "
      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (license_id) DO UPDATE SET citizen_id = excluded.citizen_id, "
      "business_name = excluded.business_name, term = excluded.term, expires_at = excluded.expires_at, "
      "due_at = excluded.due_at WHERE excluded.term >= license_reminders.term");
  upsert->bind(1, r.license_id);
  upsert->bind(2, r.citizen_id);
  upsert->bind(3, r.business_name);
  upsert->bind(4, r.term);
  upsert->bind(5, r.expires_at);
  upsert->bind(6, r.due_at);
  upsert->exec();
}

void delete_reminder(db::Connection& connection, std::int64_t license_id) {
  auto erase = connection.cached("DELETE FROM license_reminders WHERE license_id = ?");
  erase->bind(1, license_id);
  erase->exec();
}

std::vector<LicenseReminder> due_reminders(db::Connection& connection, const std::string& now, int limit) {
  auto query = connection.cached(
      "SELECT license_id, citizen_id, business_name, term, expires_at, due_at FROM license_reminders "
      "WHERE due_at <= ? ORDER BY due_at LIMIT ?");
  query->bind(1, now);
  query->bind(2, limit);
  std::vector<LicenseReminder> out;
  while (query->executeStep())
    out.push_back({query->getColumn(0).getInt64(), query->getColumn(1).getInt64(), query->getColumn(2).getString(),
                   query->getColumn(3).getInt64(), query->getColumn(4).getString(), query->getColumn(5).getString()});
  return out;
}

std::optional<std::string> next_reminder_at(db::Connection& connection) {
  auto query = connection.cached("SELECT min(due_at) FROM license_reminders");
  return first_text(query);
}

}  // namespace townhall::notify::store
