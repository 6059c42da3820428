// Opening hours in a zone with daylight saving time.
#include "fixture.hpp"

namespace townhall::parks {
namespace {

TEST(ParksHours, OpeningHoursFollowTheZonesDaylightSavingTime) {
  auto hours = parse_opening_hours(json{{"sun", {{"open", "08:00"}, {"close", "20:00"}}}}, "opening_hours");
  ASSERT_TRUE(hours);
  auto zone = date::locate_zone("America/New_York");
  // 2030-03-10 is the second Sunday of March: 08:00 EDT is 12:00Z; a week earlier 13:00Z.
  auto dst = zone->to_sys(date::local_days{date::year{2030} / 3 / 10} + std::chrono::hours(8));
  auto standard = zone->to_sys(date::local_days{date::year{2030} / 3 / 3} + std::chrono::hours(8));
  EXPECT_EQ(utc::format(dst), "2030-03-10T12:00:00.000Z");
  EXPECT_EQ(utc::format(standard), "2030-03-03T13:00:00.000Z");
  EXPECT_TRUE(check_slot("America/New_York", *hours, dst, dst + std::chrono::hours(2)));
  EXPECT_TRUE(check_slot("America/New_York", *hours, standard, standard + std::chrono::hours(2)));
  auto early = check_slot("America/New_York", *hours, standard - std::chrono::hours(1), standard);
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().message.find("07:00-08:00"), std::string::npos) << early.error().message;
  EXPECT_FALSE(check_slot("America/New_York", *hours, dst + std::chrono::days(1),
                          dst + std::chrono::days(1) + std::chrono::hours(1)));
  EXPECT_FALSE(parse_opening_hours(json{{"sun", {{"open", "08:15"}, {"close", "20:00"}}}}, "h"));
  EXPECT_FALSE(parse_opening_hours(json{{"sun", {{"open", "08:00"}, {"close", "24:30"}}}}, "h"));
  EXPECT_TRUE(known_time_zone("Europe/Berlin"));
  EXPECT_FALSE(known_time_zone("../../etc/passwd"));
}

// Issue 21 §3.2: a start half a second past the hour was floored to its second, passed
// the whole-hour check and was stored with its fraction; its one paid hour then reached
// into the next hour and, at the last hour, past closing.
TEST(ParksHours, AFractionOfASecondPastTheHourIsNoWholeHour) {
  auto hours = parse_opening_hours(json{{"sun", {{"open", "08:00"}, {"close", "20:00"}}}}, "opening_hours");
  ASSERT_TRUE(hours);
  auto last_hour = date::sys_days{date::year{2030} / 3 / 3} + std::chrono::hours(19);  // 19:00-20:00 UTC, a Sunday
  ASSERT_TRUE(check_slot("UTC", *hours, last_hour, last_hour + std::chrono::hours(1)));
  for (auto fraction : {std::chrono::system_clock::duration(std::chrono::milliseconds(500)),
                        std::chrono::system_clock::duration(std::chrono::microseconds(1))}) {
    auto late = check_slot("UTC", *hours, last_hour + fraction, last_hour + std::chrono::hours(1) + fraction);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().code, Errc::unprocessable);
    EXPECT_NE(late.error().message.find("fractions of a second"), std::string::npos) << late.error().message;
    EXPECT_FALSE(check_slot("UTC", *hours, last_hour, last_hour + std::chrono::hours(1) + fraction));
  }
}

}  // namespace
}  // namespace townhall::parks
