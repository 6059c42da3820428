-- A consumer's batch record is one entry of one b-tree (issue 24, design note 67): the
-- rowid table and its (subscription, source, last_id) index were two pages in every
-- batch's commit, a quarter of a cache consumer's WAL. The key serves what the index
-- served (a feed's ranges above its cursor) and orders them as they were recorded.
-- A batch that ends where an earlier one of the same first id ended records the same
-- range again, knowing more: the newer record wins (bus/src/bookkeeping.cpp).
CREATE TABLE processed_ranges_keyed (
  subscription TEXT    NOT NULL,
  source       TEXT    NOT NULL,
  last_id      INTEGER NOT NULL,
  first_id     INTEGER NOT NULL,
  held         TEXT    NOT NULL DEFAULT '',  -- comma-separated outbox ids not handled
  processed_at TEXT    NOT NULL,
  CHECK (first_id <= last_id),
  PRIMARY KEY (subscription, source, last_id, first_id)
) WITHOUT ROWID;
INSERT INTO processed_ranges_keyed (subscription, source, last_id, first_id, held, processed_at)
  SELECT subscription, source, last_id, first_id, held, processed_at FROM processed_ranges WHERE true ORDER BY id
  ON CONFLICT (subscription, source, last_id, first_id) DO UPDATE SET held = excluded.held,
    processed_at = excluded.processed_at;
DROP TABLE processed_ranges;
ALTER TABLE processed_ranges_keyed RENAME TO processed_ranges;
