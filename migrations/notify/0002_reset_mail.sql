-- Password reset emails (issue 27 §7): auth announces a reset (password_reset.requested)
-- and notify mails its token. Such an email has no notice in any inbox (an employee has
-- none, and a token does not belong in one), so notification_id becomes optional, and
-- its token is not stored here: secret_ref names the reset, and the sender asks auth for
-- the token (auth::Api::password_reset_mail) only when it sends, putting it in the body
-- at the "{token}" mark of the stored text. Exactly one of the two is set.
CREATE TABLE deliveries_v2 (
  id              INTEGER PRIMARY KEY,
  notification_id INTEGER UNIQUE REFERENCES notifications (id),
  secret_ref      TEXT,
  message_id      TEXT    NOT NULL UNIQUE,
  to_address      TEXT    NOT NULL,
  subject         TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TEXT    NOT NULL,
  last_error      TEXT,
  created_at      TEXT    NOT NULL,
  sent_at         TEXT,
  CHECK ((notification_id IS NULL) <> (secret_ref IS NULL))
) STRICT;
INSERT INTO deliveries_v2 (id, notification_id, message_id, to_address, subject, body, status, attempts,
                           next_attempt_at, last_error, created_at, sent_at)
  SELECT id, notification_id, message_id, to_address, subject, body, status, attempts, next_attempt_at, last_error,
         created_at, sent_at
  FROM deliveries ORDER BY id;
DROP TABLE deliveries;
ALTER TABLE deliveries_v2 RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_failed ON deliveries (id) WHERE status = 'failed';
