-- A message's notice (`race_message`, to its recipients) becomes owed with the message:
-- `noticed` stays false until the notice is raised, so a failing notifier or a crash
-- between the message's commit and its notice delays the notice (the scheduler's pass
-- raises it; the notification's key makes a repeat a no-op) instead of losing it.
-- Messages stored before this migration count as noticed.
ALTER TABLE race_messages ADD COLUMN noticed boolean NOT NULL DEFAULT true;
ALTER TABLE race_messages ALTER COLUMN noticed SET DEFAULT false;
CREATE INDEX race_messages_owed ON race_messages (sent_at, seq) WHERE NOT noticed;
