//! Notifications: typed intents raised by services, fanned out into one route per
//! recipient and channel, each delivered at least once or dead-lettered.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::lease::{ClaimKey, Lease, Leased, QueueState};
use super::retry::{RetryDecision, RetryPolicy};
use super::{GameId, IntentId, RouteId, Timestamp, UserId};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A login code (mail only, ignores preferences).
    LoginCode,
    /// Someone applied to a game you host.
    ApplicationSubmitted,
    /// Your application was approved.
    ApplicationApproved,
    /// Your application was rejected.
    ApplicationRejected,
    /// Enrollment of your game closed.
    EnrollmentClosed,
    /// Your game started.
    GameStarted,
    /// Your game was cancelled.
    GameCancelled,
    /// Your game failed to start (to admins and host).
    GameStartFailed,
    /// The game's container runs but the engine did not register (to admins).
    GamePausedAfterStart,
    /// A turn ran; carries the recipient's report.
    TurnCompleted,
    /// The game is over; carries standings.
    GameFinished,
    /// An engine's health changed (to admins).
    RuntimeHealthAlert,
    /// Orders for the coming turn are due soon and yours are not in.
    TurnReminder,
    /// A race missed too many turns and went idle (to its player and the host).
    RaceIdle,
    /// A race changed hands (to the old and the new player).
    SeatChanged,
    /// Another race sent you a message.
    RaceMessage,
    /// Orders by e-mail: the engine accepted the mailed orders (the reply, mail only).
    OrdersAccepted,
    /// Orders by e-mail: the mailed orders were not accepted, with the reasons.
    OrdersRejected,
    /// Orders by e-mail: a message we cannot take (wrong address or sender), to a
    /// registered sender at most once an hour; worded the same whatever was wrong.
    OrdersRefused,
    /// Orders by e-mail: the player's mail reached the game's orders address, but its
    /// orders could not be taken at all (the game takes none now, the sender no longer
    /// plays in it, nothing to read, too late, superseded): the reason, no verdict.
    OrdersNotTaken,
}

impl NotificationKind {
    /// Every kind.
    pub const ALL: [NotificationKind; 20] = [
        Self::LoginCode,
        Self::ApplicationSubmitted,
        Self::ApplicationApproved,
        Self::ApplicationRejected,
        Self::EnrollmentClosed,
        Self::GameStarted,
        Self::GameCancelled,
        Self::GameStartFailed,
        Self::GamePausedAfterStart,
        Self::TurnCompleted,
        Self::GameFinished,
        Self::RuntimeHealthAlert,
        Self::TurnReminder,
        Self::RaceIdle,
        Self::SeatChanged,
        Self::RaceMessage,
        Self::OrdersAccepted,
        Self::OrdersRejected,
        Self::OrdersRefused,
        Self::OrdersNotTaken,
    ];

    /// Stable snake_case name (also the template name).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::LoginCode => "login_code",
            Self::ApplicationSubmitted => "application_submitted",
            Self::ApplicationApproved => "application_approved",
            Self::ApplicationRejected => "application_rejected",
            Self::EnrollmentClosed => "enrollment_closed",
            Self::GameStarted => "game_started",
            Self::GameCancelled => "game_cancelled",
            Self::GameStartFailed => "game_start_failed",
            Self::GamePausedAfterStart => "game_paused_after_start",
            Self::TurnCompleted => "turn_completed",
            Self::GameFinished => "game_finished",
            Self::RuntimeHealthAlert => "runtime_health_alert",
            Self::TurnReminder => "turn_reminder",
            Self::RaceIdle => "race_idle",
            Self::SeatChanged => "seat_changed",
            Self::RaceMessage => "race_message",
            Self::OrdersAccepted => "orders_accepted",
            Self::OrdersRejected => "orders_rejected",
            Self::OrdersRefused => "orders_refused",
            Self::OrdersNotTaken => "orders_not_taken",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == input)
    }

    /// The channels this kind goes out on before preferences apply.
    pub fn channels(&self) -> &'static [Channel] {
        match self {
            Self::LoginCode
            | Self::OrdersAccepted
            | Self::OrdersRejected
            | Self::OrdersRefused
            | Self::OrdersNotTaken => &[Channel::Email],
            _ => &[Channel::Push, Channel::Email],
        }
    }

    /// Whether the mail copy ignores the user's mail preference (security mail).
    pub fn is_mandatory_mail(&self) -> bool {
        matches!(self, Self::LoginCode) || self.is_mail_in_reply()
    }

    /// Whether the kind answers a mail sent to an orders address (orders by e-mail): mail
    /// only, sent by the mail-in worker itself rather than raised as a notification.
    pub fn is_mail_in_reply(&self) -> bool {
        matches!(
            self,
            Self::OrdersAccepted
                | Self::OrdersRejected
                | Self::OrdersRefused
                | Self::OrdersNotTaken
        )
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A way to reach a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A push event through the gateway.
    Push,
    /// A mail through the outbox.
    Email,
}

impl Channel {
    /// Stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Email => "email",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "push" => Some(Self::Push),
            "email" => Some(Self::Email),
            _ => None,
        }
    }
}

/// A notification as a service raises it. The idempotency key makes raising the same
/// notification twice (a replayed event) a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationIntent {
    /// Stable id.
    pub id: IntentId,
    /// What it is about.
    pub kind: NotificationKind,
    /// Unique per logical notification, e.g. `turn_completed:<game>:<turn>`.
    pub idempotency_key: String,
    /// Who gets it.
    pub recipients: Vec<UserId>,
    /// The game concerned, if any.
    pub game_id: Option<GameId>,
    /// Kind-specific data for templates and push payloads.
    pub payload: serde_json::Value,
    /// When it was raised.
    pub created_at: Timestamp,
}

/// The payload key through which a service asks for push only: `"mail": false`.
pub const MAIL_KEY: &str = "mail";

/// A recipient's preference as the fan-out needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientPreference {
    /// Who.
    pub user_id: UserId,
    /// Whether they want mail copies.
    pub email_notifications: bool,
}

impl NotificationIntent {
    /// The (recipient, channel) pairs this intent fans out to, honouring preferences:
    /// push always, mail when wanted or mandatory. Recipients without a known preference
    /// get push only. Duplicates in `recipients` collapse.
    pub fn plan_routes(&self, prefs: &[RecipientPreference]) -> Vec<(UserId, Channel)> {
        let mut routes = Vec::new();
        // A payload with `"mail": false` asks for push only (a per-game opt-out the
        // raising service already applied, e.g. messages between races).
        let mail_allowed = self.payload.get(MAIL_KEY) != Some(&serde_json::Value::Bool(false));
        for user in &self.recipients {
            let wants_mail = prefs
                .iter()
                .find(|p| p.user_id == *user)
                .map(|p| p.email_notifications);
            for channel in self.kind.channels() {
                let keep = match channel {
                    Channel::Push => true,
                    Channel::Email => {
                        self.kind.is_mandatory_mail() && wants_mail.is_some()
                            || wants_mail == Some(true) && mail_allowed
                    }
                };
                if keep && !routes.contains(&(*user, *channel)) {
                    routes.push((*user, *channel));
                }
            }
        }
        routes
    }
}

/// Where a route stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStatus {
    /// Waiting to be dispatched.
    Pending,
    /// Claimed by a worker (under a lease).
    Dispatching,
    /// Handed to the mail outbox or the push service.
    Delivered,
    /// Failed; waits until `next_attempt_at`.
    Retrying,
    /// Gave up after the budget; an admin may retry.
    DeadLetter,
}

impl RouteStatus {
    /// Every status.
    pub const ALL: [RouteStatus; 5] = [
        Self::Pending,
        Self::Dispatching,
        Self::Delivered,
        Self::Retrying,
        Self::DeadLetter,
    ];

    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Dispatching => "dispatching",
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::DeadLetter => "dead_letter",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

impl fmt::Display for RouteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient x channel delivery of an intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRoute {
    /// Stable id.
    pub id: RouteId,
    /// The intent it delivers.
    pub intent_id: IntentId,
    /// Recipient.
    pub user_id: UserId,
    /// Channel.
    pub channel: Channel,
    /// Status.
    pub status: RouteStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Timestamp,
    /// The claim, while dispatching.
    pub lease: Option<Lease>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl NotificationRoute {
    /// A new pending route, due at once.
    pub fn new(
        id: RouteId,
        intent_id: IntentId,
        user_id: UserId,
        channel: Channel,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            intent_id,
            user_id,
            channel,
            status: RouteStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            lease: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether a worker may claim it at `now` (the queue rule of [`Leased`]).
    pub fn is_claimable_at(&self, now: Timestamp) -> bool {
        Leased::is_claimable_at(self, now)
    }

    /// What follows a failed attempt: the instant of the next one, or `None` for the
    /// dead letter.
    pub fn next_attempt_after_failure(
        &self,
        policy: &RetryPolicy,
        jitter: f64,
        now: Timestamp,
    ) -> Option<Timestamp> {
        match policy.after_failure(self.attempts, jitter) {
            RetryDecision::RetryAfter(delay) => Some(now + delay),
            RetryDecision::GiveUp => None,
        }
    }
}

impl Leased for NotificationRoute {
    type Id = RouteId;
    const ENTITY: &'static str = "notification route";

    fn id(&self) -> RouteId {
        self.id
    }

    fn queue_state(&self) -> QueueState {
        match self.status {
            RouteStatus::Pending | RouteStatus::Retrying => QueueState::Waiting,
            RouteStatus::Dispatching => QueueState::Leased,
            RouteStatus::Delivered | RouteStatus::DeadLetter => QueueState::Done,
        }
    }

    fn status_name(&self) -> &'static str {
        self.status.as_str()
    }

    fn due_at(&self) -> Timestamp {
        self.next_attempt_at
    }

    fn claim_key(&self) -> ClaimKey {
        ClaimKey {
            first: self.next_attempt_at,
            created_at: self.created_at,
            id: self.id.as_uuid(),
        }
    }

    fn lease(&self) -> Option<Lease> {
        self.lease
    }

    fn lease_mut(&mut self) -> Option<&mut Lease> {
        self.lease.as_mut()
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }

    fn take_claim(&mut self, lease: Lease, now: Timestamp) {
        self.status = RouteStatus::Dispatching;
        self.lease = Some(lease);
        self.attempts = self.attempts.saturating_add(1);
        self.updated_at = now;
    }

    fn end_lease(&mut self, at: Timestamp) {
        self.lease = None;
        self.updated_at = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    #[test]
    fn fan_out_honours_preferences() {
        let a = UserId::from_uuid(Uuid::from_u128(1));
        let b = UserId::from_uuid(Uuid::from_u128(2));
        let mut intent = NotificationIntent {
            id: IntentId::from_uuid(Uuid::nil()),
            kind: NotificationKind::GameStarted,
            idempotency_key: "k".into(),
            recipients: vec![a, b, a],
            game_id: None,
            payload: serde_json::Value::Null,
            created_at: Utc::now(),
        };
        let prefs = [
            RecipientPreference {
                user_id: a,
                email_notifications: true,
            },
            RecipientPreference {
                user_id: b,
                email_notifications: false,
            },
        ];
        assert_eq!(
            intent.plan_routes(&prefs),
            vec![(a, Channel::Push), (a, Channel::Email), (b, Channel::Push)]
        );
        intent.kind = NotificationKind::LoginCode;
        assert_eq!(
            intent.plan_routes(&prefs),
            vec![(a, Channel::Email), (b, Channel::Email)]
        );
    }

    #[test]
    fn names_round_trip() {
        for k in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(k.as_str()), Some(k));
        }
        for s in RouteStatus::ALL {
            assert_eq!(RouteStatus::parse(s.as_str()), Some(s));
        }
    }
}
