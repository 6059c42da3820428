-- The auth module's tables (DESIGN.md §2): identities, access control, sessions, audit.
-- Times are UTC text in the bus's format (2026-11-21T10:30:00.123Z), which sorts.
-- Referential rules (a role exists, a department exists) are checked by the service on
-- the module's single writer; SQLite's foreign keys are not switched on.

CREATE TABLE departments (
  code          TEXT    PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 32),
  name          TEXT    NOT NULL,
  event_version INTEGER NOT NULL DEFAULT 1,
  created_at    TEXT    NOT NULL,
  updated_at    TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

-- Citizens register themselves. Deleting is soft (deleted_at, is_active = 0): the row
-- stays for the audit trail and so caches can be told. national_id is kept only sealed
-- (libsodium secretbox, key outside the database). change_seq orders changes across
-- citizens for resync (auth::Api::citizens_since).
CREATE TABLE citizens (
  id                  INTEGER PRIMARY KEY,
  email               TEXT    NOT NULL,
  password_hash       TEXT    NOT NULL,
  name                TEXT    NOT NULL,
  phone               TEXT,
  address             TEXT,
  city                TEXT,
  postal_code         TEXT,
  national_id_sealed  BLOB,
  email_verified      INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
  identity_verified   INTEGER NOT NULL DEFAULT 0 CHECK (identity_verified IN (0, 1)),
  is_active           INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  event_version       INTEGER NOT NULL DEFAULT 1,
  change_seq          INTEGER NOT NULL,
  created_at          TEXT    NOT NULL,
  updated_at          TEXT    NOT NULL,
  deleted_at          TEXT
) STRICT;
CREATE UNIQUE INDEX citizens_active_email ON citizens (email) WHERE deleted_at IS NULL;
CREATE INDEX citizens_change_seq ON citizens (change_seq);
CREATE INDEX citizens_name ON citizens (name COLLATE NOCASE);

CREATE TABLE employees (
  id              INTEGER PRIMARY KEY,
  email           TEXT    NOT NULL UNIQUE,
  password_hash   TEXT    NOT NULL,
  name            TEXT    NOT NULL,
  department_code TEXT,
  is_active       INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  event_version   INTEGER NOT NULL DEFAULT 1,
  created_at      TEXT    NOT NULL,
  updated_at      TEXT    NOT NULL
) STRICT;

CREATE TABLE roles (
  name        TEXT PRIMARY KEY,
  description TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE permissions (
  name        TEXT PRIMARY KEY,
  description TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE role_permissions (
  role       TEXT NOT NULL,
  permission TEXT NOT NULL,
  PRIMARY KEY (role, permission)
) STRICT, WITHOUT ROWID;

CREATE TABLE user_roles (
  principal_kind TEXT    NOT NULL CHECK (principal_kind IN ('citizen', 'employee')),
  principal_id   INTEGER NOT NULL,
  role           TEXT    NOT NULL,
  PRIMARY KEY (principal_kind, principal_id, role)
) STRICT, WITHOUT ROWID;

-- Only a token's SHA-256 is stored; the token itself exists only at the client.
CREATE TABLE sessions (
  token_hash     TEXT    PRIMARY KEY,
  principal_kind TEXT    NOT NULL CHECK (principal_kind IN ('citizen', 'employee')),
  principal_id   INTEGER NOT NULL,
  created_at     TEXT    NOT NULL,
  expires_at     TEXT    NOT NULL,
  revoked_at     TEXT,
  client_ip      TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_principal ON sessions (principal_kind, principal_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Who did or read what, when and why: every national id read, role change, deletion
-- and verification.
CREATE TABLE audit_log (
  id             INTEGER PRIMARY KEY,
  at             TEXT NOT NULL,
  actor          TEXT NOT NULL,  -- "employee:7", "citizen:42", "module:revenue", "cli"
  action         TEXT NOT NULL,  -- "citizen.national_id.read", "employee.roles.set", ...
  subject        TEXT NOT NULL,  -- "citizen:42"
  purpose        TEXT,
  correlation_id TEXT,
  detail         TEXT
) STRICT;
CREATE INDEX audit_log_subject ON audit_log (subject, at);

INSERT INTO permissions (name, description) VALUES
  ('*',                  'everything (administrators)'),
  ('auth:admin',         'manage departments, employees and roles'),
  ('citizens:read',      'read any citizen''s record'),
  ('citizens:write',     'change any citizen''s contact data'),
  ('citizens:delete',    'delete any citizen''s account'),
  ('citizens:verify',    'mark a citizen''s email or identity as verified'),
  ('citizens:sensitive', 'read a citizen''s national id, for a stated purpose (audited)'),
  ('permits:apply',      'submit permit applications'),
  ('permits:review',     'review and decide permit applications of one''s department'),
  ('permits:inspect',    'schedule and record inspections'),
  ('revenue:*',          'everything in revenue'),
  ('revenue:pay',        'pay one''s own invoices'),
  ('parks:*',            'everything in parks'),
  ('parks:book',         'book park facilities');

INSERT INTO roles (name, description) VALUES
  ('admin',            'administrator: everything'),
  ('citizen',          'a registered citizen'),
  ('clerk',            'front desk: reads, corrects and verifies citizens'),
  ('permits_reviewer', 'reviews permit applications of their department'),
  ('revenue_clerk',    'revenue staff'),
  ('parks_staff',      'parks staff');

INSERT INTO role_permissions (role, permission) VALUES
  ('admin', '*'),
  ('citizen', 'permits:apply'), ('citizen', 'revenue:pay'), ('citizen', 'parks:book'),
  ('clerk', 'citizens:read'), ('clerk', 'citizens:write'), ('clerk', 'citizens:verify'),
  ('permits_reviewer', 'permits:review'), ('permits_reviewer', 'permits:inspect'),
  ('permits_reviewer', 'citizens:read'),
  ('revenue_clerk', 'revenue:*'), ('revenue_clerk', 'citizens:read'), ('revenue_clerk', 'citizens:sensitive'),
  ('parks_staff', 'parks:*');
