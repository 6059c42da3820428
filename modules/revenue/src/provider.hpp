#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "townhall/platform/db.hpp"
#include "townhall/platform/result.hpp"

// The card processor revenue charges through: an external system, called outside any
// database transaction. Every operation is idempotent by a key revenue stores with the
// payment before the call, so a call repeated after a crash or a timeout never charges
// twice. The keys are random (issue 27 §1), never revenue's row ids: the processor's
// records outlive a restore of revenue.db, a reinstall, and are shared by installations,
// so a key it has seen must never be offered for another payment.
namespace townhall::revenue {

struct Charge {
  std::string key;  // the payment's processor key

  std::int64_t amount_cents = 0;
  std::string currency;
  std::string token;  // the card as the provider tokenised it; never stored by revenue
};

struct ProviderAnswer {
  enum class Status { approved, declined };
  Status status = Status::declined;
  std::string reference;  // the provider's id of the charge
  std::string reason;     // why declined
};

class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;
  // Charges once per key; a repeated call answers the first outcome.
  // deadline_exceeded when the provider did not answer by `deadline` (the charge may or
  // may not have happened: settle() says which); unavailable when it cannot be reached.
  virtual boost::asio::awaitable<Result<ProviderAnswer>> charge(Charge charge,
                                                                std::chrono::steady_clock::time_point deadline) = 0;
  // The final outcome of a charge key: approved if it was charged; otherwise the key is
  // closed (a later charge with it is declined) and the answer is declined.
  virtual boost::asio::awaitable<Result<ProviderAnswer>> settle(std::string charge_key) = 0;
  // Gives back the approved charge `charge_key` in full, once per `refund_key` (its own
  // idempotency key); a charge refunded already is not refunded again.
  virtual boost::asio::awaitable<Result<ProviderAnswer>> refund(std::string charge_key, std::string refund_key) = 0;
};

// The built-in simulated processor (README "Payments"): the token chooses the outcome —
// tok_ok approves, tok_declined declines, tok_slow approves after 2 s (a slow processor:
// a payment that completes after its booking's hold ran out), tok_timeout never answers
// (the caller's deadline passes, nothing is charged), any other token is declined as
// unknown. Its
// ledger is a file of its own (`ledger`), standing for the processor's records, so the
// outcome of a charge survives a crash of Townhall like a real processor's would; it is
// synced as the deployment syncs its own files (`synchronous`, database.synchronous), so
// it survives a power loss exactly when they do (design note 63).
std::unique_ptr<PaymentProvider> make_simulated_provider(const std::filesystem::path& ledger,
                                                         db::Synchronous synchronous);

}  // namespace townhall::revenue
