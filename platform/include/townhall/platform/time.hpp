#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "townhall/platform/result.hpp"

// Timestamps, in one place for every module. Stored and sent as UTC text with
// milliseconds ("2026-11-21T10:30:00.123Z"), which sorts as text. Calendar arithmetic
// and formatting use Howard Hinnant's date library (Debian libhowardhinnant-date-dev),
// the same one parks uses for time zones.
namespace townhall::utc {

using TimePoint = std::chrono::system_clock::time_point;

// The years a timestamp may name: system_clock counts nanoseconds in 64 bits, which
// reach from 1677 to 2262; the bounds keep well inside that.
inline constexpr int kMinYear = 1900;
inline constexpr int kMaxYear = 2199;

// "YYYY-MM-DDTHH:MM:SS.mmmZ" (truncated to milliseconds).
std::string format(TimePoint time);
std::string now();

// The form format() writes (milliseconds optional): stored values and event envelopes.
// invalid_argument when malformed, an invalid calendar date or out of range.
Result<TimePoint> parse(std::string_view text);

// Any RFC 3339 date-time from a client: "2026-12-01T09:30:00Z", "...T09:30:00.5+01:00".
// Rejects invalid calendar dates (2030-02-30), second 60 (leap seconds cannot be
// represented), years outside [kMinYear, kMaxYear] and offsets beyond ±23:59. The
// error message says what is wrong with the text, without naming a field.
Result<TimePoint> parse_rfc3339(std::string_view text);

}  // namespace townhall::utc
