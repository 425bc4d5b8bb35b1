-- The outbox and the notification routes keep their dead letters in a narrow side table
-- each, as they keep their live items in a ready table (0013): one row `(id, created_at)`
-- per item in status `dead` (mail) or `dead_letter` (routes), written by the same
-- statement that changes the item's status (galaxy-adapters/postgres/src/queue.rs,
-- `QueueTable::keep_ready`), gone with the item or when it is retried.
--
-- Until now the metrics loop counted the outbox by status (`GROUP BY status` over every
-- mail kept: thirty days of sent mail, ninety of dead) and looked for the oldest pending
-- mail through the listing index, on every replica every fifteen seconds; the admin lists
-- of dead mail and dead letters filtered the whole history. A status index on the item
-- tables would end the in-place (HOT) updates of claims and finishes that 0013 was made
-- for; the side tables are small and only written when an item dies or is retried.
CREATE TABLE mail_deliveries_dead (
    id         uuid PRIMARY KEY REFERENCES mail_deliveries (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL
);
INSERT INTO mail_deliveries_dead (id, created_at)
    SELECT id, created_at FROM mail_deliveries WHERE status = 'dead';
CREATE INDEX mail_deliveries_dead_list ON mail_deliveries_dead (created_at, id);

CREATE TABLE notification_routes_dead (
    id         uuid PRIMARY KEY REFERENCES notification_routes (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL
);
INSERT INTO notification_routes_dead (id, created_at)
    SELECT id, created_at FROM notification_routes WHERE status = 'dead_letter';
CREATE INDEX notification_routes_dead_list ON notification_routes_dead (created_at, id);
