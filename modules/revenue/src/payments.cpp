// Idempotent payments through the PaymentProvider, refunds, and the reconciler that drives
// every payment a request did not resolve to its outcome.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "service_internal.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::revenue {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

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

// Releases a claimed payment however the coroutine leaves.
struct Released {
  std::function<void()> release;
  ~Released() { release(); }
};

}  // namespace

std::string processor_key() {
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof bytes);
  char hex[sizeof bytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return hex;
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
    return PaymentOutcome{payment, false, std::move(*invoice)};
  });
  if (!begun) {
    if (claimed) release(*claimed);  // the commit failed: nothing to resolve
    co_return begun.error();
  }
  if (!begun->replayed) {
    Released guard{[this, id = begun->payment.id] { release(id); }};
    auto charged = co_await charge(context, begun->payment, std::move(request.token));
    if (!charged) co_return charged.error();
    co_return PaymentOutcome{*charged, false, std::move(begun->invoice)};
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
  auto answer = co_await provider_.charge(std::move(request), deadline);
  if (!answer && answer.error().code == Errc::deadline_exceeded) {
    // Unknown outcome: settling closes the charge at the provider, so it cannot land
    // later, and tells whether it had.
    spdlog::warn("revenue: payment {}: the provider did not answer within {} ms; settling it", payment.id,
                 settings_.provider_timeout.count());
    answer = co_await provider_.settle(payment.processor_key);
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
  auto answer = co_await provider_.settle(payment.processor_key);
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
      save_invoice(service, invoice, now);
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
  auto answer = co_await provider_.refund(payment.processor_key, *payment.refund_key);
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
      save_invoice(service, invoice, now);
    }
    append(service, events::kPaymentTopic, events::kPaymentRefunded, "payment", current->id, current->event_version,
           payment_json(*current, invoice), correlation);
    spdlog::info("revenue: payment {} of invoice {} refunded", current->id, invoice.id);
    return *current;
  });
}

asio::awaitable<Result<store::Payment>> RevenueService::refund_payment(CallContext context, std::int64_t payment_id,
                                                                       std::string reason) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("revenue:manage"))
    co_return make_error(Errc::forbidden, "needs permission revenue:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto asked = co_await writes_.run([&](db::Connection& service) -> Result<store::Payment> {
    auto payment = store::find_payment(service, payment_id);
    if (!payment) return make_error(Errc::not_found, "no such payment");
    const auto label = "payment " + std::to_string(payment_id);
    if (payment->status != "completed")
      return make_error(Errc::conflict, label + " is " + payment->status + ": only a completed payment is refunded");
    auto invoice = store::find_invoice(service, payment->invoice_id, store::Scope::everything());
    if (!invoice) return make_error(Errc::internal, label + " has no invoice");
    if (invoice->source_module == "parks")
      return make_error(Errc::conflict, label + " pays parks " + invoice->source_type + " " + invoice->source_id +
                                            ": cancel it in parks, where its refund is decided");
    payment->status = "refund_pending";
    payment->refund_key = processor_key();
    payment->refund_reason = reason;
    payment->refunded_by = principal->id;
    payment->updated_at = utc::now();
    store::update_payment(service, *payment);
    return *payment;
  });
  if (!asked) co_return asked.error();
  spdlog::info("revenue: payment {} of invoice {} to be refunded by employee {}: {}", asked->id, asked->invoice_id,
               principal->id, reason);
  // Asked now; a provider that cannot answer leaves it refund_pending for the reconciler.
  auto refunded = co_await refund(*asked, context.correlation_id);
  if (refunded) co_return refunded;
  spdlog::warn("revenue: refunding payment {} now failed ({}); the reconciler retries", asked->id,
               refunded.error().message);
  co_return asked;
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
  while (deps_.gate.is_open()) {
    try {
      co_await reconcile();
    } catch (const std::exception& error) {
      spdlog::error("revenue: reconciling payments failed: {}", error.what());
    }
    if (!deps_.gate.is_open()) break;
    reconcile_timer_->expires_after(settings_.reconcile_interval);
    co_await reconcile_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  done->set();
}

}  // namespace townhall::revenue
