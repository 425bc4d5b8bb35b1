//! Conformance suite for [`GeoCounterStore`]: batches of per-user country increments
//! summed atomically, read back highest count first.
//!
//! Every case uses fresh ids and whole-second instants so it runs unchanged against
//! Postgres.

use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{GeoCount, GeoCounterStore, GeoIncrement};
use tokio::task::JoinSet;

use super::run_case;
use super::runtime::support::{at, ok, uuid};

const SUITE: &str = "geo";

/// Runs every geo case; `make` must return a fresh, empty store each time.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: GeoCounterStore + Send + Sync + 'static,
{
    run_case(SUITE, "batches sum, highest count first", &make, sums).await;
    run_case(SUITE, "an empty batch changes nothing", &make, empty_batch).await;
    run_case(SUITE, "concurrent batches all count", &make, concurrent).await;
}

fn user() -> UserId {
    UserId::from_uuid(uuid())
}

fn inc(user_id: UserId, country: &str, count: u64) -> GeoIncrement {
    GeoIncrement {
        user_id,
        country: country.to_owned(),
        count,
    }
}

fn count(country: &str, count: u64, last_seen_at: Timestamp) -> GeoCount {
    GeoCount {
        country: country.to_owned(),
        count,
        last_seen_at,
    }
}

async fn sums<S: GeoCounterStore>(store: S) {
    let (a, b) = (user(), user());
    let first = [
        inc(a, "DE", 3),
        inc(a, "FR", 1),
        inc(b, "DE", 5),
        inc(a, "NL", 2),
    ];
    ok(store.add_geo_counts(&first, at(10)).await, "first batch");
    // The same counter twice in one batch adds up too.
    let second = [
        inc(a, "FR", 4),
        inc(a, "NL", 1),
        inc(a, "unknown", 1),
        inc(a, "NL", 2),
    ];
    ok(store.add_geo_counts(&second, at(20)).await, "second batch");
    let expected = vec![
        count("FR", 5, at(20)),
        count("NL", 5, at(20)),
        count("DE", 3, at(10)),
        count("unknown", 1, at(20)),
    ];
    let mut got = ok(store.geo_counts(a).await, "counts of a");
    assert!(
        got.windows(2).all(|w| w[0].count >= w[1].count),
        "highest first: {got:?}"
    );
    // FR and NL tie at 5 and ties have no documented order: compare in a fixed one.
    got.sort_by(|x, y| {
        y.count
            .cmp(&x.count)
            .then_with(|| x.country.cmp(&y.country))
    });
    assert_eq!(
        got, expected,
        "sums, and last seen at the latest batch that counted"
    );
    assert_eq!(
        ok(store.geo_counts(b).await, "counts of b"),
        vec![count("DE", 5, at(10))]
    );
    assert!(ok(store.geo_counts(user()).await, "unknown user").is_empty());
}

async fn empty_batch<S: GeoCounterStore>(store: S) {
    let a = user();
    ok(
        store.add_geo_counts(&[inc(a, "SE", 2)], at(10)).await,
        "batch",
    );
    ok(store.add_geo_counts(&[], at(20)).await, "empty batch");
    assert_eq!(
        ok(store.geo_counts(a).await, "counts"),
        vec![count("SE", 2, at(10))]
    );
}

async fn concurrent<S: GeoCounterStore + Send + Sync + 'static>(store: S) {
    let store = Arc::new(store);
    let (a, b) = (user(), user());
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            for _ in 0..10 {
                let batch = [inc(a, "DE", 1), inc(b, "DE", 2), inc(a, "PL", 3)];
                ok(
                    store.add_geo_counts(&batch, at(30)).await,
                    "concurrent batch",
                );
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap_or_else(|e| panic!("batch task failed: {e}"));
    }
    let expected = vec![count("PL", 240, at(30)), count("DE", 80, at(30))];
    assert_eq!(ok(store.geo_counts(a).await, "counts of a"), expected);
    assert_eq!(
        ok(store.geo_counts(b).await, "counts of b"),
        vec![count("DE", 160, at(30))]
    );
}
