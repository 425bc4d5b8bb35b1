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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EPOCH: u64 = 0x18f3_a2b4;
    const STALE: Replay = Replay::Resync {
        reason: ResyncReason::Stale,
    };

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn ring(capacity: usize, window_secs: i64) -> PushRing {
        let capacity = NonZeroUsize::new(capacity).unwrap();
        PushRing::new(EPOCH, capacity, TimeDelta::seconds(window_secs))
    }

    fn publish_at(ring: &mut PushRing, secs: i64) -> PushEvent {
        let id = Uuid::from_u128(u128::from(ring.latest_cursor().sequence() + 1));
        let users = vec![UserId::from_uuid(Uuid::from_u128(7))];
        let payload = serde_json::json!({ "at": secs });
        ring.publish(id, users, "test.kind", payload, t(secs))
    }

    /// What a subscriber that has seen sequence `seen` of `epoch` gets at second `now`.
    fn replay(ring: &PushRing, epoch: u64, seen: u64, now: i64) -> Replay {
        ring.replay_after(Some(&PushCursor::new(epoch, seen)), t(now))
    }

    #[test]
    fn cursor_renders_versioned_hex_and_round_trips_through_string_and_json() {
        let cursor = PushCursor::new(0x18f3a2, 42);
        assert_eq!(cursor.to_string(), "v1.18f3a2.2a");
        assert_eq!("v1.18f3a2.2a".parse(), Ok(cursor));
        let json = serde_json::to_string(&cursor).unwrap();
        assert_eq!(json, "\"v1.18f3a2.2a\"");
        assert_eq!(serde_json::from_str::<PushCursor>(&json).unwrap(), cursor);
        assert!(serde_json::from_str::<PushCursor>("\"v1.x.1\"").is_err());
    }

    #[test]
    fn parse_says_what_is_wrong() {
        let bad = |field| InvalidCursor::BadNumber { field };
        let version = |v: &str| InvalidCursor::UnsupportedVersion { version: v.into() };
        let cases = [
            ("", InvalidCursor::Empty, "empty"),
            (
                &"1".repeat(65),
                InvalidCursor::TooLong { len: 65 },
                "at most 64",
            ),
            ("v1.1", InvalidCursor::Malformed, "form"),
            ("v1.1.2.3", InvalidCursor::Malformed, "form"),
            ("v2.1.2", version("v2"), "\"v2\""),
            ("V1.1.2", version("V1"), "expected \"v1\""),
            ("v1.+1.2", bad("epoch"), "epoch"),
            ("v1.1.", bad("sequence"), "sequence"),
            ("v1.1.g", bad("sequence"), "hexadecimal"),
            ("v1.1.11111111111111111", bad("sequence"), "1 to 16 digits"),
        ];
        for (input, expected, message) in cases {
            let err = PushCursor::parse(input).unwrap_err();
            assert_eq!(err, expected, "{input:?}");
            assert!(err.to_string().contains(message), "{err} lacks {message:?}");
        }
        assert_eq!(PushCursor::parse_optional(""), Ok(None));
        let parsed = PushCursor::parse_optional("v1.1.2");
        assert_eq!(parsed, Ok(Some(PushCursor::new(1, 2))));
        assert!(PushCursor::parse_optional("junk").is_err());
    }

    #[test]
    fn publish_assigns_consecutive_cursors_in_the_ring_epoch() {
        let mut ring = ring(10, 60);
        assert_eq!(ring.latest_cursor(), PushCursor::new(EPOCH, 0));
        assert!(ring.is_empty());
        let first = publish_at(&mut ring, 0);
        let second = publish_at(&mut ring, 1);
        assert_eq!(first.cursor, PushCursor::new(EPOCH, 1));
        assert_eq!(second.cursor, PushCursor::new(EPOCH, 2));
        assert_eq!(
            (first.kind.as_str(), first.event_id),
            ("test.kind", Uuid::from_u128(1))
        );
        assert_eq!(first.occurred_at, t(0));
        assert_eq!((ring.latest_cursor(), ring.len()), (second.cursor, 2));
    }

    #[test]
    fn no_cursor_or_the_latest_cursor_replays_nothing() {
        let mut ring = ring(10, 60);
        publish_at(&mut ring, 0);
        assert_eq!(ring.replay_after(None, t(1)), Replay::Events(vec![]));
        assert_eq!(replay(&ring, EPOCH, 1, 1), Replay::Events(vec![]));
        // Caught up is caught up, even once the event itself has expired.
        assert_eq!(replay(&ring, EPOCH, 1, 1000), Replay::Events(vec![]));
    }

    #[test]
    fn a_buffered_cursor_replays_exactly_the_later_events() {
        let mut ring = ring(10, 60);
        let events: Vec<_> = (0..4).map(|i| publish_at(&mut ring, i)).collect();
        let replay_after_second = ring.replay_after(Some(&events[1].cursor), t(5));
        assert_eq!(replay_after_second, Replay::Events(events[2..].to_vec()));
        // Sequence 0 means "nothing seen yet": everything, as the first event is still here.
        assert_eq!(replay(&ring, EPOCH, 0, 5), Replay::Events(events));
    }

    #[test]
    fn a_cursor_evicted_by_capacity_gets_a_resync() {
        let mut ring = ring(3, 60);
        let events: Vec<_> = (0..5).map(|i| publish_at(&mut ring, i)).collect();
        assert_eq!(ring.len(), 3);
        // Event 3 is still buffered, so the holder of event 2 misses nothing.
        assert_eq!(
            replay(&ring, EPOCH, 2, 5),
            Replay::Events(events[2..].to_vec())
        );
        assert_eq!(replay(&ring, EPOCH, 1, 5), STALE);
    }

    #[test]
    fn a_cursor_outside_the_window_gets_a_resync_before_and_after_pruning() {
        let mut ring = ring(10, 60);
        let old = publish_at(&mut ring, 0);
        let recent = publish_at(&mut ring, 50);
        assert_eq!(
            replay(&ring, EPOCH, 0, 50),
            Replay::Events(vec![old, recent.clone()])
        );
        assert_eq!(replay(&ring, EPOCH, 0, 61), STALE);
        assert_eq!(replay(&ring, EPOCH, 1, 61), Replay::Events(vec![recent]));
        assert_eq!((ring.prune(t(61)), ring.len()), (1, 1));
        assert_eq!(replay(&ring, EPOCH, 0, 61), STALE);
        assert_eq!(ring.prune(t(200)), 1);
        assert!(ring.is_empty());
        assert_eq!(replay(&ring, EPOCH, 1, 200), STALE);
        assert_eq!(replay(&ring, EPOCH, 2, 200), Replay::Events(vec![]));
    }

    #[test]
    fn foreign_epoch_and_future_cursors_get_a_resync() {
        let mut ring = ring(10, 60);
        publish_at(&mut ring, 0);
        let foreign = Replay::Resync {
            reason: ResyncReason::ForeignEpoch,
        };
        assert_eq!(replay(&ring, EPOCH + 1, 1, 1), foreign);
        let ahead = Replay::Resync {
            reason: ResyncReason::AheadOfHead,
        };
        assert_eq!(replay(&ring, EPOCH, 2, 1), ahead);
    }

    #[test]
    fn resync_event_points_at_the_latest_cursor_and_names_the_reason() {
        let mut ring = ring(10, 60);
        publish_at(&mut ring, 0);
        let event = ring.resync_event(ResyncReason::ForeignEpoch, Uuid::from_u128(99), t(3));
        assert_eq!(
            (event.kind.as_str(), event.cursor),
            (RESYNC_KIND, ring.latest_cursor())
        );
        assert_eq!(
            event.payload,
            serde_json::json!({ "reason": "foreign_epoch" })
        );
        assert_eq!(
            (event.event_id, event.occurred_at),
            (Uuid::from_u128(99), t(3))
        );
        assert!(event.user_ids.is_empty());
        assert_eq!(ring.len(), 1, "the resync event is not buffered");
    }

    #[test]
    fn a_clock_step_back_keeps_the_buffer_ordered() {
        let mut ring = ring(10, 60);
        publish_at(&mut ring, 10);
        assert_eq!(publish_at(&mut ring, 5).occurred_at, t(10));
        assert_eq!(ring.prune(t(69)), 0);
        assert_eq!(ring.prune(t(71)), 2);
    }

    #[test]
    fn a_negative_window_is_zero() {
        let ring = PushRing::new(EPOCH, NonZeroUsize::MIN, TimeDelta::seconds(-5));
        assert_eq!(ring.window(), TimeDelta::zero());
        assert_eq!((ring.epoch(), ring.capacity()), (EPOCH, NonZeroUsize::MIN));
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in any::<String>(), near in "[vV]?[0-9a-fA-F+.-]{0,40}") {
            let _ = PushCursor::parse(&input);
            let _ = PushCursor::parse(&near);
        }

        #[test]
        fn parse_inverts_display(epoch in any::<u64>(), sequence in any::<u64>()) {
            let cursor = PushCursor::new(epoch, sequence);
            prop_assert!(cursor.to_string().len() <= MAX_CURSOR_LEN);
            prop_assert_eq!(PushCursor::parse(&cursor.to_string()), Ok(cursor));
        }

        #[test]
        fn replay_serves_buffered_cursors_and_resyncs_the_rest(
            capacity in 1usize..12,
            window in 0i64..40,
            steps in proptest::collection::vec(0i64..10, 0..50),
            idle in 0i64..20,
            other_epoch in any::<u64>().prop_filter("foreign", |e| *e != EPOCH),
        ) {
            let mut ring = ring(capacity, window);
            let (mut all, mut now) = (Vec::new(), 0);
            for step in steps {
                now += step;
                all.push(publish_at(&mut ring, now));
                prop_assert!(ring.len() <= capacity, "capacity exceeded");
            }
            now += idle;
            // Model: the last `capacity` events, minus those older than now - window.
            let kept = all.len().saturating_sub(capacity);
            let first_fresh = (kept..all.len())
                .find(|&i| all[i].occurred_at >= t(now - window))
                .unwrap_or(all.len());
            let foreign = Replay::Resync { reason: ResyncReason::ForeignEpoch };
            for seen in 0..=all.len() {
                let expected =
                    if seen >= first_fresh { Replay::Events(all[seen..].to_vec()) } else { STALE };
                prop_assert_eq!(replay(&ring, EPOCH, seen as u64, now), expected);
                prop_assert_eq!(replay(&ring, other_epoch, seen as u64, now), foreign.clone());
            }
            let ahead = Replay::Resync { reason: ResyncReason::AheadOfHead };
            prop_assert_eq!(replay(&ring, EPOCH, all.len() as u64 + 1, now), ahead);
            // Pruning leaves only the fresh events and changes no answer.
            let before = replay(&ring, EPOCH, 0, now);
            ring.prune(t(now));
            prop_assert_eq!(ring.len(), all.len() - first_fresh);
            prop_assert_eq!(replay(&ring, EPOCH, 0, now), before);
        }
    }
}
