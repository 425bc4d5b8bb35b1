//! Accounts, login and sessions.

use chrono::{DateTime, Utc};
use galaxy_core::domain::auth::Session;
use galaxy_core::domain::user::{User, UserStatus};
use galaxy_core::service::auth::{IssuedChallenge, NewSession};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /public/auth/login-codes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginCodeRequest {
    /// Where to send the code.
    #[schema(example = "alice@example.org")]
    pub email: String,
}

/// A login code was sent (or, for an address that may not log in, pretended to be).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeView {
    /// Present it with the code to `POST /public/auth/sessions`.
    pub challenge_id: Uuid,
    /// When the code stops working.
    pub expires_at: DateTime<Utc>,
}

impl From<IssuedChallenge> for ChallengeView {
    fn from(issued: IssuedChallenge) -> Self {
        Self {
            challenge_id: issued.challenge_id.as_uuid(),
            expires_at: issued.expires_at,
        }
    }
}

/// `POST /public/auth/sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// From the login-code response.
    pub challenge_id: String,
    /// The code from the mail (6 to 10 digits).
    #[schema(example = "123456")]
    pub code: String,
}

/// A new session: the only time the token is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewSessionView {
    /// The bearer token (64 hex characters): send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The session's id (to list or revoke it).
    pub session_id: Uuid,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
    /// The account, created at first login.
    pub user: UserView,
}

impl From<NewSession> for NewSessionView {
    fn from(new: NewSession) -> Self {
        Self {
            token: new.token.expose(),
            session_id: new.session.id.as_uuid(),
            expires_at: new.session.expires_at,
            user: UserView::from(new.user),
        }
    }
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Stable id.
    pub id: Uuid,
    /// Normalised e-mail address.
    pub email: String,
    /// Shown to other players.
    pub display_name: String,
    /// Language for mail (`en`, `pt-BR`).
    pub locale: String,
    /// ISO country code, `unknown` when not known.
    pub country: String,
    /// `player`, and `admin` for operators.
    pub roles: Vec<String>,
    /// `active`, `blocked` (until `blocked_until`) or `blocked_permanently`.
    #[schema(example = "active")]
    pub status: String,
    /// When a temporary block ends.
    pub blocked_until: Option<DateTime<Utc>>,
    /// How many games the user may be enrolled in at once.
    pub max_active_games: u32,
    /// Whether the user may create games.
    pub may_host_games: bool,
    /// Whether notification mail is wanted.
    pub email_notifications: bool,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last authenticated activity.
    pub last_seen_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.to_string(),
            display_name: user.display_name.as_str().to_owned(),
            locale: user.locale.as_str().to_owned(),
            country: user.country,
            roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            status: user.status.as_str().to_owned(),
            blocked_until: match user.status {
                UserStatus::Blocked { until } => Some(until),
                UserStatus::Active | UserStatus::BlockedPermanently => None,
            },
            max_active_games: user.entitlements.max_active_games,
            may_host_games: user.entitlements.may_host_games,
            email_notifications: user.email_notifications,
            created_at: user.created_at,
            last_seen_at: user.last_seen_at,
        }
    }
}

/// `PATCH /user/me`: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// 1 to 64 printable characters.
    pub display_name: Option<String>,
    /// A language tag such as `en` or `pt-BR`.
    pub locale: Option<String>,
    /// Whether to receive notification mail (login codes are always mailed).
    pub email_notifications: Option<bool>,
}

/// A login session (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The session's id.
    pub id: Uuid,
    /// `active`, `revoked` or `expired`.
    pub status: String,
    /// Whether this is the session making the request.
    pub current: bool,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl SessionView {
    /// The view of `session`, marking it current when it is `current`.
    pub fn of(session: &Session, current: galaxy_core::domain::SessionId) -> Self {
        Self {
            id: session.id.as_uuid(),
            status: session.status.as_str().to_owned(),
            current: session.id == current,
            created_at: session.created_at,
            expires_at: session.expires_at,
            revoked_at: session.revoked_at,
        }
    }
}

/// The caller's active sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// The sessions.
    pub items: Vec<SessionView>,
}

/// `POST /internal/sessions/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveSessionRequest {
    /// A bearer token a client presented to the gateway.
    pub token: String,
}

/// A bearer token resolved for the gateway.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedSessionView {
    /// The session the token belongs to.
    pub session_id: Uuid,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
    /// Its owner (not blocked).
    pub user: UserView,
}
