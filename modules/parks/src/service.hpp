#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "hours.hpp"
#include "settings.hpp"
#include "store.hpp"
#include "townhall/auth/api.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/consistency.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/write_path.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::parks {

using input::Listed;

struct FacilityInput {
  std::optional<std::string> name, kind, currency, time_zone;
  std::optional<std::int64_t> capacity, hourly_price_cents;
  std::optional<OpeningHours> opening_hours;
  std::optional<bool> is_active;
};

// What a cancellation says besides its booking: parks staff's decision for a paid booking
// (both required then); a citizen sends neither (the refund policy decides).
struct Cancellation {
  std::optional<bool> refund;
  std::optional<std::string> reason;
};

struct NewProgram {
  std::optional<std::int64_t> facility_id;
  std::string name, schedule;
  std::int64_t capacity = 1;
  std::int64_t price_cents = 0;
  std::optional<std::string> currency;
};

// The parks module's behaviour, reachable without sockets: facilities with opening hours
// in their time zone, bookings whose priced ones hold the slot until paid (the booking
// half of the saga in DESIGN §7, with the hold expiry scheduled from the file), programs
// with capacity and a waitlist, and the handlers that keep citizen_refs and confirm paid
// bookings.
class ParksService {
 public:
  struct Dependencies {
    const db::ModuleDb& database;
    db::Writer& writer;
    db::ReaderPool& readers;
    std::function<void()> events_committed;
    auth::Api& auth;
  };

  ParksService(Settings settings, Dependencies dependencies);
  ~ParksService();

  // Opens the service connection, expires holds that ended while the process was down,
  // and starts the hold scheduler. Throws when the file cannot be used.
  void start();
  void stop();
  const Settings& settings() const { return settings_; }
  // `serve --demo`: two facilities (one free, one priced) and a program, once.
  void seed_demo();

  // Facilities (anyone reads; parks:manage writes).
  Result<Listed<store::Facility>> list_facilities(const CallContext& context, input::Page page);
  Result<store::Facility> get_facility(const CallContext& context, std::int64_t id);
  boost::asio::awaitable<Result<store::Facility>> create_facility(CallContext context, FacilityInput input);
  boost::asio::awaitable<Result<store::Facility>> update_facility(CallContext context, std::int64_t id,
                                                                  FacilityInput input);

  // Bookings.
  boost::asio::awaitable<Result<store::Booking>> book(CallContext context, std::int64_t facility_id,
                                                      std::chrono::system_clock::time_point starts_at,
                                                      std::chrono::system_clock::time_point ends_at);
  Result<store::Booking> get_booking(const CallContext& context, std::int64_t id);
  Result<Listed<store::Booking>> list_bookings(const CallContext& context, store::BookingFilter filter,
                                               input::Page page);
  // A citizen cancels their booking until it starts: a paid one is refunded in full until
  // `refund_cutoff` before the start, not after. Parks staff cancel any booking, a paid one
  // with an explicit refund decision and reason, recorded on the booking and logged.
  boost::asio::awaitable<Result<store::Booking>> cancel_booking(CallContext context, std::int64_t id,
                                                                Cancellation request = {});
  // Cancels every pending booking whose hold has ended (booking.cancelled each).
  boost::asio::awaitable<Result<std::int64_t>> expire_holds();

  // Programs and enrollments.
  boost::asio::awaitable<Result<store::Program>> create_program(CallContext context, NewProgram input);
  Result<Listed<store::Program>> list_programs(input::Page page);
  Result<store::Program> get_program(std::int64_t id);
  boost::asio::awaitable<Result<store::Enrollment>> enroll(CallContext context, std::int64_t program_id);
  Result<store::Enrollment> get_enrollment(const CallContext& context, std::int64_t id);
  boost::asio::awaitable<Result<store::Enrollment>> cancel_enrollment(CallContext context, std::int64_t id);

  std::vector<bus::Subscription> subscriptions();
  static bus::Outcome apply_citizen_event(const bus::Event& event, db::Connection& sync);
  bus::Outcome apply_payment_event(const bus::Event& event, db::Connection& service);
  // invoice.rejected of a booking's invoice releases the booking (its slot) at once.
  bus::Outcome apply_invoice_event(const bus::Event& event, db::Connection& service);
  void bootstrap_citizens(db::Connection& sync);
  // citizen_refs for the consistency check (platform/consistency.hpp).
  std::vector<consistency::Cache> caches();

 private:
  Result<Unit> usable() const;
  void wake_scheduler();  // after the current writer task
  boost::asio::awaitable<void> hold_loop();

  Settings settings_;
  Dependencies deps_;
  db::WritePath writes_;
  std::atomic<bool> running_{false};
  std::unique_ptr<boost::asio::steady_timer> hold_timer_;  // on the writer's io_context
  std::shared_ptr<Latch> hold_loop_done_;
};

nlohmann::json facility_json(const store::Facility& facility);
nlohmann::json booking_json(const store::Booking& booking);
nlohmann::json program_json(const store::Program& program);
nlohmann::json enrollment_json(const store::Enrollment& enrollment);

}  // namespace townhall::parks
