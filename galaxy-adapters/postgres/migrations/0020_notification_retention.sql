-- The retention sweeper compacts the notifications raised before its horizon whose every
-- route was delivered (`purge_notifications`: routes deleted, payload emptied, the intent
-- kept for its idempotency key); it reads the intents not yet compacted by this partial
-- index instead of the whole table at every sweep.
CREATE INDEX notification_intents_uncompacted ON notification_intents (created_at)
    WHERE payload <> '{}'::jsonb;
