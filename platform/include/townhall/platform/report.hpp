#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "townhall/platform/http.hpp"
#include "townhall/platform/result.hpp"
#include "townhall/platform/schema.hpp"

// What every module's report routes (GET <prefix>/reports/...) share: the date range a
// report covers, its bounds, and the answer as JSON or CSV (Accept: text/csv). A module
// reports on its own data only; the SQL stays in its store. For routes.cpp files only.
namespace townhall::report {

// A report's rows are aggregates (per month, department, facility and week), so even a
// long range is small; more rows than this means the range or filter is too wide.
inline constexpr std::size_t kMaxRows = 5000;
// The longest range a report covers: ten years of days.
inline constexpr int kMaxDays = 3660;

// ?from=YYYY-MM-DD&to=YYYY-MM-DD, both days included, in UTC. Defaults: `to` today,
// `from` a year before `to`. Stored timestamps are UTC text, so a range is a pair of
// text bounds an index on the timestamp column serves: start <= t AND t < end.
struct Range {
  std::string from;   // "2026-01-01"
  std::string to;     // "2026-12-31"
  std::string start;  // "2026-01-01T00:00:00.000Z"
  std::string end;    // the day after `to`, "2027-01-01T00:00:00.000Z" (excluded)
};

// invalid_argument naming the parameter when malformed, not a calendar date, from after
// to, or longer than kMaxDays.
Result<Range> parse_range(const http::Request& request);

// An optional ?name=YYYY-MM-DD (a real calendar day): nullopt when absent,
// invalid_argument naming the parameter when malformed.
Result<std::optional<std::string>> query_day(const http::Request& request, std::string_view name);

// A report: named columns and one row of cells per group, plus totals for JSON callers.
struct Table {
  std::string name;  // "revenue-by-month": the CSV's file name stem
  std::vector<std::string> columns;
  std::vector<std::vector<nlohmann::json>> rows;  // each row has one cell per column
  nlohmann::json totals = nlohmann::json::object();
};

// 200 with the table: CSV (RFC 4180, a header line, formula-leading text neutralised)
// when the request's Accept names text/csv, else JSON {report, from, to, columns,
// rows: [{column: cell}], totals}. 422 when the table has more than kMaxRows rows.
http::Response answer(const http::Request& request, const Range& range, const Table& table);

// The documented JSON shape of a report: `row` is the schema of one row, `totals` of
// its totals object.
schema::Json report_of(schema::Json row, schema::Json totals);

// Exposed for tests: one CSV field as written.
std::string csv_field(const nlohmann::json& cell);

}  // namespace townhall::report
