// The built-in simulated card processor: a ledger file of its own, on a thread of its
// own (a real processor is another system; this one must not hold a network thread or
// revenue's writer while it "works"). Charges that arrive while the ledger commits are
// recorded together in its next transaction (the platform's group commit): a real
// processor serves concurrent charges at once, and one fsync per charge on one thread
// would make this simulator, not Townhall, what limits concurrent payments.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "provider.hpp"
#include "townhall/platform/data_lock.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/write_path.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::revenue {
namespace {

namespace asio = boost::asio;

// How long tok_slow takes to approve.
constexpr std::chrono::seconds kSlowAnswer{2};

// Synced like the deployment's own files: with `full` (power-loss safe) every commit of
// the ledger is, and group commit shares that sync among the charges it holds.
db::Options ledger_options(db::Synchronous synchronous) {
  db::Options options;
  options.synchronous = synchronous;
  return options;
}

constexpr const char* kChargesTable =
    "CREATE TABLE IF NOT EXISTS charges (charge_key TEXT PRIMARY KEY, outcome TEXT NOT NULL, "
    "amount_cents INTEGER NOT NULL, currency TEXT NOT NULL, reason TEXT NOT NULL, "
    "refunded INTEGER NOT NULL DEFAULT 0, refund_key TEXT, "
    "at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))";

class SimulatedProvider final : public PaymentProvider {
 public:
  SimulatedProvider(std::filesystem::path ledger, db::Synchronous synchronous)
      : path_(std::move(ledger)),
        ledger_(std::make_unique<db::ModuleDb>(  // boundary-exempt: the simulated processor's ledger
            "payment-sim", path_, db::TableManifest{{"charges"}, {}}, ledger_options(synchronous))),
        thread_("payment-sim"),
        writes_(*ledger_, thread_, {}) {}
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
    if (auto ready = co_await open(); !ready) co_return ready.error();
    auto answer = co_await writes_.run([&](db::Connection& ledger) -> Result<ProviderAnswer> {
      if (auto known = recorded(ledger, charge.key)) return *known;
      std::string outcome = charge.token == "tok_ok" ? "approved" : "declined";
      std::string reason = charge.token == "tok_ok"         ? ""
                           : charge.token == "tok_declined" ? "card declined"
                                                            : "unknown card token";
      record(ledger, charge.key, outcome, charge.amount_cents, charge.currency, reason);
      return *recorded(ledger, charge.key);
    });
    co_return provider_answer(std::move(answer));
  }

  asio::awaitable<Result<ProviderAnswer>> settle(std::string charge_key) override {
    if (auto ready = co_await open(); !ready) co_return ready.error();
    auto answer = co_await writes_.run([&](db::Connection& ledger) -> Result<ProviderAnswer> {
      if (auto known = recorded(ledger, charge_key)) return *known;
      record(ledger, charge_key, "declined", 0, "", "closed before it was charged");
      return *recorded(ledger, charge_key);
    });
    co_return provider_answer(std::move(answer));
  }

  asio::awaitable<Result<ProviderAnswer>> refund(std::string charge_key, std::string refund_key) override {
    if (auto ready = co_await open(); !ready) co_return ready.error();
    auto answer = co_await writes_.run([&](db::Connection& ledger) -> Result<ProviderAnswer> {
      auto known = recorded(ledger, charge_key);
      if (!known || known->status != ProviderAnswer::Status::approved)
        return make_error(Errc::unprocessable, "no approved charge " + charge_key + " to refund");
      // Once per charge: a repeated refund (same key, or another after a lost answer)
      // gives nothing back twice.
      auto refund =
          ledger.cached("UPDATE charges SET refunded = 1, refund_key = ? WHERE charge_key = ? AND refunded = 0");
      refund->bind(1, refund_key);
      refund->bind(2, charge_key);
      refund->exec();
      return *known;
    });
    co_return provider_answer(std::move(answer));
  }

 private:
  // The ledger's file and table, made on first use (a server that never charges has no
  // ledger); until that works, every call answers that the provider is unavailable.
  asio::awaitable<Result<Unit>> open() {
    if (opened_.load(std::memory_order_acquire)) co_return Unit{};
    co_return co_await thread_.run([&]() -> Result<Unit> {
      if (opened_.load()) return Unit{};
      try {
        create_ledger();
        writes_.open();
        opened_.store(true, std::memory_order_release);
        return Unit{};
      } catch (const std::exception& error) {
        spdlog::error("payment simulator: ledger {}: {}", path_.string(), error.what());
        return make_error(Errc::unavailable, "the payment provider is unavailable");
      }
    });
  }

  // Ledger failures are the provider being unreachable, not Townhall's fault.
  static Result<ProviderAnswer> provider_answer(Result<ProviderAnswer> answer) {
    if (!answer && answer.error().code == Errc::unavailable)
      return make_error(Errc::unavailable, "the payment provider is unavailable");
    return answer;
  }

  // On the ledger's thread, before its write path opens.
  void create_ledger() {
    // The simulated processor's own ledger (an outside system's state, no module file):
    // held to the data directory's rules like every file beside the modules' (owner-only).
    db::restrict_new_files();
    db::check_private(path_.parent_path(), path_);
    SQLite::Database owner(  // boundary-exempt: the simulated processor's ledger, its schema
        path_.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    owner.exec("PRAGMA journal_mode = WAL;");
    owner.exec(kChargesTable);
    // A ledger written before charges had keys (issue 27 §1) knew them by payment id:
    // they keep the key revenue's migration 0003 gave those payments.
    if (owner.execAndGet("SELECT count(*) FROM pragma_table_info('charges') WHERE name = 'payment_id'").getInt() > 0) {
      SQLite::Transaction transaction(owner, SQLite::TransactionBehavior::IMMEDIATE);
      owner.exec("ALTER TABLE charges RENAME TO charges_by_payment_id;");
      owner.exec(kChargesTable);
      owner.exec(
          "INSERT INTO charges (charge_key, outcome, amount_cents, currency, reason, refunded, refund_key, at) "
          "SELECT 'payment-' || payment_id, outcome, amount_cents, currency, reason, refunded, "
          "CASE WHEN refunded = 1 THEN 'refund-' || payment_id END, at FROM charges_by_payment_id;"
          "DROP TABLE charges_by_payment_id;");
      transaction.commit();
    }
  }

  static std::optional<ProviderAnswer> recorded(db::Connection& ledger, const std::string& charge_key) {
    auto query = ledger.cached("SELECT outcome, reason FROM charges WHERE charge_key = ?");
    query->bind(1, charge_key);
    if (!query->executeStep()) return std::nullopt;
    ProviderAnswer answer;
    answer.status = query->getColumn(0).getString() == "approved" ? ProviderAnswer::Status::approved
                                                                  : ProviderAnswer::Status::declined;
    answer.reference = "sim_" + charge_key;
    answer.reason = query->getColumn(1).getString();
    return answer;
  }

  static void record(db::Connection& ledger, const std::string& charge_key, const std::string& outcome,
                     std::int64_t amount, const std::string& currency, const std::string& reason) {
    auto insert = ledger.cached(
        "INSERT INTO charges (charge_key, outcome, amount_cents, currency, reason) VALUES (?, ?, ?, ?, ?)");
    insert->bind(1, charge_key);
    insert->bind(2, outcome);
    insert->bind(3, amount);
    insert->bind(4, currency);
    insert->bind(5, reason);
    insert->exec();
  }

  std::filesystem::path path_;
  std::unique_ptr<db::ModuleDb> ledger_;
  db::Writer thread_;
  db::WritePath writes_;  // charges, settlements and refunds, group-committed
  std::atomic<bool> opened_{false};
};

}  // namespace

std::unique_ptr<PaymentProvider> make_simulated_provider(const std::filesystem::path& ledger,
                                                         db::Synchronous synchronous) {
  return std::make_unique<SimulatedProvider>(ledger, synchronous);
}

}  // namespace townhall::revenue
