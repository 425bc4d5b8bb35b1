-- The turn archive is the outbox of a turn's effects (the game's finish, its stop job and
-- the turn's notification): a played turn is announced once all of them are done, and
-- until then the turn scheduler's follow-up step completes them. Turns archived before
-- this migration were announced by the code that archived them.
ALTER TABLE played_turns ADD COLUMN announced_at timestamptz;
UPDATE played_turns SET announced_at = played_at;

-- The follow-up step's query: unannounced turns, oldest first.
CREATE INDEX played_turns_unannounced
    ON played_turns (played_at, game_id, turn) WHERE announced_at IS NULL;

-- Likewise the game history is the outbox of the lobby's effects: a transition into
-- `enrollment_closed` (the closing mail, the auto-start) or `cancelled` (the stop job, the
-- cancellation mail) is stored unannounced, in the same statement as the status change,
-- and the lobby sweeper completes whatever a failure left owed. Every other transition,
-- and every one before this migration, is stored announced.
ALTER TABLE game_transitions ADD COLUMN announced_at timestamptz;
UPDATE game_transitions SET announced_at = at;
CREATE INDEX game_transitions_unannounced ON game_transitions (seq) WHERE announced_at IS NULL;

-- And an application is the outbox of its own notification (submitted to the host,
-- approved or rejected to the player): it owes one while its status is not the one last
-- announced, withdrawals excepted. Applications before this migration were announced.
ALTER TABLE applications ADD COLUMN announced_status text
    CHECK (announced_status IN ('pending', 'approved', 'rejected', 'withdrawn'));
UPDATE applications SET announced_status = status;
CREATE INDEX applications_unannounced ON applications (created_at, id)
    WHERE announced_status IS DISTINCT FROM status AND status <> 'withdrawn';
