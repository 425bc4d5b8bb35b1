#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The push service: replay from a cursor then live events, resync for cursors the ring
//! cannot serve, one subscription per gateway, bounded buffers for slow subscribers, and
//! typed errors for bad input.

use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::TimeDelta;
use futures::FutureExt;
use galaxy_core::domain::UserId;
use galaxy_core::domain::push::{InvalidCursor, PushCursor, PushEvent, RESYNC_KIND};
use galaxy_core::ports::{PushPublisher, PushSubscriptions};
use galaxy_core::service::push::{
    GatewayClientId, InvalidGatewayClientId, PushConfig, PushService, SubscribeError, Subscription,
    SubscriptionEnded,
};
use galaxy_core::service::{ErrorKind, ServiceError};
use galaxy_ports::memory::MemoryPushLog;
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

const GATEWAY: &str = "gateway-1";

fn config(ring: usize, buffer: usize) -> PushConfig {
    PushConfig {
        ring_capacity: NonZeroUsize::new(ring).unwrap(),
        freshness_window: TimeDelta::minutes(5),
        subscriber_buffer: NonZeroUsize::new(buffer).unwrap(),
    }
}

fn service_with(config: PushConfig) -> (PushService, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let secrets = Arc::new(SeededSecretGenerator::new(7));
    let log = Arc::new(MemoryPushLog::new());
    (PushService::new(clock.clone(), secrets, config, log), clock)
}

fn service() -> PushService {
    service_with(config(100, 10)).0
}

async fn publish(service: &PushService, n: u64) -> Arc<PushEvent> {
    let user = UserId::from_uuid(Uuid::from_u128(u128::from(n)));
    service
        .publish_event(vec![user], "test.event", json!({ "n": n }))
        .await
        .unwrap()
}

async fn publish_many(service: &PushService, range: std::ops::Range<u64>) -> Vec<Arc<PushEvent>> {
    let mut events = Vec::new();
    for n in range {
        events.push(publish(service, n).await);
    }
    events
}

/// Everything the subscription has queued right now, without waiting.
fn drain(subscription: &mut Subscription) -> Vec<Arc<PushEvent>> {
    let mut events = Vec::new();
    while let Some(Ok(event)) = subscription.try_next() {
        events.push(event);
    }
    events
}

fn ids(events: &[Arc<PushEvent>]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

#[tokio::test]
async fn a_buffered_cursor_replays_exactly_the_later_events_then_live_ones() {
    let service = service();
    let early = publish_many(&service, 0..5).await;
    let cursor = early[1].cursor.to_string();

    let mut subscription = service.subscribe(GATEWAY, Some(&cursor)).unwrap();
    let live = publish_many(&service, 5..8).await;

    let mut received = Vec::new();
    for _ in 0..6 {
        received.push(subscription.next().await.unwrap());
    }
    let expected: Vec<_> = early[2..].iter().chain(&live).cloned().collect();
    assert_eq!(ids(&received), ids(&expected));
    assert!(subscription.next().now_or_never().is_none(), "nothing more");
}

#[tokio::test]
async fn no_cursor_or_an_empty_one_starts_live() {
    let service = service();
    publish_many(&service, 0..3).await;
    for cursor in [None, Some("")] {
        let mut subscription = service.subscribe(GATEWAY, cursor).unwrap();
        assert!(
            subscription.try_next().is_none(),
            "no replay for {cursor:?}"
        );
        let live = publish(&service, 9).await;
        assert_eq!(subscription.next().await.unwrap().event_id, live.event_id);
    }
}

#[tokio::test]
async fn the_latest_cursor_replays_nothing_and_misses_nothing() {
    let service = service();
    let last = publish_many(&service, 0..3).await.pop().unwrap();
    let mut subscription = service
        .subscribe(GATEWAY, Some(&last.cursor.to_string()))
        .unwrap();
    assert!(subscription.try_next().is_none());
    let live = publish(&service, 3).await;
    assert_eq!(subscription.next().await.unwrap().event_id, live.event_id);
}

fn assert_resync(event: &PushEvent, reason: &str, latest: PushCursor) {
    assert_eq!(event.kind, RESYNC_KIND);
    assert_eq!(event.payload, json!({ "reason": reason }));
    assert_eq!(event.cursor, latest);
    assert!(event.user_ids.is_empty());
}

#[tokio::test]
async fn an_evicted_cursor_gets_a_resync_first_then_live_events() {
    let (service, _) = service_with(config(3, 10));
    let events = publish_many(&service, 0..6).await;
    let mut subscription = service
        .subscribe(GATEWAY, Some(&events[0].cursor.to_string()))
        .unwrap();
    let resync = subscription.next().await.unwrap();
    assert_resync(&resync, "stale", events[5].cursor);
    assert!(
        subscription.try_next().is_none(),
        "nothing buffered replayed"
    );
    let live = publish(&service, 6).await;
    assert_eq!(subscription.next().await.unwrap().event_id, live.event_id);
}

#[tokio::test]
async fn a_cursor_older_than_the_freshness_window_gets_a_resync() {
    let (service, clock) = service_with(config(100, 10));
    let old = publish(&service, 0).await;
    clock.advance(TimeDelta::minutes(6));
    let fresh = publish(&service, 1).await;
    let mut subscription = service
        .subscribe(
            GATEWAY,
            Some(&PushCursor::new(service.epoch(), 0).to_string()),
        )
        .unwrap();
    assert_resync(&subscription.next().await.unwrap(), "stale", fresh.cursor);
    drop(subscription);
    // The holder of the expired event's cursor only missed the fresh one.
    let mut subscription = service
        .subscribe(GATEWAY, Some(&old.cursor.to_string()))
        .unwrap();
    assert_eq!(ids(&drain(&mut subscription)), vec![fresh.event_id]);
}

#[tokio::test]
async fn a_foreign_epoch_or_future_cursor_gets_a_resync() {
    let service = service();
    let events = publish_many(&service, 0..2).await;
    let foreign = PushCursor::new(service.epoch().wrapping_add(1), 1).to_string();
    let mut subscription = service.subscribe(GATEWAY, Some(&foreign)).unwrap();
    assert_resync(
        &subscription.next().await.unwrap(),
        "foreign_epoch",
        events[1].cursor,
    );
    let ahead = PushCursor::new(service.epoch(), 99).to_string();
    let mut subscription = service.subscribe(GATEWAY, Some(&ahead)).unwrap();
    assert_resync(
        &subscription.next().await.unwrap(),
        "ahead_of_head",
        events[1].cursor,
    );
}

#[tokio::test]
async fn services_on_two_logs_have_different_epochs_and_on_one_the_same() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let secrets = Arc::new(SeededSecretGenerator::new(1));
    let log = Arc::new(MemoryPushLog::new());
    let service = |log: Arc<MemoryPushLog>| {
        PushService::new(clock.clone(), secrets.clone(), PushConfig::default(), log)
    };
    let a = service(log.clone());
    let b = service(Arc::new(MemoryPushLog::new()));
    let c = service(log);
    assert_ne!(a.epoch(), b.epoch());
    assert_eq!(a.epoch(), c.epoch());
}

/// Two "replicas" on one log, as with Postgres: what one publishes, the other's follower
/// reads with the same cursor, and a gateway may move between them.
#[tokio::test]
async fn replicas_on_one_log_serve_the_same_cursors() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let secrets = Arc::new(SeededSecretGenerator::new(3));
    let log = Arc::new(MemoryPushLog::new());
    let replica = || {
        Arc::new(PushService::new(
            clock.clone(),
            secrets.clone(),
            config(100, 10),
            log.clone(),
        ))
    };
    let (a, b) = (replica(), replica());
    let stop = tokio_util::sync::CancellationToken::new();
    // A poll far beyond the test: only the log's wake-up brings B the events.
    let follower = tokio::spawn(
        b.clone()
            .follow(std::time::Duration::from_secs(3600), stop.clone()),
    );
    let mut on_b = b.subscribe(GATEWAY, None).unwrap();
    let published = publish_many(&a, 0..3).await;
    for expected in &published {
        let received = tokio::time::timeout(std::time::Duration::from_secs(5), on_b.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&received, expected);
    }
    stop.cancel();
    follower.await.unwrap();

    // C has not read the log yet; a gateway comes with A's cursor of the first event:
    // through the port, C catches up first and replays exactly the rest (no resync).
    let c = replica();
    let subscriptions: &dyn PushSubscriptions = c.as_ref();
    let gateway = GatewayClientId::parse("gateway-moved").unwrap();
    let mut feed = subscriptions
        .subscribe(gateway, Some(published[0].cursor))
        .await;
    assert_eq!(feed.next().await.unwrap(), published[1]);
    assert_eq!(feed.next().await.unwrap(), published[2]);
    assert!(feed.next().now_or_never().is_none(), "nothing more");
}

#[tokio::test]
async fn publishing_an_event_id_twice_shows_it_once() {
    let service = service();
    let mut subscription = service.subscribe(GATEWAY, None).unwrap();
    let publisher: &dyn PushPublisher = &service;
    let user = UserId::from_uuid(Uuid::from_u128(5));
    let route = Uuid::from_u128(77);
    let first = publisher
        .publish(route, &[user], "game.turn_completed", &json!({ "turn": 3 }))
        .await
        .unwrap();
    // The worker died after publishing and the route is delivered again.
    let again = publisher
        .publish(route, &[user], "game.turn_completed", &json!({ "turn": 3 }))
        .await
        .unwrap();
    assert_eq!(first, again, "the first event's cursor");
    assert_eq!(
        drain(&mut subscription).len(),
        1,
        "the gateway sees it once"
    );
    assert_eq!(service.ring_len(), 1);
}

#[tokio::test]
async fn a_second_subscription_with_the_same_id_replaces_the_first() {
    let service = service();
    let mut first = service.subscribe(GATEWAY, None).unwrap();
    publish(&service, 0).await;
    let mut other = service.subscribe("gateway-2", None).unwrap();
    let mut second = service.subscribe(GATEWAY, None).unwrap();
    assert_eq!(service.subscriber_count(), 2);

    // The first ends at once, its queued event freed, and stays ended.
    assert_eq!(first.next().await.unwrap_err(), SubscriptionEnded::Replaced);
    assert_eq!(first.try_next(), Some(Err(SubscriptionEnded::Replaced)));
    let live = publish(&service, 1).await;
    assert_eq!(second.next().await.unwrap().event_id, live.event_id);
    assert_eq!(other.next().await.unwrap().event_id, live.event_id);

    // Dropping the replaced subscription must not unregister its successor.
    drop(first);
    assert_eq!(service.subscriber_count(), 2);
    drop(second);
    assert_eq!(service.subscriber_count(), 1);
}

#[tokio::test]
async fn a_waiting_reader_is_woken_when_replaced() {
    let service = Arc::new(service());
    let mut first = service.subscribe(GATEWAY, None).unwrap();
    let waiter = tokio::spawn(async move { first.next().await });
    tokio::task::yield_now().await;
    let _second = service.subscribe(GATEWAY, None).unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.unwrap_err(), SubscriptionEnded::Replaced);
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_dropped_at_its_bound() {
    const BUFFER: usize = 8;
    let service = service_with(config(1000, BUFFER)).0;
    let mut slow = service.subscribe(GATEWAY, None).unwrap();
    let mut reader = service.subscribe("gateway-reader", None).unwrap();
    let first = publish(&service, 0).await;
    assert_eq!(slow.next().await.unwrap().event_id, first.event_id);
    assert_eq!(reader.next().await.unwrap().event_id, first.event_id);

    // The slow one reads nothing more; the other keeps up.
    for n in 1..=500 {
        publish(&service, n).await;
        assert!(drain(&mut reader).len() == 1);
        assert!(
            service.queued() <= BUFFER,
            "queued {} after {n} events",
            service.queued()
        );
    }
    assert_eq!(service.subscriber_count(), 1);
    assert_eq!(service.lagged_total(), 1);
    // Its buffer was freed when it was dropped, not when it reads.
    assert_eq!(slow.queued(), 0);
    assert_eq!(
        slow.next().await.unwrap_err(),
        SubscriptionEnded::Lagged { buffer: BUFFER }
    );

    // Reconnecting with the last handled cursor replays everything the ring still holds.
    let mut again = service
        .subscribe(GATEWAY, Some(&first.cursor.to_string()))
        .unwrap();
    let replayed = drain(&mut again);
    assert_eq!(replayed.len(), 500);
    assert_eq!(replayed[0].cursor.sequence(), first.cursor.sequence() + 1);
}

#[tokio::test]
async fn a_replay_longer_than_the_bound_does_not_count_against_it() {
    const BUFFER: usize = 4;
    let service = service_with(config(100, BUFFER)).0;
    let events = publish_many(&service, 0..50).await;
    let mut subscription = service
        .subscribe(GATEWAY, Some(&events[0].cursor.to_string()))
        .unwrap();
    assert_eq!(service.queued(), 49);
    // Up to BUFFER live events fit behind the unread replay...
    publish_many(&service, 50..50 + BUFFER as u64).await;
    assert_eq!(service.subscriber_count(), 1);
    // ...and reading the replay makes no extra room for more.
    assert_eq!(drain(&mut subscription).len(), 49 + BUFFER);
    publish_many(&service, 100..100 + BUFFER as u64).await;
    assert_eq!(service.queued(), BUFFER);
    publish(&service, 200).await;
    assert_eq!(service.subscriber_count(), 0);
    assert_eq!(
        subscription.next().await.unwrap_err(),
        SubscriptionEnded::Lagged { buffer: BUFFER }
    );
}

#[tokio::test]
async fn dropping_a_subscription_unregisters_it() {
    let service = service();
    let subscription = service.subscribe(GATEWAY, None).unwrap();
    assert_eq!(service.subscriber_count(), 1);
    drop(subscription);
    assert_eq!(service.subscriber_count(), 0);
    publish(&service, 0).await;
    assert_eq!(service.queued(), 0);
}

#[tokio::test]
async fn the_port_returns_the_cursor_of_the_published_event() {
    let service = service();
    let mut subscription = service.subscribe(GATEWAY, None).unwrap();
    let publisher: &dyn PushPublisher = &service;
    let user = UserId::from_uuid(Uuid::from_u128(5));
    let cursor = publisher
        .publish(
            Uuid::from_u128(9),
            &[user],
            "game.turn_completed",
            &json!({ "turn": 3 }),
        )
        .await
        .unwrap();
    let event = subscription.next().await.unwrap();
    assert_eq!(PushCursor::parse(&cursor).unwrap(), event.cursor);
    assert_eq!(event.cursor, service.latest_cursor());
    assert_eq!(
        (event.user_ids.clone(), event.kind.as_str()),
        (vec![user], "game.turn_completed")
    );
    assert_eq!(event.payload, json!({ "turn": 3 }));
    assert_eq!(service.ring_len(), 1);
}

#[tokio::test]
async fn a_malformed_cursor_is_a_typed_error_and_changes_nothing() {
    let service = service();
    let _live = service.subscribe(GATEWAY, None).unwrap();
    for (cursor, expected) in [
        ("garbage", InvalidCursor::Malformed),
        ("v1.zz.1", InvalidCursor::BadNumber { field: "epoch" }),
        (
            "v9.1.1",
            InvalidCursor::UnsupportedVersion {
                version: "v9".into(),
            },
        ),
    ] {
        let error = service.subscribe(GATEWAY, Some(cursor)).unwrap_err();
        assert_eq!(error, SubscribeError::InvalidCursor(expected));
        assert_eq!(
            (error.kind(), error.code()),
            (ErrorKind::InvalidRequest, "invalid_cursor")
        );
    }
    let long = "v1.".repeat(100);
    assert!(matches!(
        service.subscribe(GATEWAY, Some(&long)),
        Err(SubscribeError::InvalidCursor(InvalidCursor::TooLong { .. }))
    ));
    // The live subscription was not replaced by any rejected call.
    assert_eq!(service.subscriber_count(), 1);
}

#[tokio::test]
async fn a_bad_gateway_client_id_is_a_typed_error() {
    let service = service();
    let long = "a".repeat(129);
    for (id, expected) in [
        ("", InvalidGatewayClientId::Empty),
        (long.as_str(), InvalidGatewayClientId::TooLong { len: 129 }),
        (
            "gw 1",
            InvalidGatewayClientId::BadCharacter {
                found: ' ',
                position: 2,
            },
        ),
        (
            "gw/ü",
            InvalidGatewayClientId::BadCharacter {
                found: '/',
                position: 2,
            },
        ),
    ] {
        let error = service.subscribe(id, None).unwrap_err();
        assert_eq!(error, SubscribeError::InvalidGatewayClientId(expected));
        assert_eq!(error.code(), "invalid_gateway_client_id");
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(service.subscriber_count(), 0);
    let ok = "A-z_0.9:x".to_owned() + &"b".repeat(119);
    assert_eq!(GatewayClientId::parse(&ok).unwrap().as_str(), ok);
}

proptest! {
    #[test]
    fn gateway_id_parse_never_panics_and_accepts_only_the_alphabet(input in any::<String>()) {
        if let Ok(id) = GatewayClientId::parse(&input) {
            prop_assert!(id.as_str().len() <= 128);
            prop_assert!(id.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c)));
        }
    }
}

#[tokio::test]
async fn event_times_are_kept_to_the_microsecond_a_database_log_stores() {
    use chrono::Timelike;
    let (service, clock) = service_with(config(100, 10));
    let at = galaxy_core::ports::Clock::now(clock.as_ref()) + TimeDelta::nanoseconds(1_234_567);
    let event = service
        .publish_new(galaxy_core::domain::push::NewPushEvent {
            event_id: Uuid::from_u128(42),
            user_ids: Vec::new(),
            kind: "test.event".into(),
            payload: json!({}),
            occurred_at: at,
        })
        .await
        .unwrap();
    assert_eq!(
        event.occurred_at,
        at - TimeDelta::nanoseconds(567),
        "truncated to the microsecond (what a replica reading Postgres sees), never rounded up"
    );
    assert_eq!(event.occurred_at.nanosecond() % 1_000, 0);
}

/// A replica that fell behind the shared log while it purged events its live subscribers
/// never got ends their subscriptions (rather than go on past the hole), and the cursor
/// each had is then answered with a resync.
#[tokio::test]
async fn a_replica_behind_a_purge_ends_its_live_subscriptions_so_they_resync() {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let secrets = Arc::new(SeededSecretGenerator::new(5));
    let log = Arc::new(MemoryPushLog::new());
    let replica = || PushService::new(clock.clone(), secrets.clone(), config(100, 10), log.clone());
    let (lagging, other) = (replica(), replica());
    let mut live = lagging.subscribe(GATEWAY, None).unwrap();
    let first = publish(&lagging, 0).await;
    assert_eq!(drain(&mut live), vec![first.clone()]);
    // The lagging replica reads nothing while the other appends and the log is purged.
    publish_many(&other, 1..4).await;
    use galaxy_core::ports::PushLog as _;
    log.purge(chrono::DateTime::UNIX_EPOCH, 1).await.unwrap();
    lagging.catch_up().await.unwrap();
    let ended = live
        .try_next()
        .expect("the subscription ended")
        .unwrap_err();
    assert!(matches!(ended, SubscriptionEnded::Gap { .. }), "{ended:?}");
    // Subscribing again with the last cursor handled: a resync, not a silent skip.
    let mut again = lagging
        .subscribe(GATEWAY, Some(&first.cursor.to_string()))
        .unwrap();
    assert_eq!(drain(&mut again)[0].kind, RESYNC_KIND);
}
