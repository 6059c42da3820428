#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "provider.hpp"
#include "settings.hpp"
#include "store.hpp"
#include "townhall/auth/api.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/consistency.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/service_kit.hpp"

namespace townhall::auth {
class CitizenRefTable;
}

namespace townhall::revenue {

using input::Listed;

struct PaymentRequest {
  std::int64_t invoice_id = 0;
  std::int64_t amount_cents = 0;
  std::optional<std::string> currency;  // when given, must be the invoice's
  std::string method_type;              // "card"
  std::string token;
};

// How a tax record's tax due is billed: `instalments` invoices (1-12) whose amounts sum to
// it exactly, the first due by `due_date` ("YYYY-MM-DD", UTC, today or later), each next
// one a calendar month later (the same day, or the month's last when it is shorter).
struct BillTerms {
  std::string due_date;
  std::int64_t instalments = 1;
};
inline constexpr std::int64_t kMaxInstalments = 12;
// The most records one yearly run bills (POST /tax-bills), in one transaction.
inline constexpr std::size_t kMaxTaxBillRun = 500;

struct NewTaxRecord {
  std::int64_t citizen_id = 0;
  std::int64_t tax_year = 0;
  std::int64_t assessed_value_cents = 0;
  std::int64_t tax_due_cents = 0;
  std::optional<BillTerms> bill;  // with a due date the record is billed at once
};

// A tax record and its bill: one invoice per instalment (none until billed).
struct BilledTaxRecord : store::TaxRecord {
  std::vector<store::Invoice> invoices;
};

struct TaxRecordView {
  BilledTaxRecord record;
  std::optional<std::string> national_id;  // read from auth for this response only
  bool national_id_included = false;
};

// The yearly run: the year's records of the citizens (or the records) named, billed.
struct TaxBillRun {
  std::int64_t tax_year = 0;
  std::vector<std::int64_t> tax_record_ids;
  std::vector<std::int64_t> citizen_ids;
  BillTerms terms;
};
struct TaxBillRunOutcome {
  std::vector<BilledTaxRecord> billed;       // billed by this run
  std::vector<std::int64_t> already_billed;  // tax record ids billed before (a run repeated)
  std::vector<std::int64_t> nothing_due;     // tax record ids whose tax due is 0
  std::vector<std::int64_t> not_found;       // ids given that name no record of the year
};

// A receipt: a payment that completed (refunded later or not) and what it paid for.
struct Receipt {
  store::Payment payment;
  store::Invoice invoice;
  std::optional<std::string> payer_name;  // from citizen_refs
};

// GET /reports/revenue: money received by month and source, net of refunds, and what
// open invoices still ask for (now).
struct RevenueByMonth {
  std::string month;   // "YYYY-MM"
  std::string source;  // permit_fee, license_fee, property_tax, booking, enrollment, <module>.<type>
  std::string currency;
  std::int64_t payments = 0, paid_cents = 0;
  std::int64_t refunds = 0, refunded_cents = 0;
};
struct RevenueReport {
  std::vector<RevenueByMonth> months;  // by month, source, currency
  std::vector<store::Outstanding> outstanding;
};

struct NewLicense {
  std::string business_name, activity, address;
};

enum class Decision { approve, reject };

// What the license job did.
struct LicenseSweep {
  std::int64_t expired = 0;  // active past their expiry
  std::int64_t lapsed = 0;   // approved, the fee unpaid past its due date
};

// The revenue module's behaviour, reachable without sockets: invoices opened by other
// modules' events, idempotent payments through a PaymentProvider (the charge outside any
// transaction: a pending row first, the outcome after), refunds, tax records and
// business licenses, and the handlers that keep citizen_refs.
// Crash points (ServiceDependencies::fault_hook): "revenue.after_provider_answer" between
// a charge's answer and the commit of its outcome.
class RevenueService : private ModuleService {
 public:
  RevenueService(Settings settings, ServiceDependencies dependencies, auth::Api& auth, PaymentProvider& provider);
  ~RevenueService();

  // Opens the service connection, resolves payments a crash left unresolved, opens the
  // gate and starts the reconciler, the license expiry job and the overdue invoice job.
  // Throws when the file cannot be used.
  void start();
  void stop();
  // `serve --demo`: a tax record and an approved business license with its open fee
  // invoice (approved_unpaid) for maria@demo.townhall, once.
  void seed_demo();
  const Settings& settings() const { return settings_; }

  // Invoices.
  Result<store::Invoice> get_invoice(const CallContext& context, std::int64_t id);
  Result<Listed<store::Invoice>> list_invoices(const CallContext& context, store::InvoiceFilter filter,
                                               input::Page page);
  Result<std::vector<store::Payment>> payments_of(const CallContext& context, std::int64_t invoice_id);

  // Payments. `replayed` says the key had been used with the same request before.
  struct PaymentOutcome {
    store::Payment payment;
    bool replayed = false;
    // The invoice paid, as the payment began (its source, which the answer shows, never
    // changes); empty for a replayed request.
    std::optional<store::Invoice> invoice = std::nullopt;
  };
  boost::asio::awaitable<Result<PaymentOutcome>> pay(CallContext context, PaymentRequest request,
                                                     std::string idempotency_key);

  // Tax records.
  // A record, billed at once when `input.bill` is given (revenue:manage).
  boost::asio::awaitable<Result<BilledTaxRecord>> record_tax(CallContext context, NewTaxRecord input);
  boost::asio::awaitable<Result<TaxRecordView>> get_tax_record(CallContext context, std::int64_t id,
                                                               bool include_national_id);
  // The yearly run (revenue:manage): bills every named record of the year not billed yet,
  // in one transaction; a record billed before is reported, never billed twice.
  boost::asio::awaitable<Result<TaxBillRunOutcome>> bill_taxes(CallContext context, TaxBillRun run);

  // Marks open invoices whose due date has passed overdue (the daily job; the service
  // itself or revenue:manage). How many it marked.
  boost::asio::awaitable<Result<std::int64_t>> mark_overdue(CallContext context);

  // A revenue clerk (revenue:manage) refunds a completed payment in full, saying why:
  // refund_pending at once (who and why kept on it), then the provider is asked (the
  // reconciler retries when it cannot answer now). A parks place's payment is refunded by
  // cancelling the place in parks (its staff decide the refund there): a conflict here.
  boost::asio::awaitable<Result<store::Payment>> refund_payment(CallContext context, std::int64_t payment_id,
                                                                std::string reason);

  // The receipt of a completed payment: its payer's or revenue staff's (another
  // citizen's payment is not_found); a payment that never completed is a conflict.
  Result<Receipt> receipt(const CallContext& context, std::int64_t payment_id);
  // Revenue staff (revenue:read): payments and refunds in [start, end) (RFC 3339 UTC).
  Result<RevenueReport> revenue_report(const CallContext& context, const std::string& start, const std::string& end);

  // Business licenses.
  boost::asio::awaitable<Result<store::BusinessLicense>> apply_for_license(CallContext context, NewLicense input);
  Result<store::BusinessLicense> get_license(const CallContext& context, std::int64_t id);
  Result<Listed<store::BusinessLicense>> list_licenses(const CallContext& context, input::Page page);
  boost::asio::awaitable<Result<store::BusinessLicense>> decide_license(CallContext context, std::int64_t id,
                                                                        Decision decision,
                                                                        std::optional<std::string> reason);
  boost::asio::awaitable<Result<store::BusinessLicense>> renew_license(CallContext context, std::int64_t id);
  // Expires active licenses past their expiry and lapses approved ones whose fee is
  // unpaid past its due date (the daily job; staff may run it now).
  boost::asio::awaitable<Result<LicenseSweep>> expire_licenses(CallContext context);

  // Drives every pending payment and refund to its outcome with the provider (at start,
  // on a timer, and when a handler asked for a refund). Returns how many it resolved.
  boost::asio::awaitable<std::size_t> reconcile();

  // Retries (same key, same request) that found their payment being charged and waited
  // for its outcome instead of touching it.
  std::uint64_t retries_waited() const { return retries_waited_; }

  std::vector<bus::Subscription> subscriptions();
  // citizen_refs: the fields this module keeps of auth's citizens (auth/citizen_refs.hpp).
  static const auth::CitizenRefTable& citizen_table();
  static bus::Outcome apply_citizen_event(const bus::Event& event, db::Connection& sync);
  bus::Outcome apply_application_event(const bus::Event& event, db::Connection& service);
  // A booking's or an enrollment's invoice (parks' PricedPlace contract).
  bus::Outcome apply_parks_event(const bus::Event& event, db::Connection& service);
  // citizen_refs for the consistency check (platform/consistency.hpp).
  std::vector<consistency::Cache> caches();

 private:
  struct Flight;  // a payment some coroutine of this process is resolving
  std::shared_ptr<Flight> claim(std::int64_t payment_id);
  void release(std::int64_t payment_id);
  std::shared_ptr<Flight> in_flight(std::int64_t payment_id);

  // The charge of a payment committed pending, then its outcome committed.
  boost::asio::awaitable<Result<store::Payment>> charge(const CallContext& context, store::Payment payment,
                                                        std::string token);
  // Settles a pending payment no one is charging (a crash, a lost answer) with the provider.
  boost::asio::awaitable<Result<store::Payment>> settle(store::Payment payment, const std::string& correlation);
  boost::asio::awaitable<Result<store::Payment>> refund(store::Payment payment, const std::string& correlation);
  boost::asio::awaitable<Result<store::Payment>> commit_outcome(std::int64_t payment_id, ProviderAnswer answer,
                                                                std::string correlation);
  void wake_reconciler();  // on the writer thread
  boost::asio::awaitable<void> reconcile_loop();
  boost::asio::awaitable<void> expiry_loop();
  boost::asio::awaitable<void> overdue_loop();

  Settings settings_;
  auth::Api& auth_;
  PaymentProvider& provider_;
  std::atomic<std::uint64_t> retries_waited_{0};
  std::mutex flights_mutex_;
  std::map<std::int64_t, std::shared_ptr<Flight>> flights_;
  // Background jobs on the writer's io_context (timers touched on the writer thread only).
  std::unique_ptr<boost::asio::steady_timer> reconcile_timer_, expiry_timer_, overdue_timer_;
  std::shared_ptr<Latch> reconcile_done_, expiry_done_, overdue_done_;
};

// The command that expires active licenses past their expiry (license.expired each) and
// lapses approved licenses whose fee is unpaid past its due date (license.lapsed, the fee
// invoice voided), in the caller's transaction: the daily job, the staff route and
// `townhall revenue expire-licenses` all run it.
LicenseSweep close_due_licenses(db::Connection& service, const std::string& correlation);

// The command that marks every open invoice due before `today` ("YYYY-MM-DD", UTC)
// overdue (invoice.overdue each), in the caller's transaction: the daily job and
// `townhall revenue mark-overdue` run it. How many it marked.
std::int64_t mark_overdue_invoices(db::Connection& service, const std::string& today, const std::string& correlation);

// Today's date in UTC, "YYYY-MM-DD": what due dates are compared with.
std::string utc_today();

// The status the API shows: an open invoice the overdue job marked is "overdue".
std::string shown_status(const store::Invoice& invoice);
nlohmann::json invoice_json(const store::Invoice& invoice);
nlohmann::json receipt_json(const Receipt& receipt);
nlohmann::json payment_json(const store::Payment& payment, const store::Invoice& invoice);
nlohmann::json license_json(const store::BusinessLicense& license);

}  // namespace townhall::revenue
