#include "hours.hpp"

#include <date/tz.h>

#include <cstdio>

namespace townhall::parks {
namespace {

constexpr const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

std::optional<int> parse_clock(const std::string& text) {
  int h = 0, m = 0;
  if (text.size() != 5 || text[2] != ':' || std::sscanf(text.c_str(), "%2d:%2d", &h, &m) != 2) return std::nullopt;
  for (int i : {0, 1, 3, 4})
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  if (h > 24 || m > 59 || (h == 24 && m != 0) || (m != 0 && m != 30)) return std::nullopt;
  return h * 60 + m;
}

}  // namespace

std::string clock_text(int minutes) {
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d", minutes / 60, minutes % 60);
  return text;
}

date::year_month_day calendar_day(const std::string& text) {
  return date::year_month_day{date::year{std::stoi(text.substr(0, 4))},
                              date::month{static_cast<unsigned>(std::stoi(text.substr(5, 2)))},
                              date::day{static_cast<unsigned>(std::stoi(text.substr(8, 2)))}};
}

Result<OpeningHours> parse_opening_hours(const nlohmann::json& value, const std::string& field) {
  auto fail = [&](const std::string& key, const std::string& message) {
    return make_error(Errc::invalid_argument, "field '" + field + key + "': " + message);
  };
  if (!value.is_object()) return fail("", "must be an object of weekdays (mon..sun) to {open, close}");
  OpeningHours hours;
  for (const auto& [key, day] : value.items()) {
    int index = -1;
    for (int i = 0; i < 7; ++i)
      if (key == kDays[i]) index = i;
    if (index < 0) return fail("", "unknown weekday '" + key.substr(0, 16) + "' (mon, tue, wed, thu, fri, sat, sun)");
    if (!day.is_object() || day.size() != 2 || !day.contains("open") || !day.contains("close") ||
        !day["open"].is_string() || !day["close"].is_string())
      return fail("." + key, "must be {\"open\": \"HH:MM\", \"close\": \"HH:MM\"}");
    auto open = parse_clock(day["open"].get<std::string>());
    auto close = parse_clock(day["close"].get<std::string>());
    if (!open || !close) return fail("." + key, "times are HH:MM on the hour or half hour, 00:00 to 24:00");
    if (*open >= *close) return fail("." + key, "must open before it closes");
    hours.days[static_cast<std::size_t>(index)] = DayHours{*open, *close};
  }
  return hours;
}

nlohmann::json opening_hours_json(const OpeningHours& hours) {
  nlohmann::json out = nlohmann::json::object();
  for (int i = 0; i < 7; ++i)
    if (const auto& day = hours.days[static_cast<std::size_t>(i)])
      out[kDays[i]] = {{"open", clock_text(day->open_minutes)}, {"close", clock_text(day->close_minutes)}};
  return out;
}

bool known_time_zone(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  try {
    date::locate_zone(name);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

Result<Unit> check_slot(const std::string& time_zone, const OpeningHours& week,
                        std::chrono::system_clock::time_point start, std::chrono::system_clock::time_point end) {
  using namespace std::chrono;
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(time_zone);
  } catch (const std::exception&) {
    return make_error(Errc::internal, "the facility's time zone '" + time_zone + "' is unknown to this system");
  }
  // Exact to the second before anything else: a start floored to its second would pass
  // the whole-hour check below and be stored with its fraction, so one paid hour would
  // reach into the next hour (and past closing).
  const auto start_seconds = date::floor<seconds>(start), end_seconds = date::floor<seconds>(end);
  if (start_seconds != start || end_seconds != end)
    return make_error(Errc::unprocessable,
                      "a booking starts and ends on a whole hour: no fractions of a second in starts_at or ends_at");
  if ((end - start) % hours(1) != system_clock::duration::zero())
    return make_error(Errc::unprocessable, "a booking lasts whole hours");
  auto local_start = zone->to_local(start_seconds);
  auto local_last = zone->to_local(end_seconds - seconds(1));
  auto day = date::floor<date::days>(local_start);
  auto start_minutes = static_cast<int>(duration_cast<minutes>(local_start - day).count());
  if ((local_start - day) % hours(1) != seconds::zero())
    return make_error(Errc::unprocessable,
                      "a booking starts on a whole hour of the facility's time zone (" + time_zone + ")");
  if (date::floor<date::days>(local_last) != day)
    return make_error(Errc::unprocessable, "a booking starts and ends on the same day in " + time_zone);
  auto end_minutes = static_cast<int>(duration_cast<minutes>(local_last - day).count()) + 1;
  date::weekday weekday{day};
  const auto& open = week.days[weekday.c_encoding()];
  auto local_date = date::format("%F (%a)", day);
  if (!open) return make_error(Errc::unprocessable, "the facility is closed on " + local_date);
  if (start_minutes < open->open_minutes || end_minutes > open->close_minutes)
    return make_error(Errc::unprocessable, "outside opening hours: on " + local_date + " the facility is open " +
                                               clock_text(open->open_minutes) + "-" + clock_text(open->close_minutes) +
                                               " " + time_zone + " time, the booking is " + clock_text(start_minutes) +
                                               "-" + clock_text(end_minutes));
  return Unit{};
}

}  // namespace townhall::parks
