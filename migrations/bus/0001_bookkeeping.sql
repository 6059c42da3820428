-- The bus's tables, present in every module file (DESIGN.md §2, §4).

-- Events this module publishes, written in the same transaction as the state change.
-- AUTOINCREMENT: ids are never reused after pruning, so event ids stay unique.
CREATE TABLE outbox (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  topic          TEXT    NOT NULL,
  event_type     TEXT    NOT NULL,
  aggregate_type TEXT    NOT NULL,
  aggregate_id   TEXT    NOT NULL,
  event_version  INTEGER NOT NULL CHECK (event_version > 0),
  occurred_at    TEXT    NOT NULL,
  correlation_id TEXT,
  causation_id   TEXT,
  schema         INTEGER NOT NULL DEFAULT 1,
  data           TEXT    NOT NULL,
  published_at   TEXT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- How far each of this module's subscriptions has read each source's outbox.
CREATE TABLE bus_cursors (
  subscription TEXT    NOT NULL,
  source       TEXT    NOT NULL,
  position     INTEGER NOT NULL DEFAULT 0,
  updated_at   TEXT    NOT NULL,
  PRIMARY KEY (subscription, source)
) WITHOUT ROWID;

-- Events already applied by a subscription (effectively-once delivery).
CREATE TABLE processed_events (
  subscription TEXT NOT NULL,
  event_id     TEXT NOT NULL,
  processed_at TEXT NOT NULL,
  PRIMARY KEY (subscription, event_id)
) WITHOUT ROWID;

-- Events a subscription gave up on after its retries, kept for inspection and replay.
CREATE TABLE dead_letters (
  id              INTEGER PRIMARY KEY,
  subscription    TEXT    NOT NULL,
  event_id        TEXT    NOT NULL,
  event           TEXT    NOT NULL,
  error           TEXT    NOT NULL,
  attempts        INTEGER NOT NULL,
  first_failed_at TEXT    NOT NULL,
  last_failed_at  TEXT    NOT NULL,
  replayed_at     TEXT
);
CREATE INDEX dead_letters_pending ON dead_letters (subscription) WHERE replayed_at IS NULL;
