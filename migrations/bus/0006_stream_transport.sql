-- The split deployment (issue 23 §2): a module's events also travel on its RabbitMQ
-- stream. How far this file's outbox was published (confirmed by the broker), so a
-- restarted publisher goes on from there and pruning never removes what was not sent;
-- one row, written by the publisher on the module's writer (relay role: UPDATE only).
CREATE TABLE bus_publications (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  published_up_to INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT
);
INSERT INTO bus_publications (id, published_up_to) VALUES (1, 0);
-- Where a subscription reading a remote source's stream attaches again: the stream offset
-- of the first event above its position, written in the transaction that writes the
-- position (NULL: a local source, or none known: attach at the stream's first offset).
ALTER TABLE bus_cursors ADD COLUMN stream_offset INTEGER;
