-- Revenue's permissions (issue 11). Citizens apply for business licenses and pay their
-- own invoices; revenue staff (revenue:*) read every invoice, tax record and license and
-- manage them. Spelled out so a role can be given one without the other.
INSERT INTO permissions (name, description) VALUES
  ('revenue:apply',  'apply for and renew one''s own business licenses'),
  ('revenue:read',   'read every invoice, payment, tax record and business license'),
  ('revenue:manage', 'record tax records, decide business licenses, run the expiry job');

INSERT INTO role_permissions (role, permission) VALUES ('citizen', 'revenue:apply');
