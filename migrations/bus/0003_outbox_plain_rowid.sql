-- The outbox without AUTOINCREMENT and without published_at (bench/README.md, 2026-11-22):
-- the sqlite_sequence update and the partial index cost a producer a third and a half of
-- its commit rate, and marking rows published rewrote every row a second time. The
-- feeds read the outbox directly from their cursors, so "published" said nothing they
-- did not already know; townhall_outbox_pending now comes from the cursors.
--
-- Ids must still never be reused, or a consumer whose cursor is past a reused id would
-- skip the new event. Without AUTOINCREMENT a new row gets max(id) + 1, so the pruner
-- never deletes the newest row. The row below keeps the old high-water mark when earlier
-- pruning emptied the table: a marker on a topic no subscription can match.
CREATE TABLE outbox_rowid (
  id             INTEGER PRIMARY KEY,
  topic          TEXT    NOT NULL,
  event_type     TEXT    NOT NULL,
  aggregate_type TEXT    NOT NULL,
  aggregate_id   TEXT    NOT NULL,
  event_version  INTEGER NOT NULL CHECK (event_version > 0),
  occurred_at    TEXT    NOT NULL,
  correlation_id TEXT,
  causation_id   TEXT,
  schema         INTEGER NOT NULL DEFAULT 1,
  data           TEXT    NOT NULL
);
INSERT INTO outbox_rowid (id, topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at,
                          correlation_id, causation_id, schema, data)
  SELECT id, topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, correlation_id,
         causation_id, schema, data
  FROM outbox ORDER BY id;
INSERT INTO outbox_rowid (id, topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, data)
  SELECT seq, 'bus.id_floor', 'bus.id_floor', 'bus', '', 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), '{}'
  FROM sqlite_sequence
  WHERE name = 'outbox' AND seq > (SELECT coalesce(max(id), 0) FROM outbox_rowid);
DROP TABLE outbox;
ALTER TABLE outbox_rowid RENAME TO outbox;
