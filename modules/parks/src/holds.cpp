// Unpaid holds on priced places: who may hold one, how many, and the scheduler that
// cancels them when they end unpaid.
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "places.hpp"

namespace townhall::parks {

namespace asio = boost::asio;

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
  // After a start, what revenue committed first (a payment made in time, before a crash
  // or a long stop) reaches parks before any hold expires: that booking is confirmed,
  // not cancelled and refunded. Bounded, so a source that stays unreadable does not keep
  // every hold running.
  if (deps_.inputs_caught_up) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (deps_.gate.is_open() && !deps_.inputs_caught_up() && std::chrono::steady_clock::now() < give_up) {
      hold_timer_->expires_after(std::chrono::milliseconds(50));
      co_await hold_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  while (deps_.gate.is_open()) {
    auto expired = co_await expire_holds();
    if (!expired) spdlog::warn("parks: expiring holds failed: {}", expired.error().message);
    if (!deps_.gate.is_open()) break;
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

}  // namespace townhall::parks
