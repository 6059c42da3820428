-- What a subscription has applied, one row per applied batch instead of one per event
-- (bench/README.md: the per-event row halved catch-up speed). Every event of `source`
-- with first_id <= id <= last_id was handled in the transaction that wrote this row
-- (applied, or skipped as unwanted, stale, duplicate or invalid), except the ids in
-- `held`: events of lanes that were backing off or failed in that batch. It commits with
-- the handlers' writes and the cursor, so after a crash or a lost cursor an event is
-- recognised as done. processed_events stays for dead-letter replays.
CREATE TABLE processed_ranges (
  id           INTEGER PRIMARY KEY,
  subscription TEXT    NOT NULL,
  source       TEXT    NOT NULL,
  first_id     INTEGER NOT NULL,
  last_id      INTEGER NOT NULL,
  held         TEXT    NOT NULL DEFAULT '',  -- comma-separated outbox ids not handled
  processed_at TEXT    NOT NULL,
  CHECK (first_id <= last_id)
);
CREATE INDEX processed_ranges_feed ON processed_ranges (subscription, source, last_id);
