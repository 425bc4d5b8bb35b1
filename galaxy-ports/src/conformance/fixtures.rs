//! Helpers shared by the user, lobby and race-name suites.
//!
//! Fixture instants are whole seconds after a fixed epoch, so they survive a store that
//! keeps only microseconds (Postgres) and compare equal after the round trip. Ids are
//! fresh UUIDs per call, so no case depends on another's data.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use chrono::TimeDelta;
use futures::future::join_all;
use galaxy_core::domain::Timestamp;
use tokio::sync::Barrier;
use uuid::Uuid;

/// 2030-01-01T00:00:00Z, the zero of every fixture clock.
const EPOCH_SECS: i64 = 1_893_456_000;

/// The fixture instant `secs` seconds after the fixture epoch.
pub(crate) fn at(secs: i64) -> Timestamp {
    Timestamp::from_timestamp(EPOCH_SECS + secs, 0).unwrap_or_default()
}

/// A duration of `secs` seconds.
pub(crate) fn secs(secs: i64) -> TimeDelta {
    TimeDelta::seconds(secs)
}

/// A fresh time-ordered UUID (v7), as the platform generates ids.
pub(crate) fn new_uuid() -> Uuid {
    Uuid::now_v7()
}

/// The login-code key of every conformance case (stores only keep the hashes; the key
/// is the service's).
pub(crate) fn code_key() -> galaxy_core::domain::auth::CodeKey {
    galaxy_core::domain::auth::CodeKey::derive(b"conformance suite login-code key material")
        .unwrap_or_else(|e| panic!("the fixture key: {e}"))
}

/// A short random tag (8 hex digits) to make e-mail addresses unique per case.
pub(crate) fn tag() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Unwraps a result a case cannot continue without, naming the step on failure.
pub(crate) trait Must<T> {
    /// The value, or a panic naming `step` and the error.
    fn must(self, step: &str) -> T;
}

impl<T, E: Display> Must<T> for Result<T, E> {
    #[track_caller]
    fn must(self, step: &str) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("{step} failed: {error}"),
        }
    }
}

/// Runs `call(i)` for every `i < n` in its own task, all released at once; returns the
/// results in task order. With a multi-thread runtime and a pooled adapter the calls
/// really race.
pub(crate) async fn race<T, C, Fut>(n: usize, call: C) -> Vec<T>
where
    T: Send + 'static,
    C: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks = (0..n).map(|i| {
        let barrier = Arc::clone(&barrier);
        let call = call(i);
        tokio::spawn(async move {
            barrier.wait().await;
            call.await
        })
    });
    join_all(tasks.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|joined| joined.must("a racing task"))
        .collect()
}

/// Asserts that a result is an error matching a pattern, naming the step otherwise.
macro_rules! assert_err {
    ($result:expr, $pattern:pat, $($step:tt)+) => {
        match $result {
            Err($pattern) => {}
            other => panic!(
                "{}: expected Err({}), got {:?}",
                format!($($step)+),
                stringify!($pattern),
                other
            ),
        }
    };
}

pub(crate) use assert_err;
