#include "townhall/platform/report.hpp"

#include <date/date.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "townhall/platform/json.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::report {
namespace {

using date::sys_days;

// "YYYY-MM-DD" exactly, and a real calendar day within the years timestamps may name.
Result<sys_days> parse_day(std::string_view name, std::string_view text) {
  auto fail = [&] {
    return make_error(Errc::invalid_argument,
                      "query parameter '" + std::string(name) + "' must be a date as YYYY-MM-DD");
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return fail();
  int parts[3] = {0, 0, 0};
  std::size_t starts[3] = {0, 5, 8}, lengths[3] = {4, 2, 2};
  for (int i = 0; i < 3; ++i)
    for (std::size_t k = 0; k < lengths[i]; ++k) {
      char c = text[starts[i] + k];
      if (c < '0' || c > '9') return fail();
      parts[i] = parts[i] * 10 + (c - '0');
    }
  date::year_month_day day{date::year{parts[0]}, date::month{static_cast<unsigned>(parts[1])},
                           date::day{static_cast<unsigned>(parts[2])}};
  if (!day.ok() || parts[0] < utc::kMinYear || parts[0] > utc::kMaxYear) return fail();
  return sys_days(day);
}

std::string day_text(sys_days day) { return date::format("%F", day); }
std::string start_of(sys_days day) { return date::format("%FT00:00:00.000Z", day); }

bool wants_csv(const http::Request& request) {
  auto accept = request.header("Accept");
  return accept.find("text/csv") != std::string_view::npos;
}

std::string csv_of(const Table& table) {
  std::string out;
  auto line = [&out](const auto& cells, auto&& field) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i) out += ',';
      out += field(cells[i]);
    }
    out += "\r\n";
  };
  line(table.columns, [](const std::string& name) { return csv_field(name); });
  for (const auto& row : table.rows) line(row, [](const nlohmann::json& cell) { return csv_field(cell); });
  return out;
}

}  // namespace

Result<std::optional<std::string>> query_day(const http::Request& request, std::string_view name) {
  auto text = request.query_param(name);
  if (!text) return std::optional<std::string>{};
  auto day = parse_day(name, *text);
  if (!day) return day.error();
  return std::optional<std::string>{day_text(*day)};
}

Result<Range> parse_range(const http::Request& request) {
  auto today = date::floor<date::days>(std::chrono::system_clock::now());
  sys_days to = today;
  if (auto text = request.query_param("to")) {
    auto day = parse_day("to", *text);
    if (!day) return day.error();
    to = *day;
  }
  sys_days from = to - date::days(364);
  if (auto text = request.query_param("from")) {
    auto day = parse_day("from", *text);
    if (!day) return day.error();
    from = *day;
  }
  if (from > to) return make_error(Errc::invalid_argument, "query parameter 'from' must not be after 'to'");
  if ((to - from).count() + 1 > kMaxDays)
    return make_error(Errc::invalid_argument,
                      "a report covers at most " + std::to_string(kMaxDays) + " days; narrow 'from' and 'to'");
  return Range{day_text(from), day_text(to), start_of(from), start_of(to + date::days(1))};
}

std::string csv_field(const nlohmann::json& cell) {
  if (cell.is_null()) return "";
  if (!cell.is_string()) return cell.dump();
  std::string text = cell.get<std::string>();
  // A spreadsheet runs a cell that starts with = + - @ (or a tab or CR) as a formula:
  // text from users (names, addresses) is kept as text by a leading apostrophe.
  if (!text.empty() && std::string_view("=+-@\t\r").find(text.front()) != std::string_view::npos) text.insert(0, "'");
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

http::Response answer(const http::Request& request, const Range& range, const Table& table) {
  if (table.rows.size() > kMaxRows)
    return http::problem(make_error(Errc::unprocessable, "the report has more than " + std::to_string(kMaxRows) +
                                                             " rows; narrow 'from' and 'to' or filter it"));
  if (wants_csv(request)) {
    http::Response response;
    response.content_type = "text/csv; charset=utf-8";
    response.body = csv_of(table);
    response.set_header("Content-Disposition",
                        "attachment; filename=\"" + table.name + "-" + range.from + "-" + range.to + ".csv\"");
    return response;
  }
  auto rows = nlohmann::json::array();
  for (const auto& row : table.rows) {
    auto object = nlohmann::json::object();
    for (std::size_t i = 0; i < table.columns.size() && i < row.size(); ++i) object[table.columns[i]] = row[i];
    rows.push_back(std::move(object));
  }
  return json_body(200, {{"report", table.name},
                         {"from", range.from},
                         {"to", range.to},
                         {"columns", table.columns},
                         {"rows", std::move(rows)},
                         {"totals", table.totals}});
}

schema::Json report_of(schema::Json row, schema::Json totals) {
  using namespace schema;
  return object({{"report", string()},
                 {"from", string()},
                 {"to", string()},
                 {"columns", array(string())},
                 {"rows", array(std::move(row))},
                 {"totals", std::move(totals)}});
}

}  // namespace townhall::report
