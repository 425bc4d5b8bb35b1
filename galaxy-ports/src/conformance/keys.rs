//! Conformance suite for [`KeyRegistry`]: the first fingerprint of a secret stays, every
//! caller (concurrent ones too) is told that one, and forgetting lets the next record.

use std::future::Future;
use std::sync::Arc;

use galaxy_core::ports::{KeyFingerprint, KeyRegistry};

use super::run_case;
use super::runtime::support::{at, ok};
use super::users::fixtures::race;

const SUITE: &str = "keys";

/// Runs every key registry case; `make` must return a fresh, empty registry each time.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: KeyRegistry + Send + Sync + 'static,
{
    run_case(SUITE, "the first fingerprint stays", &make, first_stays).await;
    run_case(SUITE, "concurrent first records agree", &make, concurrent).await;
}

fn print(n: u8) -> KeyFingerprint {
    KeyFingerprint([n; 8])
}

async fn first_stays<S: KeyRegistry>(store: S) {
    let first = ok(store.record_key("LOGIN", print(1), at(10)).await, "first");
    assert_eq!((first.fingerprint, first.recorded_at), (print(1), at(10)));
    let same = ok(store.record_key("LOGIN", print(1), at(20)).await, "same");
    assert_eq!(same, first, "recording the same again changes nothing");
    let other = ok(store.record_key("LOGIN", print(2), at(30)).await, "other");
    assert_eq!(other, first, "another fingerprint is told the first");
    let engine = ok(store.record_key("ENGINE", print(3), at(40)).await, "engine");
    assert_eq!(
        engine.fingerprint,
        print(3),
        "each secret has its own record"
    );
    assert_eq!(ok(store.forget_keys().await, "forget"), 2);
    let after = ok(store.record_key("LOGIN", print(2), at(50)).await, "after");
    assert_eq!((after.fingerprint, after.recorded_at), (print(2), at(50)));
    assert_eq!(ok(store.forget_keys().await, "forget"), 1);
    assert_eq!(ok(store.forget_keys().await, "forget none"), 0);
}

async fn concurrent<S: KeyRegistry + Send + Sync + 'static>(store: S) {
    let store = Arc::new(store);
    let results = race(8, |i| {
        let store = Arc::clone(&store);
        let fingerprint = print(u8::try_from(i).unwrap_or(0) + 10);
        async move { store.record_key("LOGIN", fingerprint, at(10)).await }
    })
    .await;
    let told: std::collections::HashSet<KeyFingerprint> = results
        .into_iter()
        .map(|r| ok(r, "record").fingerprint)
        .collect();
    assert_eq!(told.len(), 1, "every starting server is told one: {told:?}");
}
