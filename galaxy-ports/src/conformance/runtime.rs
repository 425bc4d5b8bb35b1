//! Conformance suite for the runtime stores: [`RuntimeRecordStore`] (records, status
//! compare-and-set, turn claims), [`RuntimeJobStore`] (durable jobs) and
//! [`HealthEventStore`].
//!
//! The job queue's claim, lease and finish rules are the shared
//! [`queue`](super::queue) suite's, run from here.
//!
//! The three ports are tested together because one adapter usually implements them on
//! one database; every case uses fresh ids and whole-second instants so it runs unchanged
//! against Postgres.

mod health;
mod jobs;
mod records;
pub(super) mod support;
mod turns;

use std::future::Future;

use galaxy_core::ports::{HealthEventStore, RuntimeJobStore, RuntimeRecordStore};

/// Runs every runtime case; `make` must return a fresh, empty store each time.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: RuntimeRecordStore + RuntimeJobStore + HealthEventStore + Send + Sync + 'static,
{
    records::run(&make).await;
    turns::run(&make).await;
    jobs::run(&make).await;
    health::run(&make).await;
    super::queue::jobs(make).await;
}
