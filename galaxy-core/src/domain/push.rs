//! Push events and the replay ring that lets a reconnecting subscriber catch up.
//!
//! Every published event gets a [`PushCursor`]: the epoch of the log it was appended to
//! plus the sequence the log gave it. Sequences grow with every event but may skip numbers
//! (a shared log's sequence has holes where an append was rolled back), so the ring never
//! counts on them being consecutive: it keeps a *floor*, the sequence after which it holds
//! every event. The ring keeps recent events, bounded both by a count and by a freshness
//! window. A subscriber that comes back with a cursor at or above the floor gets exactly the
//! events after it; any other cursor (evicted, expired, from another log, or ahead of
//! anything seen) gets [`Replay::Resync`], and the caller then sends the subscriber a
//! [`RESYNC_KIND`] event (see [`PushRing::resync_event`]) so that it knows it missed events
//! and must refetch state.
//!
//! [`NewPushEvent`] and [`LoggedPushEvent`] are what the shared event log
//! ([`PushLog`](crate::ports::PushLog)) stores; the gateway's side of a subscription
//! ([`GatewayClientId`], [`SubscriptionEnded`]) lives in [`gateway`].

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::Arc;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Timestamp, UserId};

pub mod gateway;

pub use gateway::{
    GatewayClientId, InvalidGatewayClientId, MAX_GATEWAY_CLIENT_ID_LEN, SubscribeError,
    SubscriptionEnded,
};

/// The `kind` of the event telling a subscriber it missed events and must refetch state.
pub const RESYNC_KIND: &str = "push.resync";

/// The longest input [`PushCursor::parse`] looks at; a canonical cursor is at most 36 bytes.
pub const MAX_CURSOR_LEN: usize = 64;

/// Version tag in front of every cursor, so the format can change without misreading old ones.
const CURSOR_VERSION: &str = "v1";

/// A u64 in hexadecimal never needs more digits than this.
const MAX_HEX_DIGITS: usize = 16;

/// A string presented as a push cursor was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidCursor {
    /// The input was empty (an absent cursor is `None`, see [`PushCursor::parse_optional`]).
    #[error("push cursor is empty")]
    Empty,
    /// The input is longer than any cursor this server issues.
    #[error("push cursor is {len} bytes long; at most {MAX_CURSOR_LEN} are allowed")]
    TooLong {
        /// Length of the rejected input in bytes.
        len: usize,
    },
    /// The input is not three dot-separated parts.
    #[error("push cursor is not of the form `<version>.<epoch>.<sequence>`")]
    Malformed,
    /// The version part is not one this server issues.
    #[error("push cursor version {version:?} is not supported (expected {CURSOR_VERSION:?})")]
    UnsupportedVersion {
        /// The rejected version part.
        version: String,
    },
    /// The epoch or the sequence part is not a hexadecimal u64.
    #[error("push cursor {field} is not a hexadecimal number of 1 to 16 digits")]
    BadNumber {
        /// Which part was wrong: `epoch` or `sequence`.
        field: &'static str,
    },
}

/// Where a subscriber is in the push stream: the ring's epoch and an event's sequence.
///
/// Clients must treat the string form as opaque. It is currently
/// `v1.<epoch in hex>.<sequence in hex>`, e.g. `v1.18f3a2.2a`. Sequence 0 means "before the
/// first event of this epoch".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PushCursor {
    /// Identifies one ring lifetime; a cursor from another lifetime says nothing about ours.
    epoch: u64,
    /// Position within the epoch: the sequence of the last event the holder has seen.
    sequence: u64,
}

impl PushCursor {
    /// A cursor at `sequence` within `epoch`.
    pub const fn new(epoch: u64, sequence: u64) -> Self {
        Self { epoch, sequence }
    }

    /// The ring lifetime this cursor belongs to.
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The sequence of the last event seen by the holder (0 for none).
    pub const fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Parses the string form produced by `Display`; never panics, whatever the input.
    pub fn parse(input: &str) -> Result<Self, InvalidCursor> {
        if input.is_empty() {
            return Err(InvalidCursor::Empty);
        }
        if input.len() > MAX_CURSOR_LEN {
            return Err(InvalidCursor::TooLong { len: input.len() });
        }
        let mut parts = input.split('.');
        let (Some(version), Some(epoch), Some(sequence), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidCursor::Malformed);
        };
        if version != CURSOR_VERSION {
            return Err(InvalidCursor::UnsupportedVersion {
                version: version.to_owned(),
            });
        }
        Ok(Self {
            epoch: parse_hex(epoch, "epoch")?,
            sequence: parse_hex(sequence, "sequence")?,
        })
    }

    /// Like [`PushCursor::parse`], but an empty string (what gRPC sends for "no cursor") is
    /// `None` rather than an error.
    pub fn parse_optional(input: &str) -> Result<Option<Self>, InvalidCursor> {
        if input.is_empty() {
            Ok(None)
        } else {
            Self::parse(input).map(Some)
        }
    }
}

/// Parses 1 to 16 hex digits; checked by hand first because `from_str_radix` accepts a sign.
fn parse_hex(digits: &str, field: &'static str) -> Result<u64, InvalidCursor> {
    let bad = InvalidCursor::BadNumber { field };
    if digits.is_empty()
        || digits.len() > MAX_HEX_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad);
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad)
}

impl fmt::Display for PushCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CURSOR_VERSION}.{:x}.{:x}", self.epoch, self.sequence)
    }
}

impl FromStr for PushCursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PushCursor {
    type Error = InvalidCursor;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PushCursor> for String {
    fn from(cursor: PushCursor) -> Self {
        cursor.to_string()
    }
}

/// One event on the push stream, addressed to some users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushEvent {
    /// Unique id, so a consumer can drop a duplicate delivered around a reconnect.
    pub event_id: Uuid,
    /// Where this event sits in the stream; the subscriber stores it to resume after it.
    pub cursor: PushCursor,
    /// The recipients; empty on a [`RESYNC_KIND`] event, which is for the subscriber itself.
    pub user_ids: Vec<UserId>,
    /// What happened, e.g. `turn_completed`, or [`RESYNC_KIND`].
    pub kind: String,
    /// Kind-specific data.
    pub payload: serde_json::Value,
    /// When the event entered the stream.
    pub occurred_at: Timestamp,
}

/// An event as a publisher hands it to the push log, before the log gave it a sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPushEvent {
    /// Unique id: appending an id the log already holds appends nothing, so a notification
    /// route delivered twice (a worker that died after publishing) is one event.
    pub event_id: Uuid,
    /// The recipients.
    pub user_ids: Vec<UserId>,
    /// What happened, e.g. `turn_completed`.
    pub kind: String,
    /// Kind-specific data.
    pub payload: serde_json::Value,
    /// When it was published (the log may move it forward to keep times ordered).
    pub occurred_at: Timestamp,
}

/// An event as the push log holds it: its sequence, the same for every reader of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedPushEvent {
    /// Position in the log: greater than every earlier event's, not necessarily by one.
    pub sequence: u64,
    /// The event.
    pub event: NewPushEvent,
}

/// Why a cursor could not be served from the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// Events after the cursor were evicted (capacity) or expired (freshness window).
    Stale,
    /// The cursor belongs to another ring lifetime, e.g. before a server restart.
    ForeignEpoch,
    /// The cursor is past the newest event of this epoch, which this ring never issued.
    AheadOfHead,
}

impl ResyncReason {
    /// The snake_case name, as carried in the resync event's payload.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::ForeignEpoch => "foreign_epoch",
            Self::AheadOfHead => "ahead_of_head",
        }
    }
}

/// What to send a subscriber that (re)connects, before live events.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// The cursor is served: send exactly these events (possibly none), in order, then live
    /// ones. No cursor at all also lands here, with no events: the subscriber starts live.
    Events(Vec<Arc<PushEvent>>),
    /// The subscriber missed events that can no longer be replayed: send it
    /// [`PushRing::resync_event`] first, then live events. Nothing buffered is replayed,
    /// since the subscriber has to refetch state anyway.
    Resync {
        /// Why the cursor could not be served.
        reason: ResyncReason,
    },
}

/// The in-memory buffer of recent push events, bounded by count and by age.
///
/// The buffer holds every event with a sequence in `floor + 1 ..= head`, oldest first (the
/// sequences may skip numbers, the events may not), and their timestamps never decrease, so
/// both bounds evict from the front, raising the floor.
#[derive(Debug, Clone)]
pub struct PushRing {
    /// This ring's lifetime; cursors from other epochs are answered with a resync.
    epoch: u64,
    /// Most events kept, so memory stays bounded however fast events arrive.
    capacity: NonZeroUsize,
    /// Oldest age kept, so a long-gone subscriber gets a resync rather than a stale flood.
    window: TimeDelta,
    /// Sequence of the last event taken in (or where the ring started); kept apart from
    /// `events` because expiry can empty the buffer while the count must go on.
    head: u64,
    /// Every event after this sequence (up to `head`) is in `events`: the sequence of the
    /// last evicted event, or where the ring started. Cursors below it cannot be served.
    floor: u64,
    /// The buffered events, oldest first, shared with the subscribers' buffers they were
    /// fanned out to and replayed into (an event is copied once, when taken in).
    events: VecDeque<Arc<PushEvent>>,
}

impl PushRing {
    /// An empty ring. `epoch` must differ between lifetimes (e.g. the start time in
    /// milliseconds, or a random number, chosen at start-up); a negative `window` is zero.
    pub fn new(epoch: u64, capacity: NonZeroUsize, window: TimeDelta) -> Self {
        Self {
            epoch,
            capacity,
            window: window.max(TimeDelta::zero()),
            head: 0,
            floor: 0,
            events: VecDeque::new(),
        }
    }

    /// This ring's lifetime.
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Most events kept.
    pub const fn capacity(&self) -> NonZeroUsize {
        self.capacity
    }

    /// Oldest age kept.
    pub const fn window(&self) -> TimeDelta {
        self.window
    }

    /// Number of buffered events (some may have expired since the last publish or prune).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The cursor of the last event taken in, or of where the ring started. A subscriber
    /// holding it has missed nothing, even once that event has left the buffer.
    pub const fn latest_cursor(&self) -> PushCursor {
        PushCursor::new(self.epoch, self.head)
    }

    /// The sequence of the last event taken in (or where the ring started): a reader of the
    /// log resumes after it.
    pub const fn head(&self) -> u64 {
        self.head
    }

    /// The buffered event with this sequence, if any.
    pub fn get(&self, sequence: u64) -> Option<&Arc<PushEvent>> {
        let at = self
            .events
            .partition_point(|e| e.cursor.sequence() < sequence);
        self.events
            .get(at)
            .filter(|e| e.cursor.sequence() == sequence)
    }

    /// Appends an event with the next sequence (`head + 1`), for a ring that is its own log;
    /// see [`PushRing::ingest`].
    pub fn publish(
        &mut self,
        event_id: Uuid,
        user_ids: Vec<UserId>,
        kind: impl Into<String>,
        payload: serde_json::Value,
        now: Timestamp,
    ) -> Arc<PushEvent> {
        // 2^64 events is out of reach; saturating keeps this panic-free regardless.
        let sequence = self.head.saturating_add(1);
        let event = NewPushEvent {
            event_id,
            user_ids,
            kind: kind.into(),
            payload,
            occurred_at: now,
        };
        self.ingest(LoggedPushEvent { sequence, event }, now)
            .unwrap_or_else(|| {
                Arc::new(self.resync_event(ResyncReason::AheadOfHead, event_id, now))
            })
    }

    /// Takes in the next event read from the log, evicts what exceeds capacity or is older
    /// than `now - window`, and returns the event for fan-out to live subscribers; `None`
    /// (and nothing changes) when its sequence is not after `head`, i.e. it was taken in
    /// already.
    ///
    /// If the event is older than the previous one (clocks of two publishers differ, or
    /// one stepped back), it takes the previous event's time so the buffer stays ordered.
    pub fn ingest(&mut self, logged: LoggedPushEvent, now: Timestamp) -> Option<Arc<PushEvent>> {
        if logged.sequence <= self.head {
            return None;
        }
        self.head = logged.sequence;
        let LoggedPushEvent { sequence, event } = logged;
        let occurred_at = match self.events.back() {
            Some(last) if last.occurred_at > event.occurred_at => last.occurred_at,
            _ => event.occurred_at,
        };
        let event = Arc::new(PushEvent {
            event_id: event.event_id,
            cursor: PushCursor::new(self.epoch, sequence),
            user_ids: event.user_ids,
            kind: event.kind,
            payload: event.payload,
            occurred_at,
        });
        self.events.push_back(Arc::clone(&event));
        let overflow = self.events.len().saturating_sub(self.capacity.get());
        self.evict(overflow);
        self.prune(now);
        Some(event)
    }

    /// Declares every event up to `sequence` lost to this ring (the log purged them before
    /// they were read): cursors below it get a resync from now on. Nothing happens when
    /// the ring is already past it.
    pub fn skip_to(&mut self, sequence: u64) {
        if sequence <= self.head {
            return;
        }
        self.events.clear();
        self.head = sequence;
        self.floor = sequence;
    }

    /// Drops events older than `now - window`; returns how many were dropped.
    pub fn prune(&mut self, now: Timestamp) -> usize {
        let expired = self.expired_count(now);
        self.evict(expired);
        expired
    }

    /// Drops the `count` oldest events, raising the floor to the last one dropped.
    fn evict(&mut self, count: usize) {
        if let Some(last) = count.checked_sub(1).and_then(|i| self.events.get(i)) {
            self.floor = last.cursor.sequence();
        }
        self.events.drain(..count);
    }

    /// What a subscriber presenting `cursor` must be sent before live events. Events older
    /// than `now - window` count as gone even if not pruned yet. Costs O(log n + k) for k
    /// replayed events. The caller must hold the ring from this call until the subscriber is
    /// registered for live events, so that no event falls in between.
    pub fn replay_after(&self, cursor: Option<&PushCursor>, now: Timestamp) -> Replay {
        let Some(cursor) = cursor else {
            return Replay::Events(Vec::new());
        };
        let reason = if cursor.epoch != self.epoch {
            ResyncReason::ForeignEpoch
        } else if cursor.sequence > self.head {
            ResyncReason::AheadOfHead
        } else {
            // Expired events count as evicted: the floor is then the last expired one.
            let expired = self.expired_count(now);
            let floor = match expired.checked_sub(1).and_then(|i| self.events.get(i)) {
                Some(last_expired) => last_expired.cursor.sequence(),
                None => self.floor,
            };
            if cursor.sequence >= floor {
                let start = self
                    .events
                    .partition_point(|e| e.cursor.sequence() <= cursor.sequence);
                return Replay::Events(self.events.range(start..).cloned().collect());
            }
            ResyncReason::Stale
        };
        Replay::Resync { reason }
    }

    /// The [`RESYNC_KIND`] event to send a subscriber first after [`Replay::Resync`]. It is
    /// not buffered; its cursor is the latest one, so the subscriber resumes from live events.
    pub fn resync_event(&self, reason: ResyncReason, event_id: Uuid, now: Timestamp) -> PushEvent {
        PushEvent {
            event_id,
            cursor: self.latest_cursor(),
            user_ids: Vec::new(),
            kind: RESYNC_KIND.to_owned(),
            payload: serde_json::json!({ "reason": reason.as_str() }),
            occurred_at: now,
        }
    }

    /// How many events, from the front, are older than `now - window`.
    fn expired_count(&self, now: Timestamp) -> usize {
        match now.checked_sub_signed(self.window) {
            Some(cutoff) => self.events.partition_point(|e| e.occurred_at < cutoff),
            // The window reaches before the earliest representable time: nothing expired.
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests;
