-- Password reset tokens (issue 27 §7). Like sessions, only a token's SHA-256 is stored:
-- the token itself is shown once (to staff, or by `townhall admin reset-password`) and
-- exists only with whoever holds it. A token is single use (used_at, set in the same
-- transaction that sets the password) and short-lived (expires_at); issuing one deletes
-- the account's unused older ones. issued_by is the actor who issued it, for the audit.
CREATE TABLE password_resets (
  token_hash     TEXT    PRIMARY KEY,
  principal_kind TEXT    NOT NULL CHECK (principal_kind IN ('citizen', 'employee')),
  principal_id   INTEGER NOT NULL,
  issued_by      TEXT    NOT NULL,
  created_at     TEXT    NOT NULL,
  expires_at     TEXT    NOT NULL,
  used_at        TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX password_resets_principal ON password_resets (principal_kind, principal_id);
CREATE INDEX password_resets_expires ON password_resets (expires_at);
