-- Who cancelled a booking, when, and what became of its payment (issue 21 §3.1):
-- cancelled_by  citizen | staff | system (the hold expired, or revenue refused the invoice)
-- cancelled_by_id  the citizen's or staff member's id; null for the system
-- refund  full | none: the decision for a booking that was paid when cancelled (the
--         refund policy for its citizen, an explicit decision for staff); null when
--         nothing had been paid
ALTER TABLE bookings ADD COLUMN cancelled_by TEXT CHECK (cancelled_by IN ('citizen', 'staff', 'system'));
ALTER TABLE bookings ADD COLUMN cancelled_by_id INTEGER;
ALTER TABLE bookings ADD COLUMN cancelled_at TEXT;
ALTER TABLE bookings ADD COLUMN refund TEXT CHECK (refund IN ('full', 'none'));

-- Held by the file whatever code writes it: a paid booking is never cancelled without a
-- recorded refund decision.
CREATE TRIGGER bookings_paid_cancellation_decided BEFORE UPDATE OF status ON bookings
WHEN NEW.status = 'cancelled' AND OLD.status <> 'cancelled' AND NEW.payment_id IS NOT NULL
     AND (NEW.refund IS NULL OR NEW.cancelled_by IS NULL OR NEW.cancelled_at IS NULL)
BEGIN
  SELECT RAISE(ABORT, 'a paid booking is cancelled only with a recorded refund decision');
END;
