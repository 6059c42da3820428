-- Staff lifecycle and the audit log through the API (issue 26 §2, §4).
-- A department can be deactivated: no new permit applications go to it (permits keeps the
-- flag in its department_refs), its existing ones stay visible and reviewable.
ALTER TABLE departments ADD COLUMN is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1));

-- Auditors read the audit log (GET /auth/audit) and nothing else.
INSERT INTO permissions (name, description) VALUES ('audit:read', 'read the audit log');
INSERT INTO roles (name, description) VALUES ('auditor', 'reads the audit log');
INSERT INTO role_permissions (role, permission) VALUES ('auditor', 'audit:read');

-- GET /auth/employees: each filter and the ?q= search (email prefix, name prefix) through
-- an index, in id order.
CREATE INDEX employees_department ON employees (department_code);
CREATE INDEX employees_active ON employees (is_active);
CREATE INDEX employees_name ON employees (name COLLATE NOCASE);
CREATE INDEX user_roles_role ON user_roles (role, principal_kind, principal_id);

-- GET /auth/audit, newest first (at, id): by actor, by action, by subject (the existing
-- audit_log_subject (subject, at)) and by time alone; the retention job deletes by time.
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
