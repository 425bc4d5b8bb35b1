//! Turn claims: due turns claimed under a lease, force-next-turn, completing a turn.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::runtime::RuntimeStatus;
use galaxy_core::domain::{GameId, Timestamp};
use galaxy_core::ports::{RuntimeRecordStore, TurnUpdate};

use super::records::{game, record};
use super::support::{
    RACED_ITEMS, assert_conflict, assert_not_found, at, claim, ok, race_claimers, token,
};
use crate::conformance::run_case;

const SUITE: &str = "runtime turns";

pub(super) async fn run<S, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: RuntimeRecordStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "only running, due, unleased games are claimed",
        make,
        due_turns,
    )
    .await;
    run_case(
        SUITE,
        "a lapsed turn lease can be claimed again",
        make,
        lease_expiry,
    )
    .await;
    run_case(SUITE, "complete_turn writes the update", make, complete).await;
    run_case(
        SUITE,
        "a lapsed lease nobody took still completes",
        make,
        lapsed_complete,
    )
    .await;
    run_case(SUITE, "claim_turn forces a turn", make, forced).await;
    run_case(SUITE, "only the holder renews a turn lease", make, renewal).await;
    run_case(SUITE, "skip flag round trip", make, skip_flag).await;
    run_case(
        SUITE,
        "8 claimers share 40 due turns",
        make,
        concurrent_claims,
    )
    .await;
}

/// Drives a new record to `running` through the status table and schedules it.
async fn running<S: RuntimeRecordStore>(store: &S, next_turn_at: Option<Timestamp>) -> GameId {
    use RuntimeStatus::*;
    let r = record(at(0));
    ok(store.insert_record(&r).await, "insert");
    ok(
        store
            .update_record_status(r.game_id, Pending, Starting, at(1))
            .await,
        "start",
    );
    ok(
        store
            .update_record_status(r.game_id, Starting, Running, at(2))
            .await,
        "run",
    );
    ok(
        store
            .set_schedule(r.game_id, next_turn_at, false, at(3))
            .await,
        "schedule",
    );
    r.game_id
}

async fn claim_ids<S: RuntimeRecordStore>(store: &S, request: &ClaimRequest) -> Vec<GameId> {
    let claimed = ok(store.claim_due_turns(request).await, "claim due turns");
    for r in &claimed {
        assert_eq!(
            r.turn_lease,
            Some(request.lease()),
            "claimed turn carries the claim's lease"
        );
        assert_eq!(r.status, RuntimeStatus::Running);
    }
    claimed.into_iter().map(|r| r.game_id).collect()
}

fn update(current_turn: u32, next_turn_at: Option<Timestamp>, skip: bool) -> TurnUpdate {
    TurnUpdate {
        current_turn,
        next_turn_at,
        skip_next_tick: skip,
    }
}

async fn due_turns<S: RuntimeRecordStore>(store: S) {
    let a = running(&store, Some(at(10))).await;
    let b = running(&store, Some(at(50))).await;
    running(&store, Some(at(51))).await; // not yet due
    running(&store, None).await; // not scheduled
    let starting = record(at(0));
    ok(store.insert_record(&starting).await, "insert");
    let (id, to) = (starting.game_id, RuntimeStatus::Starting);
    ok(
        store
            .update_record_status(id, RuntimeStatus::Pending, to, at(1))
            .await,
        "start",
    );
    ok(
        store.set_schedule(id, Some(at(10)), false, at(2)).await,
        "schedule a starting game",
    );

    let first = claim_ids(&store, &claim(token(), at(50), 60, 1)).await;
    assert_eq!(first.len(), 1, "limit 1");
    let rest = claim_ids(&store, &claim(token(), at(50), 60, 10)).await;
    let got: HashSet<GameId> = first.into_iter().chain(rest).collect();
    assert_eq!(got, HashSet::from([a, b]), "exactly the running, due games");
    let again = claim_ids(&store, &claim(token(), at(50), 60, 10)).await;
    assert!(
        again.is_empty(),
        "held leases keep games from other claimers: {again:?}"
    );
}

async fn lease_expiry<S: RuntimeRecordStore>(store: S) {
    let id = running(&store, Some(at(10))).await;
    let (old, new) = (token(), token());
    assert_eq!(
        claim_ids(&store, &claim(old, at(50), 30, 5)).await,
        vec![id]
    );
    assert!(
        claim_ids(&store, &claim(new, at(79), 30, 5))
            .await
            .is_empty(),
        "lease holds"
    );
    assert_eq!(
        claim_ids(&store, &claim(new, at(80), 30, 5)).await,
        vec![id],
        "lease lapsed"
    );
    let done = update(1, Some(at(500)), false);
    assert_conflict(
        store.complete_turn(id, old, &done, at(81)).await,
        "stale token",
    );
    let completed = ok(
        store.complete_turn(id, new, &done, at(81)).await,
        "complete",
    );
    assert_eq!(completed.current_turn, 1);
}

async fn complete<S: RuntimeRecordStore>(store: S) {
    let id = running(&store, Some(at(10))).await;
    let holder = token();
    assert_eq!(
        claim_ids(&store, &claim(holder, at(50), 60, 5)).await,
        vec![id]
    );
    let done = update(1, Some(at(200)), false);
    let completed = ok(
        store.complete_turn(id, holder, &done, at(55)).await,
        "complete",
    );
    assert_eq!(
        (
            completed.current_turn,
            completed.next_turn_at,
            completed.skip_next_tick
        ),
        (1, Some(at(200)), false)
    );
    assert_eq!(completed.turn_lease, None, "completing frees the lease");
    assert_eq!(ok(store.get_record(id).await, "get"), completed);
    assert_conflict(
        store.complete_turn(id, holder, &done, at(56)).await,
        "complete twice",
    );
    assert!(
        claim_ids(&store, &claim(token(), at(199), 60, 5))
            .await
            .is_empty(),
        "not due"
    );
    assert_eq!(
        claim_ids(&store, &claim(token(), at(200), 60, 5)).await,
        vec![id],
        "due"
    );
    assert_not_found(
        store.complete_turn(game(), holder, &done, at(56)).await,
        "unknown game",
    );
}

async fn lapsed_complete<S: RuntimeRecordStore>(store: S) {
    let id = running(&store, Some(at(10))).await;
    let holder = token();
    assert_eq!(
        claim_ids(&store, &claim(holder, at(50), 30, 5)).await,
        vec![id]
    );
    let done = update(4, Some(at(900)), false);
    let completed = ok(
        store.complete_turn(id, holder, &done, at(120)).await,
        "late complete",
    );
    assert_eq!((completed.current_turn, completed.turn_lease), (4, None));
}

async fn forced<S: RuntimeRecordStore>(store: S) {
    let id = running(&store, Some(at(1_000))).await;
    let (first, second) = (token(), token());
    let forced = ok(
        store.claim_turn(id, &claim(first, at(50), 30, 1)).await,
        "force",
    );
    assert_eq!(forced.turn_lease, Some(claim(first, at(50), 30, 1).lease()));
    assert_conflict(
        store.claim_turn(id, &claim(second, at(60), 30, 1)).await,
        "held",
    );
    // The holder claims again with its own token before the lease lapses: the lease is
    // renewed (how a turn that runs long keeps it), and others stay out until it lapses.
    let renewed = ok(
        store.claim_turn(id, &claim(first, at(70), 30, 1)).await,
        "renew",
    );
    assert_eq!(
        renewed.turn_lease,
        Some(claim(first, at(70), 30, 1).lease())
    );
    assert_conflict(
        store.claim_turn(id, &claim(second, at(85), 30, 1)).await,
        "held after the renewal",
    );
    let retaken = ok(
        store.claim_turn(id, &claim(second, at(100), 30, 1)).await,
        "lapsed",
    );
    assert_eq!(retaken.turn_lease.map(|l| l.token), Some(second));
    assert_conflict(
        store.claim_turn(id, &claim(first, at(101), 30, 1)).await,
        "a renewal after the lease was taken over",
    );
    assert_conflict(
        store
            .complete_turn(id, first, &update(1, None, true), at(101))
            .await,
        "stale",
    );
    ok(
        store
            .complete_turn(id, second, &update(1, Some(at(10)), true), at(101))
            .await,
        "complete",
    );

    // A forced claim also keeps the scheduler away while it holds.
    ok(
        store.claim_turn(id, &claim(first, at(110), 30, 1)).await,
        "force again",
    );
    assert!(
        claim_ids(&store, &claim(token(), at(120), 30, 5))
            .await
            .is_empty(),
        "held"
    );

    let pending = record(at(0));
    ok(store.insert_record(&pending).await, "insert");
    let not_running = store
        .claim_turn(pending.game_id, &claim(first, at(50), 30, 1))
        .await;
    assert_conflict(not_running, "claim_turn of a game that is not running");
    assert_not_found(
        store.claim_turn(game(), &claim(first, at(50), 30, 1)).await,
        "unknown",
    );
}

async fn skip_flag<S: RuntimeRecordStore>(store: S) {
    let id = running(&store, None).await;
    let set = ok(
        store.set_schedule(id, Some(at(10)), true, at(4)).await,
        "force-next-turn",
    );
    assert!(set.skip_next_tick);
    let holder = token();
    let claimed = ok(
        store.claim_due_turns(&claim(holder, at(10), 60, 5)).await,
        "claim",
    );
    assert_eq!(claimed.len(), 1);
    assert!(
        claimed.iter().all(|r| r.skip_next_tick),
        "the claim shows the flag"
    );
    let consumed = ok(
        store
            .complete_turn(id, holder, &update(0, Some(at(20)), false), at(11))
            .await,
        "skip",
    );
    assert!(!consumed.skip_next_tick);
    assert!(!ok(store.get_record(id).await, "get").skip_next_tick);
    let holder = token();
    ok(
        store.claim_turn(id, &claim(holder, at(12), 60, 1)).await,
        "force",
    );
    ok(
        store
            .complete_turn(id, holder, &update(1, Some(at(20)), true), at(13))
            .await,
        "forced",
    );
    assert!(
        ok(store.get_record(id).await, "get").skip_next_tick,
        "flag set by a turn"
    );
}

async fn concurrent_claims<S: RuntimeRecordStore + Send + Sync + 'static>(store: S) {
    let mut expected = HashSet::new();
    for i in 0..RACED_ITEMS {
        let due = at(i);
        expected.insert(running(&store, Some(due)).await);
    }
    let store = Arc::new(store);
    race_claimers(
        &store,
        at(100),
        &expected,
        |store: Arc<S>, request| async move { claim_ids(store.as_ref(), &request).await },
    )
    .await;
}

async fn renewal<S: RuntimeRecordStore>(store: S) {
    let id = running(&store, Some(at(1_000))).await;
    let (holder, other) = (token(), token());
    ok(
        store.claim_turn(id, &claim(holder, at(50), 30, 1)).await,
        "claim",
    );
    let renewed = ok(
        store.renew_turn_lease(id, holder, at(120), at(70)).await,
        "renew",
    );
    assert_eq!(
        renewed.turn_lease,
        Some(claim(holder, at(90), 30, 1).lease())
    );
    assert_conflict(
        store.claim_turn(id, &claim(other, at(100), 30, 1)).await,
        "held after the renewal",
    );
    assert_conflict(
        store.renew_turn_lease(id, other, at(200), at(100)).await,
        "another token",
    );
    // Freed by the turn's completion: a late renewal takes nothing.
    ok(
        store
            .complete_turn(id, holder, &update(1, Some(at(2_000)), false), at(110))
            .await,
        "complete",
    );
    assert_conflict(
        store.renew_turn_lease(id, holder, at(300), at(111)).await,
        "a freed lease",
    );
    assert_eq!(ok(store.get_record(id).await, "get").turn_lease, None);
    // Lapsed and taken over: the old holder renews nothing either.
    ok(
        store.claim_turn(id, &claim(holder, at(2_000), 30, 1)).await,
        "claim again",
    );
    ok(
        store.claim_turn(id, &claim(other, at(2_100), 30, 1)).await,
        "take over",
    );
    assert_conflict(
        store
            .renew_turn_lease(id, holder, at(2_200), at(2_101))
            .await,
        "taken over",
    );
    assert_not_found(
        store.renew_turn_lease(game(), holder, at(10), at(1)).await,
        "unknown",
    );
}
