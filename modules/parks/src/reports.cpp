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
  // Stored times are UTC: a day either side covers every zone's local days.
  const auto start = utc::format(date::sys_days{calendar_day(from)} - date::days(1));
  const auto end = utc::format(date::sys_days{calendar_day(to)} + date::days(2));
  return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<UtilisationRow>> {
    std::vector<store::Facility> facilities;
    if (facility_id) {
      auto one = store::find_facility(reader, *facility_id);
      if (!one) return make_error(Errc::not_found, "no such facility");
      facilities.push_back(std::move(*one));
    } else {
      facilities = store::list_facilities(reader, false, std::nullopt, 10'000);
    }
    struct Facility {
      const date::time_zone* zone;
      std::map<local_days, UtilisationRow> weeks;
    };
    std::map<std::int64_t, Facility> by_id;
    for (const auto& f : facilities) {
      auto hours = parse_opening_hours(nlohmann::json::parse(f.opening_hours), "opening_hours");
      if (!hours) return make_error(Errc::internal, "facility " + std::to_string(f.id) + " has unreadable hours");
      auto& entry = by_id[f.id];
      entry.zone = date::locate_zone(f.time_zone);
      // Every week of the range has a row, booked or not; its open hours are the wall
      // clock's (a day saving time change inside opening hours is an hour off).
      for (auto day = first; day <= last; day += date::days(1)) {
        auto& row = entry.weeks[moncalendar_day(day)];
        row.facility_id = f.id;
        row.facility = f.name;
        row.week = date::format("%F", moncalendar_day(day));
        if (const auto& open = hours->days[date::weekday{day}.c_encoding()])
          row.open_hours += (open->close_minutes - open->open_minutes) / 60.0;
      }
    }
    store::each_booking_starting(reader, start, end, facility_id, [&](const store::BookingUse& use) {
      auto facility = by_id.find(use.facility_id);
      auto starts = utc::parse(use.starts_at);
      auto ends = utc::parse(use.ends_at);
      if (facility == by_id.end() || !starts || !ends) return;
      auto local = date::floor<date::days>(facility->second.zone->to_local(*starts));
      if (local < first || local > last) return;  // outside the range in the facility's zone
      auto& row = facility->second.weeks[moncalendar_day(local)];
      if (use.status == "confirmed") {
        ++row.bookings;
        row.booked_hours += std::chrono::duration<double, std::ratio<3600>>(*ends - *starts).count();
        if (use.no_show) ++row.no_shows;
      } else if (use.status == "cancelled") {
        if (use.cancelled_by == "citizen")
          ++row.cancelled_by_citizen;
        else if (use.cancelled_by == "staff")
          ++row.cancelled_by_staff;
        else
          ++row.expired;
      }
    });
    std::vector<UtilisationRow> rows;
    for (auto& [id, facility] : by_id)
      for (auto& [monday, row] : facility.weeks) rows.push_back(std::move(row));
    return rows;
  });
}

}  // namespace townhall::parks
