//! The retention sweeper: what the platform keeps only for a while is deleted once its
//! period is over, so no table grows forever. Expired login challenges go a day after
//! they expired (long enough to investigate abuse), sent mail after a month (delivery
//! questions are answered by then), dead mail after three months (an admin may retry it
//! until then); undelivered mail stays. The
//! shared push log keeps what a replica's replay ring may still need, no more: events
//! within the push freshness window and among the newest ring-capacity ones (a replica
//! that starts reads the log to fill its ring, so the log must hold what a ring would).
//! Inbound mail of orders by e-mail (players' own messages) goes a month after it was
//! handled, with the records of the answers sent. Delivered notifications (a turn
//! report's carries the report whole) are compacted a month after they were raised (routes
//! and payload go, the intent stays for its idempotency key); one with a route still to
//! dispatch or dead-lettered stays whole. Sessions go a month after they ended (expired or
//! revoked).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;

use super::{TickReport, Worker};
use crate::ports::{
    ChallengeStore, Clock, InboundMailStore, MailStore, NotificationStore, PushLog, SessionStore,
    StoreError,
};

/// How long each kind of record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// How long a login challenge is kept after it expired.
    pub challenges: TimeDelta,
    /// How long a mail is kept after it was sent.
    pub sent_mail: TimeDelta,
    /// How long a mail is kept after it died (an admin may retry it until then).
    pub dead_mail: TimeDelta,
}

impl Default for RetentionConfig {
    /// A day for expired challenges, thirty days for sent mail, ninety for dead mail.
    fn default() -> Self {
        Self {
            challenges: TimeDelta::days(1),
            sent_mail: TimeDelta::days(30),
            dead_mail: TimeDelta::days(90),
        }
    }
}

/// What of the push log is kept: what a replay ring holds.
struct PushRetention {
    /// The shared log.
    log: Arc<dyn PushLog>,
    /// The push freshness window: older events are gone from every ring.
    window: TimeDelta,
    /// The ring capacity: events beyond the newest this many are gone from every ring.
    keep: usize,
}

/// Deletes expired challenges, old sent mail and (when given the log) push events no ring
/// keeps any more, once per tick.
pub struct RetentionSweeper {
    /// Login challenges.
    challenges: Arc<dyn ChallengeStore>,
    /// The mail outbox.
    mail: Arc<dyn MailStore>,
    /// The only source of time.
    clock: Arc<dyn Clock>,
    /// The periods.
    config: RetentionConfig,
    /// The push log to trim, if any.
    push: Option<PushRetention>,
    /// The inbound mail to purge and how long it is kept, if any.
    inbound: Option<(Arc<dyn InboundMailStore>, TimeDelta)>,
    /// The notifications to purge and how long a delivered one is kept, if any.
    notifications: Option<(Arc<dyn NotificationStore>, TimeDelta)>,
    /// The sessions to purge and how long an ended one is kept, if any.
    sessions: Option<(Arc<dyn SessionStore>, TimeDelta)>,
}

impl RetentionSweeper {
    /// A sweeper over these stores.
    pub fn new(
        challenges: Arc<dyn ChallengeStore>,
        mail: Arc<dyn MailStore>,
        clock: Arc<dyn Clock>,
        config: RetentionConfig,
    ) -> Self {
        Self {
            challenges,
            mail,
            clock,
            config,
            push: None,
            inbound: None,
            notifications: None,
            sessions: None,
        }
    }

    /// Also deletes sessions that ended (expired, or were revoked) more than `keep` ago
    /// ([`SessionStore::purge_sessions`]).
    pub fn with_sessions(mut self, store: Arc<dyn SessionStore>, keep: TimeDelta) -> Self {
        self.sessions = Some((store, keep));
        self
    }

    /// Also compacts notifications raised more than `keep` ago whose every route was
    /// delivered ([`NotificationStore::purge_notifications`]).
    pub fn with_notifications(
        mut self,
        store: Arc<dyn NotificationStore>,
        keep: TimeDelta,
    ) -> Self {
        self.notifications = Some((store, keep));
        self
    }

    /// Also purges inbound mail handled more than `keep` ago, and the records of the
    /// answers sent that long ago.
    pub fn with_inbound_mail(mut self, store: Arc<dyn InboundMailStore>, keep: TimeDelta) -> Self {
        self.inbound = Some((store, keep));
        self
    }

    /// Also trims the push log: events older than `window` or beyond the newest `keep`
    /// (the push freshness window and the ring capacity) go.
    pub fn with_push_log(mut self, log: Arc<dyn PushLog>, window: TimeDelta, keep: usize) -> Self {
        self.push = Some(PushRetention { log, window, keep });
        self
    }
}

#[async_trait]
impl Worker for RetentionSweeper {
    fn name(&self) -> &'static str {
        "retention_sweeper"
    }

    /// One purge of each kind, each on its own: one that fails (its store down) does not
    /// keep the others from running; the first failure is the tick's error. Reports
    /// `handled: 0` whatever it deleted: a purge is a periodic clean-up, not queue work to
    /// run again at once.
    async fn tick(&self) -> Result<TickReport, StoreError> {
        let now = self.clock.now();
        let mut failed = None;
        let mut counted = |result: Result<u64, StoreError>| match result {
            Ok(count) => count,
            Err(error) => {
                failed.get_or_insert(error);
                0
            }
        };
        let mut challenges = 0;
        if let Some(before) = now.checked_sub_signed(self.config.challenges) {
            challenges = counted(self.challenges.purge_challenges(before).await);
        }
        let mut mails = 0;
        if let Some(before) = now.checked_sub_signed(self.config.sent_mail) {
            mails = counted(self.mail.purge_sent_mail(before).await);
        }
        let mut dead_mails = 0;
        if let Some(before) = now.checked_sub_signed(self.config.dead_mail) {
            dead_mails = counted(self.mail.purge_dead_mail(before).await);
        }
        let mut inbound = 0;
        if let Some((store, keep)) = &self.inbound
            && let Some(before) = now.checked_sub_signed(*keep)
        {
            inbound = counted(store.purge_inbound(before).await);
        }
        let mut notifications = 0;
        if let Some((store, keep)) = &self.notifications
            && let Some(before) = now.checked_sub_signed(*keep)
        {
            notifications = counted(store.purge_notifications(before).await);
        }
        let mut sessions = 0;
        if let Some((store, keep)) = &self.sessions
            && let Some(before) = now.checked_sub_signed(*keep)
        {
            sessions = counted(store.purge_sessions(before).await);
        }
        let mut push_events = 0;
        if let Some(push) = &self.push
            && let Some(before) = now.checked_sub_signed(push.window)
        {
            push_events = counted(push.log.purge(before, push.keep).await);
        }
        if challenges + mails + dead_mails + inbound + notifications + sessions + push_events > 0 {
            tracing::info!(
                challenges,
                mails,
                dead_mails,
                inbound,
                notifications,
                sessions,
                push_events,
                "retention: old records deleted"
            );
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(TickReport { handled: 0 }),
        }
    }
}
