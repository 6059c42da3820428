-- The revenue module's tables (DESIGN.md §2): invoices opened for other modules' priced
-- requests, the payments and refunds against them, tax records and business licenses it
-- owns, and a read-only copy of auth's citizens kept by events. Money is integer minor
-- units with an ISO 4217 currency.

-- One invoice per source (an application, a booking, a license term): the UNIQUE source
-- makes a replayed or duplicated event unable to open a second one.
-- status: open -> paid -> refunded, or open -> voided.
CREATE TABLE invoices (
  id            INTEGER PRIMARY KEY,
  citizen_id    INTEGER NOT NULL,
  source_module TEXT    NOT NULL,
  source_type   TEXT    NOT NULL,
  source_id     TEXT    NOT NULL,
  description   TEXT    NOT NULL,
  amount_cents  INTEGER NOT NULL CHECK (amount_cents > 0),
  currency      TEXT    NOT NULL CHECK (length(currency) = 3),
  status        TEXT    NOT NULL CHECK (status IN ('open', 'paid', 'voided', 'refunded')),
  event_version INTEGER NOT NULL DEFAULT 1,
  created_at    TEXT    NOT NULL,
  updated_at    TEXT    NOT NULL,
  paid_at       TEXT,
  closed_at     TEXT,  -- voided or refunded
  UNIQUE (source_module, source_type, source_id)
) STRICT;
CREATE INDEX invoices_citizen ON invoices (citizen_id, id);
CREATE INDEX invoices_status ON invoices (status, id);

-- A charge attempt. Committed `pending` before the provider is called and resolved after
-- (completed or failed), so a crash in between is resolved with the provider at start.
-- A completed payment whose invoice is cancelled becomes refund_pending, then refunded.
-- The idempotency key is the citizen's: the same key and request answer the same payment.
CREATE TABLE payments (
  id                 INTEGER PRIMARY KEY,
  invoice_id         INTEGER NOT NULL REFERENCES invoices (id),
  citizen_id         INTEGER NOT NULL,
  idempotency_key    TEXT    NOT NULL,
  request_digest     TEXT    NOT NULL,  -- of the request body, to refuse a reused key
  amount_cents       INTEGER NOT NULL CHECK (amount_cents > 0),
  currency           TEXT    NOT NULL,
  method_type        TEXT    NOT NULL,
  status             TEXT    NOT NULL CHECK (status IN ('pending', 'completed', 'failed', 'refund_pending', 'refunded')),
  failure_reason     TEXT,
  provider_reference TEXT,
  event_version      INTEGER NOT NULL DEFAULT 1,
  created_at         TEXT    NOT NULL,
  updated_at         TEXT    NOT NULL,
  completed_at       TEXT,
  refunded_at        TEXT,
  UNIQUE (citizen_id, idempotency_key)
) STRICT;
-- No double charge, enforced by the file itself: an invoice has at most one payment that
-- is being charged or holds money.
CREATE UNIQUE INDEX payments_one_live_per_invoice ON payments (invoice_id)
  WHERE status IN ('pending', 'completed', 'refund_pending');
CREATE INDEX payments_unresolved ON payments (status) WHERE status IN ('pending', 'refund_pending');

CREATE TABLE tax_records (
  id                   INTEGER PRIMARY KEY,
  citizen_id           INTEGER NOT NULL,
  tax_year             INTEGER NOT NULL CHECK (tax_year BETWEEN 1900 AND 2200),
  assessed_value_cents INTEGER NOT NULL CHECK (assessed_value_cents >= 0),
  tax_due_cents        INTEGER NOT NULL CHECK (tax_due_cents >= 0),
  currency             TEXT    NOT NULL CHECK (length(currency) = 3),
  recorded_by          INTEGER NOT NULL,
  created_at           TEXT    NOT NULL,
  UNIQUE (citizen_id, tax_year)
) STRICT;

-- status: applied -> active (approved: issued with an expiry and a fee invoice) ->
-- expired, or applied -> rejected. A renewal opens a new invoice; paying it moves the
-- expiry on by one term (renewal_invoice_id names the open one).
CREATE TABLE business_licenses (
  id                 INTEGER PRIMARY KEY,
  citizen_id         INTEGER NOT NULL,
  business_name      TEXT    NOT NULL,
  activity           TEXT    NOT NULL,
  address            TEXT    NOT NULL,
  status             TEXT    NOT NULL CHECK (status IN ('applied', 'active', 'rejected', 'expired')),
  term               INTEGER NOT NULL DEFAULT 0,  -- terms granted so far
  expires_at         TEXT,
  renewal_invoice_id INTEGER,
  decided_by         INTEGER,
  decision_reason    TEXT,
  event_version      INTEGER NOT NULL DEFAULT 1,
  created_at         TEXT    NOT NULL,
  updated_at         TEXT    NOT NULL
) STRICT;
CREATE INDEX business_licenses_citizen ON business_licenses (citizen_id, id);
CREATE INDEX business_licenses_expiry ON business_licenses (status, expires_at);

-- A copy of auth's citizens, written only by the sync-role handler of gov.auth.citizen
-- (and its bootstrap); an older event_version never overwrites a newer one.
CREATE TABLE citizen_refs (
  citizen_id        INTEGER PRIMARY KEY,
  name              TEXT,
  email             TEXT,
  identity_verified INTEGER NOT NULL DEFAULT 0,
  is_active         INTEGER NOT NULL DEFAULT 1,
  event_version     INTEGER NOT NULL,
  last_synced_at    TEXT    NOT NULL
) STRICT;
