// Issue 24 §1: no list or lookup query reads a whole table. The server runs with demo data
// and a statement observer on every module connection; the test calls every list route
// with each of its filters, as a citizen and as staff, and a lookup of each kind. Then
// every SELECT, UPDATE and DELETE the modules and the bus ran is planned again
// (EXPLAIN QUERY PLAN) on its module's file: a full scan of a table that grows with the
// municipality, or a sort of every matching row before a LIMIT, fails the test; and each
// report reads only its per-day table, by index.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/time.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;

// Tables that stay small whatever the data (configuration and bookkeeping rows), or are
// read whole on purpose by a job that pages through them by id.
const std::set<std::string> kSmallTables = {
    "sqlite_master",    "sqlite_schema", "schema_migrations", "departments", "department_refs",
    "role_permissions", "roles",         "facilities",        "programs",    "bus_cursors",
    "storage_probe",    "key_check",     "preferences",       "bus_epoch",   "permit_type_versions"};

// The table a plan's "SCAN x" reads: x, or the table x is an alias of in `sql`.
std::string scanned_table(const std::string& detail, const std::string& sql) {
  auto name = detail.substr(5, detail.find(' ', 5) == std::string::npos ? std::string::npos : detail.find(' ', 5) - 5);
  std::smatch match;
  std::regex alias("(?:FROM|JOIN) (\\w+) " + name + "\\b");
  if (std::regex_search(sql, match, alias)) return match[1];
  return name;
}

// `sql` without what its parentheses hold (subqueries, function arguments): the outer
// statement's own clauses.
std::string outer_statement(const std::string& sql) {
  std::string out;
  int depth = 0;
  for (char c : sql) {
    if (c == '(') ++depth;
    if (depth == 0) out += c;
    if (c == ')' && depth > 0) --depth;
  }
  return out;
}

// A plain SCAN (no index) of a growing table in a statement that filters: it reads the
// table to find its rows. (A SCAN without a filter reads in rowid order and stops at its
// LIMIT: the first page of an unfiltered list; a subquery's WHERE is its own plan line.)
bool reads_whole_table(const std::string& detail, const std::string& sql) {
  if (!detail.starts_with("SCAN ") || detail.starts_with("SCAN CONSTANT ROW")) return false;
  if (detail.find(" USING ") != std::string::npos) return false;  // an index (covering or not) in order
  if (sql.find(" WHERE ") == std::string::npos) return false;
  // The outer statement's own table, read in order up to its LIMIT with no filter of its own.
  const auto outer = outer_statement(sql);
  const auto name =
      detail.substr(5, detail.find(' ', 5) == std::string::npos ? std::string::npos : detail.find(' ', 5) - 5);
  if (outer.find(" WHERE ") == std::string::npos &&
      std::regex_search(outer, std::regex("FROM (\\w+ )?" + name + "\\b")))
    return false;
  return !kSmallTables.contains(scanned_table(detail, sql));
}

// A citizen's list filtered by status searched through an index on the status alone: it
// reads every row in that status (most of a large table) to find the citizen's few
// (bench/scale found it: issue 24 §4).
bool citizen_list_by_status(const std::string& detail, const std::string& sql) {
  bool citizen_list = sql.find("citizen_id = ?") != std::string::npos && sql.find(" LIMIT ") != std::string::npos &&
                      sql.find("IS NULL OR citizen_id") == std::string::npos;
  return citizen_list && detail.starts_with("SEARCH ") && detail.find("(status=") != std::string::npos;
}

TEST(QueryPlans, NoListOrLookupReadsAWholeTable) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  std::mutex mutex;
  std::map<std::string, std::set<std::string>> statements;  // by module
  config.database.statement_observer = [&](std::string_view module, std::string_view sql) {
    std::lock_guard lock(mutex);
    statements[std::string(module)].insert(std::string(sql));
  };
  ASSERT_TRUE(app::create_staff_user(
      config, auth::StaffUser{"admin@example.org", "staff password 1", "Admin", "admin", std::nullopt}));
  auto application =
      std::make_unique<app::Application>(config, app::Application::Options{.demo = true, .handle_signals = false});
  auto port = application->start();
  auto call = [&](const std::string& method, const std::string& path, const std::string& token,
                  const std::string& body = {}) { return testing::call(port, method, path, body, token); };
  auto admin = testing::login(port, "admin@example.org", "staff password 1");
  ASSERT_FALSE(admin.empty());
  auto registered =
      call("POST", "/api/v1/auth/register", {},
           json{{"email", "maria@example.org"}, {"password", "a long enough password"}, {"name", "Maria"}}.dump());
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto maria_id = std::to_string(json::parse(registered.body)["id"].get<std::int64_t>());
  ASSERT_EQ(call("PATCH", "/api/v1/auth/citizens/" + maria_id, admin, R"({"identity_verified":true})").status, 200);
  ASSERT_TRUE(testing::wait_until([&] { return application->bus().caught_up(); }));
  auto maria = testing::login(port, "maria@example.org", "a long enough password");
  ASSERT_FALSE(maria.empty());
  auto submitted = call("POST", "/api/v1/permits/applications", maria,
                        R"({"permit_type":"fence","description":"A fence","property_address":"1 Main St",)"
                        R"("department_code":"BLD"})");
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  ASSERT_TRUE(testing::wait_until([&] { return application->bus().caught_up(); }));

  // Every list with each filter, first page and the next, as a citizen and as staff.
  const std::vector<std::string> lists = {
      "/api/v1/permits/applications",
      "/api/v1/permits/applications?status=under_review",
      "/api/v1/permits/applications?department_code=BLD",
      "/api/v1/permits/applications?department_code=BLD&status=approved",
      "/api/v1/permits/applications/1/inspections",
      "/api/v1/revenue/invoices",
      "/api/v1/revenue/invoices?status=open",
      "/api/v1/revenue/invoices?status=overdue",
      "/api/v1/revenue/invoices?status=paid",
      "/api/v1/revenue/invoices?citizen_id=" + maria_id,
      "/api/v1/revenue/licenses",
      "/api/v1/parks/facilities",
      "/api/v1/parks/programs",
      "/api/v1/parks/bookings",
      "/api/v1/parks/bookings?facility_id=1",
      "/api/v1/parks/enrollments",
      "/api/v1/parks/enrollments?program_id=1",
      "/api/v1/parks/bookings?from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
      "/api/v1/auth/citizens",
      "/api/v1/auth/citizens?email=maria@example.org",
      "/api/v1/notify/inbox",
      "/api/v1/auth/sessions",
      "/api/v1/permits/permit-types",
      "/api/v1/permits/permit-types?all=true",
      "/api/v1/auth/employees",
      "/api/v1/auth/employees?q=adm",
      "/api/v1/auth/employees?department=BLD",
      "/api/v1/auth/employees?role=admin",
      "/api/v1/auth/employees?active=true",
      "/api/v1/auth/employees?department=BLD&active=true&role=permits_reviewer",
      "/api/v1/auth/audit",
      "/api/v1/auth/audit?actor_id=1",
      "/api/v1/auth/audit?citizen_id=" + maria_id,
      "/api/v1/auth/audit?action=citizen.verification.set",
      "/api/v1/auth/audit?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
      "/api/v1/auth/audit?actor_id=1&action=citizen.verification.set&from=2020-01-01T00:00:00Z",
  };
  for (const auto& token : {maria, admin})
    for (const auto& list : lists) {
      auto first = call("GET", list + (list.find('?') == std::string::npos ? "?" : "&") + "page_size=1", token);
      if (first.status != 200) continue;  // not this caller's list
      auto body = json::parse(first.body);
      if (!body.contains("next_cursor") || !body["next_cursor"].is_string()) continue;
      auto next = call("GET",
                       list + (list.find('?') == std::string::npos ? "?" : "&") +
                           "page_size=1&cursor=" + body["next_cursor"].get<std::string>(),
                       token);
      EXPECT_EQ(next.status, 200) << list << ": " << next.body;
    }
  // Revenue's tax bills (the demo's tax record billed by the yearly run, twice), a receipt
  // and the revenue report (issue 26).
  auto due = utc::format(std::chrono::system_clock::now() + std::chrono::hours(24 * 30)).substr(0, 10);
  for (int run = 0; run < 2; ++run)
    EXPECT_EQ(call("POST", "/api/v1/revenue/tax-bills", admin,
                   json{{"tax_year", 2025}, {"tax_record_ids", json::array({1})}, {"due_date", due}}.dump())
                  .status,
              200);
  for (const auto& lookup :
       {"/api/v1/permits/applications/1", "/api/v1/revenue/invoices/1", "/api/v1/parks/bookings/1",
        "/api/v1/parks/facilities/1", "/api/v1/auth/citizens/1", "/api/v1/auth/me", "/api/v1/revenue/tax-records/1",
        "/api/v1/revenue/payments/1/receipt", "/api/v1/revenue/reports/revenue?from=2026-01-01&to=2026-12-31",
        "/api/v1/permits/permit-types/fence", "/api/v1/permits/reports/applications",
        "/api/v1/permits/reports/applications?department_code=BLD", "/api/v1/parks/reports/utilisation",
        "/api/v1/parks/reports/utilisation?facility_id=1"})
    call("GET", lookup, admin);
  application.reset();

  std::vector<std::string> whole_reads;
  std::size_t planned = 0;
  // The three reports read only their per-day tables (issue 24, design note 60), each by
  // an index that serves its range (and a department's or facility's report by one that
  // serves that too); never the rows they summarize.
  const std::map<std::string, std::string> kReportTables = {
      {"application_days", "permits"}, {"revenue_days", "revenue"}, {"booking_days", "parks"}};
  std::map<std::string, std::size_t> report_reads;
  std::vector<std::string> report_reads_off_index;
  std::size_t department_reports = 0;
  for (const auto& [module, texts] : statements) {
    SQLite::Database file((dir.path() / (module + ".db")).string(), SQLite::OPEN_READONLY);
    for (const auto& sql : texts) {
      if (!(sql.starts_with("SELECT") || sql.starts_with("UPDATE") || sql.starts_with("DELETE"))) continue;
      if (sql.find(" WHERE ") == std::string::npos && sql.find(" LIMIT ") == std::string::npos)
        continue;                        // whole on purpose
      if (sql.ends_with(";")) continue;  // a migration script's statement: run once, on upgrade
      std::unique_ptr<SQLite::Statement> plan_of;
      try {
        plan_of = std::make_unique<SQLite::Statement>(file, "EXPLAIN QUERY PLAN " + sql);
      } catch (const SQLite::Exception&) {
        continue;  // a migration's statement on a temporary table of its own
      }
      auto& plan = *plan_of;
      ++planned;
      std::string report_table;
      for (const auto& [table, owner] : kReportTables)
        if (owner == module && sql.find("FROM " + table + " ") != std::string::npos) report_table = table;
      // The statements the reports ran before their per-day tables: none may be left.
      if ((module == "permits" && sql.find("FROM applications") != std::string::npos &&
           sql.find("submitted_at >=") != std::string::npos) ||
          (module == "revenue" && sql.find("FROM payments p JOIN invoices") != std::string::npos) ||
          (module == "parks" && sql.find("FROM bookings") != std::string::npos &&
           sql.find("starts_at >= ?1 AND starts_at < ?2") != std::string::npos))
        report_reads_off_index.push_back("a report still reads its rows: " + sql);
      if (!report_table.empty()) ++report_reads[report_table];
      const bool department_report =
          report_table == "application_days" && sql.find("department_code = ?") != std::string::npos;
      if (department_report) ++department_reports;
      while (plan.executeStep()) {
        std::string detail = plan.getColumn(3).getString();
        const bool by_index = detail.starts_with("SEARCH " + report_table + " USING ") &&
                              (!department_report || detail.find("application_days_department") != std::string::npos) &&
                              (sql.find("facility_id = ?") == std::string::npos ||
                               detail.find("PRIMARY KEY (facility_id=?") != std::string::npos);
        if (!report_table.empty() && !by_index) report_reads_off_index.push_back(detail + "  <-  " + sql);
        bool sorts_before_limit =
            detail.find("TEMP B-TREE FOR ORDER BY") != std::string::npos && sql.find(" LIMIT ") != std::string::npos;
        if (reads_whole_table(detail, sql) || sorts_before_limit || citizen_list_by_status(detail, sql))
          whole_reads.push_back(module + ": " + detail + "  <-  " + sql);
      }
    }
  }
  EXPECT_GT(planned, 40u) << "the observer saw too few statements to mean anything";
  for (const auto& [table, owner] : kReportTables)
    EXPECT_GT(report_reads[table], 0u) << "no report read of " << table << " was observed";
  EXPECT_GT(department_reports, 0u) << "the department's report was not observed";
  for (const auto& read : report_reads_off_index) ADD_FAILURE() << "a report: " << read;
  for (const auto& read : whole_reads) ADD_FAILURE() << read;
}

}  // namespace
}  // namespace townhall
