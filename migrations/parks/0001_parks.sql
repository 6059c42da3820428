-- The parks module's tables (DESIGN.md §2): facilities, programs with their enrollments,
-- and bookings it owns, and a read-only copy of auth's citizens kept by events. Times are
-- UTC RFC 3339 text (platform/time.hpp), which compares in time order.

-- opening_hours: {"mon": {"open": "08:00", "close": "20:00"}, ...} in the facility's
-- IANA time zone; a weekday that is absent is closed.
CREATE TABLE facilities (
  id                 INTEGER PRIMARY KEY,
  name               TEXT    NOT NULL,
  kind               TEXT    NOT NULL,
  capacity           INTEGER NOT NULL CHECK (capacity > 0),
  hourly_price_cents INTEGER NOT NULL CHECK (hourly_price_cents >= 0),
  currency           TEXT    NOT NULL CHECK (length(currency) = 3),
  time_zone          TEXT    NOT NULL,
  opening_hours      TEXT    NOT NULL,
  is_active          INTEGER NOT NULL DEFAULT 1,
  event_version      INTEGER NOT NULL DEFAULT 1,
  created_at         TEXT    NOT NULL,
  updated_at         TEXT    NOT NULL
) STRICT;

-- status: pending_payment (priced: the slot is held until hold_expires_at) -> confirmed
-- (free at once; priced on payment.completed) -> cancelled (by the citizen or staff, or
-- the hold expired).
CREATE TABLE bookings (
  id              INTEGER PRIMARY KEY,
  facility_id     INTEGER NOT NULL REFERENCES facilities (id),
  citizen_id      INTEGER NOT NULL,
  starts_at       TEXT    NOT NULL,
  ends_at         TEXT    NOT NULL CHECK (ends_at > starts_at),
  status          TEXT    NOT NULL CHECK (status IN ('pending_payment', 'confirmed', 'cancelled')),
  amount_cents    INTEGER NOT NULL CHECK (amount_cents >= 0),
  currency        TEXT    NOT NULL,
  hold_expires_at TEXT,
  invoice_id      INTEGER,
  payment_id      INTEGER,
  cancel_reason   TEXT,
  event_version   INTEGER NOT NULL DEFAULT 1,
  created_at      TEXT    NOT NULL,
  updated_at      TEXT    NOT NULL
) STRICT;
CREATE INDEX bookings_facility ON bookings (facility_id, starts_at) WHERE status <> 'cancelled';
CREATE INDEX bookings_citizen ON bookings (citizen_id, id);
CREATE INDEX bookings_holds ON bookings (hold_expires_at) WHERE status = 'pending_payment';

-- The booking invariants, held by the file whatever code writes it: no two active
-- bookings of a facility overlap, and no priced booking is confirmed without a payment.
-- A booking lasts at most a day (max_booking_hours ≤ 24), so only those starting in the
-- day before can overlap: the index then reads a day of bookings, not all of them.
CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings
WHEN NEW.status <> 'cancelled'
BEGIN
  SELECT RAISE(ABORT, 'booking overlaps an active booking of the facility')
   WHERE EXISTS (SELECT 1 FROM bookings b
                  WHERE b.facility_id = NEW.facility_id AND b.status <> 'cancelled'
                    AND b.starts_at > strftime('%Y-%m-%dT%H:%M:%fZ', NEW.starts_at, '-1 day')
                    AND b.starts_at < NEW.ends_at AND NEW.starts_at < b.ends_at);
END;
CREATE TRIGGER bookings_no_overlap_update BEFORE UPDATE OF status, starts_at, ends_at ON bookings
WHEN NEW.status <> 'cancelled'
BEGIN
  SELECT RAISE(ABORT, 'booking overlaps an active booking of the facility')
   WHERE EXISTS (SELECT 1 FROM bookings b
                  WHERE b.facility_id = NEW.facility_id AND b.status <> 'cancelled' AND b.id <> NEW.id
                    AND b.starts_at > strftime('%Y-%m-%dT%H:%M:%fZ', NEW.starts_at, '-1 day')
                    AND b.starts_at < NEW.ends_at AND NEW.starts_at < b.ends_at);
END;
CREATE TRIGGER bookings_paid_before_confirmed BEFORE UPDATE OF status ON bookings
WHEN NEW.status = 'confirmed' AND NEW.amount_cents > 0 AND NEW.payment_id IS NULL
BEGIN
  SELECT RAISE(ABORT, 'a priced booking is confirmed only with a completed payment');
END;

-- schedule: when the classes meet, as text for people ("Tuesdays 18:00-19:00").
CREATE TABLE programs (
  id            INTEGER PRIMARY KEY,
  facility_id   INTEGER REFERENCES facilities (id),
  name          TEXT    NOT NULL,
  schedule      TEXT    NOT NULL,
  capacity      INTEGER NOT NULL CHECK (capacity > 0),
  price_cents   INTEGER NOT NULL CHECK (price_cents >= 0),
  currency      TEXT    NOT NULL,
  is_active     INTEGER NOT NULL DEFAULT 1,
  created_at    TEXT    NOT NULL,
  updated_at    TEXT    NOT NULL
) STRICT;

-- status: enrolled (within capacity) | waitlisted (in `position` order) | cancelled.
CREATE TABLE enrollments (
  id         INTEGER PRIMARY KEY,
  program_id INTEGER NOT NULL REFERENCES programs (id),
  citizen_id INTEGER NOT NULL,
  status     TEXT    NOT NULL CHECK (status IN ('enrolled', 'waitlisted', 'cancelled')),
  created_at TEXT    NOT NULL,
  updated_at TEXT    NOT NULL
) STRICT;
CREATE UNIQUE INDEX enrollments_one_active ON enrollments (program_id, citizen_id) WHERE status <> 'cancelled';
CREATE INDEX enrollments_program ON enrollments (program_id, status, id);
-- Never over capacity, held by the file too.
CREATE TRIGGER enrollments_capacity BEFORE INSERT ON enrollments
WHEN NEW.status = 'enrolled'
BEGIN
  SELECT RAISE(ABORT, 'the program is full')
   WHERE (SELECT count(*) FROM enrollments WHERE program_id = NEW.program_id AND status = 'enrolled')
         >= (SELECT capacity FROM programs WHERE id = NEW.program_id);
END;
CREATE TRIGGER enrollments_capacity_update BEFORE UPDATE OF status ON enrollments
WHEN NEW.status = 'enrolled' AND OLD.status <> 'enrolled'
BEGIN
  SELECT RAISE(ABORT, 'the program is full')
   WHERE (SELECT count(*) FROM enrollments WHERE program_id = NEW.program_id AND status = 'enrolled')
         >= (SELECT capacity FROM programs WHERE id = NEW.program_id);
END;

CREATE TABLE citizen_refs (
  citizen_id        INTEGER PRIMARY KEY,
  name              TEXT,
  email             TEXT,
  is_active         INTEGER NOT NULL DEFAULT 1,
  event_version     INTEGER NOT NULL,
  last_synced_at    TEXT    NOT NULL
) STRICT;
