// The built-in simulated card processor: a ledger file of its own, on a thread of its
// own (a real processor is another system; this one must not hold a network thread or
// revenue's writer while it "works").
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "provider.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::revenue {
namespace {

namespace asio = boost::asio;

// How long tok_slow takes to approve.
constexpr std::chrono::seconds kSlowAnswer{2};

class SimulatedProvider final : public PaymentProvider {
 public:
  explicit SimulatedProvider(std::filesystem::path ledger) : path_(std::move(ledger)), thread_("payment-sim") {}
  ~SimulatedProvider() override { thread_.stop(); }

  asio::awaitable<Result<ProviderAnswer>> charge(Charge charge,
                                                 std::chrono::steady_clock::time_point deadline) override {
    if (charge.token == "tok_slow") {
      // Approves, but only after kSlowAnswer (or not at all when the caller gives up first).
      auto answer_at = std::chrono::steady_clock::now() + kSlowAnswer;
      asio::steady_timer timer(co_await asio::this_coro::executor, std::min(answer_at, deadline));
      co_await timer.async_wait(asio::use_awaitable);
      if (answer_at > deadline)
        co_return make_error(Errc::deadline_exceeded, "the payment provider did not answer in time");
      charge.token = "tok_ok";
    }
    if (charge.token == "tok_timeout") {
      // Never answers: the caller's deadline passes and nothing is charged.
      asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
      co_await timer.async_wait(asio::use_awaitable);
      co_return make_error(Errc::deadline_exceeded, "the payment provider did not answer in time");
    }
    co_return co_await thread_.run([&]() -> Result<ProviderAnswer> {
      return guarded([&]() -> Result<ProviderAnswer> {
        if (auto known = recorded(charge.key)) return *known;
        std::string outcome = charge.token == "tok_ok" ? "approved" : "declined";
        std::string reason = charge.token == "tok_ok"         ? ""
                             : charge.token == "tok_declined" ? "card declined"
                                                              : "unknown card token";
        record(charge.key, outcome, charge.amount_cents, charge.currency, reason);
        return *recorded(charge.key);
      });
    });
  }

  asio::awaitable<Result<ProviderAnswer>> settle(std::string charge_key) override {
    co_return co_await thread_.run([&]() -> Result<ProviderAnswer> {
      return guarded([&]() -> Result<ProviderAnswer> {
        if (auto known = recorded(charge_key)) return *known;
        record(charge_key, "declined", 0, "", "closed before it was charged");
        return *recorded(charge_key);
      });
    });
  }

  asio::awaitable<Result<ProviderAnswer>> refund(std::string charge_key, std::string refund_key) override {
    co_return co_await thread_.run([&]() -> Result<ProviderAnswer> {
      return guarded([&]() -> Result<ProviderAnswer> {
        auto known = recorded(charge_key);
        if (!known || known->status != ProviderAnswer::Status::approved)
          return make_error(Errc::unprocessable, "no approved charge " + charge_key + " to refund");
        // Once per charge: a repeated refund (same key, or another after a lost answer)
        // gives nothing back twice.
        SQLite::Statement refund(
            *ledger_, "UPDATE charges SET refunded = 1, refund_key = ? WHERE charge_key = ? AND refunded = 0");
        refund.bind(1, refund_key);
        refund.bind(2, charge_key);
        refund.exec();
        return *known;
      });
    });
  }

 private:
  // Ledger failures are the provider being unreachable, not Townhall's fault.
  template <class F>
  Result<ProviderAnswer> guarded(F&& work) {
    try {
      open();
      return work();
    } catch (const std::exception& error) {
      spdlog::error("payment simulator: ledger {}: {}", path_.string(), error.what());
      ledger_.reset();
      return make_error(Errc::unavailable, "the payment provider is unavailable");
    }
  }

  void open() {
    if (ledger_) return;
    ledger_ = std::make_unique<SQLite::Database>(path_.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ledger_->exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
    ledger_->exec(
        "CREATE TABLE IF NOT EXISTS charges (charge_key TEXT PRIMARY KEY, outcome TEXT NOT NULL, "
        "amount_cents INTEGER NOT NULL, currency TEXT NOT NULL, reason TEXT NOT NULL, "
        "refunded INTEGER NOT NULL DEFAULT 0, refund_key TEXT, "
        "at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))");
    // A ledger written before charges had keys (issue 27 §1) knew them by payment id:
    // they keep the key revenue's migration 0003 gave those payments.
    if (ledger_->execAndGet("SELECT count(*) FROM pragma_table_info('charges') WHERE name = 'payment_id'").getInt() >
        0) {
      SQLite::Transaction transaction(*ledger_, SQLite::TransactionBehavior::IMMEDIATE);
      ledger_->exec(
          "ALTER TABLE charges RENAME TO charges_by_payment_id;"
          "CREATE TABLE charges (charge_key TEXT PRIMARY KEY, outcome TEXT NOT NULL, "
          "amount_cents INTEGER NOT NULL, currency TEXT NOT NULL, reason TEXT NOT NULL, "
          "refunded INTEGER NOT NULL DEFAULT 0, refund_key TEXT, "
          "at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));"
          "INSERT INTO charges (charge_key, outcome, amount_cents, currency, reason, refunded, refund_key, at) "
          "SELECT 'payment-' || payment_id, outcome, amount_cents, currency, reason, refunded, "
          "CASE WHEN refunded = 1 THEN 'refund-' || payment_id END, at FROM charges_by_payment_id;"
          "DROP TABLE charges_by_payment_id;");
      transaction.commit();
    }
  }

  std::optional<ProviderAnswer> recorded(const std::string& charge_key) {
    SQLite::Statement query(*ledger_, "SELECT outcome, reason FROM charges WHERE charge_key = ?");
    query.bind(1, charge_key);
    if (!query.executeStep()) return std::nullopt;
    ProviderAnswer answer;
    answer.status = query.getColumn(0).getString() == "approved" ? ProviderAnswer::Status::approved
                                                                 : ProviderAnswer::Status::declined;
    answer.reference = "sim_" + charge_key;
    answer.reason = query.getColumn(1).getString();
    return answer;
  }

  void record(const std::string& charge_key, const std::string& outcome, std::int64_t amount,
              const std::string& currency, const std::string& reason) {
    SQLite::Statement insert(*ledger_,
                             "INSERT INTO charges (charge_key, outcome, amount_cents, currency, reason) "
                             "VALUES (?, ?, ?, ?, ?)");
    insert.bind(1, charge_key);
    insert.bind(2, outcome);
    insert.bind(3, amount);
    insert.bind(4, currency);
    insert.bind(5, reason);
    insert.exec();
  }

  std::filesystem::path path_;
  std::unique_ptr<SQLite::Database> ledger_;  // provider thread only
  db::Writer thread_;
};

}  // namespace

std::unique_ptr<PaymentProvider> make_simulated_provider(const std::filesystem::path& ledger) {
  return std::make_unique<SimulatedProvider>(ledger);
}

}  // namespace townhall::revenue
