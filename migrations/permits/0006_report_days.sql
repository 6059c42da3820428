-- The applications report by day (issue 24: a report's cost flat in the data). The report
-- read every application submitted in its range; it now reads these per-day counts, kept
-- by the triggers below in the same transaction as every write to applications (the write
-- path's commands, the bus's handlers, the CLI alike), and filled here from the rows an
-- existing installation has. `townhall check` compares them with the rows (design note 60).
--
-- One row per UTC day of submission, department, status and decision-time bucket:
--   bucket -1: not decided (decided_at IS NULL);
--   bucket  0: decided less than a second after submission;
--   bucket  b >= 1: decided between 1.02^(b-1) and 1.02^b seconds after submission.
-- The report's median time to decision is the middle bucket's geometric centre,
-- 1.02^(b-0.5) s (bucket 0: half a second): within 1 % of the exact median plus half a second.
CREATE TABLE application_days (
  day             TEXT    NOT NULL,  -- substr(submitted_at, 1, 10)
  department_code TEXT    NOT NULL,
  status          TEXT    NOT NULL,
  bucket          INTEGER NOT NULL CHECK (bucket >= -1),
  applications    INTEGER NOT NULL CHECK (applications > 0),
  PRIMARY KEY (day, department_code, status, bucket)
) STRICT, WITHOUT ROWID;
-- A department's report reads its own days only.
CREATE INDEX application_days_department ON application_days (department_code, day);

INSERT INTO application_days (day, department_code, status, bucket, applications)
SELECT substr(submitted_at, 1, 10), department_code, status,
       CASE WHEN decided_at IS NULL THEN -1
            WHEN (julianday(decided_at) - julianday(submitted_at)) * 86400.0 < 1.0 THEN 0
            ELSE 1 + CAST(floor(ln((julianday(decided_at) - julianday(submitted_at)) * 86400.0) / ln(1.02)) AS INTEGER)
       END,
       count(*)
FROM applications GROUP BY 1, 2, 3, 4;

CREATE TRIGGER applications_report_insert AFTER INSERT ON applications
BEGIN
  INSERT INTO application_days (day, department_code, status, bucket, applications)
  VALUES (substr(NEW.submitted_at, 1, 10), NEW.department_code, NEW.status,
          CASE WHEN NEW.decided_at IS NULL THEN -1
               WHEN (julianday(NEW.decided_at) - julianday(NEW.submitted_at)) * 86400.0 < 1.0 THEN 0
               ELSE 1 + CAST(floor(ln((julianday(NEW.decided_at) - julianday(NEW.submitted_at)) * 86400.0) / ln(1.02))
                             AS INTEGER)
          END, 1)
  ON CONFLICT DO UPDATE SET applications = applications + 1;
END;

-- Fires only when what the report groups by changed (every UPDATE of an application sets
-- its status and decided_at, most to the values they had).
CREATE TRIGGER applications_report_update
AFTER UPDATE OF submitted_at, department_code, status, decided_at ON applications
WHEN OLD.submitted_at IS NOT NEW.submitted_at OR OLD.department_code IS NOT NEW.department_code
     OR OLD.status IS NOT NEW.status OR OLD.decided_at IS NOT NEW.decided_at
BEGIN
  -- The old group loses the row: removed when it was its last, else one less.
  DELETE FROM application_days
  WHERE day = substr(OLD.submitted_at, 1, 10) AND department_code = OLD.department_code AND status = OLD.status
    AND bucket = CASE WHEN OLD.decided_at IS NULL THEN -1
                      WHEN (julianday(OLD.decided_at) - julianday(OLD.submitted_at)) * 86400.0 < 1.0 THEN 0
                      ELSE 1 + CAST(floor(ln((julianday(OLD.decided_at) - julianday(OLD.submitted_at)) * 86400.0)
                                          / ln(1.02)) AS INTEGER)
                 END AND applications = 1;
  UPDATE application_days SET applications = applications - 1
  WHERE day = substr(OLD.submitted_at, 1, 10) AND department_code = OLD.department_code AND status = OLD.status
    AND bucket = CASE WHEN OLD.decided_at IS NULL THEN -1
                      WHEN (julianday(OLD.decided_at) - julianday(OLD.submitted_at)) * 86400.0 < 1.0 THEN 0
                      ELSE 1 + CAST(floor(ln((julianday(OLD.decided_at) - julianday(OLD.submitted_at)) * 86400.0)
                                          / ln(1.02)) AS INTEGER)
                 END AND applications > 1;
  INSERT INTO application_days (day, department_code, status, bucket, applications)
  VALUES (substr(NEW.submitted_at, 1, 10), NEW.department_code, NEW.status,
          CASE WHEN NEW.decided_at IS NULL THEN -1
               WHEN (julianday(NEW.decided_at) - julianday(NEW.submitted_at)) * 86400.0 < 1.0 THEN 0
               ELSE 1 + CAST(floor(ln((julianday(NEW.decided_at) - julianday(NEW.submitted_at)) * 86400.0) / ln(1.02))
                             AS INTEGER)
          END, 1)
  ON CONFLICT DO UPDATE SET applications = applications + 1;
END;

CREATE TRIGGER applications_report_delete AFTER DELETE ON applications
BEGIN
  DELETE FROM application_days
  WHERE day = substr(OLD.submitted_at, 1, 10) AND department_code = OLD.department_code AND status = OLD.status
    AND bucket = CASE WHEN OLD.decided_at IS NULL THEN -1
                      WHEN (julianday(OLD.decided_at) - julianday(OLD.submitted_at)) * 86400.0 < 1.0 THEN 0
                      ELSE 1 + CAST(floor(ln((julianday(OLD.decided_at) - julianday(OLD.submitted_at)) * 86400.0)
                                          / ln(1.02)) AS INTEGER)
                 END AND applications = 1;
  UPDATE application_days SET applications = applications - 1
  WHERE day = substr(OLD.submitted_at, 1, 10) AND department_code = OLD.department_code AND status = OLD.status
    AND bucket = CASE WHEN OLD.decided_at IS NULL THEN -1
                      WHEN (julianday(OLD.decided_at) - julianday(OLD.submitted_at)) * 86400.0 < 1.0 THEN 0
                      ELSE 1 + CAST(floor(ln((julianday(OLD.decided_at) - julianday(OLD.submitted_at)) * 86400.0)
                                          / ln(1.02)) AS INTEGER)
                 END AND applications > 1;
END;
