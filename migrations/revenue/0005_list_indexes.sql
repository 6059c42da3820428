-- An invoice shows its payments (GET /invoices/{id}): found through an index, not by
-- reading every payment (payments_one_live_per_invoice covers live ones only).
CREATE INDEX payments_invoice ON payments (invoice_id, id);
