//! The cases of the queue suite, written once against [`QueueUnderTest`].

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::lease::{ClaimRequest, Leased, QueueState};

use super::QueueUnderTest;
use crate::conformance::run_case;
use crate::conformance::runtime::support::{
    RACED_ITEMS, assert_conflict, assert_not_found, at, claim, ok, race_claimers, token,
};

/// Runs every case on queues from `make`.
pub(super) async fn run<Q, F, Fut>(suite: &str, make: &F)
where
    Q: QueueUnderTest,
    F: Fn() -> Fut,
    Fut: Future<Output = Q>,
{
    run_case(
        suite,
        "claim limit, due instants, oldest first",
        make,
        limits::<Q>,
    )
    .await;
    run_case(suite, "a lapsed lease is claimed again", make, expiry::<Q>).await;
    run_case(suite, "only the holding token finishes", make, tokens::<Q>).await;
    run_case(
        suite,
        "a batch finish with one lost lease",
        make,
        batch::<Q>,
    )
    .await;
    run_case(suite, "8 claimers never share an item", make, race::<Q>).await;
}

/// Claims and checks that every claimed item is leased under the claim, within limit.
async fn claimed<Q: QueueUnderTest>(queue: &Q, request: &ClaimRequest) -> Vec<Q::Item> {
    let items = ok(queue.claim(request).await, "claim");
    assert!(
        items.len() <= request.limit as usize,
        "claim over its limit"
    );
    for item in &items {
        assert_eq!(
            item.queue_state(),
            QueueState::Leased,
            "a claimed item is leased"
        );
        assert_eq!(
            item.lease(),
            Some(request.lease()),
            "with the claim's lease"
        );
    }
    items
}

/// The ids of a claim.
async fn claim_ids<Q: QueueUnderTest>(
    queue: &Q,
    request: &ClaimRequest,
) -> Vec<<Q::Item as Leased>::Id> {
    let items = claimed(queue, request).await;
    items.iter().map(Leased::id).collect()
}

async fn limits<Q: QueueUnderTest>(queue: Q) {
    let a = queue.enqueue(at(0), at(0)).await;
    let b = queue.enqueue(at(1), at(1)).await;
    let c = queue.enqueue(at(2), at(2)).await;
    let later = queue.enqueue(at(3), at(100)).await;
    let holder = token();
    assert_eq!(
        claim_ids(&queue, &claim(holder, at(10), 600, 2)).await,
        vec![a, b]
    );
    assert_eq!(
        claim_ids(&queue, &claim(holder, at(10), 600, 5)).await,
        vec![c],
        "the rest, up to the limit"
    );
    assert!(
        claim_ids(&queue, &claim(token(), at(99), 60, 5))
            .await
            .is_empty(),
        "not due, and the others are held"
    );
    assert_eq!(
        queue.get(a).await.attempts(),
        1,
        "a claim counts an attempt"
    );
    assert_eq!(
        claim_ids(&queue, &claim(token(), at(100), 60, 5)).await,
        vec![later]
    );
}

async fn expiry<Q: QueueUnderTest>(queue: Q) {
    let x = queue.enqueue(at(0), at(0)).await;
    let (old, new) = (token(), token());
    assert_eq!(claim_ids(&queue, &claim(old, at(10), 30, 5)).await, vec![x]);
    assert!(
        claim_ids(&queue, &claim(new, at(39), 30, 5))
            .await
            .is_empty(),
        "the lease holds until its expiry"
    );
    let again = claimed(&queue, &claim(new, at(40), 30, 5)).await;
    assert_eq!(
        again.iter().map(Leased::id).collect::<Vec<_>>(),
        vec![x],
        "lapsed"
    );
    assert_eq!(
        again.first().map(Leased::attempts),
        Some(2),
        "each claim counts"
    );
    assert_conflict(
        queue.finish(x, old, at(41)).await,
        "the old token lost the item",
    );
    let done = ok(
        queue.finish(x, new, at(41)).await,
        "the new holder finishes",
    );
    assert_eq!(
        (done.queue_state(), done.lease(), done.attempts()),
        (QueueState::Done, None, 2)
    );
    assert_eq!(queue.get(x).await, done);
    assert!(
        claim_ids(&queue, &claim(token(), at(1_000), 30, 5))
            .await
            .is_empty(),
        "a finished item is never claimed again"
    );
}

async fn tokens<Q: QueueUnderTest>(queue: Q) {
    let x = queue.enqueue(at(0), at(0)).await;
    let idle = queue.enqueue(at(1), at(1)).await;
    let holder = token();
    assert_eq!(
        claim_ids(&queue, &claim(holder, at(10), 30, 1)).await,
        vec![x]
    );
    assert_conflict(
        queue.finish(idle, holder, at(11)).await,
        "an item nobody claimed",
    );
    assert_conflict(queue.finish(x, token(), at(11)).await, "another token");
    assert_not_found(
        queue.finish(queue.unknown_id(), holder, at(11)).await,
        "unknown",
    );
    let late = ok(
        queue.finish(x, holder, at(100)).await,
        "a lapsed lease nobody took",
    );
    assert_eq!((late.queue_state(), late.lease()), (QueueState::Done, None));
    assert_conflict(queue.finish(x, holder, at(101)).await, "finishing twice");
    let stored = queue.get(idle).await;
    assert_eq!(
        (stored.queue_state(), stored.attempts()),
        (QueueState::Waiting, 0)
    );
}

async fn batch<Q: QueueUnderTest>(queue: Q) {
    let lost = queue.enqueue(at(0), at(0)).await;
    let kept = queue.enqueue(at(1), at(1)).await;
    let other = queue.enqueue(at(2), at(2)).await;
    let (holder, taker) = (token(), token());
    // `lost` on a short lease, the others on a long one, all under `holder`.
    assert_eq!(
        claim_ids(&queue, &claim(holder, at(10), 5, 1)).await,
        vec![lost]
    );
    let long = claim_ids(&queue, &claim(holder, at(10), 600, 5)).await;
    assert_eq!(long, vec![kept, other]);
    assert_eq!(
        claim_ids(&queue, &claim(taker, at(20), 600, 5)).await,
        vec![lost]
    );
    let unknown = queue.unknown_id();
    let items = [
        (lost, holder),
        (kept, holder),
        (unknown, holder),
        (other, holder),
        (kept, holder),
    ];
    let results = ok(queue.finish_all(&items, at(21)).await, "batch finish");
    assert_eq!(results.len(), items.len(), "one result per item, in order");
    let mut results = results.into_iter();
    let mut next = || {
        results
            .next()
            .unwrap_or_else(|| panic!("a result is missing"))
    };
    assert_conflict(next(), "the lease another claim took");
    let done = ok(next(), "a held item finishes beside a lost one");
    assert_eq!(
        (done.id(), done.queue_state(), done.lease()),
        (kept, QueueState::Done, None)
    );
    assert_not_found(next(), "an unknown item");
    assert_eq!(ok(next(), "held").queue_state(), QueueState::Done);
    assert_conflict(next(), "an item listed twice finishes once");
    let taken = queue.get(lost).await;
    assert_eq!(
        taken.lease().map(|l| l.token),
        Some(taker),
        "the lost item is untouched"
    );
    assert_eq!(queue.get(kept).await.queue_state(), QueueState::Done);
    let empty = ok(queue.finish_all(&[], at(22)).await, "an empty batch");
    assert!(empty.is_empty());
    let last = ok(
        queue.finish_all(&[(lost, taker)], at(23)).await,
        "the taker finishes",
    );
    assert!(matches!(last.as_slice(), [Ok(_)]), "{last:?}");
}

async fn race<Q: QueueUnderTest>(queue: Q) {
    let mut expected = HashSet::new();
    for i in 0..RACED_ITEMS {
        expected.insert(queue.enqueue(at(i), at(i)).await);
    }
    let queue = Arc::new(queue);
    // Each claimer finishes what it claimed in one batch before it claims again, so
    // claims and batch finishes interleave.
    race_claimers(
        &queue,
        at(100),
        &expected,
        |queue: Arc<Q>, request| async move {
            let ids = claim_ids(queue.as_ref(), &request).await;
            let mine: Vec<_> = ids.iter().map(|id| (*id, request.token)).collect();
            let results = ok(queue.finish_all(&mine, at(101)).await, "batch finish");
            let finished = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(finished, ids.len(), "every held item finishes: {results:?}");
            ids
        },
    )
    .await;
    for id in expected {
        assert_eq!(queue.get(id).await.queue_state(), QueueState::Done);
    }
}
