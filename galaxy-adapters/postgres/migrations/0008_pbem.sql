-- The play-by-email habits (issue 11): early turns, reminders, idle races and open seats,
-- vacation, messages between races.

-- The game's PBEM settings (`PbemSettings`, durations in seconds); `{}` reads as the
-- defaults, so games created before this migration keep working.
ALTER TABLE games
    ADD COLUMN pbem jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(pbem) = 'object');

-- The platform's record of each race of a started game: who plays it now (a replacement
-- player takes a race over under the same name), its missed turns, vacation and seat.
CREATE TABLE pbem_races (
    game_id        uuid NOT NULL,
    race           text NOT NULL,
    user_id        uuid NOT NULL,
    missed_turns   bigint NOT NULL DEFAULT 0 CHECK (missed_turns BETWEEN 0 AND 4294967295),
    idle           boolean NOT NULL DEFAULT false,
    ready_turn     bigint CHECK (ready_turn BETWEEN 0 AND 4294967295),
    vacation_from  bigint CHECK (vacation_from BETWEEN 0 AND 4294967295),
    vacation_until bigint CHECK (vacation_until BETWEEN 0 AND 4294967295),
    vacation_used  bigint NOT NULL DEFAULT 0 CHECK (vacation_used BETWEEN 0 AND 4294967295),
    seat_open      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (game_id, race),
    CONSTRAINT pbem_races_open_only_idle CHECK (NOT seat_open OR idle)
);
-- One race per player and game: "my race" is found by user.
CREATE UNIQUE INDEX pbem_races_by_user ON pbem_races (game_id, user_id);
-- "My games" of a replacement player: the races a user plays.
CREATE INDEX pbem_races_of_user ON pbem_races (user_id);
-- The public list of games with open seats.
CREATE INDEX pbem_races_open ON pbem_races (game_id) WHERE seat_open;

-- Turns whose missed-turn tally is done: the marker and the tally commit together, so
-- two workers (or a retry after a crash) count each turn once.
CREATE TABLE pbem_tallied_turns (
    game_id uuid NOT NULL,
    turn    bigint NOT NULL CHECK (turn BETWEEN 0 AND 4294967295),
    PRIMARY KEY (game_id, turn)
);

-- Applications for an open seat.
CREATE TABLE seat_applications (
    id         uuid PRIMARY KEY,
    game_id    uuid NOT NULL,
    race       text NOT NULL,
    user_id    uuid NOT NULL,
    status     text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at timestamptz NOT NULL,
    FOREIGN KEY (game_id, race) REFERENCES pbem_races (game_id, race) ON DELETE CASCADE
);
CREATE UNIQUE INDEX seat_applications_one_pending
    ON seat_applications (game_id, race, user_id) WHERE status = 'pending';
CREATE INDEX seat_applications_by_seat ON seat_applications (game_id, race, created_at, id);

-- Per-player, per-game preferences (`PUT /user/games/{id}/preferences`).
CREATE TABLE pbem_preferences (
    game_id      uuid NOT NULL,
    user_id      uuid NOT NULL,
    reminders    boolean NOT NULL,
    message_mail boolean NOT NULL,
    PRIMARY KEY (game_id, user_id)
);

-- Messages between races. `seq` is the page cursor; `recipients` are race names.
CREATE TABLE race_messages (
    seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id          uuid PRIMARY KEY,
    game_id     uuid NOT NULL,
    turn        bigint NOT NULL CHECK (turn BETWEEN 0 AND 4294967295),
    sender_user uuid NOT NULL,
    sender_race text NOT NULL,
    to_all      boolean NOT NULL,
    recipients  text[] NOT NULL,
    text        text NOT NULL CHECK (octet_length(text) BETWEEN 1 AND 4096),
    sent_at     timestamptz NOT NULL
);
CREATE INDEX race_messages_by_game ON race_messages (game_id, seq);
-- The rate limit counts a sender's recent messages in a game.
CREATE INDEX race_messages_by_sender ON race_messages (game_id, sender_user, sent_at);

-- The notifications of these habits.
ALTER TABLE notification_intents DROP CONSTRAINT notification_intents_kind_check;
ALTER TABLE notification_intents ADD CONSTRAINT notification_intents_kind_check CHECK (kind IN (
    'login_code', 'application_submitted', 'application_approved',
    'application_rejected', 'enrollment_closed', 'game_started', 'game_cancelled',
    'game_start_failed', 'game_paused_after_start', 'turn_completed', 'game_finished',
    'runtime_health_alert', 'turn_reminder', 'race_idle', 'seat_changed', 'race_message'));
