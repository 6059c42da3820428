-- Parks' permissions (issue 12), spelled out like revenue's (0004): parks staff
-- (parks:*) manage facilities and programs and read every booking and enrollment.
INSERT INTO permissions (name, description) VALUES
  ('parks:read',   'read every booking and enrollment'),
  ('parks:manage', 'create and change facilities and programs, cancel any booking or enrollment');
