-- A signed-in account lists its own live sessions (issue 25, the portal's sessions page):
-- read in (created_at, token_hash) order by keyset pagination through this index.
CREATE INDEX sessions_principal_created ON sessions (principal_kind, principal_id, created_at, token_hash);
