-- A department auth deactivated takes no new applications (issue 26 §2); its existing
-- ones stay visible and reviewable. Kept from gov.auth.department snapshots (is_active).
ALTER TABLE department_refs ADD COLUMN is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1));
