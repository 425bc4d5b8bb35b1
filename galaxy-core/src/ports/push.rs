//! The push ports: the shared, ordered event log every replica's push service reads
//! ([`PushLog`]), and subscribing to the push stream ([`PushSubscriptions`]), which the
//! transport adapters (gRPC) use without knowing the push service.
//!
//! Why a log port: a gateway may reconnect to any replica with the cursor of the last
//! event it handled, so a cursor must name the same event everywhere. The log gives every
//! event its sequence once, for all replicas; each replica's push service reads the log in
//! order into its own replay ring. The Postgres adapter stores it in a table and wakes
//! readers with `NOTIFY`; the in-memory one serves one process (dev mode, tests).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use super::StoreError;
use crate::domain::Timestamp;
use crate::domain::push::{
    GatewayClientId, LoggedPushEvent, NewPushEvent, PushCursor, PushEvent, SubscriptionEnded,
};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The event's sequence: new, or the one it already had.
    pub sequence: u64,
    /// Whether the log already held an event with this id (nothing was appended).
    pub duplicate: bool,
}

/// One read of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct PushLogPage {
    /// Events after the requested sequence, in sequence order.
    pub events: Vec<LoggedPushEvent>,
    /// The highest sequence the log has purged (0 if none): a reader behind it lost the
    /// events in between and must treat cursors below it as stale. Read no earlier than
    /// `events`, so it never understates what is missing from them.
    pub purged_through: u64,
}

/// Wakes a reader of the log when events may have been appended since it last looked (by
/// this process or another), and when the log's link to the other processes is back after a
/// break (the reader must then catch up, as wake-ups may have been missed).
///
/// Wake-ups coalesce: a reader that was busy sees one, however many happened. A missed
/// wake-up only delays a reader, which catches up on its next read, so readers also poll.
#[derive(Debug, Clone)]
pub struct PushLogWatch {
    /// A counter the log bumps on every wake-up.
    receiver: watch::Receiver<u64>,
}

impl PushLogWatch {
    /// A watch on `receiver`, whose value the log changes to wake its readers.
    pub fn new(receiver: watch::Receiver<u64>) -> Self {
        Self { receiver }
    }

    /// Waits for the next wake-up; `false` once the log is gone.
    pub async fn woken(&mut self) -> bool {
        self.receiver.changed().await.is_ok()
    }
}

/// The shared, ordered log of push events.
///
/// Contract (the conformance suite `galaxy_ports::conformance::push` checks it):
/// - sequences increase in append order and are the same for every reader; they may skip
///   numbers;
/// - [`PushLog::read_after`] never returns an event while an event with a lower sequence
///   may still appear: once a reader has seen sequence `n`, no event below `n` is ever
///   appended (appends are ordered by commit, not only by sequence);
/// - appending an `event_id` the log holds appends nothing and returns its sequence;
/// - `occurred_at` never decreases along the sequence (an earlier time is moved forward).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PushLog: Send + Sync {
    /// The log's lifetime, the epoch of every cursor of its events: the same for every
    /// process reading this log, different for another log (another database, a restarted
    /// in-memory log), so a cursor from elsewhere is recognised and answered with a resync.
    fn epoch(&self) -> u64;

    /// Appends `event` unless an event with its id is held already.
    async fn append(&self, event: &NewPushEvent) -> Result<Appended, StoreError>;

    /// Up to `limit` events with a sequence above `after`, in sequence order, and how far
    /// the log has purged.
    async fn read_after(&self, after: u64, limit: usize) -> Result<PushLogPage, StoreError>;

    /// A watch that wakes when events may have been appended.
    fn watch(&self) -> PushLogWatch;

    /// Deletes every event that occurred before `before` or is not among the newest `keep`;
    /// returns how many went. What goes is always a prefix of the log.
    async fn purge(&self, before: Timestamp, keep: usize) -> Result<u64, StoreError>;
}

/// One gateway's stream of push events: what it missed since its cursor, then live events,
/// until the stream ends.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PushFeed: Send {
    /// The next event, waiting for one; once the stream has ended, always the reason.
    /// Cancel-safe: dropping the future loses no event.
    async fn next(&mut self) -> Result<Arc<PushEvent>, SubscriptionEnded>;

    /// The gateway this stream belongs to.
    fn gateway_client_id(&self) -> &GatewayClientId;
}

/// Subscribes gateways to the push stream. Implemented by the push service; used by the
/// transports (gRPC), which thereby depend on this port and not on the service.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PushSubscriptions: Send + Sync {
    /// Subscribes `gateway`, replacing its live subscription if any, resuming after
    /// `cursor` (`None`: live events only). A cursor that cannot be served (too old, from
    /// another log, never issued) first yields a `push.resync` event.
    async fn subscribe(
        &self,
        gateway: GatewayClientId,
        cursor: Option<PushCursor>,
    ) -> Box<dyn PushFeed>;
}
