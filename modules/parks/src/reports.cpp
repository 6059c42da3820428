// Parks' reports on its own data (issue 26.3): how much of each facility's opening hours
// was booked, week by week in its zone, and the bookings nobody came to or cancelled.
#include <date/tz.h>
#include <spdlog/spdlog.h>

#include <map>

#include "service_internal.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::parks {
namespace {

namespace asio = boost::asio;
using date::local_days;

local_days moncalendar_day(local_days day) { return day - (date::weekday{day} - date::Monday); }

}  // namespace

asio::awaitable<Result<store::Booking>> ParksService::mark_no_show(CallContext context, std::int64_t id) {
  const auto* principal = context.principal.get();
  if (!is_staff(principal)) co_return forbidden("needs permission parks:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Booking> {
    auto booking = store::find_booking(service, id, store::Scope::everything());
    if (!booking) return make_error(Errc::not_found, "no such booking");
    if (booking->status != "confirmed")
      return make_error(Errc::conflict, "booking " + std::to_string(id) + " is " + booking->status +
                                            "; only a confirmed booking can be a no-show");
    if (booking->no_show_at)
      return make_error(Errc::conflict, "booking " + std::to_string(id) + " is already marked a no-show");
    auto now = utc::now();
    if (now < booking->starts_at)
      return make_error(Errc::conflict,
                        "booking " + std::to_string(id) + " has not started yet (" + booking->starts_at + ")");
    store::mark_no_show(service, id, principal->id, now);
    return *store::find_booking(service, id, store::Scope::everything());
  });
  if (written) spdlog::info("parks: booking {} marked a no-show by employee {}", id, principal->id);
  co_return written;
}

Result<std::vector<UtilisationRow>> ParksService::utilisation_report(const CallContext& context,
                                                                     const std::string& from, const std::string& to,
                                                                     std::optional<std::int64_t> facility_id) {
  if (!is_staff(context.principal.get())) return forbidden("needs permission parks:manage");
  if (auto ok = usable(); !ok) return ok.error();
  const local_days first{calendar_day(from)}, last{calendar_day(to)};
  return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<UtilisationRow>> {
    std::vector<store::Facility> facilities;
    if (facility_id) {
      auto one = store::find_facility(reader, *facility_id);
      if (!one) return make_error(Errc::not_found, "no such facility");
      facilities.push_back(std::move(*one));
    } else {
      facilities = store::list_facilities(reader, false, std::nullopt, 10'000);
    }
    std::map<std::int64_t, std::map<local_days, UtilisationRow>> by_id;  // facility -> its weeks
    for (const auto& f : facilities) {
      auto hours = parse_opening_hours(nlohmann::json::parse(f.opening_hours), "opening_hours");
      if (!hours) return make_error(Errc::internal, "facility " + std::to_string(f.id) + " has unreadable hours");
      auto& weeks = by_id[f.id];
      // Every week of the range has a row, booked or not; its open hours are the wall
      // clock's (a day saving time change inside opening hours is an hour off).
      for (auto day = first; day <= last; day += date::days(1)) {
        auto& row = weeks[moncalendar_day(day)];
        row.facility_id = f.id;
        row.facility = f.name;
        row.week = date::format("%F", moncalendar_day(day));
        if (const auto& open = hours->days[date::weekday{day}.c_encoding()])
          row.open_hours += (open->close_minutes - open->open_minutes) / 60.0;
      }
    }
    // The range's days in each facility's zone (bookings.local_day, migration 0008).
    store::each_booking_day(reader, from, to, facility_id, [&](const store::BookingDay& day) {
      auto facility = by_id.find(day.facility_id);
      if (facility == by_id.end()) return;
      auto& row = facility->second[moncalendar_day(local_days{calendar_day(day.day)})];
      row.bookings += day.bookings;
      row.booked_hours += static_cast<double>(day.booked_ms) / 3'600'000.0;
      row.no_shows += day.no_shows;
      row.cancelled_by_citizen += day.cancelled_by_citizen;
      row.cancelled_by_staff += day.cancelled_by_staff;
      row.expired += day.expired;
    });
    std::vector<UtilisationRow> rows;
    for (auto& [id, weeks] : by_id)
      for (auto& [monday, row] : weeks) rows.push_back(std::move(row));
    return rows;
  });
}

}  // namespace townhall::parks
