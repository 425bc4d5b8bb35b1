//! Push events and the replay ring that lets a reconnecting subscriber catch up.
//!
//! Every published event gets a [`PushCursor`]: the ring's epoch plus a sequence number that
//! grows by one per event. The ring keeps recent events, bounded both by a count and by a
//! freshness window. A subscriber that comes back with a cursor still covered by the ring gets
//! exactly the events after it; any other cursor (evicted, expired, from an earlier process,
//! or ahead of anything published) gets [`Replay::Resync`], and the caller then sends the
//! subscriber a [`RESYNC_KIND`] event (see [`PushRing::resync_event`]) so that it knows it
//! missed events and must refetch state.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Timestamp, UserId};

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
    /// What happened, e.g. `game.turn_completed`, or [`RESYNC_KIND`].
    pub kind: String,
    /// Kind-specific data.
    pub payload: serde_json::Value,
    /// When the event entered the stream.
    pub occurred_at: Timestamp,
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
    Events(Vec<PushEvent>),
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
/// Sequences are contiguous: the buffer holds the events `head - len + 1 ..= head`, oldest
/// first, and their timestamps never decrease, so both bounds evict from the front.
#[derive(Debug, Clone)]
pub struct PushRing {
    /// This ring's lifetime; cursors from other epochs are answered with a resync.
    epoch: u64,
    /// Most events kept, so memory stays bounded however fast events arrive.
    capacity: NonZeroUsize,
    /// Oldest age kept, so a long-gone subscriber gets a resync rather than a stale flood.
    window: TimeDelta,
    /// Sequence of the last published event (0 before the first); kept apart from `events`
    /// because expiry can empty the buffer while the count must go on.
    head: u64,
    /// The buffered events, oldest first.
    events: VecDeque<PushEvent>,
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

    /// The cursor of the last published event, or sequence 0 if none was published yet. A
    /// subscriber holding it has missed nothing, even once that event has left the buffer.
    pub const fn latest_cursor(&self) -> PushCursor {
        PushCursor::new(self.epoch, self.head)
    }

    /// Appends an event with the next sequence, evicts what exceeds capacity or is older
    /// than `now - window`, and returns the event for fan-out to live subscribers.
    ///
    /// If `now` is before the previous event (the clock stepped back), the event takes the
    /// previous event's time so the buffer stays ordered.
    pub fn publish(
        &mut self,
        event_id: Uuid,
        user_ids: Vec<UserId>,
        kind: impl Into<String>,
        payload: serde_json::Value,
        now: Timestamp,
    ) -> PushEvent {
        // 2^64 events is out of reach; saturating keeps this panic-free regardless.
        self.head = self.head.saturating_add(1);
        let occurred_at = match self.events.back() {
            Some(last) if last.occurred_at > now => last.occurred_at,
            _ => now,
        };
        let event = PushEvent {
            event_id,
            cursor: self.latest_cursor(),
            user_ids,
            kind: kind.into(),
            payload,
            occurred_at,
        };
        self.events.push_back(event.clone());
        let overflow = self.events.len().saturating_sub(self.capacity.get());
        self.events.drain(..overflow);
        self.prune(now);
        event
    }

    /// Drops events older than `now - window`; returns how many were dropped.
    pub fn prune(&mut self, now: Timestamp) -> usize {
        let expired = self.expired_count(now);
        self.events.drain(..expired);
        expired
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
            // Contiguous sequences: the last `missed` buffered events are exactly those after
            // the cursor, provided that many are still fresh.
            let missed = self.head - cursor.sequence;
            let fresh = self.events.len() - self.expired_count(now);
            match usize::try_from(missed) {
                Ok(missed) if missed <= fresh => {
                    let start = self.events.len() - missed;
                    return Replay::Events(self.events.range(start..).cloned().collect());
                }
                _ => ResyncReason::Stale,
            }
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
