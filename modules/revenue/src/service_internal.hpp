#pragma once

// What the files of RevenueService share (service.cpp, invoices.cpp, payments.cpp,
// tax_records.cpp, licenses.cpp, handlers.cpp); private to the module.

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "service.hpp"

namespace townhall::revenue {

struct RevenueService::Flight {
  Latch resolved;
  std::atomic<bool> refund_after{false};  // its outcome asked for a refund: wake the reconciler on release
};

Error forbidden(std::string message);

// The loop of a job run every `interval` (overdue invoices, license expiry): `round()`
// (an awaitable Result) while the gate is open, a failed round logged as `job`'s, then
// sleeping on `timer` (cancelled at stop); `done` is set when the gate closes.
template <class Round>
boost::asio::awaitable<void> run_periodic(ModuleGate& gate, boost::asio::steady_timer& timer,
                                          std::chrono::hours interval, std::string_view job,
                                          std::shared_ptr<Latch> done, Round round) {
  while (gate.is_open()) {
    auto result = co_await round();
    if (!result) spdlog::warn("revenue: {}: {}", job, result.error().message);
    if (!gate.is_open()) break;
    timer.expires_after(interval);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  done->set();
}

// Which records a principal reads: a citizen their own, revenue staff all.
Result<store::Scope> read_scope(const Principal* principal);

// An event of one of this module's aggregates, its snapshot the record as the API shows it.
void append(db::Connection& service, std::string_view topic, std::string_view type, std::string_view aggregate,
            std::int64_t id, std::int64_t version, nlohmann::json snapshot, const std::string& correlation,
            const std::string& causation = {});

// The citizen's tax record for its year, inserted and announced (tax_record.opened);
// false when the citizen has one for that year already. The route's and the demo's way.
bool open_tax_record(db::Connection& service, store::TaxRecord& record, const std::string& correlation);

// A change of `invoice` written: its time and one more event version (the caller
// announces it with that version).
void save_invoice(db::Connection& service, store::Invoice& invoice, const std::string& now);

// An open invoice voided and announced (invoice.voided): nothing is owed on it any more.
void void_invoice(db::Connection& service, store::Invoice& invoice, const std::string& now,
                  const std::string& correlation, const std::string& causation = {});

// An idempotency key for the card processor: 128 random bits, so no restore of revenue.db,
// reinstall or other installation ever offers it a key it has seen (issue 27 §1).
std::string processor_key();

// The source an invoice was opened for.
struct Source {
  std::string module, type, id;
};

// What ties an invoice to revenue's own records: the day it is due by and the tax
// record it bills (tax bills); none for other modules' invoices.
struct InvoiceLink {
  std::optional<std::string> due_date;
  std::optional<std::int64_t> tax_record_id;
};

// Opens an invoice for `source` unless it has one (a duplicate or replayed event): the
// invoice and invoice.created commit together. nullopt when it existed.
std::optional<store::Invoice> open_invoice(db::Connection& service, const Source& source, std::int64_t citizen_id,
                                           std::int64_t amount_cents, const std::string& currency,
                                           std::string description, const std::string& correlation,
                                           const std::string& causation, const InvoiceLink& link = {});

// Approval: the license waits for its first fee (approved_unpaid), invoiced now and due
// `license_fee_due_days` from now; it becomes active only when that invoice is paid.
Result<store::BusinessLicense> approve_license(db::Connection& service, store::BusinessLicense& license,
                                               std::chrono::system_clock::time_point now, const Settings& settings,
                                               const std::string& correlation);

// A license's fee invoice was paid (in the payment's transaction): the first term's fee
// activates an approved license, its term starting now; a renewal's moves the expiry one
// term on from the later of now and the old expiry.
void license_fee_paid(db::Connection& service, const store::Invoice& invoice, const Settings& settings,
                      const std::string& correlation);

}  // namespace townhall::revenue
