#pragma once

#include <cstdint>
#include <string_view>

#include "townhall/platform/money.hpp"

// What revenue will invoice, for the modules that ask it for money (issue 21 §3.4): they
// check an amount against the same ceiling before they promise anything for it — a price
// they accept is then never an amount revenue refuses.
namespace townhall::revenue {

// The largest invoice revenue opens, in minor units: the platform's money ceiling.
inline constexpr std::int64_t kMaxInvoiceCents = money::kMaxMinorUnits;

// Whether revenue opens an invoice of this amount and currency.
inline bool invoiceable(std::int64_t amount_cents, std::string_view currency) {
  return amount_cents > 0 && amount_cents <= kMaxInvoiceCents && money::is_iso4217(currency);
}

}  // namespace townhall::revenue
