#include "service.hpp"

#include <date/tz.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>

#include "client_digest.hpp"
#include "townhall/auth/citizen_refs.hpp"
#include "townhall/auth/events.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::parks {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

Error forbidden(std::string message) { return make_error(Errc::forbidden, std::move(message)); }

bool is_staff(const Principal* principal) { return principal && principal->has("parks:manage"); }

// A citizen sees their own bookings and enrollments; parks staff all.
Result<store::Scope> read_scope(const Principal* principal) {
  if (!principal) return store::Scope::everything();
  if (principal->is_citizen()) return store::Scope{principal->id};
  if (principal->has("parks:read")) return store::Scope::everything();
  return forbidden("needs permission parks:read");
}

// The snapshot is the record as the API shows it, with the contract's fields
// (townhall/parks/events.hpp) written by the contract's own code.
void announce(db::Connection& service, std::string_view type, const store::Booking& booking,
              const std::string& correlation, const std::string& causation = {}, bool refund_payment = true) {
  auto snapshot = booking_json(booking);
  snapshot.update(events::booking_snapshot({booking.id, booking.facility_id, booking.citizen_id, booking.starts_at,
                                            booking.ends_at, booking.status, booking.amount_cents, booking.currency,
                                            refund_payment, booking.cancel_reason}));
  bus::append(service, bus::aggregate_event(events::kBookingTopic, type, "booking", booking.id, booking.event_version,
                                            {{"snapshot", std::move(snapshot)}}, correlation, causation));
}

void announce(db::Connection& service, std::string_view type, const store::Enrollment& enrollment,
              const std::string& correlation, const std::string& causation = {}, bool refund_payment = true) {
  auto snapshot = enrollment_json(enrollment);
  snapshot.update(
      events::enrollment_snapshot({enrollment.id, enrollment.program_id, enrollment.citizen_id, enrollment.status,
                                   enrollment.amount_cents, enrollment.currency, refund_payment}));
  bus::append(service, bus::aggregate_event(events::kEnrollmentTopic, type, "enrollment", enrollment.id,
                                            enrollment.event_version, {{"snapshot", std::move(snapshot)}}, correlation,
                                            causation));
}

// Bookings and enrollments are places held for a payment with the same payment and
// cancellation fields; what differs between them is named here, so each step of the
// saga (paid, cancelled, released) and the refund policy are written once for both.
template <class Place>
struct PlaceKind;

template <>
struct PlaceKind<store::Booking> {
  static constexpr std::string_view noun = events::kBookingSource;
  static constexpr std::string_view paid_status = "confirmed";
  static constexpr std::string_view confirmed = events::kBookingConfirmed;
  static constexpr std::string_view cancelled = events::kBookingCancelled;
  static std::optional<store::Booking> find(db::Connection& connection, std::int64_t id, const store::Scope& scope) {
    return store::find_booking(connection, id, scope);
  }
  static void save(db::Connection& service, const store::Booking& booking) { store::update_booking(service, booking); }
  // When its use starts: the refund cutoff counts from it.
  static std::optional<std::string> starts_at(db::Connection&, const store::Booking& booking) {
    return booking.starts_at;
  }
};

template <>
struct PlaceKind<store::Enrollment> {
  static constexpr std::string_view noun = events::kEnrollmentSource;
  static constexpr std::string_view paid_status = "enrolled";
  static constexpr std::string_view confirmed = events::kEnrollmentConfirmed;
  static constexpr std::string_view cancelled = events::kEnrollmentCancelled;
  static std::optional<store::Enrollment> find(db::Connection& connection, std::int64_t id, const store::Scope& scope) {
    return store::find_enrollment(connection, id, scope);
  }
  static void save(db::Connection& service, const store::Enrollment& enrollment) {
    store::update_enrollment(service, enrollment);
  }
  // The program's first meeting; none for a program created before programs had one.
  static std::optional<std::string> starts_at(db::Connection& connection, const store::Enrollment& enrollment) {
    auto program = store::find_program(connection, enrollment.program_id);
    return program ? program->starts_at : std::nullopt;
  }
};

template <class Place>
std::string label(const Place& place) {
  return std::string(PlaceKind<Place>::noun) + " " + std::to_string(place.id);
}

// Who cancels, why, and what becomes of a payment (issue 21 §3.1).
struct CancelRecord {
  std::string by;  // citizen | staff | system
  std::optional<std::int64_t> by_id;
  std::string reason;
  std::optional<std::string> refund;  // full | none, for a place paid when cancelled
  bool refund_payment = true;         // what the cancelled event tells revenue
};

CancelRecord by_the_system(std::string reason) {
  return {"system", std::nullopt, std::move(reason), std::nullopt, true};
}

// Cancels `place` (already read in this transaction), records who and what was decided,
// and announces it.
template <class Place>
Place cancel(db::Connection& service, Place place, const CancelRecord& record, const std::string& correlation,
             const std::string& causation = {}) {
  auto now = utc::now();
  place.status = "cancelled";
  place.cancel_reason = record.reason;
  place.cancelled_by = record.by;
  place.cancelled_by_id = record.by_id;
  place.cancelled_at = now;
  place.refund = record.refund;
  place.hold_expires_at.reset();
  place.client_digest.reset();  // kept only while the hold is unpaid
  place.event_version += 1;
  place.updated_at = now;
  PlaceKind<Place>::save(service, place);
  announce(service, PlaceKind<Place>::cancelled, place, correlation, causation, record.refund_payment);
  return place;
}

// payment.completed of the place's invoice: confirmed while its hold runs; one cancelled
// meanwhile stays cancelled (revenue refunds the payment when it sees the cancellation of
// a paid invoice).
template <class Place>
bus::Outcome confirm_paid(db::Connection& service, std::optional<Place> place, std::int64_t payment,
                          std::optional<std::int64_t> invoice, const bus::Event& event, const std::string& source_id) {
  if (!place)
    throw bus::PermanentError("payment.completed for unknown " + std::string(PlaceKind<Place>::noun) + " " + source_id);
  if (place->status != "pending_payment") return bus::Outcome::stale;
  place->status = PlaceKind<Place>::paid_status;
  place->payment_id = payment;
  place->invoice_id = invoice;
  place->hold_expires_at.reset();
  place->client_digest.reset();
  place->event_version += 1;
  place->updated_at = utc::now();
  PlaceKind<Place>::save(service, *place);
  announce(service, PlaceKind<Place>::confirmed, *place, event.correlation_id, event.event_id);
  spdlog::info("parks: {} paid (payment {}); {}", label(*place), payment, PlaceKind<Place>::paid_status);
  return bus::Outcome::applied;
}

// The refund policy (docs/design-notes.md, "Booking cancellation and refunds"), for
// bookings and enrollments alike. A citizen cancels until the start: a paid place is
// refunded in full until `cutoff` before it, not after; a started or past one is refused,
// since it was (or is being) used. Staff cancel any, a paid one only with an explicit
// decision and reason. One not paid when cancelled refunds whatever payment still
// completes: it bought nothing. A program created before programs had a start has none:
// nothing is known to have begun, so its citizens cancel and are refunded as in time.
template <class Place>
Result<CancelRecord> decide_cancellation(db::Connection& connection, const Place& place, const Principal& principal,
                                         const Cancellation& request, std::chrono::system_clock::time_point now,
                                         std::chrono::hours cutoff) {
  auto starts_text = PlaceKind<Place>::starts_at(connection, place);
  std::optional<std::chrono::system_clock::time_point> starts;
  if (starts_text) {
    auto parsed = utc::parse(*starts_text);
    if (!parsed) return make_error(Errc::internal, label(place) + " has a bad start");
    starts = *parsed;
  }
  const bool paid = place.payment_id.has_value();
  if (principal.is_citizen()) {
    if (starts && now >= *starts)
      return make_error(Errc::conflict,
                        label(place) + " started at " + *starts_text + ": it can no longer be cancelled");
    const bool in_time = !starts || now + cutoff <= *starts;
    CancelRecord record{"citizen", principal.id, "cancelled by the citizen", std::nullopt, !paid || in_time};
    if (paid) record.refund = in_time ? "full" : "none";
    if (paid && !in_time)
      record.reason += " less than " + std::to_string(cutoff.count()) + " hours before the start: no refund";
    return record;
  }
  if (paid && (!request.refund || !request.reason))
    return make_error(Errc::invalid_argument, label(place) +
                                                  " is paid: staff cancel it with a body {\"refund\": true or "
                                                  "false, \"reason\": \"...\"}");
  CancelRecord record{"staff", principal.id, request.reason.value_or("cancelled by staff"), std::nullopt, true};
  if (paid) {
    record.refund = *request.refund ? "full" : "none";
    record.refund_payment = *request.refund;
  }
  return record;
}

std::optional<std::int64_t> integer_of(const json& value) {
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    std::int64_t out = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec == std::errc() && end == text.data() + text.size()) return out;
  }
  return std::nullopt;
}

}  // namespace

json facility_json(const store::Facility& f) {
  auto hours = parse_opening_hours(json::parse(f.opening_hours, nullptr, false), "opening_hours");
  return {{"id", f.id},
          {"name", f.name},
          {"kind", f.kind},
          {"capacity", f.capacity},
          {"hourly_price_cents", f.hourly_price_cents},
          {"currency", f.currency},
          {"time_zone", f.time_zone},
          {"opening_hours", hours ? opening_hours_json(*hours) : json::object()},
          {"is_active", f.is_active},
          {"created_at", f.created_at},
          {"updated_at", f.updated_at}};
}

json booking_json(const store::Booking& b) {
  return {{"id", b.id},
          {"facility_id", b.facility_id},
          {"citizen_id", b.citizen_id},
          {"starts_at", b.starts_at},
          {"ends_at", b.ends_at},
          {"status", b.status},
          {"amount_cents", b.amount_cents},
          {"currency", b.currency},
          {"hold_expires_at", nullable(b.hold_expires_at)},
          {"invoice_id", nullable(b.invoice_id)},
          {"payment_id", nullable(b.payment_id)},
          {"cancel_reason", nullable(b.cancel_reason)},
          {"cancelled_by", nullable(b.cancelled_by)},
          {"cancelled_at", nullable(b.cancelled_at)},
          {"refund", nullable(b.refund)},
          {"created_at", b.created_at},
          {"updated_at", b.updated_at}};
}

json program_json(const store::Program& p) {
  return {{"id", p.id},
          {"facility_id", nullable(p.facility_id)},
          {"name", p.name},
          {"schedule", p.schedule},
          {"capacity", p.capacity},
          {"enrolled", p.enrolled},
          {"waitlisted", p.waitlisted},
          {"held", p.held},
          {"price_cents", p.price_cents},
          {"currency", p.currency},
          {"starts_at", nullable(p.starts_at)},
          {"created_at", p.created_at}};
}

json enrollment_json(const store::Enrollment& e) {
  json out = {{"id", e.id},
              {"program_id", e.program_id},
              {"citizen_id", e.citizen_id},
              {"status", e.status},
              {"amount_cents", e.amount_cents},
              {"currency", e.currency},
              {"hold_expires_at", nullable(e.hold_expires_at)},
              {"invoice_id", nullable(e.invoice_id)},
              {"payment_id", nullable(e.payment_id)},
              {"cancel_reason", nullable(e.cancel_reason)},
              {"cancelled_by", nullable(e.cancelled_by)},
              {"cancelled_at", nullable(e.cancelled_at)},
              {"refund", nullable(e.refund)},
              {"created_at", e.created_at},
              {"updated_at", e.updated_at}};
  if (e.status == "waitlisted") out["waitlist_position"] = e.waitlist_position;
  return out;
}

ParksService::ParksService(Settings settings, Dependencies dependencies)
    : settings_(std::move(settings)),
      deps_(std::move(dependencies)),
      writes_(deps_.database, deps_.writer, deps_.events_committed) {}

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
  hold_timer_ = std::make_unique<asio::steady_timer>(deps_.writer.context());
  hold_loop_done_ = std::make_shared<Latch>();
  running_ = true;
  // The scheduler's first round expires what ended while the process was down.
  asio::co_spawn(deps_.writer.context(), hold_loop(), asio::detached);
}

void ParksService::stop() {
  if (running_.exchange(false)) {
    deps_.writer.post([this] { hold_timer_->cancel(); });
    hold_loop_done_->wait_blocking();
    deps_.writer.call([this] { hold_timer_.reset(); });
  }
  writes_.close();
}

Result<Unit> ParksService::usable() const {
  if (!running_) return make_error(Errc::unavailable, "the parks module is unavailable");
  return Unit{};
}

void ParksService::seed_demo() {
  auto seeded = writes_.call([&](db::Connection& service) -> Result<bool> {
    std::int64_t total = 0;
    store::list_facilities(service, false, 0, 1, total);
    if (total > 0) return false;
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

// --- facilities ------------------------------------------------------------------------

Result<Listed<store::Facility>> ParksService::list_facilities(const CallContext& context, input::Page page) {
  if (auto ok = usable(); !ok) return ok.error();
  bool active_only = !is_staff(context.principal.get());
  return deps_.readers.read([&](db::Connection& reader) -> Result<Listed<store::Facility>> {
    Listed<store::Facility> out;
    out.page = page;
    out.items = store::list_facilities(reader, active_only, page.offset(), page.size, out.total);
    return out;
  });
}

Result<store::Facility> ParksService::get_facility(const CallContext& context, std::int64_t id) {
  if (auto ok = usable(); !ok) return ok.error();
  bool staff = is_staff(context.principal.get());
  return deps_.readers.read([&](db::Connection& reader) -> Result<store::Facility> {
    auto facility = store::find_facility(reader, id);
    if (!facility || (!facility->is_active && !staff)) return make_error(Errc::not_found, "no such facility");
    return *facility;
  });
}

namespace {

// Applies `input` to `f`; the first problem, or Unit. A new facility needs every field.
// A price is checked against revenue's ceiling for the longest booking, so every booking
// it allows is an amount revenue invoices (issue 21 §3.4).
Result<Unit> apply_facility_input(store::Facility& f, const FacilityInput& input, bool creating,
                                  const std::string& default_currency, std::chrono::hours max_booking) {
  auto missing = [](const char* field) {
    return make_error(Errc::invalid_argument, std::string("field '") + field + "': is required");
  };
  if (creating && !input.name) return missing("name");
  if (creating && !input.kind) return missing("kind");
  if (creating && !input.capacity) return missing("capacity");
  if (creating && !input.hourly_price_cents) return missing("hourly_price_cents");
  if (creating && !input.time_zone) return missing("time_zone");
  if (creating && !input.opening_hours) return missing("opening_hours");
  if (input.name) f.name = *input.name;
  if (input.kind) f.kind = *input.kind;
  if (input.capacity) f.capacity = *input.capacity;
  if (input.hourly_price_cents) {
    const auto ceiling = revenue::kMaxInvoiceCents / max_booking.count();
    if (*input.hourly_price_cents > ceiling)
      return make_error(Errc::invalid_argument, "field 'hourly_price_cents': at most " + std::to_string(ceiling) +
                                                    ", so that a booking of " + std::to_string(max_booking.count()) +
                                                    " hours stays within what revenue can invoice (" +
                                                    std::to_string(revenue::kMaxInvoiceCents) + ")");
    f.hourly_price_cents = *input.hourly_price_cents;
  }
  if (input.currency) f.currency = *input.currency;
  if (creating && !input.currency) f.currency = default_currency;
  if (input.time_zone) {
    if (!known_time_zone(*input.time_zone))
      return make_error(Errc::invalid_argument,
                        "field 'time_zone': unknown time zone; use an IANA name such as \"America/New_York\"");
    f.time_zone = *input.time_zone;
  }
  if (input.opening_hours) f.opening_hours = opening_hours_json(*input.opening_hours).dump();
  if (input.is_active) f.is_active = *input.is_active;
  return Unit{};
}

}  // namespace

asio::awaitable<Result<store::Facility>> ParksService::create_facility(CallContext context, FacilityInput input) {
  if (!is_staff(context.principal.get())) co_return forbidden("needs permission parks:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  store::Facility facility;
  if (auto ok = apply_facility_input(facility, input, true, settings_.currency, settings_.max_booking); !ok)
    co_return ok.error();
  facility.created_at = facility.updated_at = utc::now();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Facility> {
    store::insert_facility(service, facility);
    return facility;
  });
}

asio::awaitable<Result<store::Facility>> ParksService::update_facility(CallContext context, std::int64_t id,
                                                                       FacilityInput input) {
  if (!is_staff(context.principal.get())) co_return forbidden("needs permission parks:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Facility> {
    auto facility = store::find_facility(service, id);
    if (!facility) return make_error(Errc::not_found, "no such facility");
    if (auto ok = apply_facility_input(*facility, input, false, settings_.currency, settings_.max_booking); !ok)
      return ok.error();
    facility->event_version += 1;
    facility->updated_at = utc::now();
    store::update_facility(service, *facility);
    return *facility;
  });
}

// --- bookings --------------------------------------------------------------------------

asio::awaitable<Result<store::Booking>> ParksService::book(CallContext context, std::int64_t facility_id,
                                                           std::chrono::system_clock::time_point starts_at,
                                                           std::chrono::system_clock::time_point ends_at,
                                                           std::string client_address) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("parks:book"))
    co_return forbidden("only citizens book facilities");
  if (auto ok = usable(); !ok) co_return ok.error();
  if (ends_at <= starts_at) co_return make_error(Errc::invalid_argument, "ends_at must be after starts_at");
  if (ends_at - starts_at > settings_.max_booking)
    co_return make_error(Errc::unprocessable,
                         "a booking lasts at most " + std::to_string(settings_.max_booking.count()) + " hours");
  auto facility = deps_.readers.read([&](db::Connection& reader) -> Result<store::Facility> {
    auto found = store::find_facility(reader, facility_id);
    if (!found || !found->is_active)
      return make_error(Errc::unprocessable, "unknown facility_id " + std::to_string(facility_id));
    return *found;
  });
  if (!facility) co_return facility.error();
  auto week = parse_opening_hours(json::parse(facility->opening_hours, nullptr, false), "opening_hours");
  if (!week) co_return make_error(Errc::internal, "facility " + std::to_string(facility_id) + " has bad hours");
  if (auto ok = check_slot(facility->time_zone, *week, starts_at, ends_at); !ok) co_return ok.error();
  auto hours = std::chrono::duration_cast<std::chrono::hours>(ends_at - starts_at).count();
  // A facility priced before max_booking_hours grew could still ask for more than revenue
  // invoices: refused here rather than held with an invoice that never opens.
  const auto amount = facility->hourly_price_cents * hours;
  if (amount > 0 && !revenue::invoiceable(amount, facility->currency))
    co_return make_error(Errc::unprocessable, "this booking would cost " + std::to_string(amount) + " " +
                                                  facility->currency + ", more than revenue can invoice");

  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Booking> {
    // Checked here, in the write transaction (the file's trigger holds it too).
    auto start_text = utc::format(starts_at), end_text = utc::format(ends_at);
    if (auto taken = store::find_overlap(service, facility_id, start_text, end_text))
      return make_error(Errc::conflict, "the facility is booked from " + taken->starts_at + " to " + taken->ends_at);
    auto now = std::chrono::system_clock::now();
    // Free bookings are confirmed at once, so without a cap one fresh account could block
    // a free facility for the whole horizon (issue 21 §3.3; OWASP API6). Counted per
    // facility kind, free and priced alike, in this transaction.
    if (store::count_active_of_kind(service, principal->id, facility->kind, utc::format(now)) >=
        settings_.max_active_per_kind)
      return make_error(Errc::conflict, "you hold " + std::to_string(settings_.max_active_per_kind) + " bookings of " +
                                            facility->kind +
                                            " facilities that have not ended; cancel one before booking another");
    store::Booking booking;
    booking.facility_id = facility_id;
    booking.citizen_id = principal->id;
    booking.starts_at = start_text;
    booking.ends_at = end_text;
    booking.amount_cents = amount;
    booking.currency = facility->currency;
    booking.created_at = booking.updated_at = utc::format(now);
    if (booking.amount_cents == 0) {
      booking.status = "confirmed";
      store::insert_booking(service, booking);
      announce(service, events::kBookingConfirmed, booking, context.correlation_id);
    } else {
      if (auto ok = may_pay_for_places(service, principal->id); !ok) return ok.error();
      auto client = client_digest(client_digest_key_, client_address);
      if (auto ok = room_for_a_hold(service, principal->id, client); !ok) return ok.error();
      booking.status = "pending_payment";
      booking.client_digest = client;
      booking.hold_expires_at = utc::format(now + settings_.hold);
      store::insert_booking(service, booking);
      announce(service, events::kBookingRequested, booking, context.correlation_id);
      wake_scheduler();
    }
    return booking;
  });
  if (written)
    spdlog::info("parks: booking {} of facility {} by citizen {} ({})", written->id, facility_id, principal->id,
                 written->status);
  co_return written;
}

Result<store::Booking> ParksService::get_booking(const CallContext& context, std::int64_t id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<store::Booking> {
    auto booking = store::find_booking(reader, id, *scope);
    if (!booking) return make_error(Errc::not_found, "no such booking");
    return *booking;
  });
}

Result<Listed<store::Booking>> ParksService::list_bookings(const CallContext& context, store::BookingFilter filter,
                                                           input::Page page) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<Listed<store::Booking>> {
    Listed<store::Booking> out;
    out.page = page;
    out.items = store::list_bookings(reader, *scope, filter, page.offset(), page.size, out.total);
    return out;
  });
}

// Holding a priced place costs nothing until its hold ends, and accounts cost nothing to
// make (issue 28 §4: four throwaway accounts held twelve priced slots, renewably): a hold
// needs a citizen whose email or identity the city has verified, ...
Result<Unit> ParksService::may_pay_for_places(db::Connection& service, std::int64_t citizen_id) const {
  auto citizen = store::find_citizen_ref(service, citizen_id);
  if (citizen && (citizen->email_verified || citizen->identity_verified)) return Unit{};
  return forbidden(
      "priced bookings and programs need a verified email address: ask the city to verify your account's email "
      "(or your identity) first; free facilities and programs need neither");
}

// ... and at most max_unpaid_per_citizen unpaid holds per citizen and max_unpaid_per_address
// per client address (OWASP API6), bookings and enrollments together, counted here in the
// caller's write transaction.
Result<Unit> ParksService::room_for_a_hold(db::Connection& service, std::int64_t citizen_id,
                                           const std::string& client) const {
  if (store::count_unpaid(service, citizen_id) >= settings_.max_unpaid_per_citizen)
    return make_error(Errc::conflict, "you hold " + std::to_string(settings_.max_unpaid_per_citizen) +
                                          " unpaid bookings or enrollments; pay or cancel one first");
  if (store::count_unpaid_from(service, client) >= settings_.max_unpaid_per_address)
    return make_error(Errc::conflict, std::to_string(settings_.max_unpaid_per_address) +
                                          " unpaid bookings or enrollments are held from your network address; "
                                          "pay or cancel one, or wait until a hold ends");
  return Unit{};
}

asio::awaitable<Result<store::Booking>> ParksService::cancel_booking(CallContext context, std::int64_t id,
                                                                     Cancellation request) {
  co_return co_await cancel_place<store::Booking>(std::move(context), id, std::move(request));
}

template <class Place>
asio::awaitable<Result<Place>> ParksService::cancel_place(CallContext context, std::int64_t id, Cancellation request) {
  using Kind = PlaceKind<Place>;
  const std::string noun(Kind::noun);
  auto scope = read_scope(context.principal.get());
  if (!scope) co_return scope.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  auto current = deps_.readers.read([&](db::Connection& reader) -> Result<Place> {
    auto found = Kind::find(reader, id, *scope);
    if (!found) return make_error(Errc::not_found, "no such " + noun);
    return *found;
  });
  if (!current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !(principal->is_citizen(current->citizen_id) || is_staff(principal)))
    co_return forbidden("only its citizen or parks staff cancel a " + noun);
  if (principal->is_citizen() && (request.refund || request.reason))
    co_return make_error(Errc::invalid_argument,
                         "field 'refund': only parks staff decide a refund; a citizen's cancellation takes no body");
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<Place> {
    auto place = Kind::find(service, id, store::Scope::everything());
    if (!place) return make_error(Errc::not_found, "no such " + noun);
    if (place->status == "cancelled") return make_error(Errc::conflict, label(*place) + " is already cancelled");
    auto record = decide_cancellation(service, *place, *principal, request, std::chrono::system_clock::now(),
                                      settings_.refund_cutoff);
    if (!record) return record.error();
    auto cancelled = cancel(service, *place, *record, context.correlation_id);
    released(service, cancelled, context.correlation_id, {});
    return cancelled;
  });
  // The audit line: who, the decision and why (the row records the same).
  if (written)
    spdlog::info("parks: {} cancelled by {} {}; refund: {}; reason: {}", label(*written), *written->cancelled_by,
                 principal->id, written->refund.value_or("nothing was paid"), *written->cancel_reason);
  co_return written;
}

void ParksService::released(db::Connection&, const store::Booking&, const std::string&, const std::string&) {}

void ParksService::released(db::Connection& service, const store::Enrollment& enrollment,
                            const std::string& correlation, const std::string& causation) {
  fill_from_waitlist(service, enrollment.program_id, correlation, causation);
}

void ParksService::fill_from_waitlist(db::Connection& service, std::int64_t program_id, const std::string& correlation,
                                      const std::string& causation) {
  auto program = store::find_program(service, program_id);
  if (!program) return;
  while (store::count_taken(service, program_id) < program->capacity) {
    auto next = store::first_waitlisted(service, program_id);
    if (!next) return;
    auto now = std::chrono::system_clock::now();
    next->amount_cents = program->price_cents;  // what the place costs now
    next->currency = program->currency;
    next->updated_at = utc::format(now);
    next->event_version += 1;
    if (next->amount_cents > 0) {
      // Offered, not given: held for a payment with its own deadline, like any priced place.
      next->status = "pending_payment";
      next->hold_expires_at = utc::format(now + settings_.hold);
      store::update_enrollment(service, *next);
      announce(service, events::kEnrollmentRequested, *next, correlation, causation);
      wake_scheduler();
      spdlog::info("parks: enrollment {} offered a place in program {} from the waitlist, held until {}", next->id,
                   program_id, *next->hold_expires_at);
    } else {
      next->status = "enrolled";
      store::update_enrollment(service, *next);
      announce(service, events::kEnrollmentConfirmed, *next, correlation, causation);
      spdlog::info("parks: enrollment {} promoted from the waitlist of program {}", next->id, program_id);
    }
  }
}

asio::awaitable<Result<std::int64_t>> ParksService::expire_holds() {
  co_return co_await writes_.run([&](db::Connection& service) -> Result<std::int64_t> {
    std::int64_t count = 0;
    auto now = utc::now();
    auto expire = [&](const auto& place) {
      auto cancelled = cancel(service, place, by_the_system(std::string(events::kHoldExpiredReason)), "hold-expiry");
      released(service, cancelled, "hold-expiry", {});
      spdlog::info("parks: {} cancelled: its hold expired unpaid", label(place));
      ++count;
    };
    for (const auto& booking : store::expired_holds(service, now, 1000)) expire(booking);
    for (const auto& enrollment : store::expired_enrollment_holds(service, now, 1000)) expire(enrollment);
    return count;
  });
}

void ParksService::wake_scheduler() {
  deps_.writer.post([this] {
    if (hold_timer_) hold_timer_->cancel();
  });
}

// On the writer's io_context: expire what is due, then sleep until the earliest hold still
// running — recomputed from the file each round, so a restart keeps every deadline.
asio::awaitable<void> ParksService::hold_loop() {
  auto done = hold_loop_done_;
  while (running_) {
    auto expired = co_await expire_holds();
    if (!expired) spdlog::warn("parks: expiring holds failed: {}", expired.error().message);
    if (!running_) break;
    auto next = deps_.readers.read(
        [&](db::Connection& reader) -> Result<std::optional<std::string>> { return store::next_hold_expiry(reader); });
    auto wait = std::chrono::steady_clock::duration(std::chrono::minutes(1));  // a backstop
    if (next && *next) {
      if (auto when = utc::parse(**next))
        wait = std::min<std::chrono::steady_clock::duration>(
            wait,
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(*when - std::chrono::system_clock::now()));
    }
    if (!expired) wait = std::chrono::seconds(1);
    hold_timer_->expires_after(std::max<std::chrono::steady_clock::duration>(wait, std::chrono::milliseconds(1)));
    co_await hold_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  done->set();
}

// --- programs --------------------------------------------------------------------------

asio::awaitable<Result<store::Program>> ParksService::create_program(CallContext context, NewProgram input) {
  if (!is_staff(context.principal.get())) co_return forbidden("needs permission parks:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  if (input.price_cents > 0 && !input.starts_at)
    co_return make_error(Errc::invalid_argument,
                         "field 'starts_at': is required for a priced program (the refund cutoff counts from it)");
  const auto currency = input.currency.value_or(settings_.currency);
  if (input.price_cents > 0 && !revenue::invoiceable(input.price_cents, currency))
    co_return make_error(Errc::invalid_argument, "field 'price_cents': " + std::to_string(input.price_cents) + " " +
                                                     currency + " is more than revenue can invoice");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Program> {
    if (input.facility_id && !store::find_facility(service, *input.facility_id))
      return make_error(Errc::unprocessable, "unknown facility_id " + std::to_string(*input.facility_id));
    auto now = utc::now();
    store::Program program{0,
                           input.facility_id,
                           input.name,
                           input.schedule,
                           input.capacity,
                           input.price_cents,
                           currency,
                           true,
                           now,
                           now,
                           0,
                           0,
                           input.starts_at ? std::optional(utc::format(*input.starts_at)) : std::nullopt};
    store::insert_program(service, program);
    return program;
  });
}

Result<Listed<store::Program>> ParksService::list_programs(input::Page page) {
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<Listed<store::Program>> {
    Listed<store::Program> out;
    out.page = page;
    out.items = store::list_programs(reader, page.offset(), page.size, out.total);
    return out;
  });
}

Result<store::Program> ParksService::get_program(std::int64_t id) {
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<store::Program> {
    auto program = store::find_program(reader, id);
    if (!program || !program->is_active) return make_error(Errc::not_found, "no such program");
    return *program;
  });
}

asio::awaitable<Result<store::Enrollment>> ParksService::enroll(CallContext context, std::int64_t program_id,
                                                                std::string client_address) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("parks:book"))
    co_return forbidden("only citizens enroll in programs");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Enrollment> {
    auto program = store::find_program(service, program_id);
    if (!program || !program->is_active) return make_error(Errc::not_found, "no such program");
    if (auto existing = store::find_active_enrollment(service, program_id, principal->id))
      return make_error(Errc::conflict, "already " + existing->status + " in program " + std::to_string(program_id) +
                                            " (enrollment " + std::to_string(existing->id) + ")");
    const bool priced = program->price_cents > 0;
    // A waitlisted place in a priced program is offered held later: the same rule.
    if (priced)
      if (auto ok = may_pay_for_places(service, principal->id); !ok) return ok.error();
    if (priced && !revenue::invoiceable(program->price_cents, program->currency))
      return make_error(Errc::unprocessable, "program " + std::to_string(program_id) +
                                                 " costs more than revenue can "
                                                 "invoice");
    auto now = std::chrono::system_clock::now();
    store::Enrollment enrollment;
    enrollment.program_id = program_id;
    enrollment.citizen_id = principal->id;
    enrollment.amount_cents = program->price_cents;
    enrollment.currency = program->currency;
    enrollment.created_at = enrollment.updated_at = utc::format(now);
    // Capacity counts the places held for a payment, in this write transaction (the
    // file's trigger holds it too).
    if (store::count_taken(service, program_id) >= program->capacity) {
      enrollment.status = "waitlisted";
      store::insert_enrollment(service, enrollment);
    } else if (!priced) {
      enrollment.status = "enrolled";
      store::insert_enrollment(service, enrollment);
      announce(service, events::kEnrollmentConfirmed, enrollment, context.correlation_id);
    } else {
      auto client = client_digest(client_digest_key_, client_address);
      if (auto ok = room_for_a_hold(service, principal->id, client); !ok) return ok.error();
      enrollment.status = "pending_payment";
      enrollment.client_digest = client;
      enrollment.hold_expires_at = utc::format(now + settings_.hold);
      store::insert_enrollment(service, enrollment);
      announce(service, events::kEnrollmentRequested, enrollment, context.correlation_id);
      wake_scheduler();
    }
    return *store::find_enrollment(service, enrollment.id, store::Scope::everything());
  });
  if (written)
    spdlog::info("parks: enrollment {} in program {} by citizen {} ({})", written->id, program_id, principal->id,
                 written->status);
  co_return written;
}

Result<store::Enrollment> ParksService::get_enrollment(const CallContext& context, std::int64_t id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<store::Enrollment> {
    auto enrollment = store::find_enrollment(reader, id, *scope);
    if (!enrollment) return make_error(Errc::not_found, "no such enrollment");
    return *enrollment;
  });
}

asio::awaitable<Result<store::Enrollment>> ParksService::cancel_enrollment(CallContext context, std::int64_t id,
                                                                           Cancellation request) {
  co_return co_await cancel_place<store::Enrollment>(std::move(context), id, std::move(request));
}

// --- events ----------------------------------------------------------------------------

std::vector<bus::Subscription> ParksService::subscriptions() {
  return {
      auth::CitizenRefs(deps_.auth, "parks", citizen_table()).subscription(),
      // Bookings' and enrollments' (the names predate enrollments; a name is a cursor).
      {"booking_payments",
       {std::string(revenue::events::kPaymentTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_payment_event(event, service); }},
      {"booking_invoices",
       {std::string(revenue::events::kInvoiceTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_invoice_event(event, service); }},
  };
}

// The columns citizen_refs keeps (a priced hold needs a verified email or identity), compared by
// content with what auth holds.
const auth::CitizenRefTable& ParksService::citizen_table() {
  using auth::CitizenField;
  static const auth::CitizenRefTable table({CitizenField::name, CitizenField::email, CitizenField::email_verified,
                                            CitizenField::identity_verified, CitizenField::is_active});
  return table;
}

bus::Outcome ParksService::apply_citizen_event(const bus::Event& event, db::Connection& sync) {
  return citizen_table().apply(event, sync);
}

std::vector<consistency::Cache> ParksService::caches() {
  return {auth::CitizenRefs(deps_.auth, "parks", citizen_table()).cache()};
}

// payment.completed of a booking's or an enrollment's invoice confirms it (confirm_paid).
bus::Outcome ParksService::apply_payment_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != revenue::events::kPaymentCompleted) return bus::Outcome::applied;
  auto paid = revenue::events::payment_of(event);
  const bool booking = paid.pays_for("parks", events::kBookingSource),
             enrollment = paid.pays_for("parks", events::kEnrollmentSource);
  if (!booking && !enrollment) return bus::Outcome::applied;
  auto id = integer_of(json(paid.source_id));
  if (!id)
    throw bus::PermanentError("payment.completed names " + paid.source_type + " '" + paid.source_id + "', not an id");
  const auto payment = paid.id;
  const std::optional<std::int64_t> invoice = paid.invoice_id;
  const auto source_id = std::to_string(*id);
  if (booking)
    return confirm_paid(service, store::find_booking(service, *id, store::Scope::everything()), payment, invoice, event,
                        source_id);
  return confirm_paid(service, store::find_enrollment(service, *id, store::Scope::everything()), payment, invoice,
                      event, source_id);
}

// Revenue refused to open the invoice of a booking or an enrollment (an amount past its
// ceiling that parks' own checks should have stopped): no payment can come, so the place
// is released now rather than held until the hold ends — or forever, as a dead letter
// once left it (issue 21 §3.4).
bus::Outcome ParksService::apply_invoice_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != revenue::events::kInvoiceRejected) return bus::Outcome::applied;
  auto rejection = revenue::events::invoice_rejection_from_snapshot(event.data.at("snapshot"));
  if (rejection.source_module != "parks") return bus::Outcome::applied;
  const bool booking = rejection.source_type == events::kBookingSource,
             enrollment = rejection.source_type == events::kEnrollmentSource;
  if (!booking && !enrollment) return bus::Outcome::applied;
  auto id = integer_of(json(rejection.source_id));
  if (!id)
    throw bus::PermanentError("invoice.rejected names no " + rejection.source_type + " id: " + rejection.source_id);
  auto release = [&](const auto& place) {
    if (!place)
      throw bus::PermanentError("invoice.rejected for unknown " + rejection.source_type + " " + rejection.source_id);
    if (place->status != "pending_payment") return bus::Outcome::stale;
    auto cancelled = cancel(service, *place, by_the_system("revenue cannot invoice it: " + rejection.reason),
                            event.correlation_id, event.event_id);
    released(service, cancelled, event.correlation_id, event.event_id);
    spdlog::warn("parks: {} released: revenue refused its invoice ({})", label(*place), rejection.reason);
    return bus::Outcome::applied;
  };
  if (booking) return release(store::find_booking(service, *id, store::Scope::everything()));
  return release(store::find_enrollment(service, *id, store::Scope::everything()));
}

}  // namespace townhall::parks
