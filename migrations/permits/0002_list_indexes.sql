-- Keyset pagination (issue 24 §1): a department's list and the status filter read the
-- newest applications through an index in id order instead of sorting the whole set.
-- (applications_citizen and applications_department (department_code, status, id) serve
-- a citizen's list and a department's list by status.)
CREATE INDEX applications_department_id ON applications (department_code, id);
CREATE INDEX applications_status ON applications (status, id);
