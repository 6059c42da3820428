// The simulated card processor: concurrent charges share its ledger's commits (design
// note 63) and still each answer their own outcome, once per key; a ledger it cannot
// open is the provider being unavailable, until it can.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <map>

#include "coro.hpp"
#include "provider.hpp"
#include "support.hpp"

namespace townhall::revenue {
namespace {

namespace asio = boost::asio;
using testing::run_awaitable;

std::chrono::steady_clock::time_point in_a_minute() {
  return std::chrono::steady_clock::now() + std::chrono::minutes(1);
}

std::string token_of(int i) {
  switch (i % 3) {
    case 0: return "tok_ok";
    case 1: return "tok_declined";
    default: return "tok_stolen";  // unknown
  }
}

TEST(SimulatedProvider, ConcurrentChargesAreEachRecordedOnceWithTheirOwnOutcome) {
  testing::TempDir dir;
  ::chmod(dir.path().c_str(), 0700);
  const auto ledger_file = dir.path() / "payment-simulator.db";
  auto provider = make_simulated_provider(ledger_file, db::Synchronous::full);

  // 60 charges at once on one thread's executor: they queue on the ledger while it
  // commits. Keys 0-39, and keys 0-19 charged a second time with another token: a repeat
  // answers the first outcome whichever ran first.
  constexpr int kCharges = 60;
  std::map<int, Result<ProviderAnswer>> answers;
  asio::io_context io;
  for (int i = 0; i < kCharges; ++i)
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          const int key = i % 40;
          Charge charge{"key-" + std::to_string(key), 1000 + key, "USD", i < 40 ? token_of(key) : "tok_ok"};
          answers[i] = co_await provider->charge(std::move(charge), in_a_minute());
        },
        asio::detached);
  io.run();

  ASSERT_EQ(answers.size(), static_cast<std::size_t>(kCharges));
  for (int i = 0; i < kCharges; ++i) {
    const int key = i % 40;
    ASSERT_TRUE(answers[i]) << i << ": " << answers[i].error().message;
    EXPECT_EQ(answers[i]->reference, "sim_key-" + std::to_string(key));
    EXPECT_EQ(answers[i]->status, answers[key]->status) << "a repeat of key " << key << " answered another outcome";
  }
  int approved = 0;
  for (int key = 0; key < 40; ++key) approved += answers[key]->status == ProviderAnswer::Status::approved;
  provider.reset();  // the ledger closed: everything it answered is in the file

  SQLite::Database ledger(ledger_file.string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) FROM charges").getInt(), 40);
  EXPECT_EQ(ledger.execAndGet("SELECT count(DISTINCT charge_key) FROM charges").getInt(), 40);
  EXPECT_EQ(ledger.execAndGet("SELECT count(*) FROM charges WHERE outcome = 'approved'").getInt(), approved);
  EXPECT_GE(approved, 14);  // keys 0, 3, ..., 39 carried tok_ok first; a repeat may have gone first
  EXPECT_EQ(ledger.execAndGet("SELECT amount_cents FROM charges WHERE charge_key = 'key-7'").getInt(), 1007);
}

TEST(SimulatedProvider, ALedgerItCannotOpenIsTheProviderUnavailableUntilItCan) {
  testing::TempDir dir;
  ::chmod(dir.path().c_str(), 0700);
  const auto ledger_file = dir.path() / "payment-simulator.db";
  std::filesystem::create_directory(ledger_file);  // not a file SQLite can open
  auto provider = make_simulated_provider(ledger_file, db::Synchronous::normal);

  auto refused = run_awaitable(provider->charge(Charge{"k1", 500, "USD", "tok_ok"}, in_a_minute()));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unavailable);
  EXPECT_EQ(refused.error().message, "the payment provider is unavailable");
  auto settled = run_awaitable(provider->settle("k1"));
  ASSERT_FALSE(settled);
  EXPECT_EQ(settled.error().code, Errc::unavailable);

  std::filesystem::remove(ledger_file);
  auto charged = run_awaitable(provider->charge(Charge{"k1", 500, "USD", "tok_ok"}, in_a_minute()));
  ASSERT_TRUE(charged) << charged.error().message;
  EXPECT_EQ(charged->status, ProviderAnswer::Status::approved);
  auto refunded = run_awaitable(provider->refund("k1", "r1"));
  ASSERT_TRUE(refunded) << refunded.error().message;
  auto unknown = run_awaitable(provider->refund("k2", "r2"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::unprocessable);
  provider.reset();
  SQLite::Database ledger(ledger_file.string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(ledger.execAndGet("SELECT refunded || refund_key FROM charges WHERE charge_key = 'k1'").getString(), "1r1");
}

}  // namespace
}  // namespace townhall::revenue
