//! Tests of the parent module.
#![allow(clippy::unwrap_used, clippy::expect_used)]
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

fn publish_at(ring: &mut PushRing, secs: i64) -> Arc<PushEvent> {
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

/// Takes in the event the log numbered `sequence`, at second 0; its sequence if new.
fn ingest(ring: &mut PushRing, sequence: u64) -> Option<u64> {
    let event = NewPushEvent {
        event_id: Uuid::from_u128(u128::from(sequence)),
        user_ids: Vec::new(),
        kind: "test.kind".into(),
        payload: serde_json::json!({}),
        occurred_at: t(0),
    };
    ring.ingest(LoggedPushEvent { sequence, event }, t(0))
        .map(|e| e.cursor.sequence())
}

fn replayed(ring: &PushRing, seen: u64) -> Option<Vec<u64>> {
    match replay(ring, EPOCH, seen, 0) {
        Replay::Events(events) => Some(events.iter().map(|e| e.cursor.sequence()).collect()),
        Replay::Resync { .. } => None,
    }
}

#[test]
fn sequences_with_holes_replay_exactly_the_later_events() {
    let mut ring = ring(10, 60);
    for sequence in [3, 7, 8, 12] {
        assert_eq!(ingest(&mut ring, sequence), Some(sequence));
    }
    assert_eq!(ingest(&mut ring, 8), None, "taken in once");
    assert_eq!(ingest(&mut ring, 12), None);
    assert_eq!(
        replayed(&ring, 5),
        Some(vec![7, 8, 12]),
        "a cursor in a hole"
    );
    assert_eq!(replayed(&ring, 7), Some(vec![8, 12]));
    assert_eq!(replayed(&ring, 0), Some(vec![3, 7, 8, 12]));
    assert_eq!(replayed(&ring, 12), Some(vec![]));
    assert_eq!(ring.get(8).map(|e| e.cursor.sequence()), Some(8));
    assert!(ring.get(9).is_none());
}

#[test]
fn eviction_raises_the_floor_past_holes() {
    let mut ring = ring(2, 60);
    for sequence in [3, 7, 8] {
        ingest(&mut ring, sequence);
    }
    assert_eq!(
        replayed(&ring, 3),
        Some(vec![7, 8]),
        "the evicted event's holder"
    );
    assert_eq!(replayed(&ring, 2), None, "missed the evicted event");
    assert_eq!(replayed(&ring, 5), Some(vec![7, 8]));
}

#[test]
fn skipping_to_a_purge_mark_makes_older_cursors_stale() {
    let mut ring = ring(10, 60);
    ingest(&mut ring, 1);
    ingest(&mut ring, 2);
    ring.skip_to(10);
    assert_eq!(ring.latest_cursor().sequence(), 10);
    assert!(ring.is_empty());
    assert_eq!(replayed(&ring, 2), None);
    assert_eq!(replayed(&ring, 10), Some(vec![]));
    ring.skip_to(5);
    assert_eq!(ring.latest_cursor().sequence(), 10, "never backwards");
    assert_eq!(ingest(&mut ring, 11), Some(11));
    assert_eq!(replayed(&ring, 10), Some(vec![11]));
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
