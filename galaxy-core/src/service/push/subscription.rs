//! What publishing and subscribing share: the hub (the replay ring and the live
//! subscribers under one lock), each subscriber's bounded mailbox, and the
//! [`Subscription`] a gateway reads.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::domain::push::{GatewayClientId, PushEvent, PushRing, SubscriptionEnded};
use crate::ports::PushFeed;

/// What taking in events and subscribing change together.
pub(super) struct Hub {
    /// Recent events for replay.
    pub(super) ring: PushRing,
    /// Live subscribers, one per gateway client id.
    pub(super) subscribers: HashMap<GatewayClientId, Registered>,
    /// Tells a replaced subscription's late drop apart from its successor's.
    pub(super) next_serial: u64,
    /// Subscribers disconnected for lagging since start (for metrics).
    pub(super) lagged: u64,
}

impl Hub {
    /// Queues `event` for every live subscriber, disconnecting those whose buffer is full.
    pub(super) fn fan_out(&mut self, event: &Arc<PushEvent>, bound: usize) {
        let before = self.subscribers.len();
        self.subscribers.retain(|gateway, subscriber| {
            let kept = subscriber.mailbox.offer(event, bound);
            if !kept {
                tracing::warn!(%gateway, bound, "push subscriber lagged; disconnected");
            }
            kept
        });
        let dropped = before - self.subscribers.len();
        self.lagged = self.lagged.saturating_add(dropped as u64);
    }
}

/// Locks the hub; a panic elsewhere while holding it leaves nothing half-done that matters.
pub(super) fn lock_hub(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A subscriber as the hub knows it.
pub(super) struct Registered {
    /// Which subscription of this gateway client id it is.
    pub(super) serial: u64,
    /// Its buffer, shared with the [`Subscription`].
    pub(super) mailbox: Arc<Mailbox>,
}

/// One subscriber's bounded queue. Its lock is only ever taken alone or inside the hub's
/// lock, never the other way round.
pub(super) struct Mailbox {
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
    pub(super) fn new(replay: VecDeque<Arc<PushEvent>>) -> Self {
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
    pub(super) fn end(&self, reason: SubscriptionEnded) {
        let mut state = self.lock();
        state.ended.get_or_insert(reason);
        state.queue = VecDeque::new();
        state.replay_unread = 0;
        drop(state);
        self.wake.notify_one();
    }

    pub(super) fn len(&self) -> usize {
        self.lock().queue.len()
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
    pub(super) fn new(
        gateway: GatewayClientId,
        serial: u64,
        mailbox: Arc<Mailbox>,
        hub: Weak<Mutex<Hub>>,
    ) -> Self {
        Self {
            gateway,
            serial,
            mailbox,
            hub,
        }
    }

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

#[async_trait]
impl PushFeed for Subscription {
    async fn next(&mut self) -> Result<Arc<PushEvent>, SubscriptionEnded> {
        Subscription::next(self).await
    }

    fn gateway_client_id(&self) -> &GatewayClientId {
        &self.gateway
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
