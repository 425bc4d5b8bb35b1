-- The retention sweeper deletes the notifications raised before its horizon whose every
-- route was delivered (`purge_notifications`); it reads the intents by this index
-- instead of the whole table at every sweep.
CREATE INDEX notification_intents_created ON notification_intents (created_at);
