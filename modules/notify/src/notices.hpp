#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "townhall/bus/event.hpp"

// What another module's event means to a citizen: the notice for their inbox (and the
// email, when they want one). Pure functions of the producers' typed contracts.
namespace townhall::notify {

// The kinds a citizen can turn email off for (PATCH /preferences).
inline constexpr std::array<std::string_view, 14> kKinds{
    "application_decided", "permit_issued",    "invoice_opened",    "invoice_overdue",    "payment_completed",
    "payment_failed",      "payment_refunded", "booking_confirmed", "booking_cancelled",  "booking_expired",
    "license_expiring",    "license_expired",  "tax_record_opened", "enrollment_promoted"};

bool is_kind(std::string_view kind);

struct Notice {
  std::int64_t citizen_id = 0;
  std::string kind;  // one of kKinds
  std::string title;
  std::string body;
};

// The notice `event` means for its citizen; nullopt when it means none (a step nobody
// needs to hear of). Throws bus::PermanentError when the producer's contract cannot
// decode the payload (the bus dead-letters it).
std::optional<Notice> notice_for(const bus::Event& event);

// "Your business license expires on ..." for license `license_id`'s term ending at
// `expires_at` (a reminder notify schedules itself).
Notice license_expiring(std::int64_t citizen_id, std::int64_t license_id, const std::string& business_name,
                        const std::string& expires_at);

// 2500, "USD" -> "25.00 USD".
std::string money_text(std::int64_t amount_cents, const std::string& currency);

}  // namespace townhall::notify
