-- The outbox's claim becomes a HOT update (see docs/benchmarks.md, "Where a batch's time
-- goes"). A claim sets `status = 'sending'` and the lease; while `status` was read by an
-- index (`mail_deliveries_by_status`, and the predicate of the partial claim index),
-- every claim wrote a new row version and an entry in each of the table's five indexes,
-- and the WAL flush of those writes was most of a batch's cost with fsync on. Now no
-- index reads a column the claim changes:
--
-- * `done` marks the mails no claim may take again (sent or dead). Only a finish (to
--   `sent` or `dead`) and an admin's retry of a dead mail change it, so the claim index
--   is partial on it instead of on `status`.
-- * `mail_deliveries_by_status` goes. The admin outbox's status filter reads the
--   listing index (`created_at, id`) and filters; the purge of old sent mail gets an
--   index of its own, on `sent_at`, which only a finish sets.
-- * Pages keep a fifth free (`fillfactor = 80`) so that a claimed row's new version fits
--   beside the old one, which a HOT update needs. Pages written before this migration
--   are full; they free up as the purge removes old mail.
ALTER TABLE mail_deliveries ADD COLUMN done boolean NOT NULL DEFAULT false;
UPDATE mail_deliveries SET done = true WHERE status IN ('sent', 'dead');
ALTER TABLE mail_deliveries
    ADD CONSTRAINT mail_deliveries_done CHECK (done = (status IN ('sent', 'dead')));
ALTER TABLE mail_deliveries SET (fillfactor = 80);

DROP INDEX mail_deliveries_claim;
CREATE INDEX mail_deliveries_claim ON mail_deliveries (next_attempt_at, created_at, id)
    WHERE NOT done;
DROP INDEX mail_deliveries_by_status;
CREATE INDEX mail_deliveries_sent ON mail_deliveries (sent_at) WHERE sent_at IS NOT NULL;
