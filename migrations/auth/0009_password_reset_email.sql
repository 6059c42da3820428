-- Password resets by email (issue 27 §7). A token a resident asks for with
-- POST /auth/password-reset/request is mailed by the notify module, which asks auth for it
-- when it sends (auth::Api::password_reset_mail): the token is in no event, outbox or
-- notify.db row. Until it is used or expires auth keeps it sealed with auth.key (as it
-- keeps national ids); lookups stay by its SHA-256. A token staff issue is shown once and
-- not kept (NULL).
ALTER TABLE password_resets ADD COLUMN sealed_token BLOB;
