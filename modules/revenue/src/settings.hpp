#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace townhall::revenue {

// The revenue module's registry section (`modules.revenue.settings`).
struct Settings {
  std::string currency = "USD";  // of tax records and license fees
  // The payment provider: "simulated" (the built-in simulator, README "Payments") is the
  // one this build has; its ledger file lives in the data directory.
  std::string payment_provider = "simulated";
  std::string simulator_ledger = "payment-simulator.db";
  std::chrono::milliseconds provider_timeout{5000};     // per charge
  std::chrono::milliseconds reconcile_interval{30000};  // retry of unresolved payments and refunds
  std::int64_t license_fee_cents = 10000;
  int license_term_days = 365;
  int license_fee_due_days = 30;  // an approved license's fee is due this long after approval, or it lapses
  std::chrono::hours license_expiry_interval{24};  // how often the license job runs (expiry, unpaid fees lapsing)
  std::chrono::hours overdue_interval{24};         // how often open invoices past their due date are marked overdue
};

// Throws config::ConfigError naming the key; unknown keys are errors.
Settings parse_settings(const nlohmann::json& section);

}  // namespace townhall::revenue
