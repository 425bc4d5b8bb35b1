//! Health events: append, list newest first, count, pages.

use std::collections::HashSet;
use std::future::Future;

use galaxy_core::domain::health::{HealthEvent, HealthEventKind};
use galaxy_core::domain::{GameId, HealthEventId, Timestamp};
use galaxy_core::ports::HealthEventStore;
use serde_json::json;

use super::records::game;
use super::support::{at, first_page, ok, uuid, walk_pages};
use crate::conformance::run_case;

const SUITE: &str = "health events";

pub(super) async fn run<S, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: HealthEventStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "append, list newest first, count",
        make,
        append_list_count,
    )
    .await;
    run_case(SUITE, "every page, newest first", make, pages).await;
}

fn event(game_id: GameId, kind: HealthEventKind, occurred_at: Timestamp) -> HealthEvent {
    HealthEvent {
        id: HealthEventId::from_uuid(uuid()),
        game_id,
        kind,
        detail: json!({"consecutive_failures": 3, "last_error": "connection refused"}),
        occurred_at,
    }
}

async fn append_list_count<S: HealthEventStore>(store: S) {
    use HealthEventKind::*;
    let (a, b) = (game(), game());
    let events = [
        event(a, ProbeFailed, at(10)),
        event(b, InspectUnhealthy, at(15)),
        event(a, ProbeRecovered, at(20)),
        event(a, ProbeFailed, at(30)),
    ];
    for e in &events {
        ok(store.append_health_event(e).await, "append");
    }
    let page = first_page(10);
    let all = ok(store.list_health_events(None, &page).await, "list");
    let newest_first: Vec<_> = events.iter().rev().cloned().collect();
    assert_eq!(all.items, newest_first, "newest first, detail intact");
    assert_eq!(all.next_after, None);
    let of_a = ok(store.list_health_events(Some(a), &page).await, "list a");
    let expected: Vec<_> = newest_first
        .iter()
        .filter(|e| e.game_id == a)
        .cloned()
        .collect();
    assert_eq!(of_a.items, expected, "game filter");
    let count = |g, k| {
        let store = &store;
        async move { ok(store.count_health_events(g, k).await, "count") }
    };
    assert_eq!(count(None, ProbeFailed).await, 2);
    assert_eq!(count(Some(a), ProbeFailed).await, 2);
    assert_eq!(count(Some(b), ProbeFailed).await, 0);
    assert_eq!(count(Some(b), InspectUnhealthy).await, 1);
    assert_eq!(count(None, ContainerDisappeared).await, 0);
    assert_eq!(count(Some(game()), ProbeFailed).await, 0);
}

async fn pages<S: HealthEventStore>(store: S) {
    let store = &store;
    let (a, b) = (game(), game());
    // Several events share an instant: the walk must neither skip nor repeat any.
    let kinds = HealthEventKind::ALL.into_iter().cycle();
    let events: Vec<_> = (0_i64..11)
        .zip(kinds)
        .map(|(i, kind)| event(if i % 4 == 0 { b } else { a }, kind, at(i / 3)))
        .collect();
    for e in &events {
        ok(store.append_health_event(e).await, "append");
    }
    let all = walk_pages(3, events.len(), |p| async move {
        store.list_health_events(None, &p).await
    })
    .await;
    assert_newest_first_once(&all, &events);
    let of_a: Vec<_> = events.iter().filter(|e| e.game_id == a).cloned().collect();
    let listed = walk_pages(2, of_a.len(), |p| async move {
        store.list_health_events(Some(a), &p).await
    })
    .await;
    assert_newest_first_once(&listed, &of_a);
}

/// `listed` holds exactly `expected`, each once, occurrence never increasing.
fn assert_newest_first_once(listed: &[HealthEvent], expected: &[HealthEvent]) {
    let ids: HashSet<_> = listed.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), listed.len(), "an event listed twice");
    let wanted: HashSet<_> = expected.iter().map(|e| e.id).collect();
    assert_eq!(ids, wanted, "the listed events");
    let ordered = listed
        .windows(2)
        .all(|w| w[0].occurred_at >= w[1].occurred_at);
    assert!(ordered, "health events must come newest first");
}
