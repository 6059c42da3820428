#include "service.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>

#include "townhall/auth/bootstrap.hpp"
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

// The snapshot is the booking as the API shows it, with the contract's fields
// (townhall/parks/events.hpp) written by the contract's own code.
void append(db::Connection& service, std::string_view type, const store::Booking& booking,
            const std::string& correlation, const std::string& causation = {}, bool refund_payment = true) {
  auto snapshot = booking_json(booking);
  snapshot.update(
      events::booking_snapshot({booking.id, booking.facility_id, booking.citizen_id, booking.starts_at, booking.ends_at,
                                booking.status, booking.amount_cents, booking.currency, refund_payment}));
  bus::append(service, bus::aggregate_event(events::kBookingTopic, type, "booking", booking.id, booking.event_version,
                                            {{"snapshot", std::move(snapshot)}}, correlation, causation));
}

// Who cancels, why, and what becomes of a payment (issue 21 §3.1).
struct CancelRecord {
  std::string by;  // citizen | staff | system
  std::optional<std::int64_t> by_id;
  std::string reason;
  std::optional<std::string> refund;  // full | none, for a booking paid when cancelled
  bool refund_payment = true;         // what booking.cancelled tells revenue
};

CancelRecord by_the_system(std::string reason) {
  return {"system", std::nullopt, std::move(reason), std::nullopt, true};
}

// Cancels `booking` (already read in this transaction), records who and what was decided,
// and announces it.
store::Booking cancel(db::Connection& service, store::Booking booking, const CancelRecord& record,
                      const std::string& correlation, const std::string& causation = {}) {
  auto now = utc::now();
  booking.status = "cancelled";
  booking.cancel_reason = record.reason;
  booking.cancelled_by = record.by;
  booking.cancelled_by_id = record.by_id;
  booking.cancelled_at = now;
  booking.refund = record.refund;
  booking.hold_expires_at.reset();
  booking.event_version += 1;
  booking.updated_at = now;
  store::update_booking(service, booking);
  append(service, events::kBookingCancelled, booking, correlation, causation, record.refund_payment);
  return booking;
}

// The refund policy (docs/design-notes.md, "Booking cancellation and refunds"). A citizen
// cancels until the start: a paid booking is refunded in full until `cutoff` before it,
// not after; a started or past booking is refused, since it was (or is being) used. Staff
// cancel any booking, a paid one only with an explicit decision and reason. A booking not
// paid when cancelled refunds whatever payment still completes: it bought nothing.
Result<CancelRecord> decide_cancellation(const store::Booking& booking, const Principal& principal,
                                         const Cancellation& request, std::chrono::system_clock::time_point now,
                                         std::chrono::hours cutoff) {
  auto starts = utc::parse(booking.starts_at);
  if (!starts) return make_error(Errc::internal, "booking " + std::to_string(booking.id) + " has a bad start");
  const bool paid = booking.payment_id.has_value();
  if (principal.is_citizen()) {
    if (now >= *starts)
      return make_error(Errc::conflict, "booking " + std::to_string(booking.id) + " started at " + booking.starts_at +
                                            ": it can no longer be cancelled");
    const bool in_time = now + cutoff <= *starts;
    CancelRecord record{"citizen", principal.id, "cancelled by the citizen", std::nullopt, !paid || in_time};
    if (paid) record.refund = in_time ? "full" : "none";
    if (paid && !in_time)
      record.reason += " less than " + std::to_string(cutoff.count()) + " hours before the start: no refund";
    return record;
  }
  if (paid && (!request.refund || !request.reason))
    return make_error(Errc::invalid_argument, "booking " + std::to_string(booking.id) +
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
          {"price_cents", p.price_cents},
          {"currency", p.currency},
          {"created_at", p.created_at}};
}

json enrollment_json(const store::Enrollment& e) {
  json out = {{"id", e.id},         {"program_id", e.program_id}, {"citizen_id", e.citizen_id},
              {"status", e.status}, {"created_at", e.created_at}, {"updated_at", e.updated_at}};
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
    store::Program yoga{0,   field.id, "Morning yoga", "Saturdays 09:00-10:00", 12, 4000, settings_.currency, true,
                        now, now};
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
                                                           std::chrono::system_clock::time_point ends_at) {
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
      append(service, events::kBookingConfirmed, booking, context.correlation_id);
    } else {
      // Holding slots costs nothing until the hold ends: a cap keeps one citizen from
      // holding a facility's calendar (OWASP API6, sensitive business flows).
      if (store::count_unpaid(service, principal->id) >= settings_.max_unpaid_per_citizen)
        return make_error(Errc::conflict, "you hold " + std::to_string(settings_.max_unpaid_per_citizen) +
                                              " unpaid bookings; pay or cancel one before booking another");
      booking.status = "pending_payment";
      booking.hold_expires_at = utc::format(now + settings_.hold);
      store::insert_booking(service, booking);
      append(service, events::kBookingRequested, booking, context.correlation_id);
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

asio::awaitable<Result<store::Booking>> ParksService::cancel_booking(CallContext context, std::int64_t id,
                                                                     Cancellation request) {
  auto current = get_booking(context, id);
  if (!current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !(principal->is_citizen(current->citizen_id) || is_staff(principal)))
    co_return forbidden("only the citizen who booked or parks staff cancel a booking");
  if (principal->is_citizen() && (request.refund || request.reason))
    co_return make_error(Errc::invalid_argument,
                         "field 'refund': only parks staff decide a refund; a citizen's cancellation takes no body");
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Booking> {
    auto booking = store::find_booking(service, id, store::Scope::everything());
    if (!booking) return make_error(Errc::not_found, "no such booking");
    if (booking->status == "cancelled")
      return make_error(Errc::conflict, "booking " + std::to_string(id) + " is already cancelled");
    auto record =
        decide_cancellation(*booking, *principal, request, std::chrono::system_clock::now(), settings_.refund_cutoff);
    if (!record) return record.error();
    return cancel(service, *booking, *record, context.correlation_id);
  });
  // The audit line: who, the decision and why (the booking row records the same).
  if (written)
    spdlog::info("parks: booking {} cancelled by {} {}; refund: {}; reason: {}", id, *written->cancelled_by,
                 principal->id, written->refund.value_or("nothing was paid"), *written->cancel_reason);
  co_return written;
}

asio::awaitable<Result<std::int64_t>> ParksService::expire_holds() {
  co_return co_await writes_.run([&](db::Connection& service) -> Result<std::int64_t> {
    std::int64_t count = 0;
    for (auto& booking : store::expired_holds(service, utc::now(), 1000)) {
      cancel(service, booking, by_the_system("the payment hold expired"), "hold-expiry");
      spdlog::info("parks: booking {} cancelled: its hold expired unpaid", booking.id);
      ++count;
    }
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
                           input.currency.value_or(settings_.currency),
                           true,
                           now,
                           now,
                           0,
                           0};
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

asio::awaitable<Result<store::Enrollment>> ParksService::enroll(CallContext context, std::int64_t program_id) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("parks:book"))
    co_return forbidden("only citizens enroll in programs");
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Enrollment> {
    auto program = store::find_program(service, program_id);
    if (!program || !program->is_active) return make_error(Errc::not_found, "no such program");
    if (auto existing = store::find_active_enrollment(service, program_id, principal->id))
      return make_error(Errc::conflict, "already " + existing->status + " in program " + std::to_string(program_id) +
                                            " (enrollment " + std::to_string(existing->id) + ")");
    // Capacity is counted in this write transaction (the file's trigger holds it too).
    store::Enrollment enrollment;
    enrollment.program_id = program_id;
    enrollment.citizen_id = principal->id;
    enrollment.status = store::count_enrolled(service, program_id) < program->capacity ? "enrolled" : "waitlisted";
    enrollment.created_at = enrollment.updated_at = utc::now();
    store::insert_enrollment(service, enrollment);
    return *store::find_enrollment(service, enrollment.id, store::Scope::everything());
  });
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

asio::awaitable<Result<store::Enrollment>> ParksService::cancel_enrollment(CallContext context, std::int64_t id) {
  auto current = get_enrollment(context, id);
  if (!current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !(principal->is_citizen(current->citizen_id) || is_staff(principal)))
    co_return forbidden("only the enrolled citizen or parks staff cancel an enrollment");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Enrollment> {
    auto enrollment = store::find_enrollment(service, id, store::Scope::everything());
    if (!enrollment) return make_error(Errc::not_found, "no such enrollment");
    if (enrollment->status == "cancelled")
      return make_error(Errc::conflict, "enrollment " + std::to_string(id) + " is already cancelled");
    bool freed_a_place = enrollment->status == "enrolled";
    enrollment->status = "cancelled";
    enrollment->updated_at = utc::now();
    store::update_enrollment(service, *enrollment);
    // The first on the waitlist takes the freed place, in the same transaction.
    if (freed_a_place)
      if (auto next = store::first_waitlisted(service, enrollment->program_id)) {
        next->status = "enrolled";
        next->updated_at = enrollment->updated_at;
        store::update_enrollment(service, *next);
        spdlog::info("parks: enrollment {} promoted from the waitlist of program {}", next->id, next->program_id);
      }
    return *store::find_enrollment(service, id, store::Scope::everything());
  });
}

// --- events ----------------------------------------------------------------------------

std::vector<bus::Subscription> ParksService::subscriptions() {
  return {
      {"citizen_refs",
       {std::string(auth::events::kCitizenTopic)},
       db::Role::sync,
       &ParksService::apply_citizen_event,
       [this](db::Connection& sync) { bootstrap_citizens(sync); }},
      {"booking_payments",
       {"gov.revenue.payment"},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_payment_event(event, service); }},
      {"booking_invoices",
       {std::string(revenue::events::kInvoiceTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_invoice_event(event, service); }},
  };
}

namespace {

store::CitizenRef citizen_ref(const auth::Citizen& citizen, bool active) {
  store::CitizenRef ref;
  ref.citizen_id = citizen.id;
  ref.name = citizen.name;
  if (active) ref.email = citizen.email;
  ref.is_active = active;
  ref.event_version = citizen.event_version;
  ref.last_synced_at = utc::now();
  return ref;
}

}  // namespace

bus::Outcome ParksService::apply_citizen_event(const bus::Event& event, db::Connection& sync) {
  auto citizen = auth::events::citizen_after(event.event_type, event.data.at("snapshot"), event.event_version);
  auto ref = citizen_ref(citizen, citizen.is_active);
  return store::upsert_citizen_ref(sync, ref) ? bus::Outcome::applied : bus::Outcome::stale;
}

std::vector<consistency::Cache> ParksService::caches() {
  auto store = [](db::Connection& sync, const auth::Citizen& citizen) {
    store::upsert_citizen_ref(sync, citizen_ref(citizen, citizen.is_active));
  };
  // The columns citizen_refs keeps, compared by content with what auth holds.
  using auth::CitizenField;
  return {auth::citizen_cache(deps_.auth, "parks", {CitizenField::name, CitizenField::email, CitizenField::is_active},
                              store)};
}

void ParksService::bootstrap_citizens(db::Connection& sync) {
  auto count = auth::for_each_citizen(deps_.auth, "parks", [&](const auth::Citizen& citizen) {
    store::upsert_citizen_ref(sync, citizen_ref(citizen, citizen.is_active));
  });
  spdlog::info("parks: citizen_refs bootstrapped from auth ({} citizens)", count);
}

// payment.completed of a booking's invoice confirms it while its hold runs; a booking
// cancelled meanwhile stays cancelled (revenue refunds the payment when it sees
// booking.cancelled for a paid invoice).
bus::Outcome ParksService::apply_payment_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != "payment.completed") return bus::Outcome::applied;
  const auto& snapshot = event.data.at("snapshot");
  auto module = snapshot.find("source_module");
  auto type = snapshot.find("source_type");
  if (module == snapshot.end() || type == snapshot.end() || *module != "parks" || *type != "booking")
    return bus::Outcome::applied;
  auto id = integer_of(snapshot.at("source_id"));
  auto payment = integer_of(snapshot.at("id"));
  if (!id || !payment) throw bus::PermanentError("payment.completed names no booking id or payment id");
  auto booking = store::find_booking(service, *id, store::Scope::everything());
  if (!booking) throw bus::PermanentError("payment.completed for unknown booking " + std::to_string(*id));
  if (booking->status != "pending_payment") return bus::Outcome::stale;
  booking->status = "confirmed";
  booking->payment_id = payment;
  booking->invoice_id = integer_of(snapshot.value("invoice_id", json()));
  booking->hold_expires_at.reset();
  booking->event_version += 1;
  booking->updated_at = utc::now();
  store::update_booking(service, *booking);
  append(service, events::kBookingConfirmed, *booking, event.correlation_id, event.event_id);
  spdlog::info("parks: booking {} paid (payment {}); confirmed", booking->id, *payment);
  return bus::Outcome::applied;
}

// Revenue refused to open a booking's invoice (an amount past its ceiling that parks'
// own checks should have stopped): no payment can come, so the booking is cancelled now
// and its slot freed rather than held until the hold ends — or forever, as a dead letter
// once left it (issue 21 §3.4).
bus::Outcome ParksService::apply_invoice_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != revenue::events::kInvoiceRejected) return bus::Outcome::applied;
  auto rejection = revenue::events::invoice_rejection_from_snapshot(event.data.at("snapshot"));
  if (rejection.source_module != "parks" || rejection.source_type != "booking") return bus::Outcome::applied;
  auto id = integer_of(json(rejection.source_id));
  if (!id) throw bus::PermanentError("invoice.rejected names no booking id: " + rejection.source_id);
  auto booking = store::find_booking(service, *id, store::Scope::everything());
  if (!booking) throw bus::PermanentError("invoice.rejected for unknown booking " + rejection.source_id);
  if (booking->status != "pending_payment") return bus::Outcome::stale;
  cancel(service, *booking, by_the_system("revenue cannot invoice it: " + rejection.reason), event.correlation_id,
         event.event_id);
  spdlog::warn("parks: booking {} released: revenue refused its invoice ({})", booking->id, rejection.reason);
  return bus::Outcome::applied;
}

}  // namespace townhall::parks
