-- Permit types and their fees as data owned by permits (issue 26.5). A change by an
-- administrator adds a version; the current one is the highest. An application records
-- the version it was submitted with, so its fee and whether it needs an inspection stay
-- what the applicant was told. The first start seeds version 1 of each type from the
-- registry's modules.permits.settings.permit_types.
CREATE TABLE permit_type_versions (
  permit_type         TEXT    NOT NULL,
  version             INTEGER NOT NULL CHECK (version >= 1),
  fee_cents           INTEGER NOT NULL CHECK (fee_cents >= 0),
  currency            TEXT    NOT NULL,
  inspection_required INTEGER NOT NULL CHECK (inspection_required IN (0, 1)),
  active              INTEGER NOT NULL CHECK (active IN (0, 1)),
  changed_by          INTEGER,  -- the administrator; NULL: seeded from the registry
  changed_at          TEXT    NOT NULL,
  PRIMARY KEY (permit_type, version)
) STRICT, WITHOUT ROWID;

-- NULL for applications submitted before this migration: they follow the type's first version.
ALTER TABLE applications ADD COLUMN permit_type_version INTEGER;

-- Reports (issue 26.3) read a range of submission times, for everyone or one department.
CREATE INDEX applications_submitted ON applications (submitted_at);
CREATE INDEX applications_department_submitted ON applications (department_code, submitted_at);
