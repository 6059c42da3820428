#pragma once

// What the files of ParksService share; private to the module.

#include <string>
#include <string_view>

#include "service.hpp"

namespace townhall::parks {

Error forbidden(std::string message);

bool is_staff(const Principal* principal);

// A citizen sees their own bookings and enrollments; parks staff all.
Result<store::Scope> read_scope(const Principal* principal);

// The snapshot is the record as the API shows it, with the contract's fields
// (townhall/parks/events.hpp) written by the contract's own code.
void announce(db::Connection& service, std::string_view type, const store::Booking& booking,
              const std::string& correlation, const std::string& causation = {}, bool refund_payment = true);
void announce(db::Connection& service, std::string_view type, const store::Enrollment& enrollment,
              const std::string& correlation, const std::string& causation = {}, bool refund_payment = true);
// enrollment.promoted, after the promoted place's own event (its citizen is told).
void announce_promotion(db::Connection& service, const store::Enrollment& enrollment, const std::string& program_name,
                        const std::string& correlation, const std::string& causation);

}  // namespace townhall::parks
