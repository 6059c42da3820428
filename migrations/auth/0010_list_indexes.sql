-- Keyset pagination (issue 24 §1): GET /citizens?email= finds deleted citizens too, which
-- the unique citizens_active_email index leaves out.
CREATE INDEX citizens_email ON citizens (email);
-- The session sweep deletes expired or revoked sessions; the start-up key check and the
-- national id digest backfill look for sealed national ids: each through an index, not a
-- read of every session or citizen.
CREATE INDEX sessions_revoked ON sessions (revoked_at);
CREATE INDEX citizens_sealed ON citizens (id) WHERE national_id_sealed IS NOT NULL;
CREATE INDEX citizens_digest_backfill ON citizens (id)
  WHERE national_id_sealed IS NOT NULL AND national_id_digest IS NULL AND deleted_at IS NULL;
