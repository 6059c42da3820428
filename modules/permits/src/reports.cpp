// Permits' reports on its own data (issue 26.3): applications by department and status
// with the median time from submission to decision, read from per-day counts (migration
// 0006; design note 60).
#include <cmath>
#include <map>

#include "service.hpp"

namespace townhall::permits {
namespace {

// Decisions by decision-time bucket (application_days.bucket >= 0, migration 0006).
using Histogram = std::map<std::int64_t, std::int64_t>;

// A bucket's hours: its geometric centre, within 1 % of every time it holds (bucket 0,
// under a second: half a second, within half a second). Design note 60.
double bucket_hours(std::int64_t bucket) {
  if (bucket <= 0) return 0.5 / 3600.0;
  return std::pow(1.02, static_cast<double>(bucket) - 0.5) / 3600.0;
}

// The median of the times a histogram holds, each read as its bucket's hours: the middle
// time, or the mean of the two middle ones.
std::optional<double> median(const Histogram& histogram) {
  std::int64_t count = 0;
  for (const auto& [bucket, n] : histogram) count += n;
  if (count == 0) return std::nullopt;
  auto at = [&](std::int64_t rank) {  // the rank-th time (0-based) in ascending order
    for (const auto& [bucket, n] : histogram) {
      if (rank < n) return bucket_hours(bucket);
      rank -= n;
    }
    return bucket_hours(histogram.rbegin()->first);
  };
  if (count % 2 == 1) return at(count / 2);
  return (at(count / 2 - 1) + at(count / 2)) / 2;
}

}  // namespace

Result<ApplicationsReport> PermitsService::applications_report(const CallContext& context, const std::string& start,
                                                               const std::string& end,
                                                               std::optional<std::string> department_code) {
  const auto* principal = context.principal.get();
  if (!principal || principal->is_citizen())
    return make_error(Errc::forbidden, "reports are for permits staff and administrators");
  auto scope = scope_for(principal);
  if (!scope) return scope.error();
  if (scope->department_code) {
    if (department_code && *department_code != *scope->department_code)
      return make_error(Errc::forbidden, "permits staff see the report of their own department only");
    department_code = scope->department_code;
  }
  if (auto ok = usable(); !ok) return ok.error();
  // start and end are midnights (report::Range): their days bound application_days.
  const auto first_day = start.substr(0, 10), end_day = end.substr(0, 10);
  return deps_.readers.read([&](db::Connection& reader) -> Result<ApplicationsReport> {
    struct Group {
      std::int64_t applications = 0;
      Histogram decided;
    };
    std::map<std::pair<std::string, std::string>, Group> groups;
    Histogram all_decided;
    store::each_submitted_day(
        reader, first_day, end_day, department_code,
        [&](const std::string& department, const std::string& status, std::int64_t bucket, std::int64_t count) {
          auto& group = groups[{department, status}];
          group.applications += count;
          if (bucket >= 0) {
            group.decided[bucket] += count;
            all_decided[bucket] += count;
          }
        });
    ApplicationsReport report;
    for (auto& [key, group] : groups) {
      report.applications += group.applications;
      for (const auto& [bucket, n] : group.decided) report.decided += n;
      report.rows.push_back({key.first, key.second, group.applications, median(group.decided)});
    }
    report.median_hours_to_decision = median(all_decided);
    return report;
  });
}

}  // namespace townhall::permits
