-- A race's "ready without orders" mark gets the instant it was made. The tally of a turn
-- counts only what was in force when the turn was played: orders by their recorded time
-- (`orders_submissions`), and now marks by theirs, so a mark that arrives after its turn
-- ran (but before the tally) no longer counts for it. Marks stored before this migration
-- have no time and count as made in time.
ALTER TABLE pbem_races ADD COLUMN ready_at timestamptz;
