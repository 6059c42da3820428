-- notify.db (DESIGN.md §2): each citizen's inbox, their email preferences, the email
-- outbox (deliveries) and the licence reminders notify schedules itself; citizen_refs is
-- its cache of auth's citizens (name, email, whether the email is verified).

-- One notice per (event, citizen, kind): a replayed or redelivered event adds nothing.
CREATE TABLE notifications (
  id           INTEGER PRIMARY KEY,
  citizen_id   INTEGER NOT NULL CHECK (citizen_id > 0),
  kind         TEXT    NOT NULL,
  title        TEXT    NOT NULL,
  body         TEXT    NOT NULL,
  source_event TEXT    NOT NULL,
  created_at   TEXT    NOT NULL,
  read_at      TEXT,
  UNIQUE (source_event, citizen_id, kind)
) STRICT;
CREATE INDEX notifications_inbox ON notifications (citizen_id, id);
CREATE INDEX notifications_unread ON notifications (citizen_id, id) WHERE read_at IS NULL;

-- Email on or off per kind; no row: on.
CREATE TABLE preferences (
  citizen_id INTEGER NOT NULL,
  kind       TEXT    NOT NULL,
  email      INTEGER NOT NULL CHECK (email IN (0, 1)),
  updated_at TEXT    NOT NULL,
  PRIMARY KEY (citizen_id, kind)
) STRICT, WITHOUT ROWID;

-- The email outbox: written in the transaction that writes the notice, sent by the
-- sender after the commit. message_id is derived from the notice's (event, citizen,
-- kind), so a resend after a crash between the SMTP server's acceptance and the commit
-- carries the same Message-ID. pending -> sent, or failed after max_attempts.
CREATE TABLE deliveries (
  id              INTEGER PRIMARY KEY,
  notification_id INTEGER NOT NULL UNIQUE REFERENCES notifications (id),
  message_id      TEXT    NOT NULL UNIQUE,
  to_address      TEXT    NOT NULL,
  subject         TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TEXT    NOT NULL,
  last_error      TEXT,
  created_at      TEXT    NOT NULL,
  sent_at         TEXT
) STRICT;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_failed ON deliveries (id) WHERE status = 'failed';

-- "Your licence expires in N days": one per licence and term, due N days before the
-- expiry revenue's licence events announce; replaced when the licence is renewed,
-- dropped when it expires, lapses or is rejected.
CREATE TABLE license_reminders (
  license_id    INTEGER PRIMARY KEY,
  citizen_id    INTEGER NOT NULL,
  business_name TEXT    NOT NULL,
  term          INTEGER NOT NULL,
  expires_at    TEXT    NOT NULL,
  due_at        TEXT    NOT NULL
) STRICT;
CREATE INDEX license_reminders_due ON license_reminders (due_at);

CREATE TABLE citizen_refs (
  citizen_id     INTEGER PRIMARY KEY,
  name           TEXT,
  email          TEXT,
  email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
  is_active      INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  event_version  INTEGER NOT NULL,
  last_synced_at TEXT    NOT NULL
) STRICT;
