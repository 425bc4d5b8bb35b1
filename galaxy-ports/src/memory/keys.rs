//! In-memory [`KeyRegistry`]: the fingerprints the servers sharing these stores hold.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::Timestamp;
use galaxy_core::ports::{KeyFingerprint, KeyRegistry, RecordedKey, StoreError};

/// Recorded fingerprints by secret name, behind one mutex (so recording is atomic).
#[derive(Debug, Default)]
pub struct MemoryKeyRegistry {
    /// Secret name -> what was recorded first.
    keys: Mutex<HashMap<String, RecordedKey>>,
}

impl MemoryKeyRegistry {
    /// The map; every change is one insert or clear, so a poisoned lock holds no
    /// half-made change.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, RecordedKey>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl KeyRegistry for MemoryKeyRegistry {
    async fn record_key(
        &self,
        name: &str,
        fingerprint: KeyFingerprint,
        at: Timestamp,
    ) -> Result<RecordedKey, StoreError> {
        Ok(*self.lock().entry(name.to_owned()).or_insert(RecordedKey {
            fingerprint,
            recorded_at: at,
        }))
    }

    async fn forget_keys(&self) -> Result<u64, StoreError> {
        let mut keys = self.lock();
        let forgotten = keys.len() as u64;
        keys.clear();
        Ok(forgotten)
    }
}
