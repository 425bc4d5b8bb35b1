#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The geo service: counting on the request path without the store, flushing summed
//! batches, keeping counts through store failures, draining on shutdown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{
    Clock, GeoCount, GeoCounterStore, GeoIncrement, GeoLocator, StoreError, UNKNOWN_COUNTRY,
};
use galaxy_core::service::geo::{GeoConfig, GeoFlusher, GeoService};
use galaxy_core::worker::{Worker, run_every};
use galaxy_ports::memory::MemoryGeoStore;
use galaxy_ports::mock::MockGeoCounterStore;
use galaxy_ports::system::ManualClock;
use mockall::Sequence;
use tokio_util::sync::CancellationToken;

const GB: &str = "81.2.69.160";
const JP: &str = "2001:218::1";
const PRIVATE: &str = "10.0.0.1";

/// A locator that knows two addresses.
struct TableLocator(HashMap<IpAddr, &'static str>);

impl TableLocator {
    fn new() -> Self {
        Self(HashMap::from([(ip(GB), "GB"), (ip(JP), "JP")]))
    }
}

impl GeoLocator for TableLocator {
    fn country(&self, ip: IpAddr) -> String {
        self.0
            .get(&ip)
            .copied()
            .unwrap_or(UNKNOWN_COUNTRY)
            .to_owned()
    }
}

/// The in-memory store, switchable to "down", recording the size of every batch.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryGeoStore,
    down: AtomicBool,
    batches: Mutex<Vec<usize>>,
}

#[async_trait]
impl GeoCounterStore for FlakyStore {
    async fn add_geo_counts(
        &self,
        increments: &[GeoIncrement],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("database is down"));
        }
        self.batches.lock().unwrap().push(increments.len());
        self.inner.add_geo_counts(increments, at).await
    }

    async fn geo_counts(&self, user_id: UserId) -> Result<Vec<GeoCount>, StoreError> {
        self.inner.geo_counts(user_id).await
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn user() -> UserId {
    UserId::from_uuid(uuid::Uuid::now_v7())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at_fixed_start())
}

fn service(
    store: Arc<dyn GeoCounterStore>,
    clock: Arc<ManualClock>,
    config: GeoConfig,
) -> GeoService {
    GeoService::new(Arc::new(TableLocator::new()), store, clock, config)
}

fn count(country: &str, count: u64, last_seen_at: Timestamp) -> GeoCount {
    GeoCount {
        country: country.to_owned(),
        count,
        last_seen_at,
    }
}

fn unavailable() -> StoreError {
    StoreError::unavailable("connection refused")
}

#[tokio::test]
async fn record_resolves_the_country_and_never_touches_the_store() {
    let mut store = MockGeoCounterStore::new();
    store.expect_add_geo_counts().never();
    store.expect_geo_counts().never();
    let geo = service(Arc::new(store), clock(), GeoConfig::default());
    let (a, b) = (user(), user());

    assert_eq!(geo.record(a, ip(GB)), "GB");
    assert_eq!(geo.record(a, ip(GB)), "GB");
    assert_eq!(geo.record(a, ip(JP)), "JP");
    assert_eq!(geo.record(b, ip(PRIVATE)), UNKNOWN_COUNTRY);
    assert_eq!(geo.pending(), 3);
    assert_eq!(geo.country_of(ip(JP)), "JP");
    assert_eq!(geo.pending(), 3, "country_of counts nothing");
}

#[tokio::test]
async fn an_empty_flush_does_not_call_the_store() {
    let mut store = MockGeoCounterStore::new();
    store.expect_add_geo_counts().never();
    let geo = service(Arc::new(store), clock(), GeoConfig::default());
    assert_eq!(geo.flush().await.unwrap(), 0);
    assert_eq!(geo.drain().await.unwrap(), 0);
}

#[tokio::test]
async fn flush_writes_summed_counts() {
    let store = Arc::new(MemoryGeoStore::default());
    let clock = clock();
    let geo = service(store.clone(), clock.clone(), GeoConfig::default());
    let (a, b) = (user(), user());
    for _ in 0..3 {
        geo.record(a, ip(GB));
    }
    geo.record(a, ip(JP));
    geo.record(b, ip(PRIVATE));
    geo.record(b, ip("8.8.8.8"));
    assert!(
        store.geo_counts(a).await.unwrap().is_empty(),
        "nothing before a flush"
    );

    let first = clock.now();
    assert_eq!(
        geo.flush().await.unwrap(),
        3,
        "one increment per user and country"
    );
    assert_eq!(geo.pending(), 0);
    assert_eq!(
        store.geo_counts(a).await.unwrap(),
        vec![count("GB", 3, first), count("JP", 1, first)]
    );
    assert_eq!(
        store.geo_counts(b).await.unwrap(),
        vec![count(UNKNOWN_COUNTRY, 2, first)]
    );
    assert_eq!(geo.flush().await.unwrap(), 0);

    clock.advance(TimeDelta::seconds(30));
    geo.record(a, ip(JP));
    geo.record(a, ip(JP));
    assert_eq!(geo.flush().await.unwrap(), 1);
    assert_eq!(
        store.geo_counts(a).await.unwrap(),
        vec![count("GB", 3, first), count("JP", 3, clock.now())]
    );
}

#[tokio::test]
async fn a_failed_flush_keeps_the_counts_for_the_next_one() {
    let (a, b) = (user(), user());
    let mut store = MockGeoCounterStore::new();
    let mut sequence = Sequence::new();
    store
        .expect_add_geo_counts()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _| Err(unavailable()));
    store
        .expect_add_geo_counts()
        .times(1)
        .in_sequence(&mut sequence)
        .withf(move |batch, _| {
            // What failed, summed with what was counted after the failure.
            let mut got: Vec<_> = batch
                .iter()
                .map(|i| (i.user_id, i.country.as_str(), i.count))
                .collect();
            got.sort();
            let mut want = vec![(a, "GB", 3), (a, "JP", 1), (b, "GB", 1)];
            want.sort();
            got == want
        })
        .returning(|_, _| Ok(()));
    let geo = service(Arc::new(store), clock(), GeoConfig::default());

    geo.record(a, ip(GB));
    geo.record(a, ip(GB));
    geo.record(a, ip(JP));
    let error = geo.flush().await.unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(geo.pending(), 2, "the failed batch is back");

    geo.record(a, ip(GB));
    geo.record(b, ip(GB));
    assert_eq!(geo.flush().await.unwrap(), 3);
    assert_eq!(geo.pending(), 0);
}

#[tokio::test]
async fn drain_writes_everything_in_bounded_batches() {
    let store = Arc::new(FlakyStore::default());
    let config = GeoConfig {
        max_batch: 2,
        ..GeoConfig::default()
    };
    let geo = service(store.clone(), clock(), config);
    let users: Vec<UserId> = (0..5).map(|_| user()).collect();
    for (n, &u) in users.iter().enumerate() {
        for _ in 0..=n {
            geo.record(u, ip(GB));
        }
    }

    assert_eq!(geo.drain().await.unwrap(), 5);
    assert_eq!(geo.pending(), 0);
    assert_eq!(*store.batches.lock().unwrap(), vec![2, 2, 1]);
    for (n, &u) in users.iter().enumerate() {
        let counts = store.geo_counts(u).await.unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].count, n as u64 + 1);
    }
}

#[tokio::test]
async fn a_drain_against_a_down_store_keeps_everything() {
    let store = Arc::new(FlakyStore::default());
    let geo = service(store.clone(), clock(), GeoConfig::default());
    let a = user();
    geo.record(a, ip(GB));
    geo.record(a, ip(JP));

    store.down.store(true, Ordering::SeqCst);
    assert!(geo.drain().await.unwrap_err().is_retryable());
    assert_eq!(geo.pending(), 2);

    store.down.store(false, Ordering::SeqCst);
    assert_eq!(geo.drain().await.unwrap(), 2);
    let total: u64 = store
        .geo_counts(a)
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(total, 2);
}

#[tokio::test]
async fn new_pairs_past_the_bound_are_dropped_and_counted() {
    let store = Arc::new(FlakyStore::default());
    let config = GeoConfig {
        max_pending: 2,
        ..GeoConfig::default()
    };
    let clock = clock();
    let geo = service(store.clone(), clock.clone(), config);
    let (a, b) = (user(), user());
    geo.record(a, ip(GB));
    geo.record(a, ip(JP));
    assert_eq!(geo.record(b, ip(GB)), "GB", "the country is still answered");
    geo.record(a, ip(GB));
    assert_eq!(geo.pending(), 2);
    assert_eq!(geo.dropped(), 1);

    // A failed batch comes back whole even if new pairs filled the room meanwhile.
    store.down.store(true, Ordering::SeqCst);
    assert!(geo.flush().await.is_err());
    assert_eq!(geo.pending(), 2);
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(geo.flush().await.unwrap(), 2);
    assert_eq!(
        store.geo_counts(a).await.unwrap()[0],
        count("GB", 2, clock.now())
    );

    // Room again after the flush.
    geo.record(b, ip(GB));
    assert_eq!(geo.pending(), 1);
}

#[tokio::test]
async fn the_flusher_worker_flushes_until_idle() {
    let store = Arc::new(FlakyStore::default());
    let config = GeoConfig {
        max_batch: 2,
        ..GeoConfig::default()
    };
    let geo = Arc::new(service(store.clone(), clock(), config));
    for _ in 0..5 {
        geo.record(user(), ip(JP));
    }
    let flusher = GeoFlusher::new(geo.clone());
    assert_eq!(flusher.name(), "geo_flusher");

    store.down.store(true, Ordering::SeqCst);
    assert!(flusher.tick().await.is_err());
    assert_eq!(geo.pending(), 5);

    store.down.store(false, Ordering::SeqCst);
    assert_eq!(flusher.run_until_idle(10).await.unwrap(), 5);
    assert_eq!(flusher.tick().await.unwrap().handled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_recorded_while_the_flusher_runs_are_all_written_by_the_drain() {
    let store = Arc::new(FlakyStore::default());
    let geo = Arc::new(service(store.clone(), clock(), GeoConfig::default()));
    let cancel = CancellationToken::new();
    let flusher = GeoFlusher::new(geo.clone());
    let loop_cancel = cancel.clone();
    let worker = tokio::spawn(async move {
        run_every(&flusher, Duration::from_millis(5), loop_cancel).await;
    });

    let a = user();
    let recorders: Vec<_> = (0..4)
        .map(|_| {
            let geo = geo.clone();
            tokio::task::spawn_blocking(move || {
                for n in 0..1_000 {
                    geo.record(a, ip(if n % 2 == 0 { GB } else { JP }));
                }
            })
        })
        .collect();
    for recorder in recorders {
        recorder.await.unwrap();
    }

    // The loop writes without being asked.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.geo_counts(a).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the flusher never wrote");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Shutdown: stop the loop, then drain what is left.
    cancel.cancel();
    worker.await.unwrap();
    geo.drain().await.unwrap();
    assert_eq!(geo.pending(), 0);
    let counts = store.geo_counts(a).await.unwrap();
    let by_country: HashMap<_, _> = counts
        .iter()
        .map(|c| (c.country.as_str(), c.count))
        .collect();
    assert_eq!(by_country, HashMap::from([("GB", 2_000), ("JP", 2_000)]));
}
