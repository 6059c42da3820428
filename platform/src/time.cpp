#include "townhall/platform/time.hpp"

#include <date/date.h>

#include <charconv>

namespace townhall::utc {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

struct Fields {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  nanoseconds fraction{0};
  minutes offset{0};
};

bool digits(std::string_view text, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > text.size()) return false;
  for (std::size_t i = pos; i < pos + len; ++i)
    if (text[i] < '0' || text[i] > '9') return false;
  std::from_chars(text.data() + pos, text.data() + pos + len, out);
  return true;
}

Error invalid(std::string message) { return make_error(Errc::invalid_argument, std::move(message)); }

// Checks what the tokenizer cannot: the calendar (via date::year_month_day::ok), the
// clock fields and the range; then converts.
Result<TimePoint> to_time_point(const Fields& f) {
  if (f.year < kMinYear || f.year > kMaxYear)
    return invalid("the year must be from " + std::to_string(kMinYear) + " to " + std::to_string(kMaxYear));
  if (f.month < 1 || f.month > 12) return invalid("the month must be from 01 to 12");
  date::year_month_day ymd{date::year{f.year}, date::month{static_cast<unsigned>(f.month)},
                           date::day{static_cast<unsigned>(f.day)}};
  if (!ymd.ok()) return invalid("is not a date in the calendar");
  if (f.hour > 23) return invalid("the hour must be from 00 to 23");
  if (f.minute > 59) return invalid("the minute must be from 00 to 59");
  if (f.second == 60) return invalid("leap seconds (second 60) are not accepted");
  if (f.second > 59) return invalid("the second must be from 00 to 59");
  auto local = date::sys_days(ymd) + hours(f.hour) + minutes(f.minute) + seconds(f.second) + f.fraction;
  return std::chrono::time_point_cast<TimePoint::duration>(local - f.offset);
}

}  // namespace

// Written by hand rather than with date::format, which goes through an ostringstream and
// its locale on every call: every event, row and log line takes a timestamp (issue 24 §3).
std::string format(TimePoint time) {
  const auto millis = std::chrono::floor<milliseconds>(time);
  const auto day = std::chrono::floor<date::days>(millis);
  const date::year_month_day ymd(day);
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) return date::format("%FT%TZ", millis);  // not four digits
  const date::hh_mm_ss clock(millis - day);
  char text[] = "0000-00-00T00:00:00.000Z";
  auto put = [&text](std::size_t pos, std::size_t width, long long value) {
    for (std::size_t i = pos + width; i-- > pos; value /= 10) text[i] = static_cast<char>('0' + value % 10);
  };
  put(0, 4, year);
  put(5, 2, static_cast<unsigned>(ymd.month()));
  put(8, 2, static_cast<unsigned>(ymd.day()));
  put(11, 2, clock.hours().count());
  put(14, 2, clock.minutes().count());
  put(17, 2, clock.seconds().count());
  put(20, 3, clock.subseconds().count());
  return std::string(text, sizeof text - 1);
}

std::string now() { return format(std::chrono::system_clock::now()); }

Result<TimePoint> parse(std::string_view text) {
  Fields f;
  bool shaped = (text.size() == 20 || text.size() == 24) && digits(text, 0, 4, f.year) && text[4] == '-' &&
                digits(text, 5, 2, f.month) && text[7] == '-' && digits(text, 8, 2, f.day) && text[10] == 'T' &&
                digits(text, 11, 2, f.hour) && text[13] == ':' && digits(text, 14, 2, f.minute) && text[16] == ':' &&
                digits(text, 17, 2, f.second) && text.back() == 'Z';
  if (shaped && text.size() == 24) {
    int millis = 0;
    shaped = text[19] == '.' && digits(text, 20, 3, millis);
    f.fraction = milliseconds(millis);
  }
  if (!shaped) return invalid("must be a UTC time like 2026-11-21T10:30:00.123Z");
  return to_time_point(f);
}

Result<TimePoint> parse_rfc3339(std::string_view text) {
  const auto shape = "must be an RFC 3339 time like 2026-12-01T09:30:00Z or 2026-12-01T10:30:00+01:00";
  Fields f;
  if (text.size() < 20 || !digits(text, 0, 4, f.year) || text[4] != '-' || !digits(text, 5, 2, f.month) ||
      text[7] != '-' || !digits(text, 8, 2, f.day) || (text[10] != 'T' && text[10] != 't') ||
      !digits(text, 11, 2, f.hour) || text[13] != ':' || !digits(text, 14, 2, f.minute) || text[16] != ':' ||
      !digits(text, 17, 2, f.second))
    return invalid(shape);
  std::size_t pos = 19;
  if (text[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    std::int64_t nanos = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (pos - start >= 9) return invalid("at most 9 fractional digits");
      nanos = nanos * 10 + (text[pos] - '0');
      ++pos;
    }
    if (pos == start) return invalid(shape);
    for (std::size_t k = pos - start; k < 9; ++k) nanos *= 10;
    f.fraction = nanoseconds(nanos);
  }
  auto zone = text.substr(pos);
  if (zone == "Z" || zone == "z") {
    f.offset = minutes(0);
  } else {
    int offset_hours = 0, offset_minutes = 0;
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || !digits(zone, 1, 2, offset_hours) || zone[3] != ':' ||
        !digits(zone, 4, 2, offset_minutes))
      return invalid(shape);
    if (offset_hours > 23 || offset_minutes > 59) return invalid("the UTC offset must be within ±23:59");
    f.offset = hours(offset_hours) + minutes(offset_minutes);
    if (zone[0] == '-') f.offset = -f.offset;
  }
  return to_time_point(f);
}

}  // namespace townhall::utc
