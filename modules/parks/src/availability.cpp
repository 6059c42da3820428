// A facility's week as a booking page shows it: every whole opening hour in the
// facility's zone, and whether a held or confirmed booking takes it.
#include <date/tz.h>

#include <algorithm>

#include "service_internal.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::parks {
using date::local_days;
using std::chrono::system_clock;

Result<Availability> ParksService::availability(const CallContext& context, std::int64_t facility_id,
                                                std::optional<std::string> from, int days) {
  if (days < 1 || days > kMaxAvailabilityDays)
    return make_error(Errc::invalid_argument,
                      "query parameter 'days' must be 1 to " + std::to_string(kMaxAvailabilityDays));
  auto facility = get_facility(context, facility_id);
  if (!facility) return facility.error();
  auto hours = parse_opening_hours(nlohmann::json::parse(facility->opening_hours), "opening_hours");
  if (!hours) return make_error(Errc::internal, "facility " + std::to_string(facility_id) + " has unreadable hours");
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(facility->time_zone);
  } catch (const std::exception&) {
    return make_error(Errc::internal, "the facility's time zone '" + facility->time_zone + "' is unknown here");
  }
  const auto now = system_clock::now();
  const local_days first = from ? local_days{calendar_day(*from)} : date::floor<date::days>(zone->to_local(now));

  Availability out{facility->id, facility->time_zone, date::format("%F", first), {}};
  std::vector<std::pair<system_clock::time_point, system_clock::time_point>> slots;
  for (int d = 0; d < days; ++d) {
    const auto day = first + date::days(d);
    auto& entry = out.days.emplace_back(AvailabilityDay{date::format("%F", day), {}});
    const auto& open = hours->days[date::weekday{day}.c_encoding()];
    if (!open) continue;
    // A booking starts on a whole hour of the zone (check_slot): a half-hour opening
    // starts its first slot at the next hour.
    for (int minute = (open->open_minutes + 59) / 60 * 60; minute + 60 <= open->close_minutes; minute += 60) {
      const auto local = day + std::chrono::minutes(minute);
      // The hour a clock skips when daylight saving time starts cannot be booked; the
      // hour it repeats when it ends is offered once, its first time.
      if (zone->get_info(local).result == date::local_info::nonexistent) continue;
      const auto start = zone->to_sys(local, date::choose::earliest);
      slots.emplace_back(start, start + std::chrono::hours(1));
      entry.slots.push_back(
          {utc::format(start), utc::format(start + std::chrono::hours(1)), clock_text(minute), "free"});
    }
  }
  if (slots.empty()) return out;

  std::vector<std::pair<system_clock::time_point, system_clock::time_point>> taken;
  const auto range_start = utc::format(slots.front().first), range_end = utc::format(slots.back().second);
  auto read = deps_.readers.read([&](db::Connection& reader) -> Result<Unit> {
    store::each_active_booking(reader, facility_id, range_start, range_end,
                               [&](const std::string& starts_at, const std::string& ends_at) {
                                 auto starts = utc::parse(starts_at);
                                 auto ends = utc::parse(ends_at);
                                 if (starts && ends) taken.emplace_back(*starts, *ends);
                               });
    return Unit{};
  });
  if (!read) return read.error();

  std::size_t index = 0;
  for (auto& day : out.days)
    for (auto& slot : day.slots) {
      // Named copies, not a structured binding: the lambda below captures them.
      const auto start = slots[index].first, end = slots[index].second;
      ++index;
      if (start < now)
        slot.state = "past";
      else if (std::any_of(taken.begin(), taken.end(),
                           [&](const auto& t) { return t.first < end && start < t.second; }))
        slot.state = "taken";
    }
  return out;
}

}  // namespace townhall::parks
