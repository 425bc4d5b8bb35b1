//! Geo: the country of a client address, and per-user country counters that are counted
//! on the request path and written to the store off it.
//!
//! [`GeoService::record`] resolves the address (a lookup in memory) and adds one to an
//! in-memory sum per (user, country); it never waits on the store. [`GeoService::flush`]
//! writes the sums as one batch; [`GeoFlusher`] runs it periodically under
//! [`crate::worker::run_every`], and on shutdown, after traffic has stopped, the server
//! calls [`GeoService::drain`] (bounded by its shutdown timeout) to write the rest.
//!
//! A failed write puts its counts back, so they go out with the next flush: nothing is
//! lost while the process lives. What a process that dies without draining had not yet
//! flushed is lost; these are statistics, so at most one flush interval of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::domain::UserId;
use crate::ports::{Clock, GeoCounterStore, GeoIncrement, GeoLocator, StoreError};
use crate::worker::{TickReport, Worker};

/// Bounds of the in-memory counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeoConfig {
    /// Most distinct (user, country) pairs held between flushes. Memory grows with
    /// distinct pairs, not with requests; the bound only bites when the store is down
    /// for long. Past it, requests of pairs already held still count, while new pairs
    /// are dropped and counted in [`GeoService::dropped`]: counts already taken are never
    /// given up to make room.
    pub max_pending: usize,
    /// Most increments written in one batch (one store transaction); a flush with more
    /// pending writes this many and leaves the rest for the next pass.
    pub max_batch: usize,
}

impl Default for GeoConfig {
    fn default() -> Self {
        Self {
            max_pending: 100_000,
            max_batch: 1_000,
        }
    }
}

/// Pending counts per (user, country).
type Pending = HashMap<(UserId, String), u64>;

/// Countries of addresses, and per-user country counters.
pub struct GeoService {
    /// Resolves addresses; in memory and cheap, so it is called on the request path.
    locator: Arc<dyn GeoLocator>,
    /// Where the counters are kept; only [`Self::flush`] touches it.
    store: Arc<dyn GeoCounterStore>,
    /// Stamps each batch (`last_seen_at` is the time of the flush).
    clock: Arc<dyn Clock>,
    /// Bounds.
    config: GeoConfig,
    /// Counts not yet written. A std mutex: it is held for a map update, never across
    /// an await, so requests do not contend on an async lock.
    pending: Mutex<Pending>,
    /// New pairs refused because `pending` was full, since start (for metrics).
    dropped: AtomicU64,
    /// Whether the current overflow was logged, so a long outage logs once, not per
    /// request; cleared by a successful flush.
    overflow_logged: AtomicBool,
}

impl GeoService {
    /// A service over the given ports.
    pub fn new(
        locator: Arc<dyn GeoLocator>,
        store: Arc<dyn GeoCounterStore>,
        clock: Arc<dyn Clock>,
        config: GeoConfig,
    ) -> Self {
        Self {
            locator,
            store,
            clock,
            config,
            pending: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
            overflow_logged: AtomicBool::new(false),
        }
    }

    /// The ISO 3166-1 alpha-2 code of `ip`'s country, or `unknown`
    /// ([`crate::ports::UNKNOWN_COUNTRY`]); counts nothing.
    pub fn country_of(&self, ip: IpAddr) -> String {
        self.locator.country(ip)
    }

    /// Counts one request of `user_id` from `ip` and returns its country (so the caller
    /// can update the user's country without a second lookup). Requests from addresses
    /// that cannot be placed are counted under `unknown`. Never waits on the store.
    pub fn record(&self, user_id: UserId, ip: IpAddr) -> String {
        let country = self.locator.country(ip);
        let mut pending = self.lock();
        if let Some(count) = pending.get_mut(&(user_id, country.clone())) {
            *count = count.saturating_add(1);
        } else if pending.len() < self.config.max_pending {
            pending.insert((user_id, country.clone()), 1);
        } else {
            drop(pending);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.overflow_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_pending = self.config.max_pending,
                    "geo counters full (store down?); new user/country pairs are dropped"
                );
            }
        }
        country
    }

    /// Distinct (user, country) pairs waiting to be written.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Requests not counted since start because the pending pairs were at their bound.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes up to [`GeoConfig::max_batch`] pending counts as one batch and returns how
    /// many increments (distinct user/country pairs) it wrote; 0 without touching the
    /// store when nothing is pending. On a store error the batch is put back, summed with
    /// whatever was counted meanwhile, for the next flush.
    ///
    /// Not cancellation-safe: a flush future dropped while the store call is in flight
    /// gives up its batch, which may or may not have been written. [`GeoFlusher`] under
    /// `run_every` always finishes a pass.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let batch = self.take_batch();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.store.add_geo_counts(&batch, self.clock.now()).await {
            Ok(()) => {
                self.overflow_logged.store(false, Ordering::Relaxed);
                Ok(batch.len())
            }
            Err(error) => {
                self.restore(batch);
                Err(error)
            }
        }
    }

    /// Flushes until everything pending when called is written (in batches of
    /// [`GeoConfig::max_batch`]), for shutdown, after traffic has stopped. Returns the
    /// increments written; stops at the first store error, keeping the rest pending.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        // Counted up front so that requests still arriving cannot keep it going.
        let passes = self.pending().div_ceil(self.max_batch()).max(1);
        let mut written = 0;
        for _ in 0..passes {
            match self.flush().await {
                Ok(0) => break,
                Ok(count) => written += count,
                Err(error) => {
                    tracing::warn!(
                        %error,
                        written,
                        pending = self.pending(),
                        "geo counters not fully drained"
                    );
                    return Err(error);
                }
            }
        }
        Ok(written)
    }

    /// Removes up to one batch from `pending`, sorted by user and country so that
    /// concurrent batches touch rows in the same order (no deadlocks in a SQL store).
    fn take_batch(&self) -> Vec<GeoIncrement> {
        let max = self.max_batch();
        let taken: Vec<((UserId, String), u64)> = {
            let mut pending = self.lock();
            if pending.len() <= max {
                std::mem::take(&mut *pending).into_iter().collect()
            } else {
                let keys: Vec<(UserId, String)> = pending.keys().take(max).cloned().collect();
                keys.into_iter()
                    .filter_map(|key| pending.remove_entry(&key))
                    .collect()
            }
        };
        let mut batch: Vec<GeoIncrement> = taken
            .into_iter()
            .map(|((user_id, country), count)| GeoIncrement {
                user_id,
                country,
                count,
            })
            .collect();
        batch.sort_by(|a, b| {
            a.user_id
                .cmp(&b.user_id)
                .then_with(|| a.country.cmp(&b.country))
        });
        batch
    }

    /// Puts a batch that was not written back. It may take `pending` past
    /// `max_pending` (by at most one batch): counts already taken are never dropped.
    fn restore(&self, batch: Vec<GeoIncrement>) {
        let mut pending = self.lock();
        for increment in batch {
            let count = pending
                .entry((increment.user_id, increment.country))
                .or_insert(0);
            *count = count.saturating_add(increment.count);
        }
    }

    fn max_batch(&self) -> usize {
        self.config.max_batch.max(1)
    }

    /// The pending counts. Nothing in the critical sections can panic half-way through
    /// an update, so a poisoned lock still holds consistent counts and is taken over.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The [`Worker`] that writes the geo counters: each pass is one
/// [`GeoService::flush`], so `run_every` keeps flushing while batches are full and then
/// waits for its interval. On shutdown, stop it and call [`GeoService::drain`].
pub struct GeoFlusher {
    /// The counters to write.
    service: Arc<GeoService>,
}

impl GeoFlusher {
    /// A flusher for `service`'s counters.
    pub fn new(service: Arc<GeoService>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl Worker for GeoFlusher {
    fn name(&self) -> &'static str {
        "geo_flusher"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        let handled = self.service.flush().await?;
        Ok(TickReport { handled })
    }
}
