//! Admin bodies: blocks, the mail outbox, notification dead letters.

use chrono::{DateTime, Utc};
use galaxy_core::domain::mail::{MailAttempt, MailDelivery};
use galaxy_core::domain::notification::NotificationRoute;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `POST /admin/users/{id}/block`: exactly one of `until` and `permanent: true`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// End of a temporary block (RFC 3339, in the future).
    pub until: Option<DateTime<Utc>>,
    /// A permanent block, which also revokes every session of the user.
    #[serde(default)]
    pub permanent: bool,
}

/// `?status=&limit=&after=` on `GET /admin/mail`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    /// `pending`, `sending`, `sent`, `retrying` or `dead`; every status when absent.
    pub status: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
}

/// `?status=&limit=&after=` on `GET /admin/games`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GameQuery {
    /// One game status (`draft`, `enrollment_open`, ..., `cancelled`); every status when
    /// absent.
    pub status: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
}

/// `?q=&limit=&after=` on `GET /admin/users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users whose e-mail address or display name contains this text (case
    /// ignored, matched literally; at most 256 bytes); everyone when absent or blank.
    pub q: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_after` of the previous page (of the same search).
    pub after: Option<String>,
}

/// One mail of the outbox. Bodies are not shown: a login-code mail carries a secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailView {
    /// Stable id.
    pub id: Uuid,
    /// Recipient address.
    pub to: String,
    /// Template kind (`login_code`, ...).
    pub kind: String,
    /// Template locale.
    pub locale: String,
    /// Subject line.
    pub subject: String,
    /// `pending`, `sending`, `sent`, `retrying` or `dead`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<MailDelivery> for MailView {
    fn from(mail: MailDelivery) -> Self {
        Self {
            id: mail.id.as_uuid(),
            to: mail.mail.to.to_string(),
            kind: mail.mail.kind,
            locale: mail.mail.locale.as_str().to_owned(),
            subject: mail.mail.subject,
            status: mail.status.as_str().to_owned(),
            attempts: mail.attempts,
            next_attempt_at: mail.next_attempt_at,
            last_error: mail.last_error,
            created_at: mail.created_at,
            updated_at: mail.updated_at,
            sent_at: mail.sent_at,
        }
    }
}

/// One recorded delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailAttemptView {
    /// 1 for the first attempt.
    pub number: u32,
    /// `sent`, `transient` or `permanent`.
    pub outcome: String,
    /// The mail server's answer or the error.
    pub detail: String,
    /// When it was made.
    pub at: DateTime<Utc>,
}

impl From<MailAttempt> for MailAttemptView {
    fn from(attempt: MailAttempt) -> Self {
        Self {
            number: attempt.number,
            outcome: attempt.outcome.as_str().to_owned(),
            detail: attempt.detail,
            at: attempt.at,
        }
    }
}

/// What retrying every dead mail did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetriedView {
    /// How many dead mails this call queued again (one another admin retried first is
    /// not counted).
    pub retried: u64,
}

/// One mail with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailDetailView {
    /// The mail.
    pub mail: MailView,
    /// Its attempts, oldest first.
    pub attempts: Vec<MailAttemptView>,
}

/// A notification route (one recipient on one channel).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// Stable id.
    pub id: Uuid,
    /// The notification it delivers.
    pub intent_id: Uuid,
    /// The recipient.
    pub user_id: Uuid,
    /// `push` or `email`.
    pub channel: String,
    /// `pending`, `dispatching`, `delivered`, `retrying` or `dead_letter`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<NotificationRoute> for DeadLetterView {
    fn from(route: NotificationRoute) -> Self {
        Self {
            id: route.id.as_uuid(),
            intent_id: route.intent_id.as_uuid(),
            user_id: route.user_id.as_uuid(),
            channel: route.channel.as_str().to_owned(),
            status: route.status.as_str().to_owned(),
            attempts: route.attempts,
            next_attempt_at: route.next_attempt_at,
            last_error: route.last_error,
            created_at: route.created_at,
            updated_at: route.updated_at,
        }
    }
}
