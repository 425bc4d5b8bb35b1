//! Push: the live event stream to gateways, with replay from a cursor.
//!
//! [`PushService`] implements the [`PushPublisher`] port: every published event goes into a
//! [`PushRing`] (bounded by count and by a freshness window) and into the buffer of every
//! live [`Subscription`]. A gateway subscribes with its client id and, when it reconnects,
//! the cursor of the last event it handled; [`PushService::subscribe`] replays what the
//! ring still holds after that cursor (or a [`RESYNC_KIND`](crate::domain::push::RESYNC_KIND) event when it holds too
//! little) and registers the subscriber under the same lock, so no event is lost or
//! duplicated between replay and live delivery.
//!
//! **One subscription per gateway client id.** A new subscription with the id of a live one
//! replaces it: the old one ends with [`SubscriptionEnded::Replaced`].
//!
//! **A slow gateway cannot grow memory.** Every subscription buffers at most
//! [`PushConfig::subscriber_buffer`] live events (plus, right after subscribing, the replay
//! it has not yet read, at most the ring's capacity). Publishing never waits for a reader:
//! when a buffer is full the subscriber is disconnected, its buffer is freed at once, and it
//! ends with [`SubscriptionEnded::Lagged`]. It loses nothing it can't recover: reconnecting
//! with the cursor of the last event it handled replays what the ring still holds after it,
//! or sends a resync when the ring has moved past it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use async_trait::async_trait;
use chrono::TimeDelta;
use tokio::sync::Notify;

use super::{ErrorKind, ServiceError};
use crate::domain::UserId;
use crate::domain::push::{InvalidCursor, PushCursor, PushEvent, PushRing, Replay};
use crate::ports::{Clock, PushError, PushPublisher, SecretGenerator};

/// The longest gateway client id accepted.
pub const MAX_GATEWAY_CLIENT_ID_LEN: usize = 128;

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

/// A gateway client id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidGatewayClientId {
    /// The id is empty.
    #[error("gateway client id is empty")]
    Empty,
    /// The id is too long.
    #[error(
        "gateway client id is {len} bytes long; at most {MAX_GATEWAY_CLIENT_ID_LEN} are allowed"
    )]
    TooLong {
        /// Length of the rejected input in bytes.
        len: usize,
    },
    /// The id contains a character outside `[A-Za-z0-9._:-]`.
    #[error(
        "gateway client id has {found:?} at position {position}; only ASCII letters, digits and `._:-` are allowed"
    )]
    BadCharacter {
        /// The first offending character.
        found: char,
        /// Its position (in characters, from 0).
        position: usize,
    },
}

/// Who is subscribed: 1 to 128 characters of `[A-Za-z0-9._:-]`, e.g. `gateway-1:eu`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayClientId(String);

impl GatewayClientId {
    /// Validates an id; never panics, whatever the input.
    pub fn parse(input: &str) -> Result<Self, InvalidGatewayClientId> {
        if input.is_empty() {
            return Err(InvalidGatewayClientId::Empty);
        }
        if input.len() > MAX_GATEWAY_CLIENT_ID_LEN {
            return Err(InvalidGatewayClientId::TooLong { len: input.len() });
        }
        if let Some((position, found)) = input
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
        {
            return Err(InvalidGatewayClientId::BadCharacter { found, position });
        }
        Ok(Self(input.to_owned()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GatewayClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a subscription was refused. Both are the caller's input; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The cursor is not one this server issues.
    #[error(transparent)]
    InvalidCursor(#[from] InvalidCursor),
    /// The gateway client id is not acceptable.
    #[error(transparent)]
    InvalidGatewayClientId(#[from] InvalidGatewayClientId),
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

/// Why a subscription ended. Either way the gateway may subscribe again with the cursor of
/// the last event it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionEnded {
    /// A newer subscription with the same gateway client id took over.
    #[error("replaced by a newer subscription with the same gateway client id")]
    Replaced,
    /// The subscriber did not read and its buffer of `buffer` events filled up.
    #[error("subscriber lagged: {buffer} events queued unread; reconnect with the last cursor")]
    Lagged {
        /// The bound that was reached.
        buffer: usize,
    },
}

/// Publishes push events and serves gateway subscriptions. Cheap to share (`Arc`).
pub struct PushService {
    /// Stamps events (`occurred_at`) and decides which are still fresh.
    clock: Arc<dyn Clock>,
    /// Event ids.
    secrets: Arc<dyn SecretGenerator>,
    /// Per-subscriber bound on live events.
    subscriber_buffer: NonZeroUsize,
    /// The ring and the subscribers under one lock, so that replaying and registering
    /// a subscriber is atomic with respect to publishing. Shared weakly with every
    /// [`Subscription`] so that dropping one unregisters it.
    hub: Arc<Mutex<Hub>>,
}

/// What publishing and subscribing change together.
struct Hub {
    /// Recent events for replay.
    ring: PushRing,
    /// Live subscribers, one per gateway client id.
    subscribers: HashMap<GatewayClientId, Registered>,
    /// Tells a replaced subscription's late drop apart from its successor's.
    next_serial: u64,
    /// Subscribers disconnected for lagging since start (for metrics).
    lagged: u64,
}

/// A subscriber as the hub knows it.
struct Registered {
    /// Which subscription of this gateway client id it is.
    serial: u64,
    /// Its buffer, shared with the [`Subscription`].
    mailbox: Arc<Mailbox>,
}

/// One subscriber's bounded queue. Its lock is only ever taken alone or inside the hub's
/// lock, never the other way round.
struct Mailbox {
    /// The queue and its end.
    state: Mutex<MailboxState>,
    /// Wakes the single reader; `notify_one` keeps a permit, so no wake-up is lost.
    wake: Notify,
}

struct MailboxState {
    /// Events not yet read, oldest first: the replay, then live events.
    queue: VecDeque<Arc<PushEvent>>,
    /// Replayed events not yet read; they do not count against the live bound, so a long
    /// replay does not disconnect its reader at the first live event.
    replay_unread: usize,
    /// Set once; read after the queue is empty (the queue is cleared when it is set).
    ended: Option<SubscriptionEnded>,
}

impl Mailbox {
    fn new(replay: VecDeque<Arc<PushEvent>>) -> Self {
        Self {
            state: Mutex::new(MailboxState {
                replay_unread: replay.len(),
                queue: replay,
                ended: None,
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MailboxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a live event; on a full buffer ends the subscription as lagged instead and
    /// returns false.
    fn offer(&self, event: &Arc<PushEvent>, bound: usize) -> bool {
        let mut state = self.lock();
        if state.ended.is_some() {
            return false;
        }
        if state.queue.len() >= bound.saturating_add(state.replay_unread) {
            drop(state);
            self.end(SubscriptionEnded::Lagged { buffer: bound });
            return false;
        }
        state.queue.push_back(Arc::clone(event));
        drop(state);
        self.wake.notify_one();
        true
    }

    /// Ends the subscription and frees its queue at once: a replaced or lagged subscriber
    /// resumes from its cursor, so nothing queued here is needed any more.
    fn end(&self, reason: SubscriptionEnded) {
        let mut state = self.lock();
        state.ended.get_or_insert(reason);
        state.queue = VecDeque::new();
        state.replay_unread = 0;
        drop(state);
        self.wake.notify_one();
    }

    fn len(&self) -> usize {
        self.lock().queue.len()
    }
}

impl PushService {
    /// A service with an empty ring. Its epoch is drawn from `secrets`, so cursors issued
    /// by an earlier process (or another replica) are answered with a resync.
    pub fn new(
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretGenerator>,
        config: PushConfig,
    ) -> Self {
        let (high, low) = secrets.uuid().as_u64_pair();
        let ring = PushRing::new(high ^ low, config.ring_capacity, config.freshness_window);
        Self {
            clock,
            secrets,
            subscriber_buffer: config.subscriber_buffer,
            hub: Arc::new(Mutex::new(Hub {
                ring,
                subscribers: HashMap::new(),
                next_serial: 0,
                lagged: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        lock_hub(&self.hub)
    }

    /// Appends an event to the ring and queues it for every live subscriber (disconnecting
    /// those whose buffer is full); returns it. Never waits for a subscriber.
    pub fn publish_event(
        &self,
        user_ids: Vec<UserId>,
        kind: &str,
        payload: serde_json::Value,
    ) -> Arc<PushEvent> {
        let now = self.clock.now();
        let event_id = self.secrets.uuid();
        let bound = self.subscriber_buffer.get();
        let mut hub = self.lock();
        let event = Arc::new(hub.ring.publish(event_id, user_ids, kind, payload, now));
        let before = hub.subscribers.len();
        hub.subscribers.retain(|gateway, subscriber| {
            let kept = subscriber.mailbox.offer(&event, bound);
            if !kept {
                tracing::warn!(%gateway, bound, "push subscriber lagged; disconnected");
            }
            kept
        });
        let dropped = before - hub.subscribers.len();
        hub.lagged = hub.lagged.saturating_add(dropped as u64);
        event
    }

    /// Subscribes gateway `gateway_client_id`, resuming after `cursor` (`None` or an empty
    /// string: live events only). Replaces a live subscription with the same id.
    ///
    /// The subscription first yields what the ring holds after the cursor, or a single
    /// [`RESYNC_KIND`](crate::domain::push::RESYNC_KIND) event when the cursor is stale, from another epoch or ahead of the
    /// stream; then live events. A rejected call changes nothing.
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
        let now = self.clock.now();
        let mut hub = self.lock();
        let replay: VecDeque<_> = match hub.ring.replay_after(cursor.as_ref(), now) {
            Replay::Events(events) => events.into_iter().map(Arc::new).collect(),
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
        Ok(Subscription {
            gateway,
            serial,
            mailbox,
            hub: Arc::downgrade(&self.hub),
        })
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

    /// This process's epoch, the part of every cursor that tells lifetimes apart.
    pub fn epoch(&self) -> u64 {
        self.lock().ring.epoch()
    }

    /// The cursor of the last published event (sequence 0 before any).
    pub fn latest_cursor(&self) -> PushCursor {
        self.lock().ring.latest_cursor()
    }
}

fn lock_hub(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(PoisonError::into_inner)
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
    /// Never fails and never waits for a subscriber; returns the event's cursor.
    async fn publish(
        &self,
        user_ids: &[UserId],
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<String, PushError> {
        let event = self.publish_event(user_ids.to_vec(), kind, payload.clone());
        Ok(event.cursor.to_string())
    }
}

/// One gateway's view of the stream: replayed events, then live ones, until it ends.
/// Dropping it unregisters the subscriber (unless it was already replaced).
pub struct Subscription {
    /// Who subscribed.
    gateway: GatewayClientId,
    /// Which subscription of that id this is, so a late drop spares its successor.
    serial: u64,
    /// The queue shared with the hub.
    mailbox: Arc<Mailbox>,
    /// Weak, so a subscription kept alive by a stuck connection does not keep the service.
    hub: Weak<Mutex<Hub>>,
}

impl Subscription {
    /// The next event, waiting for one if none is queued; once the subscription has ended,
    /// always the reason. Cancel-safe: dropping the future loses no event.
    pub async fn next(&mut self) -> Result<Arc<PushEvent>, SubscriptionEnded> {
        loop {
            if let Some(next) = self.try_next() {
                return next;
            }
            self.mailbox.wake.notified().await;
        }
    }

    /// The next event if one is queued, the end if it has ended, otherwise `None`.
    pub fn try_next(&mut self) -> Option<Result<Arc<PushEvent>, SubscriptionEnded>> {
        let mut state = self.mailbox.lock();
        if let Some(event) = state.queue.pop_front() {
            state.replay_unread = state.replay_unread.saturating_sub(1);
            return Some(Ok(event));
        }
        state.ended.map(Err)
    }

    /// The gateway client id this subscription belongs to.
    pub fn gateway_client_id(&self) -> &GatewayClientId {
        &self.gateway
    }

    /// Events queued and not yet read.
    pub fn queued(&self) -> usize {
        self.mailbox.len()
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("gateway", &self.gateway)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let mut hub = lock_hub(&hub);
        if hub
            .subscribers
            .get(&self.gateway)
            .is_some_and(|s| s.serial == self.serial)
        {
            hub.subscribers.remove(&self.gateway);
            tracing::debug!(gateway = %self.gateway, "push subscriber gone");
        }
    }
}
