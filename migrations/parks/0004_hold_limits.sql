-- Holding priced places costs nothing until the hold ends, and an account costs nothing
-- to make (issue 28 §4): a priced hold now needs a verified email or identity, and the
-- unpaid holds made from one client address are capped.

-- citizen_refs keeps the two verification flags (compared by the consistency check like
-- its other columns). The rows written before this do not know them, so the cache is
-- rebuilt from auth: its rows and its subscription's bus position are dropped, and when
-- the consumer opens it reads auth's citizen events from the start, or bootstraps from
-- auth's Api when auth has pruned some (bus/src/apply.cpp, start_over). Nothing else in
-- parks reads citizen_refs.
ALTER TABLE citizen_refs ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1));
ALTER TABLE citizen_refs ADD COLUMN identity_verified INTEGER NOT NULL DEFAULT 0 CHECK (identity_verified IN (0, 1));
DELETE FROM citizen_refs;
DELETE FROM bus_cursors WHERE subscription = 'citizen_refs';
DELETE FROM processed_ranges WHERE subscription = 'citizen_refs';
DELETE FROM processed_events WHERE subscription = 'citizen_refs';

-- The client a hold was made from, as a keyed digest (BLAKE2b under client_digest_key,
-- of the address, an IPv6 one by its /64), never the address: counted against
-- max_unpaid_per_address while the hold is unpaid, and erased once it is paid, cancelled
-- or expired.
ALTER TABLE bookings ADD COLUMN client_digest TEXT;
ALTER TABLE enrollments ADD COLUMN client_digest TEXT;
CREATE INDEX bookings_client_holds ON bookings (client_digest) WHERE status = 'pending_payment';
CREATE INDEX enrollments_client_holds ON enrollments (client_digest) WHERE status = 'pending_payment';

-- The digest's key (libsodium's randombytes), made by the module's first start and kept,
-- so digests made before a restart are counted after it.
CREATE TABLE client_digest_key (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  key BLOB    NOT NULL CHECK (length(key) = 32)
) STRICT;
