-- Priced programs go through the booking saga (issue 28 §3): an enrollment in a priced
-- program holds its place `pending_payment` until hold_expires_at, revenue opens its
-- invoice (enrollment.requested), payment.completed makes it `enrolled`; unpaid, it is
-- released and the first on the waitlist is offered the place. The columns are the
-- booking's (0001, 0002); a program has a start, from which the refund cutoff counts.
ALTER TABLE programs ADD COLUMN starts_at TEXT;

-- A CHECK cannot be changed in place: the table is rebuilt with the new status and
-- columns. Enrollments made before this were never invoiced: amount 0 (free).
CREATE TABLE enrollments_rebuilt (
  id              INTEGER PRIMARY KEY,
  program_id      INTEGER NOT NULL REFERENCES programs (id),
  citizen_id      INTEGER NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('pending_payment', 'enrolled', 'waitlisted', 'cancelled')),
  amount_cents    INTEGER NOT NULL DEFAULT 0 CHECK (amount_cents >= 0),
  currency        TEXT    NOT NULL,
  hold_expires_at TEXT,
  invoice_id      INTEGER,
  payment_id      INTEGER,
  cancel_reason   TEXT,
  cancelled_by    TEXT CHECK (cancelled_by IN ('citizen', 'staff', 'system')),
  cancelled_by_id INTEGER,
  cancelled_at    TEXT,
  refund          TEXT CHECK (refund IN ('full', 'none')),
  event_version   INTEGER NOT NULL DEFAULT 1,
  created_at      TEXT    NOT NULL,
  updated_at      TEXT    NOT NULL
) STRICT;
INSERT INTO enrollments_rebuilt (id, program_id, citizen_id, status, currency, created_at, updated_at)
  SELECT e.id, e.program_id, e.citizen_id, e.status, p.currency, e.created_at, e.updated_at
  FROM enrollments e JOIN programs p ON p.id = e.program_id;
DROP TABLE enrollments;
ALTER TABLE enrollments_rebuilt RENAME TO enrollments;
CREATE UNIQUE INDEX enrollments_one_active ON enrollments (program_id, citizen_id) WHERE status <> 'cancelled';
CREATE INDEX enrollments_program ON enrollments (program_id, status, id);
CREATE INDEX enrollments_citizen ON enrollments (citizen_id, status);
CREATE INDEX enrollments_holds ON enrollments (hold_expires_at) WHERE status = 'pending_payment';

-- Never over capacity, counting the places held for a payment, held by the file too.
CREATE TRIGGER enrollments_capacity BEFORE INSERT ON enrollments
WHEN NEW.status IN ('enrolled', 'pending_payment')
BEGIN
  SELECT RAISE(ABORT, 'the program is full')
   WHERE (SELECT count(*) FROM enrollments WHERE program_id = NEW.program_id
                                            AND status IN ('enrolled', 'pending_payment'))
         >= (SELECT capacity FROM programs WHERE id = NEW.program_id);
END;
CREATE TRIGGER enrollments_capacity_update BEFORE UPDATE OF status ON enrollments
WHEN NEW.status IN ('enrolled', 'pending_payment') AND OLD.status NOT IN ('enrolled', 'pending_payment')
BEGIN
  SELECT RAISE(ABORT, 'the program is full')
   WHERE (SELECT count(*) FROM enrollments WHERE program_id = NEW.program_id
                                            AND status IN ('enrolled', 'pending_payment'))
         >= (SELECT capacity FROM programs WHERE id = NEW.program_id);
END;
-- No priced enrollment is enrolled without a payment, and a paid one is never cancelled
-- without a recorded refund decision (the booking's rules, 0001 and 0002).
CREATE TRIGGER enrollments_paid_before_enrolled_insert BEFORE INSERT ON enrollments
WHEN NEW.status = 'enrolled' AND NEW.amount_cents > 0 AND NEW.payment_id IS NULL
BEGIN
  SELECT RAISE(ABORT, 'a priced enrollment is enrolled only with a completed payment');
END;
CREATE TRIGGER enrollments_paid_before_enrolled BEFORE UPDATE OF status ON enrollments
WHEN NEW.status = 'enrolled' AND NEW.amount_cents > 0 AND NEW.payment_id IS NULL
BEGIN
  SELECT RAISE(ABORT, 'a priced enrollment is enrolled only with a completed payment');
END;
CREATE TRIGGER enrollments_paid_cancellation_decided BEFORE UPDATE OF status ON enrollments
WHEN NEW.status = 'cancelled' AND OLD.status <> 'cancelled' AND NEW.payment_id IS NOT NULL
     AND (NEW.refund IS NULL OR NEW.cancelled_by IS NULL OR NEW.cancelled_at IS NULL)
BEGIN
  SELECT RAISE(ABORT, 'a paid enrollment is cancelled only with a recorded refund decision');
END;
