//! Conformance suite for [`NotificationStore`]: intents stored with their routes under an
//! idempotency key, leased route claims, dispatch outcomes, dead letters and their admin
//! retry, listing, the retention purge.
//!
//! Every case uses fresh ids and whole-second instants so it runs unchanged against
//! Postgres.

mod claims;
mod retention;

use std::future::Future;

use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::notification::{
    Channel, NotificationIntent, NotificationKind, NotificationRoute, RouteStatus,
};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::{GameId, IntentId, RouteId, Timestamp, UserId};
use galaxy_core::ports::{IntentInsert, NotificationStore};
use serde_json::json;

use super::run_case;
use super::runtime::support::{
    assert_not_found, at, claim, first_page, ok, token, uuid, walk_pages,
};

const SUITE: &str = "notification";

/// Runs every notification case; `make` must return a fresh, empty store each time.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: NotificationStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "insert, get, not found, idempotency key",
        &make,
        insert_and_get,
    )
    .await;
    run_case(SUITE, "list by status, every page", &make, list_pages).await;
    claims::run(&make).await;
    retention::run(&make).await;
    super::queue::notifications(make).await;
}

/// A fresh intent for `recipients` raised at `now`, with its own id and key.
fn intent(recipients: usize, now: Timestamp) -> NotificationIntent {
    let id = uuid();
    NotificationIntent {
        id: IntentId::from_uuid(id),
        kind: NotificationKind::GameStarted,
        idempotency_key: format!("game_started:{id}"),
        recipients: (0..recipients).map(|_| UserId::from_uuid(uuid())).collect(),
        game_id: Some(GameId::from_uuid(uuid())),
        payload: json!({"game_name": "Andromeda", "turn": 0}),
        created_at: now,
    }
}

/// One push and one email route per recipient, created at `now`.
fn routes(intent: &NotificationIntent, now: Timestamp) -> Vec<NotificationRoute> {
    let route = |user, channel| {
        NotificationRoute::new(RouteId::from_uuid(uuid()), intent.id, user, channel, now)
    };
    let per_user = |user: &UserId| [route(*user, Channel::Push), route(*user, Channel::Email)];
    intent.recipients.iter().flat_map(per_user).collect()
}

/// Stores a fresh intent with `recipients` x 2 routes, all created at `now`.
async fn stored<S: NotificationStore>(
    store: &S,
    recipients: usize,
    now: Timestamp,
) -> Vec<NotificationRoute> {
    let i = intent(recipients, now);
    let r = routes(&i, now);
    assert_eq!(
        ok(store.insert_intent(&i, &r).await, "insert intent"),
        IntentInsert::Inserted
    );
    r
}

/// Every stored route, in list order (the port has no single-route read).
async fn all_routes<S: NotificationStore>(
    store: &S,
    status: Option<RouteStatus>,
) -> Vec<NotificationRoute> {
    let mut items = Vec::new();
    let mut page = ok(store.list_routes(status, &first_page(200)).await, "list");
    loop {
        items.append(&mut page.items);
        let Some(after) = page.next_after else {
            return items;
        };
        let next = PageRequest::after(200, after);
        let next = next.unwrap_or_else(|e| panic!("page request: {e}"));
        page = ok(store.list_routes(status, &next).await, "list");
    }
}

/// One stored route.
async fn route<S: NotificationStore>(store: &S, id: RouteId) -> NotificationRoute {
    let found = all_routes(store, None)
        .await
        .into_iter()
        .find(|r| r.id == id);
    found.unwrap_or_else(|| panic!("route {id} is not listed"))
}

/// Claims and returns the ids, checking each claimed route's state.
async fn claim_ids<S: NotificationStore>(store: &S, request: &ClaimRequest) -> Vec<RouteId> {
    let claimed = ok(store.claim_routes(request).await, "claim routes");
    assert!(
        claimed.len() <= request.limit as usize,
        "claim over its limit"
    );
    for r in &claimed {
        assert_eq!(
            r.status,
            RouteStatus::Dispatching,
            "a claimed route is dispatching"
        );
        assert_eq!(
            r.lease,
            Some(request.lease()),
            "a claimed route carries the claim's lease"
        );
    }
    claimed.into_iter().map(|r| r.id).collect()
}

async fn insert_and_get<S: NotificationStore>(store: S) {
    let first = intent(2, at(0));
    let first_routes = routes(&first, at(0));
    let inserted = ok(store.insert_intent(&first, &first_routes).await, "insert");
    assert_eq!(inserted, IntentInsert::Inserted);
    assert_eq!(ok(store.get_intent(first.id).await, "get"), first);
    let mut replay = intent(3, at(5));
    replay.idempotency_key = first.idempotency_key.clone();
    let replay_routes = routes(&replay, at(5));
    let duplicate = ok(store.insert_intent(&replay, &replay_routes).await, "replay");
    assert_eq!(
        duplicate,
        IntentInsert::Duplicate(first.id),
        "names the first intent"
    );
    assert_not_found(
        store.get_intent(replay.id).await,
        "a replayed intent is not stored",
    );
    let mut listed = all_routes(&store, None).await;
    listed.sort_by_key(|r| r.id);
    let mut expected = first_routes;
    expected.sort_by_key(|r| r.id);
    assert_eq!(
        listed, expected,
        "only the first intent's routes are stored"
    );
    assert_not_found(
        store.get_intent(IntentId::from_uuid(uuid())).await,
        "unknown intent",
    );
}

async fn list_pages<S: NotificationStore>(store: S) {
    let store = &store;
    let mut all = Vec::new();
    for i in 0_i64..4 {
        all.extend(stored(store, 1 + usize::from(i % 2 == 1), at(i / 2)).await);
    }
    let sent = claim_ids(store, &claim(token(), at(5), 60, 3)).await;
    assert_eq!(sent.len(), 3);
    for r in &mut all {
        *r = route(store, r.id).await;
    }
    all.sort_by_key(|r| (r.created_at, r.id.as_uuid()));
    let listed = walk_pages(4, all.len(), |p| async move {
        store.list_routes(None, &p).await
    })
    .await;
    assert_eq!(listed, all, "every route once, by creation then id");
    for status in [
        RouteStatus::Dispatching,
        RouteStatus::Pending,
        RouteStatus::DeadLetter,
    ] {
        let expected: Vec<_> = all.iter().filter(|r| r.status == status).cloned().collect();
        let only = Some(status);
        let listed = walk_pages(2, expected.len(), |p| async move {
            store.list_routes(only, &p).await
        })
        .await;
        assert_eq!(listed, expected, "status filter {status}");
    }
}
