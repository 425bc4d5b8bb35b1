-- The notice of a race going idle (`race_idle`, to its player and the host) becomes owed
-- in the tally's own transaction: `idle_notice` names the turn whose tally made the race
-- idle until the notice is raised (or the race is back), so a crash or a failing
-- notifier between the tally's commit and the notice no longer loses it; the next
-- scheduler pass raises it (the notification's key makes a repeat a no-op).
ALTER TABLE pbem_races ADD COLUMN idle_notice bigint
    CHECK (idle_notice BETWEEN 0 AND 4294967295);
