-- A citizen's invoices filtered by status (?status=open, paid, ...): without it SQLite
-- searched invoices_status and read every invoice in that status to find the citizen's
-- (bench/scale, issue 24 §4).
CREATE INDEX invoices_citizen_status ON invoices (citizen_id, status, id);
