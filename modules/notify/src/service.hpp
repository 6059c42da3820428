#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "notices.hpp"
#include "settings.hpp"
#include "store.hpp"
#include "townhall/auth/api.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/consistency.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/service_kit.hpp"

namespace townhall::auth {
class CitizenRefTable;
}
namespace townhall::metrics {
class Registry;
class Counter;
}  // namespace townhall::metrics

namespace townhall::notify {

class SmtpMailer;

struct InboxPage {
  std::vector<store::Notification> items;
  std::optional<std::int64_t> next_cursor;  // pass as ?cursor= for the next (older) page
  std::int64_t unread = 0;
};

struct InboxQuery {
  std::int64_t cursor = 0;  // 0: the newest
  int limit = 20;
  bool unread_only = false;
};

struct Preferences {
  std::map<std::string, bool> email;  // every kind
  bool email_delivery = false;        // whether this installation sends email at all
};

// Records a notice for its citizen and, when they want it by email and have a verified
// address, its email in the delivery outbox — in the caller's transaction (the bus's for
// an event, the write path's for a reminder). False: the notice was there already.
bool record_notice(db::Connection& service, const Notice& notice, const std::string& source_event,
                   const Settings& settings, const std::string& now);

// The Message-ID of the email of (source_event, recipient, kind): the same on every
// attempt, so a resend after a crash is recognisably the same message. The recipient is
// a citizen's id ("7") or an account ("employee-7").
std::string message_id_for(const std::string& source_event, std::string_view recipient, std::string_view kind,
                           const std::string& from);

// Where the token goes in a stored password reset email (the sender fills it in).
inline constexpr std::string_view kTokenMark = "{token}";

// The behaviour of notify reachable without sockets: the inbox and preferences of the
// calling citizen, the event handlers that fill the inbox, and the sender that mails it.
class NotifyService : private ModuleService {
 public:
  NotifyService(Settings settings, ServiceDependencies dependencies, auth::Api& auth);
  ~NotifyService();

  // Opens the service connection and starts the sender (`smtp_password`: the password
  // file's content, empty without AUTH). Throws when the file cannot be used.
  void start(std::string smtp_password = {});
  void stop();
  const Settings& settings() const { return settings_; }

  Result<InboxPage> inbox(const CallContext& context, InboxQuery query);
  boost::asio::awaitable<Result<store::Notification>> mark_read(CallContext context, std::int64_t id);
  Result<Preferences> preferences(const CallContext& context);
  boost::asio::awaitable<Result<Preferences>> set_preferences(CallContext context, std::map<std::string, bool> email);

  std::vector<bus::Subscription> subscriptions();
  static const auth::CitizenRefTable& citizen_table();
  // Any consumed event but auth's: a notice, and a licence's expiry reminder kept.
  bus::Outcome apply_event(const bus::Event& event, db::Connection& service);
  // auth's password_reset.requested: its email in the delivery outbox, without the token
  // (the sender asks auth for it when it sends). Nothing when email is off.
  bus::Outcome apply_password_reset(const bus::Event& event, db::Connection& service);
  std::vector<consistency::Cache> caches();

  // One round of the sender, on the calling thread: reminders that are due become
  // notices, then due emails are sent. Returns the emails the server accepted.
  int run_due();

 private:
  void sender_loop();
  void wake_after_commit();
  std::chrono::system_clock::time_point next_due();
  int send_reminders();
  int send_emails();
  struct Composed;
  Composed compose(const store::Delivery& delivery);

  Settings settings_;
  auth::Api& auth_;
  std::unique_ptr<SmtpMailer> mailer_;
  std::atomic<bool> stalled_{false};  // the last sender round hit a storage failure

  // The sender thread sleeps until the next due time or a wake-up (a commit that added
  // an email); shared with handlers posted to the writer, which may outlive a stop.
  struct Wake {
    std::mutex mutex;
    std::condition_variable changed;
    bool woken = false;
    bool stopping = false;
  };
  std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
  std::thread sender_;

  metrics::Counter* sent_ = nullptr;
  metrics::Counter* retried_ = nullptr;
  metrics::Counter* failed_ = nullptr;
};

}  // namespace townhall::notify
