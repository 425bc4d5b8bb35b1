-- Every leased queue gets a ready table (see docs/benchmarks.md and
-- galaxy-adapters/postgres/src/queue.rs). Until now each queue's claim index was a partial
-- index on the item table itself: a finish had to take its row out of that index, which
-- Postgres can only do by writing a whole new row version with a new entry in every index
-- of the table (and the claim, which changed `status`, did the same until 0012), and every
-- claim stepped over the rows other workers held. With fsync on, those index writes and
-- their WAL were most of what a claimed-and-finished item cost.
--
-- Now the claim index lives on a narrow ready table, one row `(id, due, created_at)` per
-- item a claim may take now or later: `due` is the item's due time while it waits and its
-- lease's expiry while it is leased. A claim moves the ready row to the lease's expiry; a
-- finish deletes it (or moves it to the next attempt's due time). The item tables keep
-- every item and its history, and no index on them reads a column a claim or a finish
-- changes, so both update item rows in place (HOT updates; `fillfactor` leaves room on
-- each page for the new version).

-- outbox ---------------------------------------------------------------------------------
CREATE TABLE mail_deliveries_ready (
    id         uuid PRIMARY KEY REFERENCES mail_deliveries (id) ON DELETE CASCADE,
    due        timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO mail_deliveries_ready (id, due, created_at)
    SELECT id, CASE WHEN status = 'sending' THEN COALESCE(lease_until, next_attempt_at)
        ELSE next_attempt_at END, created_at
    FROM mail_deliveries WHERE status IN ('pending', 'retrying', 'sending');
CREATE INDEX mail_deliveries_ready_claim ON mail_deliveries_ready (due, created_at, id);
-- The flag of 0012 only served the claim index on the item table.
DROP INDEX mail_deliveries_claim;
ALTER TABLE mail_deliveries DROP CONSTRAINT mail_deliveries_done;
ALTER TABLE mail_deliveries DROP COLUMN done;
-- The purge of old sent mail bounds `created_at` (a mail sent before an instant was created
-- before it) and reads the listing index: an index on `sent_at`, which a finish sets, would
-- make every finish write a new row version.
DROP INDEX mail_deliveries_sent;

-- runtime jobs -----------------------------------------------------------------------------
CREATE TABLE runtime_jobs_ready (
    id         uuid PRIMARY KEY REFERENCES runtime_jobs (id) ON DELETE CASCADE,
    due        timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO runtime_jobs_ready (id, due, created_at)
    SELECT id, CASE WHEN status = 'running' THEN COALESCE(lease_until, run_after) ELSE run_after END, created_at
    FROM runtime_jobs WHERE status IN ('queued', 'running');
-- Jobs run in the order they were queued.
CREATE INDEX runtime_jobs_ready_claim ON runtime_jobs_ready (created_at, id);
DROP INDEX runtime_jobs_claim;
ALTER TABLE runtime_jobs SET (fillfactor = 80);

-- notification routes ----------------------------------------------------------------------
CREATE TABLE notification_routes_ready (
    id         uuid PRIMARY KEY REFERENCES notification_routes (id) ON DELETE CASCADE,
    due        timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO notification_routes_ready (id, due, created_at)
    SELECT id, CASE WHEN status = 'dispatching' THEN COALESCE(lease_until, next_attempt_at)
        ELSE next_attempt_at END,
        created_at
    FROM notification_routes WHERE status IN ('pending', 'retrying', 'dispatching');
CREATE INDEX notification_routes_ready_claim
    ON notification_routes_ready (due, created_at, id);
DROP INDEX notification_routes_claim;
-- The admin listing's status filter reads the listing index (`created_at, id`) and filters,
-- as the outbox's does since 0012.
DROP INDEX notification_routes_by_status;
ALTER TABLE notification_routes SET (fillfactor = 80);

-- inbound mail -----------------------------------------------------------------------------
CREATE TABLE inbound_mail_ready (
    id         uuid PRIMARY KEY REFERENCES inbound_mail (id) ON DELETE CASCADE,
    due        timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO inbound_mail_ready (id, due, created_at)
    SELECT id, CASE WHEN status = 'processing' THEN COALESCE(lease_until, received_at)
        ELSE received_at END, created_at
    FROM inbound_mail WHERE status IN ('received', 'processing');
CREATE INDEX inbound_mail_ready_claim ON inbound_mail_ready (due, created_at, id);
DROP INDEX inbound_mail_claim;
