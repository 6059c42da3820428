// Permits' reports on its own data (issue 26.3): applications by department and status
// with the median time from submission to decision.
#include <algorithm>
#include <map>

#include "service.hpp"

namespace townhall::permits {
namespace {

std::optional<double> median(std::vector<double>& values) {
  if (values.empty()) return std::nullopt;
  auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  double upper = *middle;
  if (values.size() % 2 == 1) return upper;
  double lower = *std::max_element(values.begin(), middle);
  return (lower + upper) / 2;
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
  return deps_.readers.read([&](db::Connection& reader) -> Result<ApplicationsReport> {
    struct Group {
      std::int64_t applications = 0;
      std::vector<double> hours;
    };
    std::map<std::pair<std::string, std::string>, Group> groups;
    std::vector<double> all_hours;
    store::each_submitted(reader, start, end, department_code,
                          [&](const std::string& department, const std::string& status, std::optional<double> hours) {
                            auto& group = groups[{department, status}];
                            ++group.applications;
                            if (hours) {
                              group.hours.push_back(*hours);
                              all_hours.push_back(*hours);
                            }
                          });
    ApplicationsReport report;
    for (auto& [key, group] : groups) {
      report.applications += group.applications;
      report.rows.push_back({key.first, key.second, group.applications, median(group.hours)});
    }
    report.decided = static_cast<std::int64_t>(all_hours.size());
    report.median_hours_to_decision = median(all_hours);
    return report;
  });
}

}  // namespace townhall::permits
