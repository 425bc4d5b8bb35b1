-- Orders by e-mail (issue 12).
--
-- `inbound_mail` is the durable intake: a message is a row before the sender's server is
-- told it arrived, then a leased work queue (received -> processing -> done) like the
-- outbox. `dedupe_key` (Message-ID and content hash) is unique, so the same message
-- delivered twice is one row and is processed once.
CREATE TABLE inbound_mail (
    id            uuid PRIMARY KEY,
    dedupe_key    text NOT NULL UNIQUE,
    raw           bytea NOT NULL,
    envelope_from text,
    envelope_to   text[] NOT NULL,
    status        text NOT NULL CHECK (status IN ('received', 'processing', 'done')),
    outcome       text CHECK (outcome IN ('answered', 'answered_silently', 'refused', 'dropped')),
    detail        text,
    attempts      bigint NOT NULL CHECK (attempts BETWEEN 0 AND 4294967295),
    lease_token   uuid,
    lease_until   timestamptz,
    received_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT inbound_mail_lease CHECK ((lease_token IS NULL) = (lease_until IS NULL)),
    CONSTRAINT inbound_mail_outcome CHECK ((status = 'done') = (outcome IS NOT NULL))
);
-- The claim: received mail and processing mail with a lapsed lease, oldest first.
CREATE INDEX inbound_mail_claim ON inbound_mail (received_at, created_at, id)
    WHERE status IN ('received', 'processing');

-- One orders address per player and game (`orders+<token>@<GALAXY_MAIL_DOMAIN>`), and how
-- the player wants the turn report mailed in that game.
CREATE TABLE orders_addresses (
    user_id         uuid NOT NULL,
    game_id         uuid NOT NULL,
    token           text NOT NULL UNIQUE,
    report_delivery text NOT NULL DEFAULT 'body' CHECK (report_delivery IN ('body', 'attachment')),
    rotated_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, game_id)
);

-- The answers orders by e-mail sent, per bucket (`reply:<user>`, `refusal:<address>`),
-- counted under a sliding window; `send_key` (the inbound mail answered) makes taking a
-- send again after a crash free.
CREATE TABLE mail_in_sends (
    bucket   text NOT NULL,
    send_key text NOT NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (bucket, send_key)
);
CREATE INDEX mail_in_sends_by_time ON mail_in_sends (bucket, at);

-- Reply-To, In-Reply-To, References and an attachment of a queued mail (see
-- `MailExtras`); `{}` for every mail that has none.
ALTER TABLE mail_deliveries ADD COLUMN extras jsonb NOT NULL DEFAULT '{}'::jsonb;

-- The kinds of the orders-by-mail replies join the notification kinds (they are rendered
-- straight to mail today, like the login code, but an intent of any kind must fit).
ALTER TABLE notification_intents DROP CONSTRAINT notification_intents_kind_check;
ALTER TABLE notification_intents ADD CONSTRAINT notification_intents_kind_check CHECK (kind IN (
    'login_code', 'application_submitted', 'application_approved',
    'application_rejected', 'enrollment_closed', 'game_started', 'game_cancelled',
    'game_start_failed', 'game_paused_after_start', 'turn_completed', 'game_finished',
    'runtime_health_alert', 'turn_reminder', 'race_idle', 'seat_changed', 'race_message',
    'orders_accepted', 'orders_rejected', 'orders_refused'));
