-- One orders submission at a time per race (`OrdersStore::lease_orders`): a submission
-- holds its race's lease from its checks through the engine call to its record, so that
-- the orders an engine holds last are the ones recorded in force, whichever process
-- (web, API, mailed orders) submits them. A released lease is deleted; one whose holder
-- died lapses at `until` and is taken over by the next submission.
CREATE TABLE orders_leases (
    game_id uuid NOT NULL,
    race    text NOT NULL,
    token   uuid NOT NULL,
    until   timestamptz NOT NULL,
    PRIMARY KEY (game_id, race)
);
