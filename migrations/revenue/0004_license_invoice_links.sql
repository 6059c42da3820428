-- A paid invoice finds the business license it is the fee of by the license's own links
-- (fee_invoice_id for the first term, renewal_invoice_id for the next), not by parsing
-- "<license id>.<term>" out of the invoice's source_id, which stays only as the invoice's
-- idempotency key (issue 22 §5). Both links are looked up on every payment of an invoice.
CREATE INDEX business_licenses_fee_invoice ON business_licenses (fee_invoice_id) WHERE fee_invoice_id IS NOT NULL;
CREATE INDEX business_licenses_renewal_invoice ON business_licenses (renewal_invoice_id)
  WHERE renewal_invoice_id IS NOT NULL;
