-- The turn archive is the outbox of a turn's effects (the game's finish, its stop job and
-- the turn's notification): a played turn is announced once all of them are done, and
-- until then the turn scheduler's follow-up step completes them. Turns archived before
-- this migration were announced by the code that archived them.
ALTER TABLE played_turns ADD COLUMN announced_at timestamptz;
UPDATE played_turns SET announced_at = played_at;

-- The follow-up step's query: unannounced turns, oldest first.
CREATE INDEX played_turns_unannounced
    ON played_turns (played_at, game_id, turn) WHERE announced_at IS NULL;
