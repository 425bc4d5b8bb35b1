//! Ports for delivery: the mail outbox and its mailer, notifications, push.

use async_trait::async_trait;

use super::{BoxError, StoreError};
use crate::domain::lease::{ClaimRequest, Finish};
use crate::domain::mail::{MailAttempt, MailDelivery, MailStatus, OutgoingMail, RedactedMail};
use crate::domain::notification::{NotificationIntent, NotificationRoute, RouteStatus};
use crate::domain::page::{Page, PageRequest};
use crate::domain::{IntentId, LeaseToken, MailId, RouteId, Timestamp, UserId};

/// Where a mail goes after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailNext {
    /// Delivered.
    Sent,
    /// Delivered, and the mail carried a secret (a login code, an orders address): its
    /// subject, bodies and extras are replaced by what
    /// [`OutgoingMail::redacted`](crate::domain::mail::OutgoingMail::redacted) keeps,
    /// in the same write.
    SentRedacted(Box<RedactedMail>),
    /// Try again at this instant.
    Retry(Timestamp),
    /// Give up.
    Dead,
    /// Not attempted (shutdown): back to `pending`, due at this instant, without
    /// counting the claim as an attempt.
    Release(Timestamp),
}

/// How one mail attempt ends: the outcome of a [`MailFinish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttemptEnd {
    /// The attempt to record, if one was made (`None` for a release).
    pub attempt: Option<MailAttempt>,
    /// Where the mail goes.
    pub next: MailNext,
}

/// One mail to finish in a batch ([`MailStore::finish_mail_attempts`]).
pub type MailFinish = Finish<MailId, MailAttemptEnd>;

/// The result of a batch finish: the outer error when the batch as a whole failed (the
/// store is down: nothing was written), else one result per item in input order, where
/// an item whose lease was lost is `Conflict` (and unknown ones `NotFound`) while the
/// others finished.
pub type BatchFinished<T> = Result<Vec<Result<T, StoreError>>, StoreError>;

/// The mail outbox.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait MailStore: Send + Sync {
    /// Queues a mail; when one with the same idempotency key exists, returns it and
    /// queues nothing.
    async fn enqueue_mail(&self, delivery: &MailDelivery) -> Result<MailDelivery, StoreError>;
    /// Reads one mail.
    async fn get_mail(&self, id: MailId) -> Result<MailDelivery, StoreError>;
    /// Lists mail, optionally of one status, by creation order.
    async fn list_mail(
        &self,
        status: Option<MailStatus>,
        page: &PageRequest,
    ) -> Result<Page<MailDelivery>, StoreError>;
    /// Claims up to `limit` claimable mails (see `MailDelivery::is_claimable_at`),
    /// oldest due first; each becomes `sending` with the claim's lease and one more
    /// attempt counted. Concurrent claimers never receive the same mail.
    async fn claim_mail(&self, claim: &ClaimRequest) -> Result<Vec<MailDelivery>, StoreError>;
    /// Records the attempt (if any) and moves the mail on; `Conflict` when `token` no
    /// longer holds its lease.
    async fn finish_mail_attempt(
        &self,
        id: MailId,
        token: LeaseToken,
        attempt: Option<MailAttempt>,
        next: MailNext,
        at: Timestamp,
    ) -> Result<MailDelivery, StoreError>;
    /// Finishes a batch of claimed mails (see [`finish_mail_attempt`](Self::finish_mail_attempt)),
    /// each checked against its own token: a worker that claimed N mails writes their
    /// outcomes in one round trip. The default finishes one by one, so a store written
    /// before this method existed keeps working; a database store should override it
    /// with one statement. A mail listed twice finishes once; its later entries are
    /// `Conflict`.
    async fn finish_mail_attempts(&self, finishes: &[MailFinish]) -> BatchFinished<MailDelivery> {
        let mut results = Vec::with_capacity(finishes.len());
        for f in finishes {
            let (attempt, next) = (f.outcome.attempt.clone(), f.outcome.next.clone());
            results.push(
                self.finish_mail_attempt(f.id, f.token, attempt, next, f.at)
                    .await,
            );
        }
        Ok(results)
    }
    /// Every recorded attempt of a mail, in order.
    async fn mail_attempts(&self, id: MailId) -> Result<Vec<MailAttempt>, StoreError>;
    /// Re-queues a dead mail with a fresh attempt budget (`Conflict` unless dead).
    async fn retry_dead_mail(&self, id: MailId, at: Timestamp) -> Result<MailDelivery, StoreError>;
    /// How many mails are in each status, sent ones included (a full count of what the
    /// outbox keeps: for tests and tools, not for a loop; see
    /// [`mail_queue_depth`](Self::mail_queue_depth)).
    async fn count_mail_by_status(&self) -> Result<Vec<(MailStatus, u64)>, StoreError>;
    /// How many mails the outbox still has in hand, by status: pending, sending, retrying
    /// and dead (sent mail is history, not queue, and is left out). The metrics loop
    /// reads it on every replica every few seconds, so a store should answer it without
    /// reading its whole history; the default filters
    /// [`count_mail_by_status`](Self::count_mail_by_status).
    async fn mail_queue_depth(&self) -> Result<Vec<(MailStatus, u64)>, StoreError> {
        let mut counts = self.count_mail_by_status().await?;
        counts.retain(|(status, _)| *status != MailStatus::Sent);
        Ok(counts)
    }
    /// Deletes mails sent before `before`, with their attempts (the retention of sent
    /// mail); returns how many. Mail in any other status is kept. Its idempotency key is
    /// free again afterwards.
    async fn purge_sent_mail(&self, before: Timestamp) -> Result<u64, StoreError>;
    /// Deletes dead mails (out of attempts, or refused for good) that died before
    /// `before`, with their attempts; returns how many. Until then an admin may retry
    /// them; after, they only grow the outbox (a login code asked for an address that
    /// bounces makes one, without any account). Its idempotency key is free again.
    async fn purge_dead_mail(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// Why the mailer could not deliver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailerError {
    /// Worth retrying (4xx reply, refused connection, timeout).
    #[error("transient mail failure: {0}")]
    Transient(String),
    /// Not worth retrying (5xx reply, invalid address).
    #[error("permanent mail failure: {0}")]
    Permanent(String),
}

impl MailerError {
    /// Whether retrying may help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }
}

/// Sends one mail (SMTP, a file, a provider API...).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends; on success returns the server's reply (recorded with the attempt).
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailerError>;
}

/// Whether an intent was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentInsert {
    /// Stored with its routes.
    Inserted,
    /// An intent with the same idempotency key existed (its id); nothing stored.
    Duplicate(IntentId),
}

/// Where a route goes after a dispatch attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteNext {
    /// Handed on.
    Delivered,
    /// Try again at this instant.
    Retry {
        /// When.
        at: Timestamp,
        /// Why it failed.
        error: String,
    },
    /// Give up: the route becomes a dead letter.
    DeadLetter {
        /// Why it failed.
        error: String,
    },
}

/// One route to finish in a batch ([`NotificationStore::finish_routes`]).
pub type RouteFinish = Finish<RouteId, RouteNext>;

/// Notification intents, their routes and dead letters.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Stores an intent and its routes atomically, unless the idempotency key is taken.
    async fn insert_intent(
        &self,
        intent: &NotificationIntent,
        routes: &[NotificationRoute],
    ) -> Result<IntentInsert, StoreError>;
    /// Reads one intent.
    async fn get_intent(&self, id: IntentId) -> Result<NotificationIntent, StoreError>;
    /// Lists routes, optionally of one status (`dead_letter` lists dead letters).
    async fn list_routes(
        &self,
        status: Option<RouteStatus>,
        page: &PageRequest,
    ) -> Result<Page<NotificationRoute>, StoreError>;
    /// Claims up to `limit` claimable routes, oldest due first, counting an attempt.
    async fn claim_routes(
        &self,
        claim: &ClaimRequest,
    ) -> Result<Vec<NotificationRoute>, StoreError>;
    /// Ends a dispatch attempt; `Conflict` when `token` no longer holds the lease.
    async fn finish_route(
        &self,
        id: RouteId,
        token: LeaseToken,
        next: &RouteNext,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError>;
    /// Finishes a batch of claimed routes (see [`finish_route`](Self::finish_route)), each
    /// checked against its own token; the results follow [`BatchFinished`]. The default
    /// finishes one by one (so existing stores and decorators keep working); a database
    /// store should override it with one statement. A route listed twice finishes once;
    /// its later entries are `Conflict`.
    async fn finish_routes(&self, finishes: &[RouteFinish]) -> BatchFinished<NotificationRoute> {
        let mut results = Vec::with_capacity(finishes.len());
        for f in finishes {
            results.push(self.finish_route(f.id, f.token, &f.outcome, f.at).await);
        }
        Ok(results)
    }
    /// Re-queues a dead letter with a fresh budget (`Conflict` unless dead-lettered).
    async fn retry_dead_letter(
        &self,
        id: RouteId,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError>;
    /// Compacts the intents raised before `before` whose every route was delivered: their
    /// routes are deleted and their payload emptied (`{}`), and returns how many intents
    /// were compacted. A delivered notification's payload (a turn report's holds the
    /// report whole) is only history, and the table would otherwise grow by every report
    /// of every turn. The intent itself stays, small, so its idempotency key keeps
    /// making a repeat a no-op: some notifications are raised again on every pass until a
    /// deadline (a turn reminder), and must not go out twice however long ago they were
    /// raised. An intent with a route still pending, retrying, dispatching or
    /// dead-lettered is left whole (an admin retries dead letters).
    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// A notification as a service raises it (the notification service fills in id, time
/// and routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// What it is about.
    pub kind: crate::domain::notification::NotificationKind,
    /// Unique per logical notification.
    pub idempotency_key: String,
    /// Who gets it.
    pub recipients: Vec<UserId>,
    /// The game concerned.
    pub game_id: Option<crate::domain::GameId>,
    /// Template and payload data.
    pub payload: serde_json::Value,
}

/// Why a notification could not be raised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Storing it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The narrow port every service uses to raise notifications; the notification service
/// implements it. Raising the same idempotency key twice is a no-op.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Raises a notification.
    async fn notify(&self, notification: NewNotification) -> Result<(), NotifyError>;
}

/// Why a push event could not be published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The push service is shutting down or unreachable.
    #[error("push unavailable: {source}")]
    Unavailable {
        /// The cause.
        #[source]
        source: BoxError,
    },
}

/// Publishes push events to connected gateways.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PushPublisher: Send + Sync {
    /// Publishes one event for `user_ids`; returns the event's opaque cursor.
    ///
    /// `event_id` makes publishing idempotent: publishing an id again (a notification
    /// route delivered twice) publishes nothing and returns the first event's cursor, as
    /// long as that event is still within the push window.
    async fn publish(
        &self,
        event_id: uuid::Uuid,
        user_ids: &[UserId],
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<String, PushError>;
}
