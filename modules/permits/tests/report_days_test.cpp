// The applications report from per-day counts (migration 0006, design note 60) against the
// same report computed from the rows: random submissions, payments and decisions over a
// few days (either side of midnight UTC), and the migration's backfill of rows an older
// version wrote.
#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "coro.hpp"
#include "fake_auth.hpp"
#include "module_harness.hpp"
#include "server_fixture.hpp"
#include "service.hpp"
#include "support.hpp"
#include "townhall/permits/module.hpp"
#include "townhall/platform/consistency.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::permits {
namespace {

// The report as it was computed before 0006: every application in the range read, exact
// medians of (decided_at - submitted_at) in hours.
struct Reference {
  std::map<std::pair<std::string, std::string>, std::pair<std::int64_t, std::optional<double>>> rows;
  std::int64_t applications = 0, decided = 0;
  std::optional<double> median;
};

std::optional<double> exact_median(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  auto n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

Reference reference(db::Connection& reader, const std::string& start, const std::string& end,
                    const std::optional<std::string>& department) {
  auto query = reader.prepare(
      "SELECT department_code, status, (julianday(decided_at) - julianday(submitted_at)) * 24.0 FROM applications "
      "WHERE submitted_at >= ?1 AND submitted_at < ?2 AND (?3 IS NULL OR department_code = ?3)");
  query.bind(1, start);
  query.bind(2, end);
  if (department) query.bind(3, *department);
  std::map<std::pair<std::string, std::string>, std::vector<double>> hours;
  std::map<std::pair<std::string, std::string>, std::int64_t> counts;
  std::vector<double> all;
  while (query.executeStep()) {
    std::pair<std::string, std::string> key{query.getColumn(0).getString(), query.getColumn(1).getString()};
    ++counts[key];
    hours[key];
    if (!query.getColumn(2).isNull()) {
      hours[key].push_back(query.getColumn(2).getDouble());
      all.push_back(query.getColumn(2).getDouble());
    }
  }
  Reference out;
  for (const auto& [key, n] : counts) {
    out.rows[key] = {n, exact_median(hours[key])};
    out.applications += n;
  }
  out.decided = static_cast<std::int64_t>(all.size());
  out.median = exact_median(all);
  return out;
}

// The documented precision: within 1 % of the exact median plus half a second (a time
// under a second reads as half a second).
void expect_close(const std::optional<double>& reported, const std::optional<double>& exact, const std::string& what) {
  ASSERT_EQ(reported.has_value(), exact.has_value()) << what;
  if (!exact) return;
  EXPECT_LE(std::abs(*reported - *exact), 0.01 * *exact + 0.5 / 3600.0 + 1e-9)
      << what << ": reported " << *reported << " h, exact " << *exact << " h";
}

class ApplicationsReportDays : public ::testing::Test, protected testing::ModuleHarness {
 protected:
  ApplicationsReportDays() : ModuleHarness("permits", table_manifest()) {}
  void SetUp() override { testing::migrate_module(database, "permits"); }
  void TearDown() override {
    if (service) service->stop();
    writer.stop();
  }
  void start_service() {
    Settings settings;
    settings.permit_types["fence"] = PermitType{0, "USD", false};
    service = std::make_unique<PermitsService>(settings, dependencies(), auth);
    service->start();
  }

  // Every range of the test's days (each day, each pair, all) for everyone and each
  // department: the report from application_days against the reference.
  void compare(const std::string& when) {
    auto admin = testing::as(testing::employee_principal(9, {"*"}, ""));
    auto reader = database.open(db::Role::reader);
    const std::vector<std::string> days = {"2026-02-28", "2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"};
    for (std::size_t first = 0; first < days.size(); ++first)
      for (std::size_t last = first; last < days.size(); ++last)
        for (std::optional<std::string> department :
             {std::optional<std::string>{}, std::optional<std::string>{"BLD"}, std::optional<std::string>{"PLN"}}) {
          auto start = days[first] + "T00:00:00.000Z";
          auto end = utc::format(utc::parse(days[last] + "T00:00:00.000Z").value() + std::chrono::hours(24));
          auto what = when + " " + days[first] + ".." + days[last] + " " + department.value_or("all");
          auto expected = reference(*reader, start, end, department);
          auto found = service->applications_report(admin, start, end, department);
          ASSERT_TRUE(found) << what << ": " << found.error().message;
          EXPECT_EQ(found->applications, expected.applications) << what;
          EXPECT_EQ(found->decided, expected.decided) << what;
          expect_close(found->median_hours_to_decision, expected.median, what + " overall median");
          ASSERT_EQ(found->rows.size(), expected.rows.size()) << what;
          for (const auto& row : found->rows) {
            auto it = expected.rows.find({row.department_code, row.status});
            ASSERT_NE(it, expected.rows.end()) << what << ": " << row.department_code << "/" << row.status;
            EXPECT_EQ(row.applications, it->second.first) << what << " " << row.department_code << "/" << row.status;
            expect_close(row.median_hours_to_decision, it->second.second,
                         what + " " + row.department_code + "/" + row.status);
          }
        }
  }

  // One transaction on the module's writer and service role, as a command runs.
  void write(const std::function<void(db::Connection&)>& change) {
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      change(*connection);
      transaction.commit();
    });
  }

  std::unique_ptr<PermitsService> service;
};

// Submissions (fee due or straight to review) at random instants over four days, the
// closest ones a millisecond either side of midnight; the fee paid (payment.completed's
// fee_due -> under_review); decisions (approve, reject) from under a second to two months
// after submission; and deletions (no route deletes an application; the triggers cover it
// all the same). The report after every 40 changes equals the rows' within the median's
// stated precision, counts exactly; `townhall check`'s comparison finds nothing.
TEST_F(ApplicationsReportDays, RandomTransitionsMatchTheRows) {
  start_service();
  std::mt19937_64 random(20261206);
  auto pick = [&](std::int64_t below) {
    return static_cast<std::int64_t>(std::uniform_int_distribution<std::uint64_t>(0, below - 1)(random));
  };
  const auto first = utc::parse("2026-03-01T00:00:00.000Z").value();
  std::vector<std::int64_t> ids;
  for (int step = 1; step <= 600; ++step) {
    write([&](db::Connection& service) {
      auto kind = ids.empty() ? 0 : pick(10);
      if (kind < 4) {  // a submission
        store::Application a;
        a.citizen_id = 1 + pick(5);
        a.permit_type = "fence";
        a.description = "d";
        a.property_address = "a";
        a.department_code = pick(2) ? "BLD" : "PLN";
        a.status = pick(2) ? "fee_due" : "under_review";
        a.fee_cents = 0;
        a.currency = "USD";
        auto at = pick(4) == 0 ? first + std::chrono::hours(24 * (1 + pick(3))) + std::chrono::milliseconds(pick(3) - 1)
                               : first - std::chrono::hours(12) + std::chrono::milliseconds(pick(3'600'000LL * 24 * 4));
        a.submitted_at = a.updated_at = utc::format(at);
        store::insert_application(service, a);
        ids.push_back(a.id);
        return;
      }
      auto index = static_cast<std::size_t>(pick(static_cast<std::int64_t>(ids.size())));
      auto a = store::find_application(service, ids[index], store::Scope::everything());
      ASSERT_TRUE(a);
      if (kind == 9) {  // gone
        db::execute(service, "DELETE FROM applications WHERE id = ?", a->id);
        ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(index));
        return;
      }
      if (a->status == "fee_due") {
        a->status = "under_review";
        a->invoice_id = "7";
      } else if (a->status == "under_review") {
        a->status = pick(2) ? "approved" : "rejected";
        // Log-uniform from 0.1 s to ~2 months: every scale of bucket.
        auto seconds = 0.1 * std::pow(10.0, std::uniform_real_distribution<double>(0, 7.7)(random));
        a->decided_at = utc::format(utc::parse(a->submitted_at).value() +
                                    std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000)));
        a->decided_by = 2;
      }
      a->updated_at = utc::now();
      a->event_version += 1;
      store::update_application(service, *a);
    });
    if (step % 40 == 0) compare("after step " + std::to_string(step));
    if (HasFatalFailure()) return;
  }
  auto checked =
      testing::run_awaitable(consistency::check("permits", database.manifest().derived.at(0), database, writer, false));
  EXPECT_TRUE(checked.error.empty()) << checked.error;
  EXPECT_EQ(checked.missing_count() + checked.stale_count() + checked.extra_count(), 0u);
  EXPECT_GT(checked.source_rows, 20);
}

// The check finds application_days wrong when a row changed behind the triggers' back
// (here: the triggers dropped, then an application decided), and its repair rewrites it
// from the rows.
TEST_F(ApplicationsReportDays, TheCheckFindsAndRepairsDaysThatDifferFromTheRows) {
  write([&](db::Connection& service) {
    for (int i = 0; i < 3; ++i) {
      store::Application a;
      a.citizen_id = 1;
      a.permit_type = "fence";
      a.description = a.property_address = "x";
      a.department_code = "BLD";
      a.status = "under_review";
      a.currency = "USD";
      a.submitted_at = a.updated_at = "2026-03-0" + std::to_string(i + 1) + "T10:00:00.000Z";
      store::insert_application(service, a);
    }
  });
  auto owner = database.open(db::Role::owner);
  owner->exec("DROP TRIGGER applications_report_update");
  owner->exec(
      "UPDATE applications SET status = 'approved', decided_at = '2026-03-01T12:00:00.000Z' WHERE id = 1;"
      "INSERT INTO application_days VALUES ('1999-01-01', 'X', 'approved', 3, 1)");
  const auto& derived = database.manifest().derived.at(0);
  auto found = testing::run_awaitable(consistency::check("permits", derived, database, writer, false));
  EXPECT_EQ(found.cache, "permits.application_days");
  EXPECT_EQ(found.missing_count(), 1u);  // the approved one's group
  EXPECT_EQ(found.extra_count(), 2u);    // the under_review group it left, and the made-up day
  EXPECT_EQ(found.repaired, 0);
  auto repaired = testing::run_awaitable(consistency::check("permits", derived, database, writer, true));
  EXPECT_EQ(repaired.repaired, 3);
  auto again = testing::run_awaitable(consistency::check("permits", derived, database, writer, false));
  EXPECT_EQ(again.missing_count() + again.stale_count() + again.extra_count(), 0u);
  EXPECT_EQ(count("SELECT count(*) FROM application_days"), 3);
}

// An installation upgraded with applications on file: 0006 fills application_days from
// them, so its first report after the upgrade is the rows' report.
TEST(ApplicationsReportBackfill, TheMigrationCountsTheApplicationsAlreadyOnFile) {
  testing::TempDir dir;
  db::ModuleDb database{"permits", dir.path() / "permits.db", table_manifest()};
  testing::migrate_module(database, "permits", 6);
  auto owner = database.open(db::Role::owner);
  owner->exec(
      "INSERT INTO applications (citizen_id, permit_type, description, property_address, department_code, status, "
      "fee_cents, currency, submitted_at, updated_at, decided_at) VALUES "
      "(1, 'fence', 'd', 'a', 'BLD', 'approved', 0, 'USD', '2026-03-01T23:59:59.999Z', 'x', "
      "'2026-03-02T01:59:59.999Z'),"
      "(1, 'fence', 'd', 'a', 'BLD', 'approved', 0, 'USD', '2026-03-02T00:00:00.000Z', 'x', "
      "'2026-03-02T04:00:00.000Z'),"
      "(1, 'fence', 'd', 'a', 'BLD', 'rejected', 0, 'USD', '2026-03-02T10:00:00.000Z', 'x', "
      "'2026-03-02T10:00:00.500Z'),"
      "(2, 'fence', 'd', 'a', 'PLN', 'fee_due', 0, 'USD', '2026-03-02T11:00:00.000Z', 'x', NULL)");
  testing::migrate_module(database, "permits");
  auto days = [&] {
    std::vector<std::string> out;
    auto rows = owner->prepare(
        "SELECT day || ' ' || department_code || ' ' || status || ' ' || bucket || ' ' || applications "
        "FROM application_days ORDER BY 1");
    while (rows.executeStep()) out.push_back(rows.getColumn(0).getString());
    return out;
  };
  // 2 h = 7200 s: bucket 1 + floor(ln 7200 / ln 1.02) = 449; 4 h: 484; 0.5 s: 0.
  EXPECT_EQ(days(), (std::vector<std::string>{"2026-03-01 BLD approved 449 1", "2026-03-02 BLD approved 484 1",
                                              "2026-03-02 BLD rejected 0 1", "2026-03-02 PLN fee_due -1 1"}));
  // The same groups the check computes from the rows.
  auto expected = owner->prepare(std::string(store::kApplicationDaysFromRows));
  std::int64_t groups = 0;
  while (expected.executeStep()) ++groups;
  EXPECT_EQ(groups, 4);
}

}  // namespace
}  // namespace townhall::permits
