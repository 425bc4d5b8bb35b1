//! Runtime records: insert and read, the status compare-and-set, the setters, listing.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::game::EngineName;
use galaxy_core::domain::runtime::{RuntimeBinding, RuntimeRecord, RuntimeStatus};
use galaxy_core::domain::{GameId, Timestamp};
use galaxy_core::ports::{RuntimeRecordStore, StoreError};
use tokio::task::JoinSet;

use super::support::{
    assert_conflict, assert_duplicate, assert_not_found, at, ok, uuid, walk_pages,
};
use crate::conformance::run_case;

const SUITE: &str = "runtime records";

pub(super) async fn run<S, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: RuntimeRecordStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "insert, get, not found, duplicate",
        make,
        insert_and_get,
    )
    .await;
    run_case(SUITE, "status compare-and-set", make, status_cas).await;
    run_case(
        SUITE,
        "20 concurrent status updates, one wins",
        make,
        concurrent_cas,
    )
    .await;
    run_case(SUITE, "binding, health and schedule setters", make, setters).await;
    run_case(SUITE, "list by status, every page", make, list_pages).await;
}

/// A fresh game id.
pub(super) fn game() -> GameId {
    GameId::from_uuid(uuid())
}

/// A new pending record created at `created_at`.
pub(super) fn record(created_at: Timestamp) -> RuntimeRecord {
    RuntimeRecord::new(game(), EngineName::reference(), created_at)
}

async fn insert_and_get<S: RuntimeRecordStore>(store: S) {
    let original = record(at(0));
    ok(store.insert_record(&original).await, "insert");
    assert_eq!(
        ok(store.get_record(original.game_id).await, "get"),
        original
    );
    assert_not_found(store.get_record(game()).await, "get an unknown game");
    let mut again = record(at(5));
    again.game_id = original.game_id;
    assert_duplicate(store.insert_record(&again).await, "second record of a game");
    let stored = ok(
        store.get_record(original.game_id).await,
        "get after duplicate",
    );
    assert_eq!(stored, original, "a refused insert changes nothing");
}

async fn status_cas<S: RuntimeRecordStore>(store: S) {
    use RuntimeStatus::*;
    let original = record(at(0));
    let id = original.game_id;
    ok(store.insert_record(&original).await, "insert");
    let started = ok(
        store
            .update_record_status(id, Pending, Starting, at(5))
            .await,
        "start",
    );
    assert_eq!((started.status, started.updated_at), (Starting, at(5)));
    assert_eq!(ok(store.get_record(id).await, "get"), started);
    // A replay: the transition is valid but the stored status moved on.
    assert_conflict(
        store
            .update_record_status(id, Pending, Starting, at(6))
            .await,
        "replay",
    );
    assert_conflict(
        store
            .update_record_status(id, Running, Stopping, at(6))
            .await,
        "stale",
    );
    // Not in the table: refused as such even when `expected` is not the stored status.
    let invalid = store
        .update_record_status(id, Starting, Pending, at(6))
        .await;
    assert!(
        matches!(invalid, Err(StoreError::InvalidTransition(_))),
        "{invalid:?}"
    );
    let invalid = store
        .update_record_status(id, Removed, Running, at(6))
        .await;
    assert!(
        matches!(invalid, Err(StoreError::InvalidTransition(_))),
        "{invalid:?}"
    );
    assert_eq!(
        ok(store.get_record(id).await, "get"),
        started,
        "refused calls change nothing"
    );
    assert_not_found(
        store
            .update_record_status(game(), Pending, Starting, at(6))
            .await,
        "unknown",
    );
    let running = ok(
        store
            .update_record_status(id, Starting, Running, at(7))
            .await,
        "run",
    );
    assert_eq!(running.status, Running);
}

async fn concurrent_cas<S: RuntimeRecordStore + Send + Sync + 'static>(store: S) {
    let store = Arc::new(store);
    let original = record(at(0));
    let id = original.game_id;
    ok(store.insert_record(&original).await, "insert");
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let to = RuntimeStatus::Starting;
            store
                .update_record_status(id, RuntimeStatus::Pending, to, at(5))
                .await
        });
    }
    let (mut won, mut lost) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap_or_else(|e| panic!("update task failed: {e}")) {
            Ok(record) => {
                assert_eq!(record.status, RuntimeStatus::Starting);
                won += 1;
            }
            Err(StoreError::Conflict { .. }) => lost += 1,
            Err(e) => panic!("concurrent update: expected Ok or Conflict, got {e}"),
        }
    }
    assert_eq!((won, lost), (1, 19), "exactly one compare-and-set wins");
    let stored = ok(store.get_record(id).await, "get");
    assert_eq!(stored.status, RuntimeStatus::Starting);
}

async fn setters<S: RuntimeRecordStore>(store: S) {
    let original = record(at(0));
    let id = original.game_id;
    ok(store.insert_record(&original).await, "insert");
    let binding = RuntimeBinding {
        container_id: format!("c-{}", uuid().simple()),
        engine_endpoint: "http://127.0.0.1:40123".to_owned(),
    };
    let bound = ok(
        store.set_binding(id, Some(binding.clone()), at(1)).await,
        "bind",
    );
    assert_eq!(
        (bound.binding.as_ref(), bound.updated_at),
        (Some(&binding), at(1))
    );
    assert_eq!(ok(store.get_record(id).await, "get"), bound);
    let unbound = ok(store.set_binding(id, None, at(2)).await, "unbind");
    assert_eq!(unbound.binding, None);
    let sick = ok(store.set_healthy(id, false, at(3)).await, "unhealthy");
    assert!(!sick.healthy);
    assert!(!ok(store.get_record(id).await, "get").healthy);
    let scheduled = ok(
        store.set_schedule(id, Some(at(60)), true, at(4)).await,
        "schedule",
    );
    assert_eq!(
        (scheduled.next_turn_at, scheduled.skip_next_tick),
        (Some(at(60)), true)
    );
    assert_eq!(ok(store.get_record(id).await, "get"), scheduled);
    let cleared = ok(
        store.set_schedule(id, None, false, at(5)).await,
        "unschedule",
    );
    assert_eq!(
        (cleared.next_turn_at, cleared.skip_next_tick),
        (None, false)
    );
    assert_eq!(
        cleared.status,
        RuntimeStatus::Pending,
        "setters leave the status alone"
    );
    assert_not_found(store.set_binding(game(), None, at(6)).await, "bind unknown");
    assert_not_found(
        store.set_healthy(game(), true, at(6)).await,
        "health of unknown",
    );
    assert_not_found(
        store.set_schedule(game(), None, false, at(6)).await,
        "schedule unknown",
    );
}

async fn list_pages<S: RuntimeRecordStore>(store: S) {
    let store = &store;
    // Pairs share a creation instant, so the id tie-break is exercised across pages.
    let mut records: Vec<RuntimeRecord> = (0..7).map(|i| record(at(i / 2))).collect();
    for r in &records {
        ok(store.insert_record(r).await, "insert");
    }
    let mut starting = HashSet::new();
    for r in records.iter_mut().step_by(3) {
        let to = RuntimeStatus::Starting;
        *r = ok(
            store
                .update_record_status(r.game_id, RuntimeStatus::Pending, to, at(9))
                .await,
            "start",
        );
        starting.insert(r.game_id);
    }
    records.sort_by_key(|r| (r.created_at, r.game_id.as_uuid()));
    let all = walk_pages(3, records.len(), |p| async move {
        store.list_records(None, &p).await
    })
    .await;
    assert_eq!(all, records, "every record once, by creation then id");
    let only = Some(RuntimeStatus::Starting);
    let listed = walk_pages(2, starting.len(), |p| async move {
        store.list_records(only, &p).await
    })
    .await;
    let expected: Vec<_> = records
        .iter()
        .filter(|r| starting.contains(&r.game_id))
        .cloned()
        .collect();
    assert_eq!(listed, expected, "status filter");
}
