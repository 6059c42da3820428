-- The card processor's idempotency keys (issue 27 §1). The processor knew each charge,
-- settlement and refund by revenue's payment id; a revenue.db restored from an older
-- backup hands those ids out again, and the processor, whose records are not restored,
-- answered a new charge with the outcome of the old one that had the id: a good card
-- refused, a declining card recorded as paid with nothing charged. Each payment now
-- carries a random key for the processor (128 bits from libsodium, never derived from
-- anything a restore, a reinstall or another installation repeats), and each refund one
-- of its own, written in the transaction that asks for the refund so a retry repeats it.
-- The row id stays revenue's own.
--
-- Rows written before this migration keep the key the processor knew them by
-- ('payment-<id>', the simulator's ledger is converted to match), so a pending one is
-- still settled with its charge.
ALTER TABLE payments ADD COLUMN processor_key TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN refund_key TEXT;
UPDATE payments SET processor_key = 'payment-' || id;
UPDATE payments SET refund_key = 'refund-' || id WHERE status IN ('refund_pending', 'refunded');
CREATE UNIQUE INDEX payments_processor_key ON payments (processor_key);
CREATE UNIQUE INDEX payments_refund_key ON payments (refund_key) WHERE refund_key IS NOT NULL;
-- A payment without its key would reach the processor under '' (ALTER TABLE cannot add
-- the column NOT NULL without a default, nor a CHECK the old rows fail before the update).
CREATE TRIGGER payments_need_a_processor_key BEFORE INSERT ON payments
  WHEN NEW.processor_key = '' OR length(NEW.processor_key) < 16
  BEGIN SELECT RAISE(ABORT, 'a payment needs its processor key'); END;
CREATE TRIGGER payments_keep_their_processor_key BEFORE UPDATE OF processor_key ON payments
  WHEN NEW.processor_key <> OLD.processor_key
  BEGIN SELECT RAISE(ABORT, 'a payment''s processor key never changes'); END;
CREATE TRIGGER payments_refund_needs_a_refund_key BEFORE UPDATE OF status ON payments
  WHEN NEW.status IN ('refund_pending', 'refunded') AND NEW.refund_key IS NULL
  BEGIN SELECT RAISE(ABORT, 'a refund needs its refund key'); END;
