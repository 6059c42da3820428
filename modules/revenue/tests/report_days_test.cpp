// The revenue report from per-day sums (migration 0009, design note 60) against the same
// report computed from the rows: random invoices, payments and refunds over days either
// side of a month's end, and the migration's backfill of rows an older version wrote.
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>
#include <tuple>

#include "fixture.hpp"
#include "townhall/platform/consistency.hpp"

namespace townhall::revenue {
namespace {

// What a finance officer calls each source this test uses (the report's labels).
std::string label(const std::string& module, const std::string& type) {
  if (module == "permits") return "permit_fee";
  if (module == "parks") return type;
  return "property_tax";
}

using Money = std::map<std::tuple<std::string, std::string, std::string>, std::array<std::int64_t, 4>>;

// The report as computed before 0009: every payment completed or refunded in the range,
// joined to its invoice, by month; the open invoices now.
Money reference_months(db::Connection& reader, const std::string& start, const std::string& end) {
  Money out;
  for (int refunds = 0; refunds < 2; ++refunds) {
    std::string at = refunds ? "p.refunded_at" : "p.completed_at";
    auto query = reader.prepare("SELECT substr(" + at + ", 1, 7), i.source_module, i.source_type, p.currency, " +
                                "p.amount_cents FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE " + at +
                                " >= ? AND " + at + " < ?");
    query.bind(1, start);
    query.bind(2, end);
    while (query.executeStep()) {
      auto& row =
          out[{query.getColumn(0).getString(), label(query.getColumn(1).getString(), query.getColumn(2).getString()),
               query.getColumn(3).getString()}];
      row[refunds * 2] += 1;
      row[refunds * 2 + 1] += query.getColumn(4).getInt64();
    }
  }
  return out;
}

std::map<std::string, std::array<std::int64_t, 4>> reference_outstanding(db::Connection& reader) {
  std::map<std::string, std::array<std::int64_t, 4>> out;
  auto query =
      reader.prepare("SELECT currency, amount_cents, overdue_at IS NOT NULL FROM invoices WHERE status = 'open'");
  while (query.executeStep()) {
    auto& row = out[query.getColumn(0).getString()];
    row[0] += 1;
    row[1] += query.getColumn(1).getInt64();
    row[2] += query.getColumn(2).getInt();
    row[3] += query.getColumn(2).getInt() ? query.getColumn(1).getInt64() : 0;
  }
  return out;
}

// One of the ids `sql` reads, at random.
template <class Pick>
std::optional<std::int64_t> single_random(db::Connection& connection, const std::string& sql, Pick& pick) {
  std::vector<std::int64_t> ids;
  auto query = connection.prepare(sql);
  while (query.executeStep()) ids.push_back(query.getColumn(0).getInt64());
  if (ids.empty()) return std::nullopt;
  return ids[static_cast<std::size_t>(pick(static_cast<std::int64_t>(ids.size())))];
}

class RevenueReportDays : public RevenueServiceTest {
 protected:
  void compare(const std::string& when) {
    auto reader = database.open(db::Role::reader);
    const std::vector<std::string> days = {"2026-02-26", "2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"};
    for (std::size_t first = 0; first < days.size(); ++first)
      for (std::size_t last = first; last < days.size(); ++last) {
        auto start = days[first] + "T00:00:00.000Z";
        auto end = utc::format(utc::parse(days[last] + "T00:00:00.000Z").value() + std::chrono::hours(24));
        auto what = when + " " + days[first] + ".." + days[last];
        auto found = service->revenue_report(as(clerk()), start, end);
        ASSERT_TRUE(found) << what << ": " << found.error().message;
        Money months;
        for (const auto& row : found->months)
          months[{row.month, row.source, row.currency}] = {row.payments, row.paid_cents, row.refunds,
                                                           row.refunded_cents};
        EXPECT_EQ(months, reference_months(*reader, start, end)) << what;
        std::map<std::string, std::array<std::int64_t, 4>> outstanding;
        for (const auto& owed : found->outstanding)
          outstanding[owed.currency] = {owed.invoices, owed.amount_cents, owed.overdue_invoices, owed.overdue_cents};
        EXPECT_EQ(outstanding, reference_outstanding(*reader)) << what;
      }
  }

  void write(const std::function<void(db::Connection&)>& change) {
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      change(*connection);
      transaction.commit();
    });
  }
};

// Every state change revenue's code makes to what the report sums (invoices.cpp,
// payments.cpp, handlers.cpp): an invoice opened, marked overdue, voided, paid, refunded;
// a payment started, failed, completed (its invoice paid, or, cancelled meanwhile, to be
// refunded at once), to be refunded, refunded; and a payment deleted (no code does; the
// triggers cover it). Instants at random over five days across February's end, some at
// midnight exactly. After every 40 changes the report equals the rows' for every range.
TEST_F(RevenueReportDays, RandomTransitionsMatchTheRows) {
  std::mt19937_64 random(20261206);
  auto pick = [&](std::int64_t below) {
    return static_cast<std::int64_t>(std::uniform_int_distribution<std::uint64_t>(0, below - 1)(random));
  };
  const auto first = utc::parse("2026-02-26T00:00:00.000Z").value();
  auto instant = [&] {
    if (pick(5) == 0) return utc::format(first + std::chrono::hours(24 * pick(5)));  // a midnight
    return utc::format(first + std::chrono::milliseconds(pick(5LL * 24 * 3'600'000)));
  };
  int keys = 0;
  auto key = [&] { return "test-processor-key-" + std::to_string(++keys); };
  const std::vector<std::pair<std::string, std::string>> sources = {
      {"permits", "application"}, {"parks", "booking"}, {"revenue", "tax_record"}};
  for (int step = 1; step <= 800; ++step) {
    write([&](db::Connection& service) {
      auto kind = pick(8);
      if (kind == 0) {  // an invoice opened
        store::Invoice i;
        i.citizen_id = 1;
        std::tie(i.source_module, i.source_type) = sources[static_cast<std::size_t>(pick(3))];
        i.source_id = std::to_string(step);
        i.description = "d";
        i.amount_cents = 100 + pick(10'000);
        i.currency = pick(2) ? "EUR" : "USD";
        i.status = "open";
        i.created_at = i.updated_at = instant();
        ASSERT_TRUE(store::insert_invoice(service, i));
        return;
      }
      auto invoice_id = single_random(service, "SELECT id FROM invoices", pick);
      if (!invoice_id) return;
      auto invoice = *store::find_invoice(service, *invoice_id, store::Scope::everything());
      if (kind == 1 && invoice.status == "open") {  // the overdue job, or a cancellation
        if (!invoice.overdue_at && pick(2)) {
          invoice.overdue_at = instant();
        } else {
          invoice.status = "voided";
          invoice.closed_at = instant();
        }
        store::update_invoice(service, invoice);
        return;
      }
      if (kind == 2 && invoice.status == "open" && !store::find_live_payment(service, invoice.id)) {  // a charge
        store::Payment p;
        p.invoice_id = invoice.id;
        p.citizen_id = 1;
        p.idempotency_key = key();
        p.request_digest = "d";
        p.processor_key = key();
        p.amount_cents = invoice.amount_cents;
        p.currency = invoice.currency;
        p.method_type = "card";
        p.status = "pending";
        p.created_at = p.updated_at = instant();
        store::insert_payment(service, p);
        return;
      }
      auto payment_id = single_random(service, "SELECT id FROM payments", pick);
      if (!payment_id) return;
      auto payment = *store::find_payment(service, *payment_id);
      invoice = *store::find_invoice(service, payment.invoice_id, store::Scope::everything());
      if (kind == 7) {
        if (pick(4) == 0) db::execute(service, "DELETE FROM payments WHERE id = ?", payment.id);
        return;
      }
      if (payment.status == "pending") {
        if (pick(4) == 0) {
          payment.status = "failed";
        } else {
          payment.status = "completed";
          payment.completed_at = instant();
          if (invoice.status == "open") {
            invoice.status = "paid";
            invoice.paid_at = payment.completed_at;
            store::update_invoice(service, invoice);
          } else {
            payment.status = "refund_pending";
            payment.refund_key = key();
          }
        }
      } else if (payment.status == "completed") {
        payment.status = "refund_pending";
        payment.refund_key = key();
      } else if (payment.status == "refund_pending") {
        payment.status = "refunded";
        payment.refunded_at = instant();
        if (invoice.status == "paid") {
          invoice.status = "refunded";
          invoice.closed_at = payment.refunded_at;
          store::update_invoice(service, invoice);
        }
      } else {
        return;
      }
      payment.event_version += 1;
      store::update_payment(service, payment);
    });
    if (HasFatalFailure()) return;
    if (step % 40 == 0) compare("after step " + std::to_string(step));
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(count("SELECT count(*) FROM payments WHERE refunded_at IS NOT NULL"), 5);
  EXPECT_GT(count("SELECT count(*) FROM invoices WHERE status = 'open' AND overdue_at IS NOT NULL"), 2);
  for (const auto& derived : database.manifest().derived) {
    auto checked = testing::run_awaitable(consistency::check("revenue", derived, database, writer, false));
    EXPECT_TRUE(checked.error.empty()) << checked.error;
    EXPECT_EQ(checked.missing_count() + checked.stale_count() + checked.extra_count(), 0u) << derived.table;
    EXPECT_GT(checked.source_rows, 1) << derived.table;
  }
}

// An installation upgraded with invoices and payments on file: 0009 fills the sums from
// them, so its first report after the upgrade is the rows' report.
TEST(RevenueReportBackfill, TheMigrationSumsThePaymentsAndInvoicesAlreadyOnFile) {
  testing::TempDir dir;
  db::ModuleDb database{"revenue", dir.path() / "revenue.db", table_manifest()};
  testing::migrate_module(database, "revenue", 9);
  auto owner = database.open(db::Role::owner);
  owner->exec(
      "INSERT INTO invoices (id, citizen_id, source_module, source_type, source_id, description, amount_cents, "
      "currency, status, created_at, updated_at, overdue_at) VALUES "
      "(1, 1, 'permits', 'application', '1', 'd', 500, 'EUR', 'paid', 'x', 'x', NULL),"
      "(2, 1, 'parks', 'booking', '2', 'd', 700, 'EUR', 'refunded', 'x', 'x', NULL),"
      "(3, 1, 'parks', 'booking', '3', 'd', 900, 'EUR', 'open', 'x', 'x', '2026-03-01T00:00:00.000Z'),"
      "(4, 1, 'permits', 'application', '4', 'd', 300, 'USD', 'open', 'x', 'x', NULL);"
      "INSERT INTO payments (invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency, "
      "method_type, status, created_at, updated_at, completed_at, refunded_at, processor_key, refund_key) VALUES "
      "(1, 1, 'a', 'd', 500, 'EUR', 'card', 'completed', 'x', 'x', '2026-02-28T23:59:59.999Z', NULL, "
      "'processor-key-000001', NULL),"
      "(2, 1, 'b', 'd', 700, 'EUR', 'card', 'refunded', 'x', 'x', '2026-02-28T10:00:00.000Z', "
      "'2026-03-01T00:00:00.000Z', 'processor-key-000002', 'processor-key-000003')");
  testing::migrate_module(database, "revenue");
  auto rows = [&](const std::string& sql) {
    std::vector<std::string> out;
    auto query = owner->prepare(sql);
    while (query.executeStep()) out.push_back(query.getColumn(0).getString());
    return out;
  };
  EXPECT_EQ(rows("SELECT day || ' ' || source_module || ' ' || currency || ' ' || payments || ' ' || paid_cents || ' ' "
                 "|| refunds || ' ' || refunded_cents FROM revenue_days ORDER BY 1"),
            (std::vector<std::string>{"2026-02-28 parks EUR 1 700 0 0", "2026-02-28 permits EUR 1 500 0 0",
                                      "2026-03-01 parks EUR 0 0 1 700"}));
  EXPECT_EQ(rows("SELECT currency || ' ' || invoices || ' ' || amount_cents || ' ' || overdue_invoices || ' ' || "
                 "overdue_cents FROM open_invoice_totals ORDER BY 1"),
            (std::vector<std::string>{"EUR 1 900 1 900", "USD 1 300 0 0"}));
}

}  // namespace
}  // namespace townhall::revenue
