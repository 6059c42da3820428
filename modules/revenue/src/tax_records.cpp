// Tax records and their bills: a record's tax due invoiced in instalments when it is
// recorded with a due date, or by the yearly run (POST /tax-bills) for many records.
#include <date/date.h>

#include <set>

#include "service_internal.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::revenue {

namespace asio = boost::asio;

namespace {

// The longest a first instalment may wait: ten years of days (as a report's range).
constexpr int kMaxDaysAhead = 3660;

Error bad_terms(std::string message) { return make_error(Errc::invalid_argument, std::move(message)); }

// "YYYY-MM-DD" exactly, a real calendar day within the years timestamps may name.
std::optional<date::year_month_day> parse_day(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  int parts[3] = {0, 0, 0};
  const std::size_t starts[3] = {0, 5, 8}, lengths[3] = {4, 2, 2};
  for (int i = 0; i < 3; ++i)
    for (std::size_t k = 0; k < lengths[i]; ++k) {
      char c = text[starts[i] + k];
      if (c < '0' || c > '9') return std::nullopt;
      parts[i] = parts[i] * 10 + (c - '0');
    }
  date::year_month_day day{date::year{parts[0]}, date::month{static_cast<unsigned>(parts[1])},
                           date::day{static_cast<unsigned>(parts[2])}};
  if (!day.ok() || parts[0] < utc::kMinYear || parts[0] > utc::kMaxYear) return std::nullopt;
  return day;
}

// The terms as a bill needs them: a real first due date, today or later (UTC) and within
// ten years, and 1-12 instalments.
Result<date::year_month_day> check_terms(const BillTerms& terms) {
  if (terms.instalments < 1 || terms.instalments > kMaxInstalments)
    return bad_terms("instalments must be between 1 and " + std::to_string(kMaxInstalments));
  auto first = parse_day(terms.due_date);
  if (!first) return bad_terms("due_date must be a date as YYYY-MM-DD");
  auto today = date::floor<date::days>(std::chrono::system_clock::now());
  if (date::sys_days(*first) < today)
    return bad_terms("due_date " + terms.due_date + " is in the past (today is " + utc_today() + ", UTC)");
  if ((date::sys_days(*first) - today).count() > kMaxDaysAhead)
    return bad_terms("due_date is at most " + std::to_string(kMaxDaysAhead) + " days ahead");
  return *first;
}

// n amounts summing to `total` exactly: equal shares, the first (total mod n) one cent more.
std::vector<std::int64_t> instalment_amounts(std::int64_t total, std::int64_t n) {
  std::vector<std::int64_t> amounts;
  for (std::int64_t i = 0; i < n; ++i) amounts.push_back(total / n + (i < total % n ? 1 : 0));
  return amounts;
}

// Monthly from `first`: the same day of each next month, or that month's last day when it
// is shorter (Jan 31, Feb 28, Mar 31), so every instalment falls in its own month.
std::vector<std::string> instalment_due_dates(date::year_month_day first, std::int64_t n) {
  std::vector<std::string> dates;
  const date::year_month start{first.year(), first.month()};
  for (std::int64_t i = 0; i < n; ++i) {
    auto month = start + date::months(i);
    auto last = date::year_month_day_last{month.year(), date::month_day_last{month.month()}}.day();
    date::year_month_day day{month.year(), month.month(), std::min(first.day(), last)};
    dates.push_back(date::format("%F", date::sys_days(day)));
  }
  return dates;
}

Error unsplittable(const store::TaxRecord& record, std::int64_t instalments) {
  return make_error(Errc::unprocessable, "the tax due of tax record " + std::to_string(record.id) + " (" +
                                             std::to_string(record.tax_due_cents) + ") cannot be split into " +
                                             std::to_string(instalments) + " instalments of at least 1");
}

// The record's tax due as invoices (instalments), each linked to it and announced
// (invoice.created), in the caller's transaction. Its source "<record id>.<instalment>"
// is the invoice's idempotency key: a record is never billed twice.
Result<std::vector<store::Invoice>> bill(db::Connection& service, const store::TaxRecord& record,
                                         const BillTerms& terms, date::year_month_day first,
                                         const std::string& correlation) {
  if (record.tax_due_cents < terms.instalments) return unsplittable(record, terms.instalments);
  auto amounts = instalment_amounts(record.tax_due_cents, terms.instalments);
  auto due_dates = instalment_due_dates(first, terms.instalments);
  std::vector<store::Invoice> invoices;
  for (std::int64_t i = 0; i < terms.instalments; ++i) {
    const auto number = std::to_string(i + 1);
    auto description = "Property tax " + std::to_string(record.tax_year) +
                       (terms.instalments > 1 ? ", instalment " + number + " of " + std::to_string(terms.instalments)
                                              : std::string()) +
                       " (tax record " + std::to_string(record.id) + ")";
    auto invoice =
        open_invoice(service, {"revenue", "tax_record", std::to_string(record.id) + "." + number}, record.citizen_id,
                     amounts[static_cast<std::size_t>(i)], record.currency, std::move(description), correlation, {},
                     InvoiceLink{due_dates[static_cast<std::size_t>(i)], record.id});
    if (!invoice) return make_error(Errc::conflict, "tax record " + std::to_string(record.id) + " was billed already");
    invoices.push_back(std::move(*invoice));
  }
  return invoices;
}

}  // namespace

std::string utc_today() { return date::format("%F", date::floor<date::days>(std::chrono::system_clock::now())); }

bool open_tax_record(db::Connection& service, store::TaxRecord& record, const std::string& correlation) {
  if (!store::insert_tax_record(service, record)) return false;
  append(service, events::kTaxRecordTopic, events::kTaxRecordOpened, "tax_record", record.id, 1,
         events::tax_record_snapshot(record), correlation);
  return true;
}

asio::awaitable<Result<BilledTaxRecord>> RevenueService::record_tax(CallContext context, NewTaxRecord input) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("revenue:manage")) co_return forbidden("needs permission revenue:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  std::optional<date::year_month_day> first_due;
  if (input.bill) {
    auto checked = check_terms(*input.bill);
    if (!checked) co_return checked.error();
    first_due = *checked;
  }
  auto citizen = deps_.readers.read([&](db::Connection& reader) -> Result<std::optional<store::CitizenRef>> {
    return store::find_citizen_ref(reader, input.citizen_id);
  });
  if (!citizen) co_return citizen.error();
  if (!*citizen)
    co_return make_error(Errc::unprocessable, "citizen " + std::to_string(input.citizen_id) + " is unknown");
  if (!(*citizen)->is_active)
    co_return make_error(Errc::unprocessable, "citizen " + std::to_string(input.citizen_id) + "'s account is closed");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<BilledTaxRecord> {
    BilledTaxRecord record;
    record.citizen_id = input.citizen_id;
    record.tax_year = input.tax_year;
    record.assessed_value_cents = input.assessed_value_cents;
    record.tax_due_cents = input.tax_due_cents;
    record.currency = settings_.currency;
    record.recorded_by = principal->id;
    record.created_at = utc::now();
    if (!open_tax_record(service, record, context.correlation_id))
      return make_error(Errc::conflict, "citizen " + std::to_string(input.citizen_id) + " has a tax record for " +
                                            std::to_string(input.tax_year) + " already");
    if (input.bill && record.tax_due_cents > 0) {
      auto invoices = bill(service, record, *input.bill, *first_due, context.correlation_id);
      if (!invoices) return invoices.error();  // rolls the record back too
      record.invoices = std::move(*invoices);
    }
    return record;
  });
}

asio::awaitable<Result<TaxBillRunOutcome>> RevenueService::bill_taxes(CallContext context, TaxBillRun run) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("revenue:manage")) co_return forbidden("needs permission revenue:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  if (run.tax_record_ids.empty() == run.citizen_ids.empty())
    co_return make_error(Errc::invalid_argument, "name either tax_record_ids or citizen_ids");
  if (run.tax_record_ids.size() + run.citizen_ids.size() > kMaxTaxBillRun)
    co_return make_error(Errc::invalid_argument,
                         "a run bills at most " + std::to_string(kMaxTaxBillRun) + " records; split the list");
  auto first_due = check_terms(run.terms);
  if (!first_due) co_return first_due.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<TaxBillRunOutcome> {
    TaxBillRunOutcome outcome;
    std::set<std::int64_t> named, seen;
    auto by_record = !run.tax_record_ids.empty();
    for (auto id : by_record ? run.tax_record_ids : run.citizen_ids) {
      if (!named.insert(id).second) continue;  // named twice: once is enough
      auto record = by_record ? store::find_tax_record(service, id, store::Scope::everything())
                              : store::find_tax_record_of(service, id, run.tax_year);
      if (!record || record->tax_year != run.tax_year) {
        outcome.not_found.push_back(id);
        continue;
      }
      if (!seen.insert(record->id).second) continue;
      if (record->tax_due_cents == 0) {
        outcome.nothing_due.push_back(record->id);
      } else if (!store::invoices_of_tax_record(service, record->id).empty()) {
        outcome.already_billed.push_back(record->id);
      } else {
        auto invoices = bill(service, *record, run.terms, *first_due, context.correlation_id);
        if (!invoices) return invoices.error();
        BilledTaxRecord billed{*record, std::move(*invoices)};
        outcome.billed.push_back(std::move(billed));
      }
    }
    return outcome;
  });
}

asio::awaitable<Result<TaxRecordView>> RevenueService::get_tax_record(CallContext context, std::int64_t id,
                                                                      bool include_national_id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) co_return scope.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  auto found = deps_.readers.read([&](db::Connection& reader) -> Result<TaxRecordView> {
    auto record = store::find_tax_record(reader, id, *scope);
    if (!record) return make_error(Errc::not_found, "no such tax record");
    TaxRecordView view;
    view.record = BilledTaxRecord{*record, store::invoices_of_tax_record(reader, id)};
    return view;
  });
  if (!found) co_return found.error();
  TaxRecordView view = std::move(*found);
  if (!include_national_id) co_return view;
  if (!context.principal || !context.principal->has("revenue:read"))
    co_return forbidden("only revenue staff may include the national id");
  // Read from its owner for this response only (audited there); never kept here, and no
  // stale copy to fall back on when auth cannot answer.
  auto national_id = co_await auth_.get_sensitive(context, view.record.citizen_id, "tax-record");
  if (!national_id) {
    auto code = national_id.error().code;
    if (code == Errc::unavailable || code == Errc::deadline_exceeded)
      co_return make_error(Errc::unavailable, "the national id cannot be read now: " + national_id.error().message, 5);
    if (code == Errc::not_found) co_return make_error(Errc::not_found, "the citizen of this tax record is gone");
    co_return national_id.error();
  }
  view.national_id = *national_id;
  view.national_id_included = true;
  co_return view;
}

}  // namespace townhall::revenue
