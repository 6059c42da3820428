-- An operator may discard a dead letter (the event is not to be applied: it was bad, or
-- its effect was made by hand). It is kept, marked, like a replayed one; pending means
-- neither replayed nor discarded.
ALTER TABLE dead_letters ADD COLUMN discarded_at TEXT;
DROP INDEX dead_letters_pending;
CREATE INDEX dead_letters_pending ON dead_letters (subscription) WHERE replayed_at IS NULL AND discarded_at IS NULL;
