#pragma once

#include <date/date.h>

#include <array>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "townhall/platform/result.hpp"

// A facility's week in its own IANA time zone (resolved with Howard Hinnant's tz over the
// system tzdata, so daylight saving time is the zone's, never a hand-written offset).
namespace townhall::parks {

struct DayHours {
  int open_minutes = 0;   // from local midnight
  int close_minutes = 0;  // exclusive; 1440 = midnight at the end of the day
};

struct OpeningHours {
  std::array<std::optional<DayHours>, 7> days;  // index: 0 = Sunday ... 6 = Saturday
};

// {"mon": {"open": "08:00", "close": "20:00"}, ...}: keys mon..sun, "HH:MM" times on the
// hour or half hour, open before close ("24:00" closes at midnight); a missing day is
// closed. invalid_argument naming the key otherwise.
Result<OpeningHours> parse_opening_hours(const nlohmann::json& value, const std::string& field);
nlohmann::json opening_hours_json(const OpeningHours& hours);

// "HH:MM" for minutes from local midnight.
std::string clock_text(int minutes);

// "YYYY-MM-DD", already checked to be a calendar day (http query_day), as that day.
date::year_month_day calendar_day(const std::string& text);

// True when `name` is a time zone of the system's tz database ("America/New_York").
bool known_time_zone(const std::string& name);

// Whether [start, end) may be booked at a facility: starts on a whole hour of its zone
// exactly (no fraction of a second), lasts whole hours, and lies within one day's opening
// hours there. unprocessable with the reason (in local time) otherwise.
Result<Unit> check_slot(const std::string& time_zone, const OpeningHours& week,
                        std::chrono::system_clock::time_point start, std::chrono::system_clock::time_point end);

}  // namespace townhall::parks
