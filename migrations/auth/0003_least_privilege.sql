-- Least privilege for staff (issue 14): a permits reviewer sees applicants through the
-- applications of their department (permits' citizen_refs), and revenue staff will see
-- the citizens of their invoices through revenue's own cache; neither needs to read every
-- citizen's full record in auth. Reading any citizen stays with the front desk (clerk)
-- and administrators. The clerk of revenue keeps citizens:sensitive (tax records read
-- the national id through auth's audited Api, for a stated purpose).
DELETE FROM role_permissions
 WHERE role IN ('permits_reviewer', 'revenue_clerk') AND permission = 'citizens:read';
