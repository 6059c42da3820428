// The utilisation report from per-day sums (migration 0008, design note 60) against the
// same report computed from the rows: random bookings and their state changes at
// facilities in three time zones (one a half hour off UTC) over days around a daylight
// saving change, a facility's zone changed, and the days filled at start for bookings an
// older version wrote.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "fixture.hpp"
#include "townhall/platform/consistency.hpp"

namespace townhall::parks {
namespace {

using date::local_days;

// Per facility and week (its Monday in the facility's zone): bookings, no-shows,
// cancellations by citizen and staff, expired holds, and booked hours.
struct Week {
  std::int64_t bookings = 0, no_shows = 0, by_citizen = 0, by_staff = 0, expired = 0;
  double hours = 0;
  bool operator==(const Week& other) const {
    return bookings == other.bookings && no_shows == other.no_shows && by_citizen == other.by_citizen &&
           by_staff == other.by_staff && expired == other.expired && std::abs(hours - other.hours) < 1e-6;
  }
};
using Weeks = std::map<std::pair<std::int64_t, std::string>, Week>;

std::string describe(const Weeks& weeks) {
  std::ostringstream out;
  for (const auto& [key, w] : weeks)
    out << "\n  " << key.first << " " << key.second << ": " << w.bookings << " booked " << w.hours << " h, "
        << w.no_shows << " no-shows, " << w.by_citizen << "/" << w.by_staff << " cancelled, " << w.expired
        << " expired";
  return out.str();
}

local_days monday_of(local_days day) { return day - (date::weekday{day} - date::Monday); }

// The report as computed before 0008: every booking read, its start turned into its
// facility's local day with the zone database, kept when that day is in [from, to].
Weeks reference(db::Connection& reader, const std::string& from, const std::string& to,
                std::optional<std::int64_t> facility) {
  Weeks out;
  auto day_of = [](const std::string& text) {
    int y = 0;
    unsigned m = 0, d = 0;
    std::sscanf(text.c_str(), "%d-%u-%u", &y, &m, &d);
    return local_days{date::year{y} / date::month{m} / date::day{d}};
  };
  const auto lo = day_of(from), hi = day_of(to);
  auto query = reader.prepare(
      "SELECT b.facility_id, f.time_zone, b.starts_at, b.ends_at, b.status, b.cancelled_by, b.no_show_at IS NOT NULL "
      "FROM bookings b JOIN facilities f ON f.id = b.facility_id");
  while (query.executeStep()) {
    auto id = query.getColumn(0).getInt64();
    if (facility && id != *facility) continue;
    auto starts = utc::parse(query.getColumn(2).getString()).value();
    auto ends = utc::parse(query.getColumn(3).getString()).value();
    auto local = date::floor<date::days>(date::locate_zone(query.getColumn(1).getString())->to_local(starts));
    if (local < lo || local > hi) continue;
    auto& week = out[{id, date::format("%F", monday_of(local))}];
    std::string status = query.getColumn(4).getString();
    std::string by = query.getColumn(5).isNull() ? "" : query.getColumn(5).getString();
    if (status == "confirmed") {
      ++week.bookings;
      week.hours += std::chrono::duration<double, std::ratio<3600>>(ends - starts).count();
      if (query.getColumn(6).getInt()) ++week.no_shows;
    } else if (status == "cancelled") {
      if (by == "citizen")
        ++week.by_citizen;
      else if (by == "staff")
        ++week.by_staff;
      else
        ++week.expired;
    }
  }
  // Weeks with nothing in them are left out on both sides.
  std::erase_if(out, [](const auto& entry) { return entry.second == Week{}; });
  return out;
}

class UtilisationReportDays : public ParksServiceTest {
 protected:
  void SetUp() override {
    ParksServiceTest::SetUp();
    json week = json::object();
    for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
      week[day] = {{"open", "00:00"}, {"close", "24:00"}};
    for (const char* zone : {"America/New_York", "Asia/Kolkata", "Pacific/Auckland"}) {
      store::Facility f{0, zone, "field", 4, 0, "USD", zone, week.dump(), true, 1, utc::now(), utc::now()};
      writer.call([&] { store::insert_facility(*database.open(db::Role::service), f); });
      facilities.push_back(f.id);
    }
  }

  void compare(const std::string& when) {
    auto reader = database.open(db::Role::reader);
    // Each day around New York's change to summer time (2026-03-08), a week, and all.
    std::vector<std::pair<std::string, std::string>> ranges = {{"2026-02-26", "2026-03-12"},
                                                               {"2026-03-02", "2026-03-08"}};
    for (int d = 27; d <= 28; ++d) ranges.push_back({"2026-02-" + std::to_string(d), "2026-02-" + std::to_string(d)});
    for (int d = 1; d <= 11; ++d) {
      auto day = std::string("2026-03-") + (d < 10 ? "0" : "") + std::to_string(d);
      ranges.push_back({day, day});
    }
    for (const auto& [from, to] : ranges)
      for (std::optional<std::int64_t> facility : {std::optional<std::int64_t>{}, std::optional{facilities[1]}}) {
        auto what = when + " " + from + ".." + to + " facility " + (facility ? std::to_string(*facility) : "all");
        auto found = service->utilisation_report(staff(), from, to, facility);
        ASSERT_TRUE(found) << what << ": " << found.error().message;
        Weeks weeks;
        for (const auto& row : *found) {
          Week w{row.bookings,           row.no_shows, row.cancelled_by_citizen,
                 row.cancelled_by_staff, row.expired,  row.booked_hours};
          if (!(w == Week{})) weeks[{row.facility_id, row.week}] = w;
        }
        auto expected = reference(*reader, from, to, facility);
        EXPECT_TRUE(weeks == expected) << what << "\nreported:" << describe(weeks)
                                       << "\nfrom the rows:" << describe(expected);
      }
  }

  std::vector<std::int64_t> facilities;
};

// Every state change parks' code makes to a booking the report counts (bookings.cpp,
// places.hpp, handlers.cpp, reports.cpp): booked free (confirmed at once) or held for
// payment, confirmed on payment.completed, cancelled by the citizen or staff, a hold
// expired (the system's cancellation), a no-show marked; a booking deleted (no code does;
// the triggers cover it); and a facility's time zone changed through the service's
// command (its bookings move to other local days). Starts at random minutes over two
// weeks. After every 40 changes the report equals the rows' for every range.
TEST_F(UtilisationReportDays, RandomTransitionsMatchTheRows) {
  std::mt19937_64 random(20261206);
  auto pick = [&](std::int64_t below) {
    return static_cast<std::int64_t>(std::uniform_int_distribution<std::uint64_t>(0, below - 1)(random));
  };
  const auto first = utc::parse("2026-02-26T00:00:00.000Z").value();
  std::map<std::int64_t, std::set<std::int64_t>> slots;  // facility -> 90-minute slots taken (no overlaps)
  std::vector<std::int64_t> ids;
  const std::vector<std::string> zones = {"America/New_York", "Asia/Kolkata", "Pacific/Auckland", "Europe/Berlin"};
  for (int step = 1; step <= 700; ++step) {
    auto kind = ids.empty() ? 0 : pick(12);
    if (kind == 11) {  // a facility moves zone (the command re-days its bookings)
      FacilityInput input;
      input.time_zone = zones[static_cast<std::size_t>(pick(4))];
      auto changed = testing::run_awaitable(
          service->update_facility(staff(), facilities[static_cast<std::size_t>(pick(3))], input));
      ASSERT_TRUE(changed) << changed.error().message;
    } else {
      writer.call([&] {
        auto service = database.open(db::Role::service);
        SQLite::Transaction transaction(service->sql());
        if (kind < 4) {
          store::Booking b;
          b.facility_id = facilities[static_cast<std::size_t>(pick(3))];
          std::int64_t slot = 0;
          do slot = pick(14 * 16);
          while (!slots[b.facility_id].insert(slot).second);
          auto starts = first + std::chrono::minutes(90 * slot + pick(10));
          b.starts_at = utc::format(starts);
          b.ends_at = utc::format(starts + std::chrono::minutes(15 + pick(60)));
          b.citizen_id = 1;
          b.currency = "USD";
          b.created_at = b.updated_at = utc::now();
          if (pick(2)) {
            b.status = "confirmed";
          } else {
            b.status = "pending_payment";
            b.amount_cents = 1000;
            b.hold_expires_at = utc::now();
          }
          store::insert_booking(*service, b);
          ids.push_back(b.id);
        } else {
          auto index = static_cast<std::size_t>(pick(static_cast<std::int64_t>(ids.size())));
          auto b = *store::find_booking(*service, ids[index], store::Scope::everything());
          if (kind == 10) {
            db::execute(*service, "DELETE FROM bookings WHERE id = ?", b.id);
            ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(index));
          } else if (b.status == "pending_payment") {
            if (pick(3)) {
              b.status = "confirmed";
              b.payment_id = 100 + b.id;
            } else {
              b.status = "cancelled";
              b.cancelled_by = "system";
              b.cancelled_at = utc::now();
            }
            store::update_booking(*service, b);
          } else if (b.status == "confirmed") {
            if (pick(3) == 0 && !b.no_show_at) {
              store::mark_no_show(*service, b.id, 900, utc::now());
            } else {
              b.status = "cancelled";
              b.cancelled_by = pick(2) ? "citizen" : "staff";
              b.cancelled_at = utc::now();
              b.refund = "full";
              store::update_booking(*service, b);
            }
          }
        }
        transaction.commit();
      });
    }
    if (HasFatalFailure()) return;
    if (step % 40 == 0) compare("after step " + std::to_string(step));
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(count("SELECT count(*) FROM bookings WHERE no_show_at IS NOT NULL"), 3);
  auto checked =
      testing::run_awaitable(consistency::check("parks", database.manifest().derived.at(0), database, writer, false));
  EXPECT_TRUE(checked.error.empty()) << checked.error;
  EXPECT_EQ(checked.missing_count() + checked.stale_count() + checked.extra_count(), 0u);
  EXPECT_GT(checked.source_rows, 20);
}

// An installation upgraded with bookings on file: they have no local_day after 0008 (SQL
// knows no zones); the module's start sets it before it serves, and the triggers count
// them, so the first report after the upgrade is the rows' report.
TEST(UtilisationReportBackfill, TheBookingsAlreadyOnFileAreCountedAtStart) {
  testing::ModuleHarness harness("parks", table_manifest());
  testing::migrate_module(harness.database, "parks", 8);
  auto owner = harness.database.open(db::Role::owner);
  owner->exec(
      "INSERT INTO facilities (id, name, kind, capacity, hourly_price_cents, currency, time_zone, opening_hours, "
      "created_at, updated_at) VALUES (1, 'Field', 'field', 4, 0, 'USD', 'Asia/Kolkata', '{}', 'x', 'x');"
      "INSERT INTO bookings (facility_id, citizen_id, starts_at, ends_at, status, amount_cents, currency, created_at, "
      "updated_at, cancelled_by) VALUES "
      // 18:30 UTC is midnight in Kolkata (+05:30): the next local day.
      "(1, 1, '2026-03-01T18:29:00.000Z', '2026-03-01T18:30:00.000Z', 'confirmed', 0, 'USD', 'x', 'x', NULL),"
      "(1, 1, '2026-03-01T18:30:00.000Z', '2026-03-01T20:00:00.000Z', 'confirmed', 0, 'USD', 'x', 'x', NULL),"
      "(1, 1, '2026-03-01T21:00:00.000Z', '2026-03-01T22:00:00.000Z', 'cancelled', 0, 'USD', 'x', 'x', 'citizen')");
  testing::migrate_module(harness.database, "parks");
  EXPECT_EQ(harness.count("SELECT count(*) FROM booking_days"), 0);
  ParksService service({}, harness.dependencies(), harness.auth);
  service.start();
  auto rows = [&] {
    std::vector<std::string> out;
    auto query = owner->prepare(
        "SELECT facility_id || ' ' || day || ' ' || bookings || ' ' || booked_ms || ' ' || cancelled_by_citizen FROM "
        "booking_days ORDER BY day");
    while (query.executeStep()) out.push_back(query.getColumn(0).getString());
    return out;
  };
  EXPECT_EQ(rows(), (std::vector<std::string>{"1 2026-03-01 1 60000 0", "1 2026-03-02 1 5400000 1"}));
  EXPECT_EQ(harness.count("SELECT count(*) FROM bookings WHERE local_day IS NULL"), 0);
  service.stop();
  harness.writer.stop();
}

}  // namespace
}  // namespace townhall::parks
