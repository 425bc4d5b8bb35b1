//! The [`PushLog`] suite: `make` returns a fresh, empty log.
//!
//! Order, reads after a cursor, duplicate appends, concurrent appenders read back in one
//! order with nothing lost (also by a reader following them as they append, which is what
//! catches a log that lets a reader skip a sequence not yet committed), purging, times,
//! wake-ups and the epoch.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use galaxy_core::domain::push::{LoggedPushEvent, NewPushEvent};
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::PushLog;
use serde_json::json;

use super::run_case;

/// How long a wake-up or a concurrent read may take before the case fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Appending tasks in the concurrency case, and events each appends.
const TASKS: usize = 8;
const PER_TASK: usize = 25;

/// Runs every case.
pub async fn run_all<L, F, Fut>(make: F)
where
    L: PushLog + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
{
    run_case("push", "appends are read back in order", &make, |log| {
        appends_are_read_back_in_order(log)
    })
    .await;
    run_case(
        "push",
        "a read after a sequence returns exactly the later events, a page at a time",
        &make,
        |log| reads_after_a_sequence_page_by_page(log),
    )
    .await;
    run_case("push", "a duplicate append appends nothing", &make, |log| {
        a_duplicate_append_appends_nothing(log)
    })
    .await;
    run_case(
        "push",
        "concurrent appenders are read back in one order, nothing lost",
        &make,
        |log| concurrent_appenders_lose_nothing(Arc::new(log)),
    )
    .await;
    run_case(
        "push",
        "purge drops old events and the surplus",
        &make,
        |log| purge_drops_old_events_and_the_surplus(log),
    )
    .await;
    run_case("push", "times never go back along the log", &make, |log| {
        times_never_go_back(log)
    })
    .await;
    run_case("push", "an append wakes a watcher", &make, |log| {
        an_append_wakes_a_watcher(log)
    })
    .await;
}

/// A fixed start, whole seconds (every store keeps at least microseconds).
fn t(secs: i64) -> Timestamp {
    DateTime::from_timestamp(1_893_456_000 + secs, 0).unwrap_or_default()
}

fn event(n: u64, at: Timestamp) -> NewPushEvent {
    NewPushEvent {
        event_id: uuid::Uuid::new_v4(),
        user_ids: vec![UserId::from_uuid(uuid::Uuid::from_u128(u128::from(n) + 1))],
        kind: "test.event".to_owned(),
        payload: json!({ "n": n, "text": "é", "nested": { "list": [1, 2, 3] } }),
        occurred_at: at,
    }
}

async fn append<L: PushLog + ?Sized>(log: &L, event: &NewPushEvent) -> u64 {
    let appended = log
        .append(event)
        .await
        .unwrap_or_else(|e| panic!("append: {e}"));
    assert!(!appended.duplicate, "a new id is not a duplicate");
    appended.sequence
}

async fn read_all<L: PushLog + ?Sized>(log: &L, after: u64) -> Vec<LoggedPushEvent> {
    log.read_after(after, 10_000)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"))
        .events
}

async fn appends_are_read_back_in_order<L: PushLog>(log: L) {
    assert!(read_all(&log, 0).await.is_empty(), "a fresh log is empty");
    let events: Vec<_> = (0..5).map(|n| event(n, t(0))).collect();
    let mut sequences = Vec::new();
    for event in &events {
        sequences.push(append(&log, event).await);
    }
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "sequences increase in append order: {sequences:?}"
    );
    let read = read_all(&log, 0).await;
    let expected: Vec<_> = sequences
        .iter()
        .zip(&events)
        .map(|(&sequence, event)| LoggedPushEvent {
            sequence,
            event: event.clone(),
        })
        .collect();
    assert_eq!(read, expected, "every field survives, in order");
    assert_eq!(log.epoch(), log.epoch(), "the epoch is stable");
}

async fn reads_after_a_sequence_page_by_page<L: PushLog>(log: L) {
    let mut sequences = Vec::new();
    for n in 0..7 {
        sequences.push(append(&log, &event(n, t(0))).await);
    }
    let after_third: Vec<u64> = read_all(&log, sequences[2])
        .await
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(after_third, sequences[3..]);
    assert!(
        read_all(&log, sequences[6]).await.is_empty(),
        "none after the last"
    );
    // Page by page, three at a time, as a follower catches up.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = log
            .read_after(after, 3)
            .await
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert!(page.events.len() <= 3, "the limit holds");
        let Some(last) = page.events.last() else {
            break;
        };
        after = last.sequence;
        paged.extend(page.events.iter().map(|e| e.sequence));
    }
    assert_eq!(paged, sequences);
}

async fn a_duplicate_append_appends_nothing<L: PushLog>(log: L) {
    let first = event(1, t(0));
    let sequence = append(&log, &first).await;
    let later = append(&log, &event(2, t(1))).await;
    // The same id again (a route delivered twice), even with other content.
    let mut again = event(3, t(2));
    again.event_id = first.event_id;
    let appended = log
        .append(&again)
        .await
        .unwrap_or_else(|e| panic!("append: {e}"));
    assert!(appended.duplicate);
    assert_eq!(
        appended.sequence, sequence,
        "the first sequence is returned"
    );
    let read = read_all(&log, 0).await;
    let sequences: Vec<u64> = read.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [sequence, later], "the event is held once");
    assert_eq!(read[0].event, first, "the first copy is kept");
    let next = append(&log, &event(4, t(3))).await;
    assert!(next > later, "a duplicate does not disturb the order");
}

async fn concurrent_appenders_lose_nothing<L: PushLog + 'static>(log: Arc<L>) {
    let total = TASKS * PER_TASK;
    // A reader following the appenders, as a replica's follower does: it must never see
    // a sequence and later an event below it.
    let reader = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            while seen.len() < total {
                let page = log
                    .read_after(after, 7)
                    .await
                    .unwrap_or_else(|e| panic!("read: {e}"));
                if page.events.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                for logged in page.events {
                    assert!(logged.sequence > after, "read in sequence order");
                    after = logged.sequence;
                    seen.push(logged.event.event_id);
                }
            }
            seen
        })
    };
    let appenders: Vec<_> = (0..TASKS)
        .map(|task| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for n in 0..PER_TASK {
                    let event = event((task * PER_TASK + n) as u64, t(0));
                    let sequence = append(log.as_ref(), &event).await;
                    mine.push((sequence, event.event_id));
                }
                mine
            })
        })
        .collect();
    let mut appended = Vec::new();
    for task in appenders {
        let mine = task.await.unwrap_or_else(|e| panic!("appender: {e}"));
        assert!(
            mine.windows(2).all(|w| w[0].0 < w[1].0),
            "one task's events keep its order"
        );
        appended.extend(mine);
    }
    appended.sort_unstable();
    let read = read_all(log.as_ref(), 0).await;
    let read_pairs: Vec<(u64, uuid::Uuid)> = read
        .iter()
        .map(|e| (e.sequence, e.event.event_id))
        .collect();
    assert_eq!(read_pairs, appended, "every event once, in sequence order");
    let followed = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap_or_else(|_| panic!("the follower did not see all {total} events in time"))
        .unwrap_or_else(|e| panic!("follower: {e}"));
    let expected: Vec<uuid::Uuid> = appended.iter().map(|(_, id)| *id).collect();
    assert_eq!(followed, expected, "the follower saw everything, in order");
    assert_eq!(expected.iter().collect::<HashSet<_>>().len(), total);
}

async fn purge_drops_old_events_and_the_surplus<L: PushLog>(log: L) {
    let mut sequences = Vec::new();
    for n in 0..10 {
        sequences.push(append(&log, &event(n, t(i64::try_from(n).unwrap_or(0)))).await);
    }
    assert_eq!(
        log.purge(t(0), 100).await.unwrap_or_else(|e| panic!("{e}")),
        0,
        "nothing is older than the first event"
    );
    // By age: the events of seconds 0, 1 and 2.
    let purged = log.purge(t(3), 100).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(purged, 3);
    let page = log
        .read_after(0, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.purged_through, sequences[2]);
    let left: Vec<u64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(left, sequences[3..]);
    // By count: keep the newest four.
    let purged = log.purge(t(0), 4).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(purged, 3);
    let page = log
        .read_after(0, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.purged_through, sequences[5]);
    let left: Vec<u64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(left, sequences[6..]);
    // A purged id may be appended again (it is past every window), after the rest.
    let again = append(&log, &event(99, t(20))).await;
    assert!(again > sequences[9]);
    // Everything old goes, the mark stays at the newest purged.
    let purged = log
        .purge(t(100), 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(purged, 5);
    let page = log
        .read_after(0, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(page.events.is_empty());
    assert_eq!(page.purged_through, again);
    let after = append(&log, &event(100, t(101))).await;
    assert!(after > again, "sequences go on after a purge");
}

async fn times_never_go_back<L: PushLog>(log: L) {
    append(&log, &event(1, t(10))).await;
    // A publisher whose clock is behind.
    append(&log, &event(2, t(5))).await;
    append(&log, &event(3, t(12))).await;
    let times: Vec<Timestamp> = read_all(&log, 0)
        .await
        .iter()
        .map(|e| e.event.occurred_at)
        .collect();
    assert_eq!(times, [t(10), t(10), t(12)]);
}

async fn an_append_wakes_a_watcher<L: PushLog>(log: L) {
    let mut watch = log.watch();
    append(&log, &event(1, t(0))).await;
    let woken = tokio::time::timeout(PATIENCE, watch.woken())
        .await
        .unwrap_or_else(|_| panic!("no wake-up within {PATIENCE:?}"));
    assert!(woken, "the log is still there");
}
