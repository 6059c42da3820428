-- The key check value of auth.key (issue 21): a MAC of a fixed text under a subkey of
-- the key that sealed this file's national ids, written when auth first starts with a
-- key. At every start the key file is checked against it, so a missing, wrong or foreign
-- key is found before anything is read through it or sealed with it.
CREATE TABLE key_check (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  check_value BLOB    NOT NULL,
  created_at  TEXT    NOT NULL
) STRICT;
