// The report kit every module's reports share: the date range and its bounds, and the
// same table as JSON or as CSV a spreadsheet opens without running anything.
#include "townhall/platform/report.hpp"

#include <gtest/gtest.h>

namespace townhall {
namespace {

http::Request with_query(std::string query, std::string accept = "") {
  http::Request request;
  request.path = "/api/v1/x/reports/y";
  request.query = std::move(query);
  if (!accept.empty()) request.headers.push_back({"Accept", accept});
  return request;
}

TEST(ReportRange, BothDaysIncludedAsTextBoundsOfStoredTimestamps) {
  auto range = report::parse_range(with_query("from=2026-02-01&to=2026-02-28"));
  ASSERT_TRUE(range) << range.error().message;
  EXPECT_EQ(range->start, "2026-02-01T00:00:00.000Z");
  EXPECT_EQ(range->end, "2026-03-01T00:00:00.000Z");
  EXPECT_LE(range->start, "2026-02-28T23:59:59.999Z");
  EXPECT_LT("2026-02-28T23:59:59.999Z", range->end);

  auto defaulted = report::parse_range(with_query(""));
  ASSERT_TRUE(defaulted);
  EXPECT_LT(defaulted->from, defaulted->to) << "a year up to today";
}

TEST(ReportRange, MalformedReversedOrOverlongRangesAreRefusedByName) {
  for (auto query : {"from=2026-2-1", "from=2026-02-30", "to=tomorrow", "from=2026-02-01T00:00:00Z", "to=0000-01-01",
                     "from=2026-03-01&to=2026-02-01", "from=1926-01-01&to=2026-01-01"}) {
    auto range = report::parse_range(with_query(query));
    ASSERT_FALSE(range) << query;
    EXPECT_EQ(range.error().code, Errc::invalid_argument) << query;
  }
  EXPECT_NE(report::parse_range(with_query("from=1926-01-01&to=2026-01-01")).error().message.find("at most"),
            std::string::npos);
  EXPECT_TRUE(report::parse_range(with_query("from=2017-01-01&to=2026-12-31")))
      << "ten years fit, so a decade's trend can be drawn";
}

TEST(ReportAnswer, TheSameTableAsJsonOrAsCsv) {
  report::Table table{"revenue-by-month", {"month", "source", "cents"}, {}, {{"cents", 1500}}};
  table.rows.push_back({"2026-01", "permit, \"fence\"", 1000});
  table.rows.push_back({"2026-02", "=HYPERLINK(\"x\")", 500});
  table.rows.push_back({"2026-03", nullptr, 0});
  auto range = *report::parse_range(with_query("from=2026-01-01&to=2026-03-31"));

  auto json = report::answer(with_query(""), range, table);
  EXPECT_EQ(json.status, 200);
  auto body = nlohmann::json::parse(json.body);
  EXPECT_EQ(body["rows"][0]["source"], "permit, \"fence\"");
  EXPECT_EQ(body["rows"][1]["cents"], 500);
  EXPECT_EQ(body["totals"]["cents"], 1500);
  EXPECT_EQ(body["from"], "2026-01-01");

  auto csv = report::answer(with_query("", "text/csv"), range, table);
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(csv.body,
            "month,source,cents\r\n"
            "2026-01,\"permit, \"\"fence\"\"\",1000\r\n"
            "2026-02,\"'=HYPERLINK(\"\"x\"\")\",500\r\n"
            "2026-03,,0\r\n");
  EXPECT_NE(csv.header("Content-Disposition").find("revenue-by-month-2026-01-01-2026-03-31.csv"), std::string::npos);
}

TEST(ReportAnswer, ATooLargeTableIsRefusedNotCut) {
  report::Table table{"wide", {"n"}, {}, {}};
  for (std::size_t i = 0; i <= report::kMaxRows; ++i) table.rows.push_back({static_cast<std::int64_t>(i)});
  auto range = *report::parse_range(with_query(""));
  EXPECT_EQ(report::answer(with_query(""), range, table).status, 422);
  table.rows.pop_back();
  EXPECT_EQ(report::answer(with_query(""), range, table).status, 200);
}

TEST(ReportCsv, FormulaLeadingTextIsKeptAsText) {
  EXPECT_EQ(report::csv_field("-5"), "'-5");
  EXPECT_EQ(report::csv_field(-5), "-5") << "numbers stay numbers";
  EXPECT_EQ(report::csv_field("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(report::csv_field("Zoë"), "Zoë");
}

}  // namespace
}  // namespace townhall
