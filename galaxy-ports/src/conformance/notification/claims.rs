//! Route claims and dispatch outcomes.

use std::collections::HashSet;
use std::future::Future;

use galaxy_core::domain::notification::RouteStatus;
use galaxy_core::domain::{LeaseToken, RouteId, Timestamp};
use galaxy_core::ports::{NotificationStore, RouteNext};

use super::{SUITE, all_routes, claim_ids, route, stored};
use crate::conformance::run_case;
use crate::conformance::runtime::support::{
    assert_conflict, assert_not_found, at, claim, ok, token, uuid,
};

pub(super) async fn run<S, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: NotificationStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "claim oldest due first, not before due",
        make,
        oldest_due_first,
    )
    .await;
    run_case(SUITE, "delivered", make, delivered).await;
    run_case(SUITE, "retry, claimed again only when due", make, retry).await;
    run_case(
        SUITE,
        "dead letter, then the admin retry",
        make,
        dead_letter,
    )
    .await;
}

/// Stores one recipient's two routes, claims both at `now`, delivers the second (so it
/// cannot turn up in later claims) and returns the first with its token.
async fn claimed_route<S: NotificationStore>(
    store: &S,
    now: Timestamp,
    lease_secs: i64,
) -> (RouteId, LeaseToken) {
    let routes = stored(store, 1, at(0)).await;
    let holder = token();
    let got = claim_ids(store, &claim(holder, now, lease_secs, 5)).await;
    assert_eq!(got.len(), 2, "both routes of the intent are due");
    let (kept, delivered) = match routes.as_slice() {
        [kept, delivered] => (kept.id, delivered.id),
        other => panic!("expected 2 routes, got {}", other.len()),
    };
    let next = &RouteNext::Delivered;
    ok(
        store.finish_route(delivered, holder, next, now).await,
        "deliver the sibling",
    );
    (kept, holder)
}

fn retry_at(at: Timestamp) -> RouteNext {
    RouteNext::Retry {
        at,
        error: "gateway unavailable".to_owned(),
    }
}

async fn oldest_due_first<S: NotificationStore>(store: S) {
    // One route each, due in the reverse of creation order (the email route stays far off).
    let mut firsts = Vec::new();
    for (created, due) in [(0, 30), (1, 20), (2, 10)] {
        let routes = stored(&store, 1, at(created)).await;
        let (first, second) = match routes.as_slice() {
            [first, second] => (first.id, second.id),
            other => panic!("expected 2 routes, got {}", other.len()),
        };
        // Park the second route as a far-off retry so only the first is due.
        let holder = token();
        let got: HashSet<_> = claim_ids(&store, &claim(holder, at(created), 5, 5))
            .await
            .into_iter()
            .collect();
        assert_eq!(got, HashSet::from([first, second]));
        ok(
            store
                .finish_route(first, holder, &retry_at(at(due)), at(created))
                .await,
            "park",
        );
        ok(
            store
                .finish_route(second, holder, &retry_at(at(1_000)), at(created))
                .await,
            "park",
        );
        firsts.push(first);
    }
    // The lease outlives the case, so only due-ness decides what the later claims see.
    let holder = token();
    let first = claim_ids(&store, &claim(holder, at(50), 5_000, 1)).await;
    assert_eq!(first, vec![firsts[2]], "the oldest due");
    let next = claim_ids(&store, &claim(holder, at(50), 5_000, 1)).await;
    assert_eq!(next, vec![firsts[1]], "then the next oldest due");
    let last = claim_ids(&store, &claim(holder, at(50), 5_000, 5)).await;
    assert_eq!(last, vec![firsts[0]]);
    let early = claim_ids(&store, &claim(holder, at(999), 5_000, 5)).await;
    assert!(early.is_empty(), "not due: {early:?}");
    assert_eq!(
        route(&store, firsts[0]).await.attempts,
        2,
        "each claim counts an attempt"
    );
    assert_eq!(
        claim_ids(&store, &claim(token(), at(1_000), 60, 5))
            .await
            .len(),
        3
    );
}

async fn delivered<S: NotificationStore>(store: S) {
    let (id, holder) = claimed_route(&store, at(10), 60).await;
    let done = ok(
        store
            .finish_route(id, holder, &RouteNext::Delivered, at(11))
            .await,
        "deliver",
    );
    assert_eq!(
        (done.status, done.lease, done.attempts),
        (RouteStatus::Delivered, None, 1)
    );
    assert_eq!(route(&store, id).await, done);
}

async fn retry<S: NotificationStore>(store: S) {
    let (id, holder) = claimed_route(&store, at(10), 60).await;
    let waiting = ok(
        store
            .finish_route(id, holder, &retry_at(at(100)), at(11))
            .await,
        "retry",
    );
    assert_eq!(
        (waiting.status, waiting.next_attempt_at),
        (RouteStatus::Retrying, at(100))
    );
    assert_eq!(waiting.last_error.as_deref(), Some("gateway unavailable"));
    assert_eq!(waiting.lease, None);
    let listed = all_routes(&store, Some(RouteStatus::Retrying)).await;
    assert_eq!(listed, vec![waiting]);
    assert!(
        claim_ids(&store, &claim(token(), at(99), 60, 5))
            .await
            .is_empty(),
        "not yet"
    );
    assert_eq!(
        claim_ids(&store, &claim(token(), at(100), 60, 5)).await,
        vec![id]
    );
    assert_eq!(route(&store, id).await.attempts, 2);
}

async fn dead_letter<S: NotificationStore>(store: S) {
    let (id, holder) = claimed_route(&store, at(10), 60).await;
    let next = RouteNext::DeadLetter {
        error: "no device".to_owned(),
    };
    let dead = ok(
        store.finish_route(id, holder, &next, at(11)).await,
        "dead letter",
    );
    assert_eq!((dead.status, dead.lease), (RouteStatus::DeadLetter, None));
    assert_eq!(dead.last_error.as_deref(), Some("no device"));
    assert_eq!(
        all_routes(&store, Some(RouteStatus::DeadLetter)).await,
        vec![dead]
    );
    assert!(
        claim_ids(&store, &claim(token(), at(1_000), 60, 5))
            .await
            .is_empty(),
        "dead stays"
    );
    let other = all_routes(&store, Some(RouteStatus::Delivered)).await;
    let other = other.first().map(|r| r.id);
    let other = other.unwrap_or_else(|| panic!("the delivered sibling route"));
    let not_dead = store.retry_dead_letter(other, at(12)).await;
    assert_conflict(not_dead, "retry of a delivered route");
    assert_not_found(
        store
            .retry_dead_letter(RouteId::from_uuid(uuid()), at(12))
            .await,
        "unknown",
    );
    let revived = ok(store.retry_dead_letter(id, at(500)).await, "admin retry");
    assert_eq!(
        (revived.status, revived.attempts),
        (RouteStatus::Pending, 0),
        "fresh budget"
    );
    assert_eq!((revived.next_attempt_at, revived.lease), (at(500), None));
    assert_eq!(route(&store, id).await, revived);
    assert_conflict(store.retry_dead_letter(id, at(501)).await, "retry twice");
    assert!(
        claim_ids(&store, &claim(token(), at(499), 600, 5))
            .await
            .is_empty(),
        "not yet"
    );
    assert_eq!(
        claim_ids(&store, &claim(token(), at(500), 600, 5)).await,
        vec![id]
    );
}
