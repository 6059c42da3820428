-- Tax bills (issue 26 §1). A tax record's tax due is billed as one invoice or as up to 12
-- instalments, each an invoice of its own linked to the record (tax_record_id) and due by
-- the end of its day (due_date, "YYYY-MM-DD" in UTC).
--
-- The daily overdue job marks an open invoice whose due date has passed (overdue_at, and
-- invoice.overdue for notify). The API shows such an invoice as `overdue`; in this file it
-- stays `open`, so it is paid — and voided or refunded — by the very paths every open
-- invoice takes (payments.cpp unchanged). Widening the status CHECK instead would mean
-- rebuilding invoices, which payments references under foreign keys.
ALTER TABLE invoices ADD COLUMN due_date TEXT
  CHECK (due_date IS NULL OR due_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]');
ALTER TABLE invoices ADD COLUMN overdue_at TEXT;
ALTER TABLE invoices ADD COLUMN tax_record_id INTEGER REFERENCES tax_records (id);

-- A record's invoices (the yearly run skips a record that has them; GET /tax-records/{id}).
CREATE INDEX invoices_tax_record ON invoices (tax_record_id, id) WHERE tax_record_id IS NOT NULL;
-- The overdue job: open invoices not yet marked, by due date.
CREATE INDEX invoices_falling_due ON invoices (status, due_date) WHERE overdue_at IS NULL AND due_date IS NOT NULL;
-- The yearly run finds a citizen's record for the year (UNIQUE (citizen_id, tax_year)
-- already indexes it). The revenue report reads payments by the time they completed and
-- refunds by the time they were refunded, within its range.
CREATE INDEX payments_completed_at ON payments (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX payments_refunded_at ON payments (refunded_at) WHERE refunded_at IS NOT NULL;
