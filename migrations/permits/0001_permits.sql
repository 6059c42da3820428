-- The permits module's tables (DESIGN.md §2): applications, inspections and permits it
-- owns, and read-only copies of auth's citizens and departments kept by events.

-- status: fee_due (waiting for payment.completed of its invoice) -> under_review
-- (zero-fee types start here) -> approved | rejected.
CREATE TABLE applications (
  id               INTEGER PRIMARY KEY,
  citizen_id       INTEGER NOT NULL,
  permit_type      TEXT    NOT NULL,
  description      TEXT    NOT NULL,
  property_address TEXT    NOT NULL,
  department_code  TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('fee_due', 'under_review', 'approved', 'rejected')),
  fee_cents        INTEGER NOT NULL CHECK (fee_cents >= 0),
  currency         TEXT    NOT NULL,
  invoice_id       TEXT,   -- revenue's invoice, learnt from payment.completed
  decision_reason  TEXT,
  decided_by       INTEGER,
  event_version    INTEGER NOT NULL DEFAULT 1,
  submitted_at     TEXT    NOT NULL,
  updated_at       TEXT    NOT NULL,
  decided_at       TEXT
) STRICT;
CREATE INDEX applications_citizen ON applications (citizen_id, id);
CREATE INDEX applications_department ON applications (department_code, status, id);

CREATE TABLE inspections (
  id             INTEGER PRIMARY KEY,
  application_id INTEGER NOT NULL,
  scheduled_for  TEXT    NOT NULL,
  status         TEXT    NOT NULL CHECK (status IN ('scheduled', 'passed', 'failed')),
  notes          TEXT,
  scheduled_by   INTEGER NOT NULL,
  recorded_by    INTEGER,
  created_at     TEXT    NOT NULL,
  recorded_at    TEXT
) STRICT;
CREATE INDEX inspections_application ON inspections (application_id);

CREATE TABLE permits (
  id              INTEGER PRIMARY KEY,
  application_id  INTEGER NOT NULL UNIQUE,
  citizen_id      INTEGER NOT NULL,
  permit_type     TEXT    NOT NULL,
  department_code TEXT    NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('active', 'revoked')),
  event_version   INTEGER NOT NULL DEFAULT 1,
  issued_at       TEXT    NOT NULL,
  issued_by       INTEGER NOT NULL,
  revoked_at      TEXT,
  revoked_by      INTEGER,
  revoke_reason   TEXT
) STRICT;
CREATE INDEX permits_citizen ON permits (citizen_id);

-- Copies of auth's data, written only by the sync-role handlers of gov.auth.citizen and
-- gov.auth.department; an older event_version never overwrites a newer one.
CREATE TABLE citizen_refs (
  citizen_id        INTEGER PRIMARY KEY,
  name              TEXT,
  email             TEXT,
  phone             TEXT,
  address           TEXT,
  city              TEXT,
  postal_code       TEXT,
  email_verified    INTEGER NOT NULL DEFAULT 0,
  identity_verified INTEGER NOT NULL DEFAULT 0,
  is_active         INTEGER NOT NULL DEFAULT 1,
  event_version     INTEGER NOT NULL,
  last_synced_at    TEXT    NOT NULL
) STRICT;

CREATE TABLE department_refs (
  code           TEXT    PRIMARY KEY,
  name           TEXT    NOT NULL,
  event_version  INTEGER NOT NULL,
  last_synced_at TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
