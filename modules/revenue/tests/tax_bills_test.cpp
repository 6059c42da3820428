// Tax bills (issue 26.1 and 26.3): instalments summing to the tax due, bad terms, the
// yearly run billing each record once, overdue marking, receipts and the revenue report.
#include "fixture.hpp"

namespace townhall::revenue {
namespace {

using json = nlohmann::json;
using testing::run_awaitable;

// Issue 26 §1. A tax record with a due date is billed in instalments: amounts summing to
// the tax due exactly (the remainder's cents on the first), monthly due dates that keep
// to each month's end, each invoice linked to the record and announced.
TEST_F(RevenueServiceTest, ATaxRecordWithADueDateIsBilledInInstalmentsSummingToItsTaxDue) {
  add_citizen(1);
  auto record = run_awaitable(
      service->record_tax(as(clerk()), NewTaxRecord{1, 2026, 1000000, 100001, BillTerms{"2031-01-31", 4}}));
  ASSERT_TRUE(record) << record.error().message;
  ASSERT_EQ(record->invoices.size(), 4u);
  std::vector<std::int64_t> amounts;
  std::vector<std::string> due_dates, sources;
  for (const auto& invoice : record->invoices) {
    amounts.push_back(invoice.amount_cents);
    due_dates.push_back(*invoice.due_date);
    sources.push_back(invoice.source_id);
    EXPECT_EQ(invoice.tax_record_id, record->id);
    EXPECT_EQ(invoice.citizen_id, 1);
  }
  EXPECT_EQ(amounts, (std::vector<std::int64_t>{25001, 25000, 25000, 25000}));
  EXPECT_EQ(due_dates, (std::vector<std::string>{"2031-01-31", "2031-02-28", "2031-03-31", "2031-04-30"}));
  const auto id = std::to_string(record->id);
  EXPECT_EQ(sources, (std::vector<std::string>{id + ".1", id + ".2", id + ".3", id + ".4"}));
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'invoice.created'"), 4);
  EXPECT_EQ(count("SELECT sum(amount_cents) FROM invoices WHERE tax_record_id = " + id), 100001);
  auto read = run_awaitable(service->get_tax_record(as(citizen(1)), record->id, false));
  ASSERT_TRUE(read);
  EXPECT_EQ(read->record.invoices.size(), 4u);
  // Without a due date nothing is billed; a record with nothing due opens no invoice.
  auto unbilled = run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2027, 1, 500, std::nullopt}));
  ASSERT_TRUE(unbilled);
  EXPECT_TRUE(unbilled->invoices.empty());
  auto nothing =
      run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2028, 1, 0, BillTerms{"2031-01-01", 2}}));
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->invoices.empty());
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 4);
}

TEST_F(RevenueServiceTest, BadBillTermsAreRefusedAndRecordNothing) {
  add_citizen(1);
  auto refused = [&](BillTerms terms, std::int64_t tax_due = 1000) {
    auto record = run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2026, 1, tax_due, std::move(terms)}));
    EXPECT_FALSE(record);
    return record ? Errc::internal : record.error().code;
  };
  EXPECT_EQ(refused({"2031-01-01", 0}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2031-01-01", -2}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2031-01-01", 13}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2020-06-01", 1}), Errc::invalid_argument);  // past
  EXPECT_EQ(refused({"2031-02-29", 1}), Errc::invalid_argument);  // no such day
  EXPECT_EQ(refused({"2031-1-01", 1}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2031-01-01T00:00:00Z", 1}), Errc::invalid_argument);
  EXPECT_EQ(refused({"2045-01-01", 1}), Errc::invalid_argument);    // beyond ten years
  EXPECT_EQ(refused({"2031-01-01", 12}, 11), Errc::unprocessable);  // 11 cents in 12 instalments
  EXPECT_EQ(count("SELECT count(*) FROM tax_records"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM outbox"), 0);
  auto today =
      run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2026, 1, 11, BillTerms{utc_today(), 11}}));
  ASSERT_TRUE(today) << today.error().message;  // due today is not past; one cent each
  EXPECT_EQ(today->invoices.size(), 11u);
}

// The yearly run: each named record billed once, whatever runs again; unknown ids and
// records with nothing due reported, not billed.
TEST_F(RevenueServiceTest, TheYearlyRunBillsEachRecordOnce) {
  for (std::int64_t c : {1, 2, 3}) add_citizen(c);
  std::vector<std::int64_t> records;
  for (auto [c, due] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 900}, {2, 1200}, {3, 0}}) {
    auto record = run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{c, 2026, 1, due, std::nullopt}));
    ASSERT_TRUE(record);
    records.push_back(record->id);
  }
  TaxBillRun run{2026, {}, {1, 2, 3, 77, 2}, BillTerms{"2031-03-15", 3}};
  auto first = run_awaitable(service->bill_taxes(as(clerk()), run));
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->billed.size(), 2u);
  EXPECT_EQ(first->billed[0].id, records[0]);
  EXPECT_EQ(first->billed[1].invoices.size(), 3u);
  EXPECT_EQ(first->nothing_due, (std::vector<std::int64_t>{records[2]}));
  EXPECT_EQ(first->not_found, (std::vector<std::int64_t>{77}));
  auto again = run_awaitable(service->bill_taxes(as(clerk()), run));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->billed.empty());
  EXPECT_EQ(again->already_billed, (std::vector<std::int64_t>{records[0], records[1]}));
  TaxBillRun by_record{2026, {records[1], records[0]}, {}, BillTerms{"2031-03-15", 1}};
  EXPECT_EQ(run_awaitable(service->bill_taxes(as(clerk()), by_record))->already_billed.size(), 2u);
  EXPECT_EQ(count("SELECT count(*) FROM invoices"), 6);
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'invoice.created'"), 6);

  TaxBillRun neither{2026, {}, {}, BillTerms{"2031-03-15", 1}};
  EXPECT_EQ(run_awaitable(service->bill_taxes(as(clerk()), neither)).error().code, Errc::invalid_argument);
  TaxBillRun too_many{2026, {}, std::vector<std::int64_t>(kMaxTaxBillRun + 1, 1), BillTerms{"2031-03-15", 1}};
  EXPECT_EQ(run_awaitable(service->bill_taxes(as(clerk()), too_many)).error().code, Errc::invalid_argument);
  EXPECT_EQ(run_awaitable(service->bill_taxes(as(citizen(1)), run)).error().code, Errc::forbidden);
}

// The overdue job: an open invoice past its due date is marked once (invoice.overdue),
// shows as overdue, and is paid by the ordinary payment path; one being charged right
// then is left to its payment.
TEST_F(RevenueServiceTest, AnOverdueInvoiceIsMarkedOnceAndStaysPayable) {
  add_citizen(1);
  auto record =
      run_awaitable(service->record_tax(as(clerk()), NewTaxRecord{1, 2026, 1, 10000, BillTerms{utc_today(), 2}}));
  ASSERT_TRUE(record) << record.error().message;
  auto mark = [&](const std::string& today) {
    std::int64_t marked = 0;
    writer.call([&] {
      auto connection = database.open(db::Role::service);
      SQLite::Transaction transaction(connection->sql());
      marked = mark_overdue_invoices(*connection, today, "test");
      transaction.commit();
    });
    return marked;
  };
  EXPECT_EQ(run_awaitable(service->mark_overdue(CallContext::as_service("revenue", "test"))).value(), 0);  // due today
  EXPECT_EQ(mark("2031-12-31"), 2);
  EXPECT_EQ(mark("2031-12-31"), 0);  // once
  EXPECT_EQ(count("SELECT count(*) FROM outbox WHERE event_type = 'invoice.overdue'"), 2);
  EXPECT_EQ(text("SELECT json_extract(data, '$.snapshot.status') FROM outbox WHERE event_type = 'invoice.overdue'"),
            "overdue");
  auto first = service->get_invoice(as(citizen(1)), record->invoices[0].id);
  ASSERT_TRUE(first);
  EXPECT_EQ(shown_status(*first), "overdue");
  EXPECT_EQ(invoice_json(*first)["balance_cents"], 5000);
  store::InvoiceFilter overdue{"overdue", std::nullopt};
  EXPECT_EQ(service->list_invoices(as(citizen(1)), overdue, {})->items.size(), 2u);
  auto paid = run_awaitable(
      service->pay(as(citizen(1)), PaymentRequest{first->id, 5000, std::nullopt, "card", "tok"}, "tax-1"));
  ASSERT_TRUE(paid) << paid.error().message;
  EXPECT_EQ(paid->payment.status, "completed");
  EXPECT_EQ(shown_status(*service->get_invoice(as(citizen(1)), first->id)), "paid");
  EXPECT_EQ(service->list_invoices(as(citizen(1)), overdue, {})->items.size(), 1u);
  EXPECT_EQ(run_awaitable(service->mark_overdue(as(citizen(1)))).error().code, Errc::forbidden);
}

// Receipts: the payer's and revenue staff's; another citizen's payment does not exist
// for them; a payment that never completed has none.
TEST_F(RevenueServiceTest, AReceiptIsForACompletedPaymentOfItsPayerOrStaff) {
  auto invoice = open_invoice();
  auto paid = pay(invoice, "k");
  ASSERT_TRUE(paid);
  auto receipt = service->receipt(as(citizen(1)), paid->payment.id);
  ASSERT_TRUE(receipt) << receipt.error().message;
  EXPECT_EQ(receipt->invoice.id, invoice);
  EXPECT_EQ(receipt_json(*receipt)["receipt_number"], "R-" + std::to_string(paid->payment.id));
  EXPECT_TRUE(service->receipt(as(clerk()), paid->payment.id));
  EXPECT_EQ(service->receipt(as(citizen(2)), paid->payment.id).error().code, Errc::not_found);
  EXPECT_EQ(service->receipt(as(citizen(2)), 999).error().code, Errc::not_found);
  EXPECT_EQ(service->receipt(as(testing::employee_principal(5, {"permits:review"})), paid->payment.id).error().code,
            Errc::forbidden);
  auto second = open_invoice(8);
  provider.failure = Errc::unavailable;
  auto pending = pay(second, "k2");
  ASSERT_TRUE(pending);
  EXPECT_EQ(service->receipt(as(citizen(1)), pending->payment.id).error().code, Errc::conflict);
  provider.failure.reset();
}

// The report's arithmetic: payments by the month they completed, refunds by theirs, per
// source and currency; the outstanding balance counts open and overdue invoices.
TEST_F(RevenueServiceTest, TheRevenueReportNetsRefundsByMonthAndSource) {
  writer.call([&] {
    auto owner = database.open(db::Role::owner);
    owner->sql().exec(R"(
      INSERT INTO invoices (id, citizen_id, source_module, source_type, source_id, description, amount_cents, currency,
                            status, created_at, updated_at, overdue_at, due_date) VALUES
        (1, 1, 'permits', 'application', '1', 'fee', 5000, 'USD', 'paid', 'x', 'x', NULL, NULL),
        (2, 1, 'parks', 'booking', '2', 'court', 2500, 'USD', 'refunded', 'x', 'x', NULL, NULL),
        (3, 1, 'revenue', 'tax_record', '1.1', 'tax', 700, 'EUR', 'paid', 'x', 'x', NULL, '2026-01-01'),
        (4, 1, 'revenue', 'tax_record', '1.2', 'tax', 300, 'USD', 'open', 'x', 'x', 'x', '2026-02-01'),
        (5, 1, 'revenue', 'business_license', '1.1', 'fee', 10000, 'USD', 'open', 'x', 'x', NULL, NULL);
      INSERT INTO payments (invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency,
                            method_type, status, created_at, updated_at, completed_at, refunded_at, processor_key,
                            refund_key) VALUES
        (1, 1, 'a', 'd', 5000, 'USD', 'card', 'completed', 'x', 'x', '2026-03-31T23:59:59.999Z', NULL,
         'key-aaaaaaaaaaaaaaaa', NULL),
        (2, 1, 'b', 'd', 2500, 'USD', 'card', 'refunded', 'x', 'x', '2026-03-10T10:00:00.000Z',
         '2026-04-02T10:00:00.000Z', 'key-bbbbbbbbbbbbbbbb', 'refund-bbbbbbbbbbbbb'),
        (3, 1, 'c', 'd', 700, 'EUR', 'card', 'completed', 'x', 'x', '2026-04-01T00:00:00.000Z', NULL,
         'key-cccccccccccccccc', NULL),
        (4, 1, 'e', 'd', 300, 'USD', 'card', 'failed', 'x', 'x', NULL, NULL, 'key-eeeeeeeeeeeeeeee', NULL);
    )");
  });
  auto report = service->revenue_report(as(clerk()), "2026-03-01T00:00:00.000Z", "2026-05-01T00:00:00.000Z");
  ASSERT_TRUE(report) << report.error().message;
  std::vector<std::string> rows;
  for (const auto& r : report->months)
    rows.push_back(r.month + " " + r.source + " " + r.currency + " " + std::to_string(r.payments) + "/" +
                   std::to_string(r.paid_cents) + " -" + std::to_string(r.refunds) + "/" +
                   std::to_string(r.refunded_cents));
  EXPECT_EQ(rows, (std::vector<std::string>{"2026-03 booking USD 1/2500 -0/0", "2026-03 permit_fee USD 1/5000 -0/0",
                                            "2026-04 booking USD 0/0 -1/2500", "2026-04 property_tax EUR 1/700 -0/0"}));
  ASSERT_EQ(report->outstanding.size(), 1u);
  EXPECT_EQ(report->outstanding[0].currency, "USD");
  EXPECT_EQ(report->outstanding[0].invoices, 2);
  EXPECT_EQ(report->outstanding[0].amount_cents, 10300);
  EXPECT_EQ(report->outstanding[0].overdue_invoices, 1);
  EXPECT_EQ(report->outstanding[0].overdue_cents, 300);
  // April alone: the refund and the euro payment.
  auto april = service->revenue_report(as(clerk()), "2026-04-01T00:00:00.000Z", "2026-05-01T00:00:00.000Z");
  EXPECT_EQ(april->months.size(), 2u);
  EXPECT_EQ(service->revenue_report(as(citizen(1)), "a", "b").error().code, Errc::forbidden);
  EXPECT_EQ(service->revenue_report(as(testing::employee_principal(5, {"permits:review"})), "a", "b").error().code,
            Errc::forbidden);
}

// Migration 0002 on a file the old code wrote: a license made active by its approval
// whose fee is still open waits for it (approved_unpaid, due in 30 days, its renewal
// bought meanwhile voided); a paid one stays active and gets an expiry if it had none.
TEST(RevenueMigration, LicensesActiveWithTheirFeeUnpaidWaitForIt) {
  testing::TempDir dir;
  db::ModuleDb database{"revenue", dir.path() / "revenue.db", table_manifest()};
  testing::migrate_module(database, "revenue", 2);
  auto owner = database.open(db::Role::owner);
  owner->sql().exec(
      "INSERT INTO invoices (id, citizen_id, source_module, source_type, source_id, description, amount_cents, "
      "currency, status, created_at, updated_at, paid_at) VALUES "
      "(1, 1, 'revenue', 'business_license', '1.1', 'fee', 100, 'USD', 'open', 'x', 'x', NULL), "
      "(2, 1, 'revenue', 'business_license', '1.2', 'renewal', 100, 'USD', 'open', 'x', 'x', NULL), "
      "(3, 1, 'revenue', 'business_license', '2.1', 'fee', 100, 'USD', 'paid', 'x', 'x', "
      "'2026-01-01T00:00:00.000Z'), "
      "(4, 1, 'revenue', 'business_license', '3.1', 'fee', 100, 'USD', 'paid', 'x', 'x', "
      "'2026-01-01T00:00:00.000Z');"
      "INSERT INTO business_licenses (id, citizen_id, business_name, activity, address, status, term, expires_at, "
      "renewal_invoice_id, created_at, updated_at) VALUES "
      "(1, 1, 'Unpaid', 'a', 'b', 'active', 1, '2027-01-01T00:00:00.000Z', 2, 'x', 'x'), "
      "(2, 1, 'Paid', 'a', 'b', 'active', 1, '2027-01-01T00:00:00.000Z', NULL, 'x', 'x'), "
      "(3, 1, 'Demo', 'a', 'b', 'active', 1, NULL, NULL, 'x', 'x'), "
      "(4, 1, 'Waiting', 'a', 'b', 'applied', 0, NULL, NULL, 'x', 'x')");
  testing::migrate_module(database, "revenue");
  auto text = [&](const std::string& sql) { return owner->sql().execAndGet(sql).getString(); };
  EXPECT_EQ(text("SELECT status || ' ' || term FROM business_licenses WHERE id = 1"), "approved_unpaid 0");
  EXPECT_EQ(text("SELECT coalesce(expires_at, 'none') || ' ' || fee_invoice_id || ' ' || "
                 "coalesce(renewal_invoice_id, 'none') FROM business_licenses WHERE id = 1"),
            "none 1 none");
  EXPECT_GT(text("SELECT fee_due_at FROM business_licenses WHERE id = 1"), utc::now());
  EXPECT_EQ(text("SELECT status FROM invoices WHERE id = 2"), "voided");
  EXPECT_EQ(text("SELECT status || ' ' || expires_at || ' ' || fee_invoice_id FROM business_licenses WHERE id = 2"),
            "active 2027-01-01T00:00:00.000Z 3");
  EXPECT_EQ(text("SELECT status || ' ' || expires_at FROM business_licenses WHERE id = 3"),
            "active 2027-01-01T00:00:00.000Z");
  EXPECT_EQ(text("SELECT status || ' ' || coalesce(fee_invoice_id, 'none') FROM business_licenses WHERE id = 4"),
            "applied none");
  // The file itself now refuses an active license without an expiry.
  EXPECT_THROW(owner->sql().exec("UPDATE business_licenses SET expires_at = NULL WHERE id = 2"), std::exception);
}

// An installation upgraded while a payment was pending: revenue migration 0003 and the
// simulator's ledger both name the old charge 'payment-<id>', so it is still settled with
// that charge (issue 27 §1), and the ledger keeps it once.
TEST(RevenueMigration, APaymentPendingAcrossTheUpgradeIsSettledWithItsOldCharge) {
  testing::ModuleHarness h("revenue", table_manifest(), 1);
  auto& database = h.database;
  {
    testing::migrate_module(database, "revenue", 3);
    auto owner = database.open(db::Role::owner);
    owner->sql().exec(
        "INSERT INTO invoices (id, citizen_id, source_module, source_type, source_id, description, amount_cents, "
        "currency, status, created_at, updated_at) VALUES (1, 1, 'permits', 'application', '7', 'fee', 5000, 'USD', "
        "'open', 'x', 'x');"
        "INSERT INTO payments (id, invoice_id, citizen_id, idempotency_key, request_digest, amount_cents, currency, "
        "method_type, status, created_at, updated_at) VALUES (1, 1, 1, 'k', 'd', 5000, 'USD', 'card', 'pending', "
        "'x', 'x')");
  }
  const auto ledger_file = h.dir.path() / "payment-simulator.db";
  {
    SQLite::Database ledger(ledger_file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ledger.exec(
        "CREATE TABLE charges (payment_id INTEGER PRIMARY KEY, outcome TEXT NOT NULL, amount_cents INTEGER NOT NULL, "
        "currency TEXT NOT NULL, reason TEXT NOT NULL, refunded INTEGER NOT NULL DEFAULT 0, at TEXT NOT NULL "
        "DEFAULT 'x');"
        "INSERT INTO charges (payment_id, outcome, amount_cents, currency, reason) "
        "VALUES (1, 'approved', 5000, 'USD', '')");
  }
  testing::migrate_module(database, "revenue");
  auto provider = make_simulated_provider(ledger_file, db::Synchronous::normal);
  auto service = std::make_unique<RevenueService>(Settings{}, h.dependencies(), h.auth, *provider);
  service->start();  // settles what the last run left pending
  EXPECT_EQ(h.count("SELECT status = 'completed' AND processor_key = 'payment-1' FROM payments"), 1);
  EXPECT_EQ(h.count("SELECT status = 'paid' FROM invoices"), 1);
  service->stop();
  h.writer.stop();
  provider.reset();
  SQLite::Database ledger(ledger_file.string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) || ' ' || charge_key FROM charges").getString(), "1 payment-1");
}

}  // namespace
}  // namespace townhall::revenue
