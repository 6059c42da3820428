-- A keyed digest of each citizen's national id (BLAKE2b under a subkey of auth.key), so
-- that two active citizens can never hold the same id, checked without the plain value.
-- Rows sealed before this migration get their digest when auth starts (it needs the key).
ALTER TABLE citizens ADD COLUMN national_id_digest BLOB;
CREATE UNIQUE INDEX citizens_active_national_id ON citizens (national_id_digest)
  WHERE deleted_at IS NULL AND national_id_digest IS NOT NULL;
