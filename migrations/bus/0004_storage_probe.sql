-- One row a module's writer rewrites to learn whether its file takes writes again after
-- a storage failure (ModuleDb::probe, run by app/'s retry loop while the module reports
-- itself down): a read-only check would call a full disk healthy.
CREATE TABLE storage_probe (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  probed_at TEXT NOT NULL
);
