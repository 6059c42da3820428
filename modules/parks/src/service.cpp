#include <date/tz.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "client_digest.hpp"
#include "service_internal.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::parks {

namespace asio = boost::asio;
using json = nlohmann::json;

Error forbidden(std::string message) { return make_error(Errc::forbidden, std::move(message)); }

bool is_staff(const Principal* principal) { return principal && principal->has("parks:manage"); }

Result<store::Scope> read_scope(const Principal* principal) {
  if (!principal) return store::Scope::everything();
  if (principal->is_citizen()) return store::Scope{principal->id};
  if (principal->has("parks:read")) return store::Scope::everything();
  return forbidden("needs permission parks:read");
}

namespace {

// A place's event: its record as the API shows it, the contract's fields laid over it.
template <class Row>
void append_place(db::Connection& service, std::string_view topic, std::string_view type, std::string_view aggregate,
                  const Row& row, json snapshot, const json& contract, const std::string& correlation,
                  const std::string& causation) {
  snapshot.update(contract);
  bus::append(service, bus::aggregate_event(topic, type, aggregate, row.id, row.event_version,
                                            events::event_data(std::move(snapshot)), correlation, causation));
}

// The contract's snapshot of a place, with the event's refund decision.
template <class Snapshot>
Snapshot with_refund(Snapshot contract, bool refund_payment) {
  contract.refund_payment = refund_payment;
  return contract;
}

}  // namespace

void announce(db::Connection& service, std::string_view type, const store::Booking& booking,
              const std::string& correlation, const std::string& causation, bool refund_payment) {
  append_place(service, events::kBookingTopic, type, "booking", booking, booking_json(booking),
               events::booking_snapshot(with_refund<events::BookingSnapshot>(booking, refund_payment)), correlation,
               causation);
}

void announce(db::Connection& service, std::string_view type, const store::Enrollment& enrollment,
              const std::string& correlation, const std::string& causation, bool refund_payment) {
  append_place(service, events::kEnrollmentTopic, type, "enrollment", enrollment, enrollment_json(enrollment),
               events::enrollment_snapshot(with_refund<events::EnrollmentSnapshot>(enrollment, refund_payment)),
               correlation, causation);
}

void announce_promotion(db::Connection& service, const store::Enrollment& enrollment, const std::string& program_name,
                        const std::string& correlation, const std::string& causation) {
  append_place(service, events::kEnrollmentTopic, events::kEnrollmentPromoted, "enrollment", enrollment,
               enrollment_json(enrollment),
               events::promotion_snapshot({enrollment, program_name, enrollment.hold_expires_at}), correlation,
               causation);
}

ParksService::ParksService(Settings settings, ServiceDependencies dependencies, auth::Api& auth)
    : ModuleService(std::move(dependencies)), settings_(std::move(settings)), auth_(auth) {}

ParksService::~ParksService() { stop(); }

void ParksService::start() {
  writes_.open();
  auto key = writes_.call([&](db::Connection& service) -> Result<std::string> {
    if (auto stored = store::client_digest_key(service)) return *stored;
    auto made = new_client_digest_key();
    store::insert_client_digest_key(service, made);
    return made;
  });
  if (!key) throw std::runtime_error("parks: cannot read or make the client digest key: " + key.error().message);
  client_digest_key_ = *key;
  // Bookings an older version wrote have no local_day (migration 0008): set before the
  // module serves, so its triggers count them in booking_days and the first report after
  // an upgrade is whole. Once: later bookings get theirs on insert.
  auto days = writes_.call(
      [&](db::Connection& service) -> Result<std::int64_t> { return store::set_local_days(service, std::nullopt); });
  if (!days) throw std::runtime_error("parks: cannot set the bookings' local days: " + days.error().message);
  if (*days > 0) spdlog::info("parks: {} bookings given their facility's local day for the reports", *days);
  hold_timer_ = std::make_unique<asio::steady_timer>(deps_.writer.context());
  hold_loop_done_ = std::make_shared<Latch>();
  deps_.gate.open();
  // The scheduler's first round expires what ended while the process was down.
  asio::co_spawn(deps_.writer.context(), hold_loop(), asio::detached);
}

void ParksService::stop() {
  if (deps_.gate.close()) {
    deps_.writer.post([this] { hold_timer_->cancel(); });
    hold_loop_done_->wait_blocking();
    deps_.writer.call([this] { hold_timer_.reset(); });
  }
  writes_.close();
}

void ParksService::seed_demo() {
  auto seeded = writes_.call([&](db::Connection& service) -> Result<bool> {
    if (!store::list_facilities(service, false, std::nullopt, 1).empty()) return false;
    auto now = utc::now();
    json week = json::object();
    for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
      week[day] = {{"open", "08:00"}, {"close", "20:00"}};
    store::Facility field{
        0,  "Riverside soccer field", "field", 22, 0, settings_.currency, "America/New_York", week.dump(), true, 1, now,
        now};
    store::insert_facility(service, field);
    store::Facility court{0,
                          "Elm Park tennis court",
                          "court",
                          4,
                          2500,
                          settings_.currency,
                          "America/New_York",
                          week.dump(),
                          true,
                          1,
                          now,
                          now};
    store::insert_facility(service, court);
    // The first class: next Saturday, 09:00 in New York.
    auto zone = date::locate_zone("America/New_York");
    auto today = date::floor<date::days>(zone->to_local(std::chrono::system_clock::now()));
    auto saturday = today + (date::Saturday - date::weekday(today));
    if (saturday == today) saturday += date::days(7);
    auto first_class = utc::format(zone->to_sys(saturday + std::chrono::hours(9)));
    store::Program yoga{
        0, field.id, "Morning yoga", "Saturdays 09:00-10:00", 12, 4000, settings_.currency, true, now, now,
        0, 0,        first_class};
    store::insert_program(service, yoga);
    return true;
  });
  if (!seeded) throw std::runtime_error("parks demo seed failed: " + seeded.error().message);
  if (*seeded) spdlog::info("parks: demo data seeded (two facilities, a program)");
}

}  // namespace townhall::parks
