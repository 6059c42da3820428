#include "service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cctype>

#include "mailer.hpp"
#include "townhall/auth/citizen_refs.hpp"
#include "townhall/auth/events.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/thread_name.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::notify {
namespace {

namespace revenue_events = revenue::events;

Result<std::int64_t> citizen_of(const CallContext& context) {
  const auto* principal = context.principal.get();
  if (!principal) return make_error(Errc::unauthorized, "sign in to read your notifications");
  if (!principal->is_citizen()) return make_error(Errc::forbidden, "notifications are a citizen's own");
  return principal->id;
}

std::string timestamp(std::chrono::system_clock::time_point when) { return utc::format(when); }

// What names one event for good: its id and when it occurred. The id alone is not enough:
// a source restored from an older backup numbers its new events again from where the
// backup ends, and "auth:57" then names another event (bookkeeping.cpp rewinds for it).
std::string event_key(const bus::Event& event) {
  std::string when;
  for (char c : event.occurred_at)
    if (std::isdigit(static_cast<unsigned char>(c))) when += c;
  return event.event_id + "." + when;
}

}  // namespace

std::string message_id_for(const std::string& source_event, std::string_view recipient, std::string_view kind,
                           const std::string& from) {
  std::string local;
  for (char c : source_event) local += std::isalnum(static_cast<unsigned char>(c)) || c == '.' ? c : '-';
  auto address = envelope_address(from);
  auto at = address.rfind('@');
  auto domain = at == std::string::npos ? std::string("townhall.invalid") : address.substr(at + 1);
  return "<notify." + local + "." + std::string(kind) + "." + std::string(recipient) + "@" + domain + ">";
}

bool record_notice(db::Connection& service, const Notice& notice, const std::string& source_event,
                   const Settings& settings, const std::string& now) {
  store::Notification row{0, notice.citizen_id, notice.kind, notice.title, notice.body, now, std::nullopt};
  auto id = store::insert_notification(service, row, source_event);
  if (!id) return false;  // this event's notice is there already: a redelivery
  if (!settings.smtp.enabled || !store::wants_email(service, notice.citizen_id, notice.kind)) return true;
  auto address = store::mail_address(service, notice.citizen_id);
  if (!address) return true;  // no verified address: the inbox only
  store::Delivery delivery;
  delivery.notification_id = *id;
  delivery.message_id =
      message_id_for(source_event, std::to_string(notice.citizen_id), notice.kind, settings.smtp.from);
  delivery.to_address = *address;
  delivery.subject = notice.title;
  delivery.body = notice.body +
                  "\n\n-- \nTownhall. Your inbox keeps this notice; turn emails of this kind off in your "
                  "notification preferences.";
  delivery.next_attempt_at = now;
  delivery.created_at = now;
  store::insert_delivery(service, delivery);
  return true;
}

NotifyService::NotifyService(Settings settings, ServiceDependencies dependencies, auth::Api& auth)
    : ModuleService(std::move(dependencies)), settings_(std::move(settings)), auth_(auth) {
  auto& emails = deps_.metrics.counter("townhall_notify_emails_total",
                                       "Emails notify handed to its SMTP server (sent), tried again later (retried) "
                                       "or gave up on after max_attempts or a permanent refusal (failed)",
                                       {"outcome"});
  sent_ = &emails.with({"sent"});
  retried_ = &emails.with({"retried"});
  failed_ = &emails.with({"failed"});
}

NotifyService::~NotifyService() { stop(); }

void NotifyService::start(std::string smtp_password) {
  writes_.open();
  if (settings_.smtp.enabled) mailer_ = std::make_unique<SmtpMailer>(settings_.smtp, std::move(smtp_password));
  {
    std::lock_guard lock(wake_->mutex);
    wake_->stopping = false;
  }
  deps_.gate.open();
  sender_ = std::thread([this] {
    name_this_thread("notify-smtp");
    sender_loop();
  });
  spdlog::info("notify: started (email {})",
               settings_.smtp.enabled ? "via " + settings_.smtp.host + ":" + std::to_string(settings_.smtp.port)
                                      : std::string("off: inbox only"));
}

void NotifyService::stop() {
  if (!deps_.gate.close()) return;
  {
    std::lock_guard lock(wake_->mutex);
    wake_->stopping = true;
  }
  wake_->changed.notify_all();
  if (sender_.joinable()) sender_.join();
  writes_.close();
}

// --- the citizen's inbox and preferences ---------------------------------------------

Result<InboxPage> NotifyService::inbox(const CallContext& context, InboxQuery query) {
  auto citizen = citizen_of(context);
  if (!citizen) return citizen.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<InboxPage> {
    InboxPage page;
    // One more than asked: whether an older page exists.
    page.items = store::list_inbox(reader, *citizen, query.cursor, query.limit + 1, query.unread_only);
    if (static_cast<int>(page.items.size()) > query.limit) {
      page.items.pop_back();
      page.next_cursor = page.items.back().id;
    }
    page.unread = store::count_unread(reader, *citizen);
    return page;
  });
}

boost::asio::awaitable<Result<store::Notification>> NotifyService::mark_read(CallContext context, std::int64_t id) {
  auto citizen = citizen_of(context);
  if (!citizen) co_return citizen.error();
  const auto citizen_id = *citizen;
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Notification> {
    // Another citizen's notice is as absent as one that never was.
    if (!store::find_notification(service, citizen_id, id)) return make_error(Errc::not_found, "no such notification");
    store::mark_read(service, citizen_id, id, utc::now());
    return *store::find_notification(service, citizen_id, id);
  });
}

Result<Preferences> NotifyService::preferences(const CallContext& context) {
  auto citizen = citizen_of(context);
  if (!citizen) return citizen.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<Preferences> {
    Preferences out;
    out.email_delivery = settings_.smtp.enabled;
    auto stored = store::email_preferences(reader, *citizen);
    for (auto kind : kKinds) {
      auto it = stored.find(std::string(kind));
      out.email[std::string(kind)] = it == stored.end() || it->second;
    }
    return out;
  });
}

boost::asio::awaitable<Result<Preferences>> NotifyService::set_preferences(CallContext context,
                                                                           std::map<std::string, bool> email) {
  auto citizen = citizen_of(context);
  if (!citizen) co_return citizen.error();
  for (const auto& [kind, on] : email)
    if (!is_kind(kind)) co_return make_error(Errc::invalid_argument, "field 'email." + kind + "': not a notice kind");
  const auto citizen_id = *citizen;
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<Unit> {
    const auto now = utc::now();
    for (const auto& [kind, on] : email) store::set_email_preference(service, citizen_id, kind, on, now);
    return Unit{};
  });
  if (!written) co_return written.error();
  co_return preferences(context);
}

// --- events ----------------------------------------------------------------------------

const auth::CitizenRefTable& NotifyService::citizen_table() {
  using auth::CitizenField;
  // The address to mail and whether it is the citizen's (only a verified one is mailed).
  static const auth::CitizenRefTable table(
      {CitizenField::name, CitizenField::email, CitizenField::email_verified, CitizenField::is_active});
  return table;
}

std::vector<bus::Subscription> NotifyService::subscriptions() {
  std::vector<std::string> topics;
  for (auto topic : permits::events::kTopics) topics.emplace_back(topic);
  for (auto topic : revenue_events::kTopics) topics.emplace_back(topic);
  for (auto topic : parks::events::kTopics) topics.emplace_back(topic);
  return {
      auth::CitizenRefs(auth_, "notify", citizen_table()).subscription(),
      {"notices", std::move(topics), db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_event(event, service); }},
      {"password_resets",
       {std::string(auth::events::kPasswordResetTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_password_reset(event, service); }},
  };
}

std::vector<consistency::Cache> NotifyService::caches() {
  return {auth::CitizenRefs(auth_, "notify", citizen_table()).cache()};
}

bus::Outcome NotifyService::apply_event(const bus::Event& event, db::Connection& service) {
  const auto now = utc::now();
  if (event.topic == revenue_events::kLicenseTopic) {
    auto license = revenue_events::license_of(event);
    const auto& type = event.event_type;
    if ((type == revenue_events::kLicenseActivated || type == revenue_events::kLicenseRenewed) && license.expires_at) {
      auto expires = utc::parse(*license.expires_at);
      if (!expires) throw bus::PermanentError(type + " has a bad expires_at: " + *license.expires_at);
      store::upsert_reminder(service,
                             {license.id, license.citizen_id, license.business_name, license.term, *license.expires_at,
                              timestamp(*expires - std::chrono::hours(24) * settings_.license_reminder_days)});
      wake_after_commit();  // the reminder may be due now (a term shorter than the notice)
    } else if (type == revenue_events::kLicenseExpired || type == revenue_events::kLicenseLapsed ||
               type == revenue_events::kLicenseRejected) {
      store::delete_reminder(service, license.id, std::nullopt);
    }
  }
  auto notice = notice_for(event);
  if (!notice) return bus::Outcome::applied;
  if (!record_notice(service, *notice, event_key(event), settings_, now)) return bus::Outcome::stale;
  wake_after_commit();
  return bus::Outcome::applied;
}

bus::Outcome NotifyService::apply_password_reset(const bus::Event& event, db::Connection& service) {
  if (event.event_type != auth::events::kPasswordResetRequested) return bus::Outcome::applied;
  auto reset = auth::events::password_reset_of(event);
  if (!settings_.smtp.enabled) {
    spdlog::info("notify: the password reset of {} {} is not mailed: email is off (modules.notify.settings.smtp)",
                 reset.account_kind, reset.account_id);
    return bus::Outcome::applied;
  }
  const auto now = utc::now();
  store::Delivery delivery;
  delivery.secret_ref = reset.reference;
  delivery.message_id = message_id_for(event_key(event), reset.account_kind + "-" + std::to_string(reset.account_id),
                                       "password_reset", settings_.smtp.from);
  delivery.to_address = reset.email;  // the sender mails the address auth has when it sends
  delivery.subject = "Reset your Townhall password";
  delivery.body = "Hello " + reset.name +
                  ",\n\nSomebody, hopefully you, asked to reset the password of your Townhall account.\n\n"
                  "Your reset code: " +
                  std::string(kTokenMark) + "\n\nIt works once, until " + reset.expires_at +
                  " (UTC). Enter it with a new password on the password reset page (or send both to "
                  "POST /api/v1/auth/password-resets/confirm as \"token\" and \"new_password\"); every session "
                  "of the account then ends.\n\nIf you did not ask for this, ignore this email: your password "
                  "stays as it is.\n\n-- \nTownhall";
  delivery.next_attempt_at = now;
  delivery.created_at = now;
  store::insert_delivery(service, delivery);
  wake_after_commit();
  return bus::Outcome::applied;
}

// --- the sender --------------------------------------------------------------------------

// Handlers run on the writer thread inside the bus's transaction, and the writer runs
// what is posted to it only once that batch has committed: the sender then finds the row.
void NotifyService::wake_after_commit() {
  boost::asio::post(deps_.writer.context(), [wake = wake_] {
    {
      std::lock_guard lock(wake->mutex);
      wake->woken = true;
    }
    wake->changed.notify_all();
  });
}

int NotifyService::run_due() {
  stalled_ = false;
  send_reminders();
  return send_emails();
}

std::chrono::system_clock::time_point NotifyService::next_due() {
  auto backstop = std::chrono::system_clock::now() + std::chrono::minutes(1);
  auto next = deps_.readers.read([&](db::Connection& reader) -> Result<std::optional<std::string>> {
    auto email = mailer_ ? store::next_delivery_at(reader) : std::nullopt;
    auto reminder = store::next_reminder_at(reader);
    if (email && reminder) return std::optional<std::string>(std::min(*email, *reminder));
    return email ? email : reminder;
  });
  if (!next || !*next) return backstop;
  auto when = utc::parse(**next);
  return when ? std::min(*when, backstop) : backstop;
}

void NotifyService::sender_loop() {
  while (true) {
    try {
      run_due();
    } catch (const std::exception& error) {
      spdlog::error("notify: sender round failed: {}", error.what());
    }
    // A round that could not read or record (notify.db failing) waits a retry delay:
    // what is due is still due, and retrying at once would spin and resend.
    auto until = stalled_ ? std::chrono::system_clock::now() + std::max<std::chrono::system_clock::duration>(
                                                                   settings_.retry_initial, std::chrono::seconds(1))
                          : next_due();
    std::unique_lock lock(wake_->mutex);
    if (wake_->stopping) return;
    wake_->changed.wait_until(lock, until, [&] { return wake_->woken || wake_->stopping; });
    if (wake_->stopping) return;
    wake_->woken = false;
  }
}

int NotifyService::send_reminders() {
  int made = 0;
  for (;;) {
    auto due = deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<store::LicenseReminder>> {
      return store::due_reminders(reader, utc::now(), 32);
    });
    if (!due) stalled_ = true;
    if (!due || due->empty()) return made;
    for (const auto& reminder : *due) {
      auto written = writes_.call([&](db::Connection& service) -> Result<Unit> {
        auto source = "reminder:license:" + std::to_string(reminder.license_id) + ":" + std::to_string(reminder.term);
        auto notice =
            license_expiring(reminder.citizen_id, reminder.license_id, reminder.business_name, reminder.expires_at);
        record_notice(service, notice, source, settings_, utc::now());
        store::delete_reminder(service, reminder.license_id, reminder.term);
        return Unit{};
      });
      if (!written) {
        spdlog::warn("notify: licence reminder {} not written: {}", reminder.license_id, written.error().message);
        stalled_ = true;
        return made;
      }
      ++made;
    }
  }
}

// The email a delivery sends. A password reset's token is asked of auth now, so it is
// never stored here; a reset auth no longer honours (used, replaced, expired) is not sent.
struct NotifyService::Composed {
  std::optional<Email> email;
  std::optional<SmtpMailer::Failure> failure;  // instead of an email
};

NotifyService::Composed NotifyService::compose(const store::Delivery& delivery) {
  Email email{delivery.to_address, delivery.subject, delivery.body, delivery.message_id};
  if (!delivery.secret_ref) return {std::move(email), std::nullopt};
  auto mail = run_blocking(auth_.password_reset_mail(
      CallContext::as_service("notify", "notify-send-" + std::to_string(delivery.id)), *delivery.secret_ref));
  if (!mail)  // not_found: auth will never honour it; anything else may pass
    return {std::nullopt, SmtpMailer::Failure{"auth: " + mail.error().message, mail.error().code == Errc::not_found}};
  email.to = mail->email;
  if (auto at = email.body.find(kTokenMark); at != std::string::npos)
    email.body.replace(at, kTokenMark.size(), mail->token);
  return {std::move(email), std::nullopt};
}

int NotifyService::send_emails() {
  if (!mailer_) return 0;
  int sent = 0;
  for (;;) {
    auto due = deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<store::Delivery>> {
      return store::due_deliveries(reader, utc::now(), 16);
    });
    if (!due) {
      spdlog::warn("notify: reading the email outbox failed: {}", due.error().message);
      stalled_ = true;
      return sent;
    }
    if (due->empty()) return sent;
    for (const auto& delivery : *due) {
      if (!deps_.gate.is_open()) return sent;
      auto composed = compose(delivery);
      auto failure = composed.email ? mailer_->send(*composed.email) : composed.failure;
      const auto attempts = delivery.attempts + 1;
      Result<bool> written{false};
      if (!failure) {
        // A kill here sends this email again after the restart, with the same Message-ID.
        if (deps_.fault_hook) deps_.fault_hook("notify.after_smtp_accept");
        written = writes_.call([&](db::Connection& service) -> Result<bool> {
          return store::mark_sent(service, delivery.id, attempts, utc::now());
        });
        sent_->inc();
        ++sent;
      } else {
        const bool give_up = failure->permanent || attempts >= settings_.max_attempts;
        std::optional<std::string> next;
        if (!give_up) {
          std::chrono::milliseconds wait =
              settings_.retry_initial * (std::int64_t{1} << std::min<std::int64_t>(attempts - 1, 30));
          next = timestamp(std::chrono::system_clock::now() + std::min(wait, settings_.retry_max));
        }
        written = writes_.call([&](db::Connection& service) -> Result<bool> {
          return store::mark_attempt_failed(service, delivery.id, attempts, failure->reason.substr(0, 500), next);
        });
        (give_up ? failed_ : retried_)->inc();
        if (give_up)
          spdlog::warn("notify: email {} failed for good after {} attempts: {}", delivery.message_id, attempts,
                       failure->reason);
        else
          spdlog::info("notify: email {} not sent (attempt {}), again at {}: {}", delivery.message_id, attempts, *next,
                       failure->reason);
      }
      if (!written) {
        spdlog::warn("notify: the outcome of email {} was not recorded: {}", delivery.message_id,
                     written.error().message);
        stalled_ = true;
        return sent;
      }
    }
  }
}

}  // namespace townhall::notify
