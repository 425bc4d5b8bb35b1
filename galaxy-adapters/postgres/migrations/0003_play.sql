-- The record of play: the turn archive (every played turn with its standings, and every
-- race's report of it) and every orders submission the engine answered. Reports and
-- orders are `json`, not `jsonb`: they are kept exactly as the engine wrote them and the
-- player sent them (any JSON, `\u0000` in strings included) and never queried inside.
CREATE TABLE played_turns (
    game_id    uuid NOT NULL,
    turn       bigint NOT NULL CHECK (turn BETWEEN 0 AND 4294967295),
    played_at  timestamptz NOT NULL,
    finished   boolean NOT NULL,
    winner     text,
    standings  jsonb NOT NULL,
    PRIMARY KEY (game_id, turn)
);

CREATE TABLE turn_reports (
    game_id uuid NOT NULL,
    turn    bigint NOT NULL,
    race    text NOT NULL,
    report  json NOT NULL,
    PRIMARY KEY (game_id, turn, race),
    FOREIGN KEY (game_id, turn) REFERENCES played_turns (game_id, turn) ON DELETE CASCADE
);

CREATE TABLE orders_submissions (
    -- Arrival order: breaks ties of equal timestamps ("the latest submission").
    seq          bigserial UNIQUE,
    id           uuid PRIMARY KEY,
    game_id      uuid NOT NULL,
    race         text NOT NULL,
    user_id      uuid NOT NULL,
    turn         bigint NOT NULL CHECK (turn BETWEEN 0 AND 4294967295),
    submitted_at timestamptz NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    accepted     boolean NOT NULL,
    errors       jsonb NOT NULL,
    orders       json NOT NULL
);
CREATE INDEX orders_submissions_by_turn
    ON orders_submissions (game_id, turn, race, submitted_at DESC, seq DESC);

-- "My games": every application of a user.
CREATE INDEX applications_by_user ON applications (user_id, created_at, id);

-- Engine settings (passed as `settings` to `/admin/init`) and whether every race's
-- reports are revealed to all players once the game is finished.
ALTER TABLE games
    ADD COLUMN engine_settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(engine_settings) = 'object'),
    ADD COLUMN reveal_reports_after_finish boolean NOT NULL DEFAULT true;
