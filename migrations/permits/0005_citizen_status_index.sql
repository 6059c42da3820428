-- A citizen's list filtered by status (?status= on their own applications): without it
-- SQLite searched applications_status and read every application in that status to find
-- the citizen's (bench/scale, issue 24 §4).
CREATE INDEX applications_citizen_status ON applications (citizen_id, status, id);
