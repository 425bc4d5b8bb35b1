-- The public list of games in play (`GET /api/v1/public/games?open_seats=true`, no sign-in
-- needed) asks for public games that are running or paused, oldest first. No index served
-- that order for those statuses (`games_by_status` cannot give `created_at` order for two
-- statuses), so each request walked every game ever made in `games_list` and filtered:
-- measured on a copy with 100 000 games (most finished), 18.8 ms and 2 821 buffers per
-- request, growing with the history; with this index, 0.02 ms. The planner proves the
-- predicate from the list's own filter (a custom plan, the bound values substituted).
-- Status changes of a game are rare, so the predicate costs no hot update path.
CREATE INDEX games_public_in_play ON games (created_at, id)
    WHERE visibility = 'public' AND status IN ('running', 'paused');
