-- The shared push event log: every replica appends the push events it publishes here and
-- reads everyone's, in `seq` order, into its replay ring, so a gateway's cursor (the log's
-- epoch and an event's `seq`) names the same event on every replica.
--
-- Appends take a transaction-scoped advisory lock first (see galaxy-adapters/postgres/src/
-- push.rs), so sequences commit in order: a reader that has seen `seq` n never later finds
-- an event below n. `seq` may skip numbers (a rolled-back append); readers do not mind.
-- `event_id` is unique, so a notification route published twice is one event.
CREATE TABLE push_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    user_ids    uuid[] NOT NULL,
    kind        text NOT NULL,
    payload     jsonb NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX push_events_by_time ON push_events (occurred_at);

-- One row: the log's epoch (random, the same for every replica on this database; a cursor
-- from another database gets a resync) and how far the log has been purged (a reader
-- behind it lost events and answers older cursors with a resync).
CREATE TABLE push_log (
    id             boolean PRIMARY KEY DEFAULT true CHECK (id),
    epoch          bigint NOT NULL,
    purged_through bigint NOT NULL DEFAULT 0 CHECK (purged_through >= 0)
);
INSERT INTO push_log (epoch)
VALUES (floor(random() * 9007199254740991)::bigint * 1024 + floor(random() * 1024)::bigint);
