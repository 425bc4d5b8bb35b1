//! Fixtures and checks shared by the runtime, mail, notification and geo suites: fixture
//! instants, claim requests, the concurrent-claimers race and the page walker.
//!
//! Everything here goes through the port traits only, so it holds for any store.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::{LeaseToken, Timestamp};
use galaxy_core::ports::StoreError;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use uuid::Uuid;

/// 2030-01-01T00:00:00Z: fixtures live in whole seconds from here, since Postgres keeps
/// only microseconds and a nanosecond instant would not round-trip.
const BASE_SECS: i64 = 1_893_456_000;

/// The fixture instant `secs` seconds after the base (negative for before).
pub(in crate::conformance) fn at(secs: i64) -> Timestamp {
    Timestamp::from_timestamp(BASE_SECS + secs, 0)
        .unwrap_or_else(|| panic!("fixture instant {secs} out of range"))
}

/// A fresh random UUID (every case uses fresh ids, so a shared database cannot clash).
pub(in crate::conformance) fn uuid() -> Uuid {
    Uuid::new_v4()
}

/// A fresh lease token.
pub(in crate::conformance) fn token() -> LeaseToken {
    LeaseToken::from_uuid(uuid())
}

/// A claim for `limit` items at `now` under `token`, holding `lease_secs` seconds.
pub(in crate::conformance) fn claim(
    token: LeaseToken,
    now: Timestamp,
    lease_secs: i64,
    limit: u32,
) -> ClaimRequest {
    ClaimRequest {
        token,
        now,
        lease: TimeDelta::seconds(lease_secs),
        limit,
    }
}

/// A first page of `limit` items.
pub(in crate::conformance) fn first_page(limit: u32) -> PageRequest {
    PageRequest::first(limit).unwrap_or_else(|e| panic!("page request: {e}"))
}

/// The value of a call that must succeed.
pub(in crate::conformance) fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: unexpected error: {e}"))
}

/// Asserts a call failed with `Conflict`.
pub(in crate::conformance) fn assert_conflict<T: Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Conflict { .. })),
        "{what}: expected Conflict, got {result:?}"
    );
}

/// Asserts a call failed with `NotFound`.
pub(in crate::conformance) fn assert_not_found<T: Debug>(
    result: Result<T, StoreError>,
    what: &str,
) {
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "{what}: expected NotFound, got {result:?}"
    );
}

/// Asserts a call failed with `Duplicate`.
pub(in crate::conformance) fn assert_duplicate<T: Debug>(
    result: Result<T, StoreError>,
    what: &str,
) {
    assert!(
        matches!(result, Err(StoreError::Duplicate { .. })),
        "{what}: expected Duplicate, got {result:?}"
    );
}

/// How many claimers race in the concurrency cases.
pub(in crate::conformance) const CLAIMERS: usize = 8;
/// How many items they race for.
pub(in crate::conformance) const RACED_ITEMS: i64 = 40;

/// Runs [`CLAIMERS`] tasks that each claim small batches at `now` (under their own token
/// and a lease far longer than the case) until a claim comes back empty, then asserts
/// that no item went to two claimers and that together they received exactly
/// `expected`. `claim_ids` makes one claim and returns the claimed items' ids; it should
/// also check that each item carries the claim's token.
pub(in crate::conformance) async fn race_claimers<S, Id, C, CFut>(
    store: &Arc<S>,
    now: Timestamp,
    expected: &HashSet<Id>,
    claim_ids: C,
) where
    S: Send + Sync + 'static,
    Id: Eq + Hash + Debug + Send + 'static,
    C: Fn(Arc<S>, ClaimRequest) -> CFut + Clone + Send + 'static,
    CFut: Future<Output = Vec<Id>> + Send,
{
    // A claimer that never runs dry is being handed items twice.
    let max_rounds = expected.len() + 2;
    let barrier = Arc::new(Barrier::new(CLAIMERS));
    let mut tasks = JoinSet::new();
    for _ in 0..CLAIMERS {
        let (store, barrier, claim_ids) =
            (Arc::clone(store), Arc::clone(&barrier), claim_ids.clone());
        tasks.spawn(async move {
            let request = claim(token(), now, 3_600, 3);
            barrier.wait().await;
            let mut got = Vec::new();
            for _ in 0..max_rounds {
                let batch = claim_ids(Arc::clone(&store), request).await;
                assert!(batch.len() <= 3, "a claim returned more than its limit");
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch);
            }
            panic!("a claimer never ran dry after {max_rounds} claims");
        });
    }
    let mut seen = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        let got = joined.unwrap_or_else(|e| panic!("claimer task failed: {e}"));
        for id in got {
            assert!(
                expected.contains(&id),
                "claimed an item that was not raced for: {id:?}"
            );
            assert!(seen.insert(id), "two claimers received the same item");
        }
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "the claimers together missed items"
    );
}

/// Walks every page of a list `limit` items at a time and returns the items in list
/// order. Asserts that no page exceeds `limit` and that `next_after` is `None` exactly on
/// the last page (so `total` items take `ceil(total / limit)` pages, at least one).
pub(in crate::conformance) async fn walk_pages<T, F, Fut>(
    limit: u32,
    total: usize,
    fetch: F,
) -> Vec<T>
where
    F: Fn(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let limit_items = limit as usize;
    let expected_pages = total.div_ceil(limit_items).max(1);
    let (mut items, mut request, mut pages) = (Vec::new(), first_page(limit), 0);
    loop {
        pages += 1;
        assert!(
            pages <= expected_pages,
            "more than {expected_pages} pages for {total} items"
        );
        let page = ok(fetch(request).await, "list page");
        assert!(
            page.items.len() <= limit_items,
            "page longer than its limit"
        );
        items.extend(page.items);
        match page.next_after {
            None => break,
            Some(after) => {
                request = PageRequest::after(limit, after).unwrap_or_else(|e| panic!("page: {e}"));
            }
        }
    }
    assert_eq!(pages, expected_pages, "pages for {total} items by {limit}");
    items
}
