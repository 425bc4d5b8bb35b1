//! The retention purge: delivered notifications older than the horizon are compacted
//! (routes deleted, payload emptied) and keep their idempotency key; anything still to do
//! or dead-lettered stays whole.

use std::future::Future;

use galaxy_core::domain::notification::{NotificationRoute, RouteStatus};
use galaxy_core::domain::{IntentId, Timestamp};
use galaxy_core::ports::{IntentInsert, NotificationStore, RouteNext};
use serde_json::json;

use super::{SUITE, all_routes, claim_ids, intent, routes};
use crate::conformance::run_case;
use crate::conformance::runtime::support::{at, claim, ok, token};

pub(super) async fn run<S, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: NotificationStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "compact delivered notifications before the horizon only",
        make,
        purge,
    )
    .await;
}

/// Stores a one-recipient intent raised at `now` and ends its two routes (push, then
/// mail) as `ends` say (`None` leaves a route pending). Returns the intent's id and key.
async fn raised<S: NotificationStore>(
    store: &S,
    now: Timestamp,
    ends: [Option<RouteNext>; 2],
) -> (IntentId, String) {
    let i = intent(1, now);
    let r = routes(&i, now);
    assert_eq!(
        ok(store.insert_intent(&i, &r).await, "insert intent"),
        IntentInsert::Inserted
    );
    let holder = token();
    let ending: Vec<(&NotificationRoute, RouteNext)> = r
        .iter()
        .zip(ends)
        .filter_map(|(route, end)| end.map(|end| (route, end)))
        .collect();
    if !ending.is_empty() {
        let got = claim_ids(store, &claim(holder, now, 60, 100)).await;
        assert_eq!(got.len(), 2, "only this intent's two routes are due");
        for (route, end) in ending {
            ok(
                store.finish_route(route.id, holder, &end, now).await,
                "end a route",
            );
        }
    }
    (i.id, i.idempotency_key)
}

async fn purge<S: NotificationStore>(store: S) {
    let delivered = || Some(RouteNext::Delivered);
    let dead = Some(RouteNext::DeadLetter {
        error: "550 no such user".to_owned(),
    });
    let retry = Some(RouteNext::Retry {
        at: at(1_000),
        error: "gateway unavailable".to_owned(),
    });
    let (old, old_key) = raised(&store, at(0), [delivered(), delivered()]).await;
    let (with_dead, _) = raised(&store, at(1), [delivered(), dead]).await;
    let (retrying, _) = raised(&store, at(2), [delivered(), retry]).await;
    let (recent, _) = raised(&store, at(50), [delivered(), delivered()]).await;
    // Left pending: stored after the last claim.
    let (pending, _) = raised(&store, at(3), [None, None]).await;

    assert_eq!(
        ok(store.purge_notifications(at(0)).await, "purge"),
        0,
        "strictly before the horizon"
    );
    assert_eq!(ok(store.purge_notifications(at(50)).await, "purge"), 1);
    let compacted = ok(store.get_intent(old).await, "the old intent stays");
    assert_eq!(compacted.payload, json!({}), "its payload is emptied");
    let left = all_routes(&store, None).await;
    assert!(
        left.iter().all(|r| r.intent_id != old),
        "its routes are gone"
    );
    for kept in [with_dead, retrying, pending, recent] {
        let intent = ok(store.get_intent(kept).await, "kept");
        assert_ne!(intent.payload, json!({}), "a kept intent keeps its payload");
        let routes = left.iter().filter(|r| r.intent_id == kept).count();
        assert_eq!(routes, 2, "a kept intent keeps its routes");
    }
    let dead_letters = all_routes(&store, Some(RouteStatus::DeadLetter)).await;
    assert_eq!(dead_letters.len(), 1, "the dead letter stays for an admin");

    // The key still holds: raising the same notification again is a no-op (a turn
    // reminder is raised again on every pass until its deadline).
    let mut again = intent(1, at(60));
    again.idempotency_key = old_key;
    let again_routes = routes(&again, at(60));
    assert_eq!(
        ok(
            store.insert_intent(&again, &again_routes).await,
            "raise again"
        ),
        IntentInsert::Duplicate(old)
    );
    assert_eq!(
        ok(store.purge_notifications(at(51)).await, "purge"),
        1,
        "the recent one once past the horizon, the old one not again"
    );
}
