-- The reply to mailed orders that could not be taken at all (the game takes none now,
-- the sender no longer plays, nothing to read, too late) is a kind of its own, worded
-- apart from the engine's refusal of orders it read. Rendered straight to mail, like the
-- other replies, but an intent of any kind must fit.
ALTER TABLE notification_intents DROP CONSTRAINT notification_intents_kind_check;
ALTER TABLE notification_intents ADD CONSTRAINT notification_intents_kind_check CHECK (kind IN (
    'login_code', 'application_submitted', 'application_approved',
    'application_rejected', 'enrollment_closed', 'game_started', 'game_cancelled',
    'game_start_failed', 'game_paused_after_start', 'turn_completed', 'game_finished',
    'runtime_health_alert', 'turn_reminder', 'race_idle', 'seat_changed', 'race_message',
    'orders_accepted', 'orders_rejected', 'orders_refused', 'orders_not_taken'));
