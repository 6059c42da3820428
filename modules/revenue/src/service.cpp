#include "service.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>

#include "townhall/auth/citizen_refs.hpp"
#include "townhall/auth/events.hpp"
#include "townhall/parks/events.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/money.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"
#include "townhall/revenue/invoicing.hpp"

namespace townhall::revenue {

namespace asio = boost::asio;
using json = nlohmann::json;

struct RevenueService::Flight {
  Latch resolved;
  std::atomic<bool> refund_after{false};  // its outcome asked for a refund: wake the reconciler on release
};

namespace {

Error forbidden(std::string message) { return make_error(Errc::forbidden, std::move(message)); }

// Which records a principal reads: a citizen their own, revenue staff all.
Result<store::Scope> read_scope(const Principal* principal) {
  if (!principal) return store::Scope::everything();  // a module calling as itself
  if (principal->is_citizen()) return store::Scope{principal->id};
  if (principal->has("revenue:read")) return store::Scope::everything();
  return forbidden("needs permission revenue:read");
}

// What a payment request is, for recognising a reused Idempotency-Key: a BLAKE2b digest
// of its fields in a fixed order (the token never stored as such).
std::string request_digest(const PaymentRequest& request) {
  std::string canonical = json{{"invoice_id", request.invoice_id},
                               {"amount_cents", request.amount_cents},
                               {"currency", nullable(request.currency)},
                               {"method", {{"type", request.method_type}, {"token", request.token}}}}
                              .dump();
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(),
                     nullptr, 0);
  char hex[sizeof digest * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

// An idempotency key for the card processor: 128 random bits, so no restore of revenue.db,
// reinstall or other installation ever offers it a key it has seen (issue 27 §1).
std::string processor_key() {
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof bytes);
  char hex[sizeof bytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return hex;
}

void append(db::Connection& service, std::string_view topic, std::string_view type, std::string_view aggregate,
            std::int64_t id, std::int64_t version, json snapshot, const std::string& correlation,
            const std::string& causation = {}) {
  bus::append(service, bus::aggregate_event(topic, type, aggregate, id, version,
                                            events::event_data(std::move(snapshot)), correlation, causation));
}

// The source an invoice was opened for.
struct Source {
  std::string module, type, id;
};

// Opens an invoice for `source` unless it has one (a duplicate or replayed event): the
// invoice and invoice.created commit together. nullopt when it existed.
std::optional<store::Invoice> open_invoice(db::Connection& service, const Source& source, std::int64_t citizen_id,
                                           std::int64_t amount_cents, const std::string& currency,
                                           std::string description, const std::string& correlation,
                                           const std::string& causation) {
  store::Invoice invoice;
  invoice.citizen_id = citizen_id;
  invoice.source_module = source.module;
  invoice.source_type = source.type;
  invoice.source_id = source.id;
  invoice.description = std::move(description);
  invoice.amount_cents = amount_cents;
  invoice.currency = currency;
  invoice.status = "open";
  invoice.created_at = invoice.updated_at = utc::now();
  if (!store::insert_invoice(service, invoice)) return std::nullopt;
  append(service, events::kInvoiceTopic, events::kInvoiceCreated, "invoice", invoice.id, 1, invoice_json(invoice),
         correlation, causation);
  spdlog::info("revenue: invoice {} opened for {} {} {} ({} {})", invoice.id, source.module, source.type, source.id,
               amount_cents, currency);
  return invoice;
}

// A license's invoices are keyed by their term: "<license id>.<term>" (the invoice's
// idempotency key; a paid invoice finds its license by the license's links, not by this).
Source license_source(std::int64_t license_id, std::int64_t term) {
  return {"revenue", "business_license", std::to_string(license_id) + "." + std::to_string(term)};
}

std::string days_after(std::chrono::system_clock::time_point from, int days) {
  return utc::format(from + std::chrono::hours(24) * days);
}

// Amounts and currencies of other modules' events: a payload this module can never
// invoice is a permanent error (dead letter), not a retry.
void check_money(std::int64_t amount_cents, const std::string& currency, const bus::Event& event) {
  if (!invoiceable(amount_cents, currency))
    throw bus::PermanentError(std::string(event.event_type) + " asks for " + std::to_string(amount_cents) + " " +
                              currency + ": not an amount revenue can invoice");
}

// Approval: the license waits for its first fee (approved_unpaid), invoiced now and due
// `license_fee_due_days` from now; it becomes active only when that invoice is paid.
Result<store::BusinessLicense> approve_license(db::Connection& service, store::BusinessLicense& license,
                                               std::chrono::system_clock::time_point now, const Settings& settings,
                                               const std::string& correlation) {
  auto invoice = open_invoice(
      service, license_source(license.id, 1), license.citizen_id, settings.license_fee_cents, settings.currency,
      "Business license fee: " + license.business_name + " (license " + std::to_string(license.id) + ")", correlation,
      {});
  if (!invoice) return make_error(Errc::conflict, "the fee of this license was invoiced already");
  license.status = "approved_unpaid";
  license.term = 0;
  license.expires_at.reset();
  license.fee_invoice_id = invoice->id;
  license.fee_due_at = days_after(now, settings.license_fee_due_days);
  license.updated_at = utc::format(now);
  license.event_version += 1;
  store::update_license(service, license);
  append(service, events::kLicenseTopic, events::kLicenseApproved, "business_license", license.id,
         license.event_version, license_json(license), correlation);
  return license;
}

// A license's fee invoice was paid (in the payment's transaction): the first term's fee
// activates an approved license, its term starting now; a renewal's moves the expiry one
// term on from the later of now and the old expiry.
void license_fee_paid(db::Connection& service, const store::Invoice& invoice, const Settings& settings,
                      const std::string& correlation) {
  auto license = store::find_license_of_invoice(service, invoice.id);
  if (!license) return;  // not a license's fee
  auto now = std::chrono::system_clock::now();
  std::string_view event;
  if (license->status == "approved_unpaid" && license->fee_invoice_id == invoice.id) {
    license->status = "active";
    license->term = 1;
    license->expires_at = days_after(now, settings.license_term_days);
    event = events::kLicenseActivated;
  } else if (license->renewal_invoice_id == invoice.id && license->status != "approved_unpaid") {
    auto base = now;
    if (license->expires_at)
      if (auto expiry = utc::parse(*license->expires_at); expiry && *expiry > base) base = *expiry;
    license->term += 1;
    license->expires_at = days_after(base, settings.license_term_days);
    license->status = "active";
    license->renewal_invoice_id.reset();
    event = events::kLicenseRenewed;
  } else {
    spdlog::warn("revenue: invoice {} paid for business license {}, which does not wait for it ({})", invoice.id,
                 license->id, license->status);
    return;
  }
  license->event_version += 1;
  license->updated_at = utc::format(now);
  store::update_license(service, *license);
  append(service, events::kLicenseTopic, event, "business_license", license->id, license->event_version,
         license_json(*license), correlation);
}

}  // namespace

json invoice_json(const store::Invoice& i) {
  return {{"id", i.id},
          {"citizen_id", i.citizen_id},
          {"source", {{"module", i.source_module}, {"type", i.source_type}, {"id", i.source_id}}},
          {"description", i.description},
          {"amount_cents", i.amount_cents},
          {"balance_cents", i.status == "open" ? i.amount_cents : 0},
          {"currency", i.currency},
          {"status", i.status},
          {"created_at", i.created_at},
          {"updated_at", i.updated_at},
          {"paid_at", nullable(i.paid_at)},
          {"closed_at", nullable(i.closed_at)}};
}

// Also the snapshot of gov.revenue.payment events: the invoice's source travels with it
// (docs/design-notes.md, deviation 16), so permits and parks find what was paid for.
json payment_json(const store::Payment& p, const store::Invoice& invoice) {
  return events::payment_json({p.id, p.invoice_id, p.citizen_id, p.amount_cents, p.currency, p.method_type, p.status,
                               p.failure_reason, p.provider_reference, invoice.source_module, invoice.source_type,
                               invoice.source_id, p.created_at, p.completed_at, p.refunded_at});
}

json license_json(const store::BusinessLicense& l) {
  return {{"id", l.id},
          {"citizen_id", l.citizen_id},
          {"business_name", l.business_name},
          {"activity", l.activity},
          {"address", l.address},
          {"status", l.status},
          {"term", l.term},
          {"expires_at", nullable(l.expires_at)},
          {"fee_invoice_id", nullable(l.fee_invoice_id)},
          {"fee_due_at", nullable(l.fee_due_at)},
          {"renewal_invoice_id", nullable(l.renewal_invoice_id)},
          {"decision_reason", nullable(l.decision_reason)},
          {"created_at", l.created_at},
          {"updated_at", l.updated_at}};
}

RevenueService::RevenueService(Settings settings, Dependencies dependencies)
    : settings_(std::move(settings)),
      deps_(std::move(dependencies)),
      writes_(deps_.database, deps_.writer, deps_.events_committed) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

RevenueService::~RevenueService() { stop(); }

void RevenueService::start() {
  writes_.open();
  // What a crash left between a charge and its outcome is settled before anyone pays.
  auto resolved = run_blocking(reconcile());
  if (resolved > 0) spdlog::info("revenue: {} payment(s) left unresolved by the last run settled", resolved);
  auto& io = deps_.writer.context();
  reconcile_timer_ = std::make_unique<asio::steady_timer>(io);
  expiry_timer_ = std::make_unique<asio::steady_timer>(io);
  reconcile_done_ = std::make_shared<Latch>();
  expiry_done_ = std::make_shared<Latch>();
  running_ = true;
  asio::co_spawn(io, reconcile_loop(), asio::detached);
  asio::co_spawn(io, expiry_loop(), asio::detached);
}

void RevenueService::stop() {
  if (running_.exchange(false)) {
    deps_.writer.post([this] {
      reconcile_timer_->cancel();
      expiry_timer_->cancel();
    });
    reconcile_done_->wait_blocking();
    expiry_done_->wait_blocking();
    deps_.writer.call([this] {
      reconcile_timer_.reset();
      expiry_timer_.reset();
    });
  }
  writes_.close();  // also after a start that failed half way
}

void RevenueService::seed_demo() {
  auto citizens = run_blocking(
      deps_.auth.citizens_since(CallContext::as_service("revenue", "demo-seed", std::chrono::seconds(30)), 0, 100));
  if (!citizens) throw std::runtime_error("revenue demo seed: auth answered: " + citizens.error().message);
  const auth::Citizen* maria = nullptr;
  for (const auto& citizen : citizens->citizens)
    if (citizen.email == "maria@demo.townhall") maria = &citizen;
  if (!maria) {
    spdlog::warn("revenue: no demo citizen maria@demo.townhall in auth; no revenue demo data");
    return;
  }
  auto seeded = writes_.call([&](db::Connection& service) -> Result<bool> {
    store::TaxRecord record{0, maria->id, 2025, 32'500'000, 406'250, settings_.currency, 0, utc::now()};
    if (!store::insert_tax_record(service, record)) return false;  // seeded by an earlier start
    // Applied and approved as staff would: its fee invoice open, due in fee_due_days.
    auto now = std::chrono::system_clock::now();
    store::BusinessLicense license;
    license.citizen_id = maria->id;
    license.business_name = "Garcia Bakery";
    license.activity = "bakery and cafe";
    license.address = "12 Elm Street";
    license.status = "applied";
    license.created_at = license.updated_at = utc::format(now);
    store::insert_license(service, license);
    append(service, events::kLicenseTopic, events::kLicenseApplied, "business_license", license.id, 1,
           license_json(license), "demo-seed");
    if (auto approved = approve_license(service, license, now, settings_, "demo-seed"); !approved)
      return approved.error();
    return true;
  });
  if (!seeded) throw std::runtime_error("revenue demo seed failed: " + seeded.error().message);
  if (*seeded) spdlog::info("revenue: demo data seeded (a tax record, an approved license and its open fee invoice)");
}

Result<Unit> RevenueService::usable() const {
  if (!running_) return make_error(Errc::unavailable, "the revenue module is unavailable");
  return Unit{};
}

// --- in-flight payments ----------------------------------------------------------------

std::shared_ptr<RevenueService::Flight> RevenueService::claim(std::int64_t payment_id) {
  std::lock_guard lock(flights_mutex_);
  auto [it, inserted] = flights_.try_emplace(payment_id, nullptr);
  if (!inserted) return nullptr;
  it->second = std::make_shared<Flight>();
  return it->second;
}

void RevenueService::release(std::int64_t payment_id) {
  std::shared_ptr<Flight> flight;
  {
    std::lock_guard lock(flights_mutex_);
    auto it = flights_.find(payment_id);
    if (it == flights_.end()) return;
    flight = std::move(it->second);
    flights_.erase(it);
  }
  flight->resolved.set();
  // The reconciler skips payments in flight; one that ended refund_pending is its job now.
  if (flight->refund_after) wake_reconciler();
}

std::shared_ptr<RevenueService::Flight> RevenueService::in_flight(std::int64_t payment_id) {
  std::lock_guard lock(flights_mutex_);
  auto it = flights_.find(payment_id);
  return it == flights_.end() ? nullptr : it->second;
}

namespace {
// Releases a claimed payment however the coroutine leaves.
struct Released {
  std::function<void()> release;
  ~Released() { release(); }
};
}  // namespace

// --- invoices --------------------------------------------------------------------------

Result<store::Invoice> RevenueService::get_invoice(const CallContext& context, std::int64_t id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<store::Invoice> {
    auto invoice = store::find_invoice(reader, id, *scope);
    if (!invoice) return make_error(Errc::not_found, "no such invoice");
    return *invoice;
  });
}

Result<Listed<store::Invoice>> RevenueService::list_invoices(const CallContext& context, store::InvoiceFilter filter,
                                                             input::Page page) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<Listed<store::Invoice>> {
    Listed<store::Invoice> out;
    out.page = page;
    out.items = store::list_invoices(reader, *scope, filter, page.offset(), page.size, out.total);
    return out;
  });
}

Result<std::vector<store::Payment>> RevenueService::payments_of(const CallContext& context, std::int64_t invoice_id) {
  auto invoice = get_invoice(context, invoice_id);
  if (!invoice) return invoice.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<store::Payment>> {
    return store::payments_of_invoice(reader, invoice_id);
  });
}

// --- payments --------------------------------------------------------------------------

asio::awaitable<Result<RevenueService::PaymentOutcome>> RevenueService::pay(CallContext context, PaymentRequest request,
                                                                            std::string idempotency_key) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("revenue:pay"))
    co_return forbidden("only citizens pay their own invoices");
  if (auto ok = usable(); !ok) co_return ok.error();
  const auto digest = request_digest(request);
  std::optional<std::int64_t> claimed;
  auto begun = co_await writes_.run([&](db::Connection& service) -> Result<PaymentOutcome> {
    if (auto existing = store::find_payment_by_key(service, principal->id, idempotency_key)) {
      if (existing->request_digest != digest)
        return make_error(Errc::unprocessable,
                          "this Idempotency-Key was used for a different payment request; use a new key");
      return PaymentOutcome{*existing, true};
    }
    auto invoice = store::find_invoice(service, request.invoice_id, store::Scope{principal->id});
    if (!invoice) return make_error(Errc::not_found, "no such invoice");
    if (invoice->status != "open")
      return make_error(Errc::conflict, "invoice " + std::to_string(invoice->id) + " is " + invoice->status +
                                            "; only open invoices can be paid");
    if (auto license = store::find_license_of_invoice(service, invoice->id);
        license && license->fee_invoice_id == invoice->id && license->status == "approved_unpaid" &&
        license->fee_due_at && *license->fee_due_at < utc::now())
      return make_error(Errc::conflict, "the fee of business license " + std::to_string(license->id) + " was due by " +
                                            *license->fee_due_at + "; the license has lapsed");
    if (request.currency && *request.currency != invoice->currency)
      return make_error(Errc::unprocessable, "currency must be the invoice's (" + invoice->currency + ")");
    if (request.amount_cents != invoice->amount_cents)
      return make_error(Errc::unprocessable, "amount_cents must equal the open balance of invoice " +
                                                 std::to_string(invoice->id) + " (" +
                                                 std::to_string(invoice->amount_cents) + ")");
    if (auto live = store::find_live_payment(service, invoice->id))
      return make_error(Errc::conflict,
                        "payment " + std::to_string(live->id) + " of invoice " + std::to_string(invoice->id) +
                            " is in progress; wait for its outcome",
                        1);
    store::Payment payment;
    payment.invoice_id = invoice->id;
    payment.citizen_id = principal->id;
    payment.idempotency_key = idempotency_key;
    payment.request_digest = digest;
    payment.processor_key = processor_key();
    payment.amount_cents = request.amount_cents;
    payment.currency = invoice->currency;
    payment.method_type = request.method_type;
    payment.status = "pending";
    payment.created_at = payment.updated_at = utc::now();
    store::insert_payment(service, payment);
    // Claimed before the commit: a retry with the same key, serialised after this on the
    // writer, finds it in flight and waits instead of settling it.
    claim(payment.id);
    claimed = payment.id;
    return PaymentOutcome{payment, false};
  });
  if (!begun) {
    if (claimed) release(*claimed);  // the commit failed: nothing to resolve
    co_return begun.error();
  }
  if (!begun->replayed) {
    Released guard{[this, id = begun->payment.id] { release(id); }};
    auto charged = co_await charge(context, begun->payment, std::move(request.token));
    if (!charged) co_return charged.error();
    co_return PaymentOutcome{*charged, false};
  }
  // The same request again: its outcome, once whoever resolves it is done.
  auto payment = begun->payment;
  if (payment.status == "pending") {
    if (auto flight = in_flight(payment.id)) {
      ++retries_waited_;
      co_await flight->resolved.wait();
    } else {
      auto settled = co_await settle(payment, context.correlation_id);
      if (!settled) co_return settled.error();
    }
    auto reread = deps_.readers.read(
        [&](db::Connection& reader) -> Result<store::Payment> { return *store::find_payment(reader, payment.id); });
    if (!reread) co_return reread.error();
    payment = *reread;
  }
  co_return PaymentOutcome{payment, true};
}

asio::awaitable<Result<store::Payment>> RevenueService::charge(const CallContext& context, store::Payment payment,
                                                               std::string token) {
  auto deadline = std::chrono::steady_clock::now() + settings_.provider_timeout;
  // A named argument: GCC 12 may destroy a braced temporary of a co_await twice.
  Charge request{payment.processor_key, payment.amount_cents, payment.currency, std::move(token)};
  auto answer = co_await deps_.provider.charge(std::move(request), deadline);
  if (!answer && answer.error().code == Errc::deadline_exceeded) {
    // Unknown outcome: settling closes the charge at the provider, so it cannot land
    // later, and tells whether it had.
    spdlog::warn("revenue: payment {}: the provider did not answer within {} ms; settling it", payment.id,
                 settings_.provider_timeout.count());
    answer = co_await deps_.provider.settle(payment.processor_key);
    if (answer && answer->status == ProviderAnswer::Status::declined)
      answer->reason = "the payment provider did not answer in time";
  }
  if (!answer) {
    spdlog::error("revenue: payment {} left pending: {}", payment.id, answer.error().message);
    co_return payment;  // the reconciler settles it
  }
  if (deps_.fault_hook) deps_.fault_hook("revenue.after_provider_answer");  // crash tests kill -9 here
  co_return co_await commit_outcome(payment.id, *answer, context.correlation_id);
}

asio::awaitable<Result<store::Payment>> RevenueService::settle(store::Payment payment, const std::string& correlation) {
  if (!claim(payment.id)) co_return payment;  // someone else is resolving it
  Released guard{[this, id = payment.id] { release(id); }};
  auto answer = co_await deps_.provider.settle(payment.processor_key);
  if (!answer) co_return answer.error();
  spdlog::info("revenue: pending payment {} settled with the provider: {}", payment.id,
               answer->status == ProviderAnswer::Status::approved ? "charged" : "not charged");
  co_return co_await commit_outcome(payment.id, *answer, correlation);
}

asio::awaitable<Result<store::Payment>> RevenueService::commit_outcome(std::int64_t payment_id, ProviderAnswer answer,
                                                                       std::string correlation) {
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Payment> {
    auto payment = store::find_payment(service, payment_id);
    if (!payment) return make_error(Errc::internal, "payment " + std::to_string(payment_id) + " vanished");
    if (payment->status != "pending") return *payment;  // resolved already
    auto invoice = *store::find_invoice(service, payment->invoice_id, store::Scope::everything());
    auto now = utc::now();
    payment->event_version += 1;
    payment->updated_at = now;
    payment->provider_reference = answer.reference;
    if (answer.status == ProviderAnswer::Status::declined) {
      payment->status = "failed";
      payment->failure_reason = answer.reason;
      store::update_payment(service, *payment);
      append(service, events::kPaymentTopic, events::kPaymentFailed, "payment", payment->id, payment->event_version,
             payment_json(*payment, invoice), correlation);
      spdlog::info("revenue: payment {} of invoice {} failed: {}", payment->id, invoice.id, answer.reason);
      return *payment;
    }
    payment->status = "completed";
    payment->completed_at = now;
    if (invoice.status == "open") {
      invoice.status = "paid";
      invoice.paid_at = now;
      invoice.updated_at = now;
      invoice.event_version += 1;
      store::update_invoice(service, invoice);
      // A license's fee: the first activates it, a renewal's moves its expiry on, in the
      // transaction that records the payment.
      license_fee_paid(service, invoice, settings_, correlation);
    } else {
      // The invoice was cancelled while the charge ran: the money goes back, by the
      // reconciler once whoever holds this payment lets go of it.
      payment->status = "refund_pending";
      payment->refund_key = processor_key();
      if (auto flight = in_flight(payment->id))
        flight->refund_after = true;
      else
        wake_reconciler();
      spdlog::warn("revenue: payment {} completed for {} invoice {}; refunding it", payment->id, invoice.status,
                   invoice.id);
    }
    store::update_payment(service, *payment);
    append(service, events::kPaymentTopic, events::kPaymentCompleted, "payment", payment->id, payment->event_version,
           payment_json(*payment, invoice), correlation);
    spdlog::info("revenue: payment {} of invoice {} completed ({} {})", payment->id, invoice.id, payment->amount_cents,
                 payment->currency);
    return *payment;
  });
}

asio::awaitable<Result<store::Payment>> RevenueService::refund(store::Payment payment, const std::string& correlation) {
  if (!claim(payment.id)) co_return payment;
  Released guard{[this, id = payment.id] { release(id); }};
  if (!payment.refund_key)
    co_return make_error(Errc::internal, "payment " + std::to_string(payment.id) + " has no refund key");
  auto answer = co_await deps_.provider.refund(payment.processor_key, *payment.refund_key);
  if (!answer) co_return answer.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::Payment> {
    auto current = store::find_payment(service, payment.id);
    if (!current) return make_error(Errc::internal, "payment " + std::to_string(payment.id) + " vanished");
    if (current->status != "refund_pending") return *current;
    auto invoice = *store::find_invoice(service, current->invoice_id, store::Scope::everything());
    auto now = utc::now();
    current->status = "refunded";
    current->refunded_at = now;
    current->updated_at = now;
    current->event_version += 1;
    store::update_payment(service, *current);
    if (invoice.status == "paid") {
      invoice.status = "refunded";
      invoice.closed_at = now;
      invoice.updated_at = now;
      invoice.event_version += 1;
      store::update_invoice(service, invoice);
    }
    append(service, events::kPaymentTopic, events::kPaymentRefunded, "payment", current->id, current->event_version,
           payment_json(*current, invoice), correlation);
    spdlog::info("revenue: payment {} of invoice {} refunded", current->id, invoice.id);
    return *current;
  });
}

asio::awaitable<std::size_t> RevenueService::reconcile() {
  auto unresolved = deps_.readers.read([&](db::Connection& reader) -> Result<std::vector<store::Payment>> {
    return store::unresolved_payments(reader);
  });
  if (!unresolved) co_return 0;
  std::size_t done = 0;
  for (const auto& payment : *unresolved) {
    if (in_flight(payment.id)) continue;  // a request is charging it right now
    // Not a conditional expression: GCC 12 miscompiles co_await inside ?: (double destruction).
    Result<store::Payment> resolved;
    if (payment.status == "pending")
      resolved = co_await settle(payment, "reconcile");
    else
      resolved = co_await refund(payment, "reconcile");
    if (!resolved) {
      spdlog::warn("revenue: payment {} ({}) still unresolved: {}", payment.id, payment.status,
                   resolved.error().message);
    } else if (resolved->status != payment.status) {
      ++done;
    }
  }
  co_return done;
}

void RevenueService::wake_reconciler() {
  // After the current writer task (the transaction that asked) has committed.
  deps_.writer.post([this] {
    if (reconcile_timer_) reconcile_timer_->cancel();
  });
}

asio::awaitable<void> RevenueService::reconcile_loop() {
  auto done = reconcile_done_;
  while (running_) {
    try {
      co_await reconcile();
    } catch (const std::exception& error) {
      spdlog::error("revenue: reconciling payments failed: {}", error.what());
    }
    if (!running_) break;
    reconcile_timer_->expires_after(settings_.reconcile_interval);
    co_await reconcile_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  done->set();
}

asio::awaitable<void> RevenueService::expiry_loop() {
  auto done = expiry_done_;
  while (running_) {
    auto expired = co_await expire_licenses(CallContext::as_service("revenue", "license-expiry"));
    if (!expired) spdlog::warn("revenue: license expiry job: {}", expired.error().message);
    if (!running_) break;
    expiry_timer_->expires_after(settings_.license_expiry_interval);
    co_await expiry_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  done->set();
}

// --- tax records -----------------------------------------------------------------------

asio::awaitable<Result<store::TaxRecord>> RevenueService::record_tax(CallContext context, NewTaxRecord input) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("revenue:manage")) co_return forbidden("needs permission revenue:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto citizen = deps_.readers.read([&](db::Connection& reader) -> Result<std::optional<store::CitizenRef>> {
    return store::find_citizen_ref(reader, input.citizen_id);
  });
  if (!citizen) co_return citizen.error();
  if (!*citizen)
    co_return make_error(Errc::unprocessable, "citizen " + std::to_string(input.citizen_id) + " is unknown");
  if (!(*citizen)->is_active)
    co_return make_error(Errc::unprocessable, "citizen " + std::to_string(input.citizen_id) + "'s account is closed");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::TaxRecord> {
    store::TaxRecord record;
    record.citizen_id = input.citizen_id;
    record.tax_year = input.tax_year;
    record.assessed_value_cents = input.assessed_value_cents;
    record.tax_due_cents = input.tax_due_cents;
    record.currency = settings_.currency;
    record.recorded_by = principal->id;
    record.created_at = utc::now();
    if (!store::insert_tax_record(service, record))
      return make_error(Errc::conflict, "citizen " + std::to_string(input.citizen_id) + " has a tax record for " +
                                            std::to_string(input.tax_year) + " already");
    return record;
  });
}

asio::awaitable<Result<TaxRecordView>> RevenueService::get_tax_record(CallContext context, std::int64_t id,
                                                                      bool include_national_id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) co_return scope.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  auto record = deps_.readers.read([&](db::Connection& reader) -> Result<store::TaxRecord> {
    auto found = store::find_tax_record(reader, id, *scope);
    if (!found) return make_error(Errc::not_found, "no such tax record");
    return *found;
  });
  if (!record) co_return record.error();
  TaxRecordView view{*record, std::nullopt, false};
  if (!include_national_id) co_return view;
  if (!context.principal || !context.principal->has("revenue:read"))
    co_return forbidden("only revenue staff may include the national id");
  // Read from its owner for this response only (audited there); never kept here, and no
  // stale copy to fall back on when auth cannot answer.
  auto national_id = co_await deps_.auth.get_sensitive(context, record->citizen_id, "tax-record");
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

// --- business licenses -----------------------------------------------------------------

asio::awaitable<Result<store::BusinessLicense>> RevenueService::apply_for_license(CallContext context,
                                                                                  NewLicense input) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("revenue:apply"))
    co_return forbidden("only citizens apply for business licenses");
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::BusinessLicense> {
    store::BusinessLicense license;
    license.citizen_id = principal->id;
    license.business_name = input.business_name;
    license.activity = input.activity;
    license.address = input.address;
    license.status = "applied";
    license.created_at = license.updated_at = utc::now();
    store::insert_license(service, license);
    append(service, events::kLicenseTopic, events::kLicenseApplied, "business_license", license.id, 1,
           license_json(license), context.correlation_id);
    return license;
  });
}

Result<store::BusinessLicense> RevenueService::get_license(const CallContext& context, std::int64_t id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<store::BusinessLicense> {
    auto license = store::find_license(reader, id, *scope);
    if (!license) return make_error(Errc::not_found, "no such business license");
    return *license;
  });
}

Result<Listed<store::BusinessLicense>> RevenueService::list_licenses(const CallContext& context, input::Page page) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  if (auto ok = usable(); !ok) return ok.error();
  return deps_.readers.read([&](db::Connection& reader) -> Result<Listed<store::BusinessLicense>> {
    Listed<store::BusinessLicense> out;
    out.page = page;
    out.items = store::list_licenses(reader, *scope, page.offset(), page.size, out.total);
    return out;
  });
}

asio::awaitable<Result<store::BusinessLicense>> RevenueService::decide_license(CallContext context, std::int64_t id,
                                                                               Decision decision,
                                                                               std::optional<std::string> reason) {
  if (auto current = get_license(context, id); !current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("revenue:manage")) co_return forbidden("needs permission revenue:manage");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::BusinessLicense> {
    auto license = store::find_license(service, id, store::Scope::everything());
    if (!license) return make_error(Errc::not_found, "no such business license");
    if (license->status != "applied")
      return make_error(Errc::conflict, "business license " + std::to_string(id) + " is " + license->status +
                                            "; only applied licenses can be decided");
    auto now = std::chrono::system_clock::now();
    license->decided_by = principal->id;
    license->decision_reason = reason;
    if (decision == Decision::approve)
      return approve_license(service, *license, now, settings_, context.correlation_id);
    license->status = "rejected";
    license->updated_at = utc::format(now);
    license->event_version += 1;
    store::update_license(service, *license);
    append(service, events::kLicenseTopic, events::kLicenseRejected, "business_license", id, license->event_version,
           license_json(*license), context.correlation_id);
    return *license;
  });
}

asio::awaitable<Result<store::BusinessLicense>> RevenueService::renew_license(CallContext context, std::int64_t id) {
  if (auto current = get_license(context, id); !current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !(principal->has("revenue:manage") || (principal->is_citizen() && principal->has("revenue:apply"))))
    co_return forbidden("needs permission revenue:manage, or to be the license holder");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::BusinessLicense> {
    auto license = store::find_license(service, id, store::Scope::everything());
    if (!license) return make_error(Errc::not_found, "no such business license");
    if (license->status != "active" && license->status != "expired")
      return make_error(Errc::conflict, "business license " + std::to_string(id) + " is " + license->status +
                                            "; only active or expired licenses can be renewed");
    // Renewing buys the next term: the current one must have been paid for.
    auto current_fee =
        store::find_invoice_by_source(service, "revenue", "business_license", license_source(id, license->term).id);
    if (license->term < 1 || !current_fee || current_fee->status != "paid")
      return make_error(Errc::conflict, "the fee of business license " + std::to_string(id) + "'s term " +
                                            std::to_string(license->term) + " is not paid; pay it before renewing");
    if (license->renewal_invoice_id)
      if (auto open = store::find_invoice(service, *license->renewal_invoice_id, store::Scope::everything());
          open && open->status == "open")
        return make_error(Errc::conflict, "renewal invoice " + std::to_string(open->id) + " is open; pay it");
    auto invoice = open_invoice(service, license_source(id, license->term + 1), license->citizen_id,
                                settings_.license_fee_cents, settings_.currency,
                                "Business license renewal: " + license->business_name + " (license " +
                                    std::to_string(id) + ", term " + std::to_string(license->term + 1) + ")",
                                context.correlation_id, {});
    if (!invoice) return make_error(Errc::conflict, "the renewal of this term was invoiced already");
    license->renewal_invoice_id = invoice->id;
    license->updated_at = utc::now();
    store::update_license(service, *license);
    return *license;
  });
}

asio::awaitable<Result<LicenseSweep>> RevenueService::expire_licenses(CallContext context) {
  if (!context.is_service() && (!context.principal || !context.principal->has("revenue:manage")))
    co_return forbidden("needs permission revenue:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<LicenseSweep> {
    return close_due_licenses(service, context.correlation_id);
  });
}

LicenseSweep close_due_licenses(db::Connection& service, const std::string& correlation) {
  LicenseSweep sweep;
  auto now = utc::now();
  for (auto& license : store::expired_licenses(service, now, 10000)) {
    license.status = "expired";
    license.updated_at = now;
    license.event_version += 1;
    store::update_license(service, license);
    append(service, events::kLicenseTopic, events::kLicenseExpired, "business_license", license.id,
           license.event_version, license_json(license), correlation);
    ++sweep.expired;
  }
  for (auto& license : store::unpaid_past_due(service, now, 10000)) {
    auto invoice = store::find_invoice(service, *license.fee_invoice_id, store::Scope::everything());
    // A payment of the fee being charged right now decides: paid, the license is active;
    // failed, the next run lapses it.
    if (invoice && store::find_live_payment(service, invoice->id)) continue;
    if (invoice && invoice->status == "open") {
      invoice->status = "voided";
      invoice->closed_at = now;
      invoice->updated_at = now;
      invoice->event_version += 1;
      store::update_invoice(service, *invoice);
      append(service, events::kInvoiceTopic, events::kInvoiceVoided, "invoice", invoice->id, invoice->event_version,
             invoice_json(*invoice), correlation);
    }
    license.status = "lapsed";
    license.updated_at = now;
    license.event_version += 1;
    store::update_license(service, license);
    append(service, events::kLicenseTopic, events::kLicenseLapsed, "business_license", license.id,
           license.event_version, license_json(license), correlation);
    ++sweep.lapsed;
  }
  if (sweep.expired > 0) spdlog::info("revenue: {} business license(s) expired", sweep.expired);
  if (sweep.lapsed > 0) spdlog::info("revenue: {} approved business license(s) lapsed unpaid", sweep.lapsed);
  return sweep;
}

// --- events ----------------------------------------------------------------------------

std::vector<bus::Subscription> RevenueService::subscriptions() {
  return {
      auth::CitizenRefs(deps_.auth, "revenue", citizen_table()).subscription(),
      {"application_fees",
       {std::string(permits::events::kApplicationTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_application_event(event, service); }},
      {"booking_invoices",
       {std::string(parks::events::kBookingTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_parks_event(event, service); }},
      {"enrollment_invoices",
       {std::string(parks::events::kEnrollmentTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_parks_event(event, service); }},
  };
}

// The columns citizen_refs keeps, compared by content with what auth holds.
const auth::CitizenRefTable& RevenueService::citizen_table() {
  using auth::CitizenField;
  static const auth::CitizenRefTable table(
      {CitizenField::name, CitizenField::email, CitizenField::identity_verified, CitizenField::is_active});
  return table;
}

bus::Outcome RevenueService::apply_citizen_event(const bus::Event& event, db::Connection& sync) {
  return citizen_table().apply(event, sync);
}

std::vector<consistency::Cache> RevenueService::caches() {
  return {auth::CitizenRefs(deps_.auth, "revenue", citizen_table()).cache()};
}

// application.submitted with a fee opens the fee invoice (DESIGN §7, permit fee).
bus::Outcome RevenueService::apply_application_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != permits::events::kApplicationSubmitted) return bus::Outcome::applied;
  auto application = permits::events::application_of(event);
  if (application.fee_cents <= 0) return bus::Outcome::applied;
  check_money(application.fee_cents, application.currency, event);
  auto id = std::to_string(application.id);
  auto opened = open_invoice(
      service, {"permits", "application", id}, application.citizen_id, application.fee_cents, application.currency,
      "Permit fee: " + application.permit_type + " (application " + id + ")", event.correlation_id, event.event_id);
  return opened ? bus::Outcome::applied : bus::Outcome::stale;
}

// booking.requested or enrollment.requested with an amount opens its invoice;
// booking.cancelled or enrollment.cancelled voids an open one and refunds a paid one when
// parks' refund decision says so (DESIGN §7, park booking; the payload is parks' contract,
// townhall/parks/events.hpp, read for both as one PricedPlace).
bus::Outcome RevenueService::apply_parks_event(const bus::Event& event, db::Connection& service) {
  auto place = parks::events::priced_place(event.topic, event.event_type, event.data.at("snapshot"));
  if (place.step == parks::events::PricedPlace::Step::other) return bus::Outcome::applied;
  auto id = std::to_string(place.id);
  const auto& type = place.source_type;
  if (place.step == parks::events::PricedPlace::Step::requested) {
    if (place.amount_cents <= 0) return bus::Outcome::applied;
    if (!invoiceable(place.amount_cents, place.currency)) {
      // Not a dead letter: the place is held for this invoice, so parks is told and
      // releases it (issue 21 §3.4). Parks checks the same ceiling before it holds one.
      events::InvoiceRejection rejection{
          "parks",
          type,
          id,
          place.citizen_id,
          place.amount_cents,
          place.currency,
          std::to_string(place.amount_cents) + " " + place.currency + " is not an amount revenue can invoice"};
      bus::NewEvent rejected;
      rejected.topic = events::kInvoiceTopic;
      rejected.event_type = events::kInvoiceRejected;
      rejected.aggregate_type = "invoice_request";
      rejected.aggregate_id = "parks." + type + "." + id;
      rejected.event_version = 1;
      rejected.data = events::event_data(events::invoice_rejection_snapshot(rejection));
      rejected.correlation_id = event.correlation_id;
      rejected.causation_id = event.event_id;
      bus::append(service, std::move(rejected));
      spdlog::warn("revenue: {} {} asks for {} {}: no invoice opened (invoice.rejected)", type, id, place.amount_cents,
                   place.currency);
      return bus::Outcome::applied;
    }
    auto opened = open_invoice(service, {"parks", type, id}, place.citizen_id, place.amount_cents, place.currency,
                               place.description, event.correlation_id, event.event_id);
    return opened ? bus::Outcome::applied : bus::Outcome::stale;
  }
  auto invoice = store::find_invoice_by_source(service, "parks", type, id);
  if (!invoice) return bus::Outcome::applied;  // free
  auto now = utc::now();
  if (invoice->status == "open") {
    invoice->status = "voided";
    invoice->closed_at = now;
    invoice->updated_at = now;
    invoice->event_version += 1;
    store::update_invoice(service, *invoice);
    append(service, events::kInvoiceTopic, events::kInvoiceVoided, "invoice", invoice->id, invoice->event_version,
           invoice_json(*invoice), event.correlation_id, event.event_id);
    return bus::Outcome::applied;
  }
  if (invoice->status != "paid") return bus::Outcome::stale;
  if (!place.refund_payment) {
    spdlog::info("revenue: {} {} cancelled without a refund (parks' decision); invoice {} stays paid", type, id,
                 invoice->id);
    return bus::Outcome::applied;
  }
  auto payment = store::find_live_payment(service, invoice->id);
  if (!payment || payment->status != "completed") return bus::Outcome::stale;  // a refund is under way
  payment->status = "refund_pending";
  payment->refund_key = processor_key();
  payment->updated_at = now;
  store::update_payment(service, *payment);
  wake_reconciler();
  spdlog::info("revenue: {} {} cancelled; refunding payment {}", type, id, payment->id);
  return bus::Outcome::applied;
}

}  // namespace townhall::revenue
