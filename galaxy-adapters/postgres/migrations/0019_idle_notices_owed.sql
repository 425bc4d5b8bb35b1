-- The scheduler's pass reads the races whose idle notice is still owed in every game
-- (one paused or finished since its tally still owes it), by this partial index.
CREATE INDEX pbem_races_idle_notice_owed ON pbem_races (game_id, race)
    WHERE idle_notice IS NOT NULL;
