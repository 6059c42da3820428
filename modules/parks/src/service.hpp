#pragma once

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
#include "townhall/platform/service_kit.hpp"

namespace townhall::auth {
class CitizenRefTable;
}

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
  // The first meeting: required for a priced program (the refund cutoff counts from it).
  std::optional<std::chrono::system_clock::time_point> starts_at;
};

// The parks module's behaviour, reachable without sockets: facilities with opening hours
// in their time zone, bookings whose priced ones hold the slot until paid (the booking
// half of the saga in DESIGN §7, with the hold expiry scheduled from the file), programs
// with capacity and a waitlist whose priced places are held until paid the same way, and
// the handlers that keep citizen_refs and confirm paid bookings and enrollments.
// One row of the utilisation report: a facility's week (Monday to Sunday in its zone).
struct UtilisationRow {
  std::int64_t facility_id = 0;
  std::string facility;
  std::string week;         // its Monday, "2026-03-02", in the facility's zone
  double open_hours = 0;    // opening hours of the week's days inside the range
  double booked_hours = 0;  // confirmed bookings starting those days
  std::int64_t bookings = 0, no_shows = 0;
  std::int64_t cancelled_by_citizen = 0, cancelled_by_staff = 0, expired = 0;  // expired: holds never paid
};

// A facility's bookable hours for a few local days (what a booking page shows): one slot
// per whole opening hour in its zone, free, taken by a held or confirmed booking, or past.
struct AvailabilitySlot {
  std::string start, end;   // UTC, as a booking's starts_at and ends_at
  std::string local_start;  // "09:00" in the facility's zone
  std::string state;        // free | taken | past
};
struct AvailabilityDay {
  std::string date;  // "2026-12-07", local
  std::vector<AvailabilitySlot> slots;
};
struct Availability {
  std::int64_t facility_id = 0;
  std::string time_zone, from;
  std::vector<AvailabilityDay> days;
};
inline constexpr int kMaxAvailabilityDays = 14;

class ParksService : private ModuleService {
 public:
  ParksService(Settings settings, ServiceDependencies dependencies, auth::Api& auth);
  ~ParksService();

  // Opens the service connection and the gate, expires holds that ended while the
  // process was down, and starts the hold scheduler. Throws when the file cannot be used.
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

  // `days` local days from `from` ("YYYY-MM-DD"; today in the facility's zone when
  // absent), 1 to kMaxAvailabilityDays. Anyone may ask: a taken slot names nobody.
  Result<Availability> availability(const CallContext& context, std::int64_t facility_id,
                                    std::optional<std::string> from, int days);

  // Bookings. `client_address` is the request's client (after trusted proxies): a
  // priced hold is counted against max_unpaid_per_address by its digest.
  boost::asio::awaitable<Result<store::Booking>> book(CallContext context, std::int64_t facility_id,
                                                      std::chrono::system_clock::time_point starts_at,
                                                      std::chrono::system_clock::time_point ends_at,
                                                      std::string client_address = {});
  Result<store::Booking> get_booking(const CallContext& context, std::int64_t id);
  Result<Listed<store::Booking>> list_bookings(const CallContext& context, store::BookingFilter filter,
                                               input::Page page);
  // A citizen cancels their booking until it starts: a paid one is refunded in full until
  // `refund_cutoff` before the start, not after. Parks staff cancel any booking, a paid one
  // with an explicit refund decision and reason, recorded on the booking and logged.
  boost::asio::awaitable<Result<store::Booking>> cancel_booking(CallContext context, std::int64_t id,
                                                                Cancellation request = {});
  // Parks staff mark a confirmed booking whose start has passed as a no-show (once).
  boost::asio::awaitable<Result<store::Booking>> mark_no_show(CallContext context, std::int64_t id);
  // Utilisation per facility and week, no-shows and cancellations, for the local days
  // `from`..`to` ("YYYY-MM-DD", both included) in each facility's zone (parks staff).
  Result<std::vector<UtilisationRow>> utilisation_report(const CallContext& context, const std::string& from,
                                                         const std::string& to,
                                                         std::optional<std::int64_t> facility_id);

  // Cancels every pending booking and enrollment whose hold has ended (booking.cancelled,
  // enrollment.cancelled each; a released place goes to the waitlist).
  boost::asio::awaitable<Result<std::int64_t>> expire_holds();

  // Programs and enrollments.
  boost::asio::awaitable<Result<store::Program>> create_program(CallContext context, NewProgram input);
  Result<Listed<store::Program>> list_programs(input::Page page);
  Result<store::Program> get_program(std::int64_t id);
  // Free: enrolled at once. Priced: the place is held pending_payment until paid
  // (enrollment.requested; revenue opens the invoice). Waitlisted when every place is
  // taken or held; a released place is offered to the first on the waitlist.
  boost::asio::awaitable<Result<store::Enrollment>> enroll(CallContext context, std::int64_t program_id,
                                                           std::string client_address = {});
  Result<store::Enrollment> get_enrollment(const CallContext& context, std::int64_t id);
  // A citizen's own enrollments; all for parks staff (parks:read), of one program with
  // `filter.program_id`. In id order.
  Result<Listed<store::Enrollment>> list_enrollments(const CallContext& context, store::EnrollmentFilter filter,
                                                     input::Page page);
  // The booking's refund policy, counted from the program's start.
  boost::asio::awaitable<Result<store::Enrollment>> cancel_enrollment(CallContext context, std::int64_t id,
                                                                      Cancellation request = {});

  std::vector<bus::Subscription> subscriptions();
  // citizen_refs: the fields this module keeps of auth's citizens (auth/citizen_refs.hpp).
  static const auth::CitizenRefTable& citizen_table();
  static bus::Outcome apply_citizen_event(const bus::Event& event, db::Connection& sync);
  // payment.completed of a booking's or an enrollment's invoice confirms it.
  bus::Outcome apply_payment_event(const bus::Event& event, db::Connection& service);
  // invoice.rejected of a booking's or an enrollment's invoice releases it at once.
  bus::Outcome apply_invoice_event(const bus::Event& event, db::Connection& service);
  // citizen_refs for the consistency check (platform/consistency.hpp).
  std::vector<consistency::Cache> caches();

 private:
  void wake_scheduler();  // after the current writer task
  // A booking or an enrollment in the caller's scope: a citizen's own, any for staff.
  template <class Place>
  Result<Place> get_place(const CallContext& context, std::int64_t id);
  // A citizen's or staff's cancellation of a booking or an enrollment (one flow for both).
  template <class Place>
  boost::asio::awaitable<Result<Place>> cancel_place(CallContext context, std::int64_t id, Cancellation request);
  // After a place of `program_id` was released: the first on the waitlist takes each free
  // place, held pending_payment with its own deadline in a priced program.
  void fill_from_waitlist(db::Connection& service, std::int64_t program_id, const std::string& correlation,
                          const std::string& causation = {});
  // A priced place needs a citizen with a verified email or identity (citizen_refs).
  Result<Unit> may_pay_for_places(db::Connection& service, std::int64_t citizen_id) const;
  // Room for one more unpaid hold of the citizen and of the client (its digest), counted
  // in the caller's write transaction.
  Result<Unit> room_for_a_hold(db::Connection& service, std::int64_t citizen_id, const std::string& client) const;
  // Inserts the new `place` held pending_payment until `now` + the hold, when its citizen
  // and `client_address` have room for one more unpaid hold (room_for_a_hold): announced
  // as requested (revenue opens its invoice), the hold scheduler woken.
  template <class Place>
  Result<Unit> hold_for_payment(db::Connection& service, Place& place, const std::string& client_address,
                                std::chrono::system_clock::time_point now, const std::string& correlation);
  // What follows a released place (the waitlist moves up for an enrollment).
  void released(db::Connection& service, const store::Booking& booking, const std::string& correlation,
                const std::string& causation);
  void released(db::Connection& service, const store::Enrollment& enrollment, const std::string& correlation,
                const std::string& causation);
  boost::asio::awaitable<void> hold_loop();

  Settings settings_;
  auth::Api& auth_;
  std::string client_digest_key_;                          // read (or made) at start
  std::unique_ptr<boost::asio::steady_timer> hold_timer_;  // on the writer's io_context
  std::shared_ptr<Latch> hold_loop_done_;
};

nlohmann::json facility_json(const store::Facility& facility);
nlohmann::json availability_json(const Availability& availability);
nlohmann::json booking_json(const store::Booking& booking);
nlohmann::json program_json(const store::Program& program);
nlohmann::json enrollment_json(const store::Enrollment& enrollment);

}  // namespace townhall::parks
