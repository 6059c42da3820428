// revenue's event contract (townhall/revenue/events.hpp): invoice.rejected and
// tax_record.opened are read whole or refused (payment_of is checked by permits' and parks' tests through their
// handlers).
#include "townhall/revenue/events.hpp"

#include <gtest/gtest.h>

#include "contract_checks.hpp"

namespace townhall::revenue {
namespace {

using testing::contract_event;
using testing::strictness_gaps;

TEST(RevenueEvents, AnInvoiceRejectionIsReadWholeOrRefused) {
  events::InvoiceRejection rejection{"parks", "booking", "3", 7, 2500, "USD", "too much"};
  auto good = contract_event(events::kInvoiceTopic, events::kInvoiceRejected,
                             events::event_data(events::invoice_rejection_snapshot(rejection)));
  EXPECT_EQ(strictness_gaps(good, events::invoice_rejection_of), std::vector<std::string>{});
  auto read = events::invoice_rejection_of(good);
  EXPECT_EQ(read.source_id, "3");
  EXPECT_EQ(read.citizen_id, 7);
  EXPECT_EQ(read.reason, "too much");
}

TEST(RevenueEvents, ATaxRecordIsReadWholeOrRefused) {
  auto good = contract_event(
      events::kTaxRecordTopic, events::kTaxRecordOpened,
      events::event_data(events::tax_record_snapshot({12, 7, 2026, 25000000, 312500, "USD", "2026-12-05T10:00:00Z"})));
  EXPECT_EQ(strictness_gaps(good, events::tax_record_of), std::vector<std::string>{});
  auto read = events::tax_record_of(good);
  EXPECT_EQ(read.citizen_id, 7);
  EXPECT_EQ(read.tax_year, 2026);
  EXPECT_EQ(read.tax_due_cents, 312500);
}

}  // namespace
}  // namespace townhall::revenue
