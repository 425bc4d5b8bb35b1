-- The retention sweeper's purges now run a batch at a time (`PgStore::purge_in_batches`:
-- up to a thousand rows per statement, taken in order with `FOR UPDATE SKIP LOCKED`, until
-- a batch comes back short), so each batch must find its rows by index, not by reading the
-- table. Sessions ended by expiry or revocation, and inbound mail by its creation (a mail
-- done before an instant was received and created before it: the bound is added to the
-- purge's condition, as the outbox's purge bounds `created_at`), had none. None of these
-- columns changes once written (`revoked_at` once), so no update loses its in-place (HOT)
-- path.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX inbound_mail_by_creation ON inbound_mail (created_at);
CREATE INDEX mail_in_sends_by_time_alone ON mail_in_sends (at);
