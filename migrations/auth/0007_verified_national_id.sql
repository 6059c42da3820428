-- A national id is unique among verified identities only (issue 28.2). An unverified
-- claim blocks nobody: registering or changing to a national id someone else claims is
-- accepted and answered the same, so the answer is no oracle for whose id is on file and
-- a squatter cannot lock the owner out. Staff settle competing claims when they verify
-- one (a second verified holder is refused), seeing the others through the claims index.
DROP INDEX citizens_active_national_id;
CREATE UNIQUE INDEX citizens_verified_national_id ON citizens (national_id_digest)
  WHERE deleted_at IS NULL AND identity_verified = 1 AND national_id_digest IS NOT NULL;
CREATE INDEX citizens_national_id_claims ON citizens (national_id_digest)
  WHERE deleted_at IS NULL AND national_id_digest IS NOT NULL;
