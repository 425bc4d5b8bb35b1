//! In-memory per-user country counters.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{GeoCount, GeoCounterStore, GeoIncrement, StoreError};

/// Per-user country counters behind one mutex, so a batch is added atomically.
#[derive(Debug, Default)]
pub struct MemoryGeoStore {
    /// Counters per user, then per country; one lock keeps each batch a transaction.
    counters: Mutex<HashMap<UserId, HashMap<String, GeoCount>>>,
}

impl MemoryGeoStore {
    /// The counters; a batch cannot fail half-way, so a lock poisoned by a panicking
    /// caller holds no half-written batch and is safe to take over.
    fn lock(&self) -> MutexGuard<'_, HashMap<UserId, HashMap<String, GeoCount>>> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl GeoCounterStore for MemoryGeoStore {
    async fn add_geo_counts(
        &self,
        increments: &[GeoIncrement],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut counters = self.lock();
        for increment in increments {
            let counter = counters
                .entry(increment.user_id)
                .or_default()
                .entry(increment.country.clone())
                .or_insert_with(|| GeoCount {
                    country: increment.country.clone(),
                    count: 0,
                    last_seen_at: at,
                });
            counter.count = counter.count.saturating_add(increment.count);
            counter.last_seen_at = at;
        }
        Ok(())
    }

    async fn geo_counts(&self, user_id: UserId) -> Result<Vec<GeoCount>, StoreError> {
        let counters = self.lock();
        let mut counts: Vec<GeoCount> = counters
            .get(&user_id)
            .map(|by_country| by_country.values().cloned().collect())
            .unwrap_or_default();
        // Ties are broken by country so the order is stable between calls.
        counts.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.country.cmp(&b.country))
        });
        Ok(counts)
    }
}
