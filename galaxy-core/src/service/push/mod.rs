//! Push: the live event stream to gateways, with replay from a cursor.
//!
//! [`PushService`] implements the [`PushPublisher`] port by appending every event to the
//! shared [`PushLog`], and reads that log, in sequence order, into a [`PushRing`] (bounded
//! by count and by a freshness window) and into the buffer of every live [`Subscription`].
//! Every replica on one log reads the same events with the same sequences, so a cursor
//! names the same event on each: a gateway may reconnect to any replica. The log is read
//! right after this process appends (so its own events reach its gateways at once) and by
//! [`PushService::follow`], woken by the log (events of other replicas) and by a poll.
//!
//! A gateway subscribes with its client id and, when it reconnects, the cursor of the last
//! event it handled; [`PushService::subscribe`] replays what the ring still holds after
//! that cursor (or a [`RESYNC_KIND`](crate::domain::push::RESYNC_KIND) event when it holds
//! too little) and registers the subscriber under the same lock, so no event is lost or
//! duplicated between replay and live delivery. Through the [`PushSubscriptions`] port, a
//! cursor ahead of what this replica has read (another replica issued it a moment ago)
//! first makes the replica catch up with the log.
//!
//! **One subscription per gateway client id.** A new subscription with the id of a live one
//! replaces it: the old one ends with [`SubscriptionEnded::Replaced`].
//!
//! **A slow gateway cannot grow memory.** Every subscription buffers at most
//! [`PushConfig::subscriber_buffer`] live events (plus, right after subscribing, the replay
//! it has not yet read, at most the ring's capacity). Taking in events never waits for a
//! reader: when a buffer is full the subscriber is disconnected, its buffer is freed at
//! once, and it ends with [`SubscriptionEnded::Lagged`]. It loses nothing it can't recover:
//! reconnecting with the cursor of the last event it handled replays what the ring still
//! holds after it, or sends a resync when the ring has moved past it.
//!
//! **A replica behind a purge says so.** A replica that finds the shared log purged past
//! what it had read ends its live subscriptions with [`SubscriptionEnded::Gap`]: they never
//! got the purged events, and their reconnect with the last cursor gets the resync.

mod subscription;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SubsecRound, TimeDelta};
use tokio_util::sync::CancellationToken;

use super::{ErrorKind, ServiceError};
use crate::domain::UserId;
use crate::domain::push::{NewPushEvent, PushCursor, PushEvent, PushRing, Replay};
use crate::ports::{
    Clock, PushError, PushFeed, PushLog, PushLogPage, PushPublisher, PushSubscriptions,
    SecretGenerator, StoreError,
};

pub use crate::domain::push::{
    GatewayClientId, InvalidGatewayClientId, MAX_GATEWAY_CLIENT_ID_LEN, SubscribeError,
    SubscriptionEnded,
};
pub use subscription::Subscription;
use subscription::{Hub, Mailbox, Registered, lock_hub};

/// Events read from the log per query: bounds one read's memory; a longer way behind is
/// read in several.
const READ_BATCH: usize = 500;

/// The first pause after a failed read of the log (doubled up to the poll interval).
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// Sizes of the ring and of every subscriber's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushConfig {
    /// Most events kept for replay, whatever their age.
    pub ring_capacity: NonZeroUsize,
    /// Oldest event kept for replay; a gateway away for longer gets a resync.
    pub freshness_window: TimeDelta,
    /// Most live events queued for one subscriber that does not read; past it the
    /// subscriber is disconnected ([`SubscriptionEnded::Lagged`]).
    pub subscriber_buffer: NonZeroUsize,
}

impl Default for PushConfig {
    /// 4096 events for at most 10 minutes; 1024 queued per subscriber.
    fn default() -> Self {
        Self {
            ring_capacity: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            freshness_window: TimeDelta::minutes(10),
            subscriber_buffer: NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl ServiceError for SubscribeError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidRequest
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidCursor(_) => "invalid_cursor",
            Self::InvalidGatewayClientId(_) => "invalid_gateway_client_id",
        }
    }
}

/// Publishes push events and serves gateway subscriptions. Cheap to share (`Arc`).
pub struct PushService {
    /// Stamps events (`occurred_at`) and decides which are still fresh.
    clock: Arc<dyn Clock>,
    /// Event ids.
    secrets: Arc<dyn SecretGenerator>,
    /// Per-subscriber bound on live events.
    subscriber_buffer: NonZeroUsize,
    /// The shared log: where events are appended and where the ring reads them from.
    log: Arc<dyn PushLog>,
    /// The ring and the subscribers under one lock, so that replaying and registering
    /// a subscriber is atomic with respect to taking in events. Shared weakly with every
    /// [`Subscription`] so that dropping one unregisters it.
    hub: Arc<Mutex<Hub>>,
    /// Held while reading the log, so two readers (a publish, the follower) never take
    /// in the same page twice or out of order.
    reading: tokio::sync::Mutex<()>,
}

impl PushService {
    /// A service with an empty ring on `log`, whose epoch every cursor carries. Call
    /// [`PushService::catch_up`] once before serving gateways, so the ring holds what the
    /// log still keeps (a gateway may come from another replica), and run
    /// [`PushService::follow`] to hear the other replicas' events.
    pub fn new(
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretGenerator>,
        config: PushConfig,
        log: Arc<dyn PushLog>,
    ) -> Self {
        let ring = PushRing::new(log.epoch(), config.ring_capacity, config.freshness_window);
        Self {
            clock,
            secrets,
            subscriber_buffer: config.subscriber_buffer,
            log,
            hub: Arc::new(Mutex::new(Hub {
                ring,
                subscribers: HashMap::new(),
                next_serial: 0,
                lagged: 0,
            })),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        lock_hub(&self.hub)
    }

    /// Publishes an event with a fresh id; see [`PushService::publish_new`].
    pub async fn publish_event(
        &self,
        user_ids: Vec<UserId>,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<Arc<PushEvent>, PushError> {
        let event = NewPushEvent {
            event_id: self.secrets.uuid(),
            user_ids,
            kind: kind.to_owned(),
            payload,
            occurred_at: self.clock.now(),
        };
        self.publish_new(event).await
    }

    /// Appends `event` to the log (nothing if its id is there already), then reads the log
    /// into the ring and the live subscribers' buffers; returns the event as the log holds
    /// it. Never waits for a subscriber. Fails only when the log cannot take the event.
    pub async fn publish_new(&self, mut event: NewPushEvent) -> Result<Arc<PushEvent>, PushError> {
        // Logs keep microseconds (Postgres does): the event handed back must be the one
        // every replica reads, even when it is built here because the log could not be
        // read back at once.
        event.occurred_at = event.occurred_at.trunc_subsecs(6);
        let appended = self
            .log
            .append(&event)
            .await
            .map_err(|error| PushError::Unavailable {
                source: Box::new(error),
            })?;
        if appended.duplicate {
            tracing::info!(event_id = %event.event_id, "push event already published");
        }
        if let Err(error) = self.catch_up().await {
            // Appended: the follower delivers it once the log can be read again.
            tracing::warn!(%error, "push log not read after publishing; the follower retries");
        }
        let hub = self.lock();
        let cursor = PushCursor::new(hub.ring.epoch(), appended.sequence);
        let logged = hub.ring.get(appended.sequence).cloned();
        drop(hub);
        // Only when the ring dropped it at once (a tiny window or capacity).
        Ok(logged.unwrap_or_else(|| {
            Arc::new(PushEvent {
                event_id: event.event_id,
                cursor,
                user_ids: event.user_ids,
                kind: event.kind,
                payload: event.payload,
                occurred_at: event.occurred_at,
            })
        }))
    }

    /// Reads every event of the log after the ring's head into the ring and the live
    /// subscribers' buffers; returns how many were taken in. A reader behind what the log
    /// has purged skips to it (cursors before are then answered with a resync).
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let _reading = self.reading.lock().await;
        let mut taken = 0;
        loop {
            let after = self.lock().ring.head();
            let page = self.log.read_after(after, READ_BATCH).await?;
            let full = page.events.len() >= READ_BATCH;
            taken += self.take_in(page);
            if !full {
                return Ok(taken);
            }
        }
    }

    /// Puts a page read from the log into the ring and every live subscriber's buffer.
    fn take_in(&self, page: PushLogPage) -> usize {
        let now = self.clock.now();
        let bound = self.subscriber_buffer.get();
        let mut hub = self.lock();
        if page.purged_through > hub.ring.head() {
            tracing::warn!(
                head = hub.ring.head(),
                purged_through = page.purged_through,
                subscribers = hub.subscribers.len(),
                "push log purged events this replica had not read; older cursors get a \
                 resync, and live subscriptions end so that theirs do"
            );
            hub.ring.skip_to(page.purged_through);
            // Live subscribers never got the purged events: going on with the later ones
            // would move their cursors past the hole unseen.
            let ended = SubscriptionEnded::Gap {
                purged_through: page.purged_through,
            };
            for (_, subscriber) in hub.subscribers.drain() {
                subscriber.mailbox.end(ended);
            }
        }
        let mut taken = 0;
        for logged in page.events {
            if let Some(event) = hub.ring.ingest(logged, now) {
                hub.fan_out(&event, bound);
                taken += 1;
            }
        }
        taken
    }

    /// Follows the log until `stop`: catches up whenever the log says events may have
    /// been appended (by another replica) or its link came back, and at least every
    /// `poll`; after a failed read, again within 100 ms (doubling up to `poll`).
    pub async fn follow(self: Arc<Self>, poll: Duration, stop: CancellationToken) {
        // Watch first, then read: what is appended before the watch exists is read now,
        // what comes after wakes it.
        let mut watch = self.log.watch();
        let mut watching = true;
        let mut retry: Option<Duration> = None;
        loop {
            match self.catch_up().await {
                Ok(_) => retry = None,
                Err(error) => {
                    tracing::warn!(%error, "push log not readable; retrying");
                    retry = Some(retry.map_or(FIRST_RETRY, |r| r.saturating_mul(2)));
                }
            }
            let wait = retry.map_or(poll, |retry| retry.min(poll));
            tokio::select! {
                () = stop.cancelled() => return,
                woken = watch.woken(), if watching => {
                    if !woken {
                        tracing::warn!("push log wake-ups ended; polling only");
                        watching = false;
                    }
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Subscribes gateway `gateway_client_id`, resuming after `cursor` (`None` or an empty
    /// string: live events only). Replaces a live subscription with the same id.
    ///
    /// The subscription first yields what the ring holds after the cursor, or a single
    /// [`RESYNC_KIND`](crate::domain::push::RESYNC_KIND) event when the cursor is stale,
    /// from another epoch or ahead of what this replica has read (the
    /// [`PushSubscriptions`] port catches up with the log first); then live events. A
    /// rejected call changes nothing.
    pub fn subscribe(
        &self,
        gateway_client_id: &str,
        cursor: Option<&str>,
    ) -> Result<Subscription, SubscribeError> {
        let gateway = GatewayClientId::parse(gateway_client_id)?;
        let cursor = match cursor {
            Some(text) => PushCursor::parse_optional(text)?,
            None => None,
        };
        Ok(self.subscribe_parsed(gateway, cursor))
    }

    fn subscribe_parsed(
        &self,
        gateway: GatewayClientId,
        cursor: Option<PushCursor>,
    ) -> Subscription {
        let now = self.clock.now();
        let mut hub = self.lock();
        let replay: VecDeque<_> = match hub.ring.replay_after(cursor.as_ref(), now) {
            Replay::Events(events) => events.into_iter().collect(),
            Replay::Resync { reason } => {
                tracing::info!(%gateway, reason = reason.as_str(), "push subscriber gets a resync");
                let resync = hub.ring.resync_event(reason, self.secrets.uuid(), now);
                VecDeque::from([Arc::new(resync)])
            }
        };
        hub.next_serial = hub.next_serial.wrapping_add(1);
        let serial = hub.next_serial;
        let mailbox = Arc::new(Mailbox::new(replay));
        let registered = Registered {
            serial,
            mailbox: Arc::clone(&mailbox),
        };
        if let Some(old) = hub.subscribers.insert(gateway.clone(), registered) {
            old.mailbox.end(SubscriptionEnded::Replaced);
            tracing::info!(%gateway, "push subscription replaced by a newer one");
        }
        drop(hub);
        Subscription::new(gateway, serial, mailbox, Arc::downgrade(&self.hub))
    }

    /// Live subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Events queued for live subscriptions, all together: what slow readers cost in
    /// memory beyond the ring. At most `subscriber_buffer` (plus unread replay) each.
    pub fn queued(&self) -> usize {
        let hub = self.lock();
        hub.subscribers.values().map(|s| s.mailbox.len()).sum()
    }

    /// Subscribers disconnected because their buffer filled up, since start.
    pub fn lagged_total(&self) -> u64 {
        self.lock().lagged
    }

    /// Events currently held for replay.
    pub fn ring_len(&self) -> usize {
        self.lock().ring.len()
    }

    /// The log's epoch, the part of every cursor that tells logs apart.
    pub fn epoch(&self) -> u64 {
        self.lock().ring.epoch()
    }

    /// The cursor of the last event this replica has read from the log (sequence 0 before
    /// any).
    pub fn latest_cursor(&self) -> PushCursor {
        self.lock().ring.latest_cursor()
    }
}

impl fmt::Debug for PushService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushService")
            .field("subscriber_buffer", &self.subscriber_buffer)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl PushPublisher for PushService {
    /// Never waits for a subscriber; returns the event's cursor. Fails when the log cannot
    /// take the event (the notification worker then retries the route).
    async fn publish(
        &self,
        event_id: uuid::Uuid,
        user_ids: &[UserId],
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<String, PushError> {
        let event = NewPushEvent {
            event_id,
            user_ids: user_ids.to_vec(),
            kind: kind.to_owned(),
            payload: payload.clone(),
            occurred_at: self.clock.now(),
        };
        let event = self.publish_new(event).await?;
        Ok(event.cursor.to_string())
    }
}

#[async_trait]
impl PushSubscriptions for PushService {
    /// A cursor of this log but ahead of what this replica has read was issued by another
    /// replica a moment ago: catch up with the log first, so the gateway gets what follows
    /// it rather than a resync. A failed read leaves the decision to what was read.
    async fn subscribe(
        &self,
        gateway: GatewayClientId,
        cursor: Option<PushCursor>,
    ) -> Box<dyn PushFeed> {
        let ahead = cursor.is_some_and(|cursor| {
            let hub = self.lock();
            cursor.epoch() == hub.ring.epoch() && cursor.sequence() > hub.ring.head()
        });
        if ahead && let Err(error) = self.catch_up().await {
            tracing::warn!(%error, "push log not read before a subscription");
        }
        Box::new(self.subscribe_parsed(gateway, cursor))
    }
}
