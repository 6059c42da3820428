-- A business license is active only once its fee is paid (issue 21 §3.6). Until now
-- approval made it `active` at once, with its fee invoice open and perhaps never paid.
--
-- status: applied -> approved_unpaid (the first term's fee invoice `fee_invoice_id` is
-- open until `fee_due_at`) -> active (the fee paid: the first term starts at the payment
-- and `expires_at` is set) -> expired; approved_unpaid past `fee_due_at` -> lapsed (its
-- invoice voided); applied -> rejected. A renewal (of an active or expired license whose
-- current term is paid) opens the next term's invoice; paying it moves the expiry on.
--
-- SQLite cannot change a CHECK constraint, so the table is rebuilt. The file itself now
-- refuses an active license without an expiry and an approved one without its fee
-- invoice and due date.
CREATE TABLE business_licenses_v2 (
  id                 INTEGER PRIMARY KEY,
  citizen_id         INTEGER NOT NULL,
  business_name      TEXT    NOT NULL,
  activity           TEXT    NOT NULL,
  address            TEXT    NOT NULL,
  status             TEXT    NOT NULL
    CHECK (status IN ('applied', 'approved_unpaid', 'active', 'rejected', 'expired', 'lapsed')),
  term               INTEGER NOT NULL DEFAULT 0,  -- terms paid for so far
  expires_at         TEXT,
  fee_invoice_id     INTEGER,  -- the first term's fee, invoiced at approval
  fee_due_at         TEXT,     -- approved_unpaid lapses when this passes unpaid
  renewal_invoice_id INTEGER,
  decided_by         INTEGER,
  decision_reason    TEXT,
  event_version      INTEGER NOT NULL DEFAULT 1,
  created_at         TEXT    NOT NULL,
  updated_at         TEXT    NOT NULL,
  CHECK (status NOT IN ('active', 'expired') OR expires_at IS NOT NULL),
  CHECK (status <> 'approved_unpaid' OR (fee_invoice_id IS NOT NULL AND fee_due_at IS NOT NULL))
) STRICT;

-- Licenses made active by approval whose first fee is still open become approved_unpaid,
-- due 30 days from now (the default `license_fee_due_days`; a migration cannot read the
-- registry); their term starts when the fee is paid. A renewal bought while that fee was
-- open is voided (nothing consumes gov.revenue.invoice, so no event is written for it).
-- An active license the old demo seed left without an expiry gets one a default term
-- (365 days) after its fee was paid.
CREATE TEMP TABLE unpaid_licenses AS
  SELECT l.id AS license_id, i.id AS invoice_id, l.renewal_invoice_id
  FROM business_licenses l
  JOIN invoices i ON i.source_module = 'revenue' AND i.source_type = 'business_license'
                 AND i.source_id = l.id || '.1'
  WHERE l.status = 'active' AND l.term = 1 AND i.status = 'open';

UPDATE invoices
  SET status = 'voided', event_version = event_version + 1,
      updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), closed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
  WHERE status = 'open' AND id IN (SELECT renewal_invoice_id FROM unpaid_licenses);

INSERT INTO business_licenses_v2 (id, citizen_id, business_name, activity, address, status, term, expires_at,
                                  fee_invoice_id, fee_due_at, renewal_invoice_id, decided_by, decision_reason,
                                  event_version, created_at, updated_at)
  SELECT l.id, l.citizen_id, l.business_name, l.activity, l.address,
         CASE WHEN u.license_id IS NOT NULL THEN 'approved_unpaid' ELSE l.status END,
         CASE WHEN u.license_id IS NOT NULL THEN 0 ELSE l.term END,
         CASE WHEN u.license_id IS NOT NULL THEN NULL
              WHEN l.status IN ('active', 'expired') AND l.expires_at IS NULL
                THEN strftime('%Y-%m-%dT%H:%M:%fZ', coalesce(fee.paid_at, l.updated_at), '+365 days')
              ELSE l.expires_at END,
         fee.id,
         CASE WHEN u.license_id IS NOT NULL THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+30 days') END,
         CASE WHEN u.license_id IS NOT NULL THEN NULL ELSE l.renewal_invoice_id END,
         l.decided_by, l.decision_reason, l.event_version, l.created_at, l.updated_at
  FROM business_licenses l
  LEFT JOIN unpaid_licenses u ON u.license_id = l.id
  LEFT JOIN invoices fee ON fee.source_module = 'revenue' AND fee.source_type = 'business_license'
                        AND fee.source_id = l.id || '.1';

DROP TABLE unpaid_licenses;
DROP TABLE business_licenses;
ALTER TABLE business_licenses_v2 RENAME TO business_licenses;
CREATE INDEX business_licenses_citizen ON business_licenses (citizen_id, id);
CREATE INDEX business_licenses_expiry ON business_licenses (status, expires_at);
CREATE INDEX business_licenses_fee_due ON business_licenses (status, fee_due_at);
