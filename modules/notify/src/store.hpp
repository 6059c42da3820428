#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "townhall/platform/db.hpp"

// notify.db's SQL, one function per statement; no transactions (the caller's).
namespace townhall::notify::store {

struct Notification {
  std::int64_t id = 0;
  std::int64_t citizen_id = 0;
  std::string kind, title, body;
  std::string created_at;
  std::optional<std::string> read_at;
};

// The notice unless (source_event, citizen, kind) is there already: nullopt then.
std::optional<std::int64_t> insert_notification(db::Connection& connection, const Notification& notification,
                                                const std::string& source_event);
// The citizen's notices newest first, below id `before` (0: from the newest).
std::vector<Notification> list_inbox(db::Connection& connection, std::int64_t citizen_id, std::int64_t before,
                                     int limit, bool unread_only);
std::int64_t count_unread(db::Connection& connection, std::int64_t citizen_id);
std::optional<Notification> find_notification(db::Connection& connection, std::int64_t citizen_id, std::int64_t id);
// Sets read_at once (a second read keeps the first time).
void mark_read(db::Connection& connection, std::int64_t citizen_id, std::int64_t id, const std::string& now);

// Email per kind; a kind without a row is on.
std::map<std::string, bool> email_preferences(db::Connection& connection, std::int64_t citizen_id);
bool wants_email(db::Connection& connection, std::int64_t citizen_id, const std::string& kind);
void set_email_preference(db::Connection& connection, std::int64_t citizen_id, const std::string& kind, bool email,
                          const std::string& now);

// The address to mail a citizen at: an active account's verified email, else nullopt.
std::optional<std::string> mail_address(db::Connection& connection, std::int64_t citizen_id);

struct Delivery {
  std::int64_t id = 0;
  std::optional<std::int64_t> notification_id;  // the notice it mails, or
  std::optional<std::string> secret_ref;        // the password reset whose token it mails
  std::string message_id, to_address, subject, body;
  std::string status;  // pending | sent | failed
  std::int64_t attempts = 0;
  std::string next_attempt_at;
  std::optional<std::string> last_error;
  std::string created_at;
  std::optional<std::string> sent_at;
};

void insert_delivery(db::Connection& connection, const Delivery& delivery);
// Pending deliveries due by `now`, oldest first.
std::vector<Delivery> due_deliveries(db::Connection& connection, const std::string& now, int limit);
// The earliest next_attempt_at of a pending delivery.
std::optional<std::string> next_delivery_at(db::Connection& connection);
// Only a pending delivery changes (false otherwise: another attempt settled it).
bool mark_sent(db::Connection& connection, std::int64_t id, std::int64_t attempts, const std::string& now);
bool mark_attempt_failed(db::Connection& connection, std::int64_t id, std::int64_t attempts, const std::string& error,
                         const std::optional<std::string>& next_attempt_at);

struct LicenseReminder {
  std::int64_t license_id = 0;
  std::int64_t citizen_id = 0;
  std::string business_name;
  std::int64_t term = 0;
  std::string expires_at, due_at;
};
void upsert_reminder(db::Connection& connection, const LicenseReminder& reminder);
// Of any term (nullopt), or only of `term` (a renewal may have replaced it since).
void delete_reminder(db::Connection& connection, std::int64_t license_id, std::optional<std::int64_t> term);
std::vector<LicenseReminder> due_reminders(db::Connection& connection, const std::string& now, int limit);
std::optional<std::string> next_reminder_at(db::Connection& connection);

}  // namespace townhall::notify::store
