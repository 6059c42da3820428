-- A revenue clerk refunds a completed payment (issue 25: POST /payments/{id}/refund): who
-- asked and why are kept on the payment, beside the refund key written with refund_pending.
-- A refund that parks asks for (a cancelled booking or enrollment) has neither.
ALTER TABLE payments ADD COLUMN refund_reason TEXT;
ALTER TABLE payments ADD COLUMN refunded_by INTEGER;
