-- Lists of enrollments (issue 25): a program's for parks staff and a citizen's own, read
-- in id order by keyset pagination through an index in that order (enrollments_program
-- and enrollments_citizen have the status first).
CREATE INDEX enrollments_program_list ON enrollments (program_id, id);
CREATE INDEX enrollments_citizen_list ON enrollments (citizen_id, id);
