//! [`KeyRegistry`] on `installation_keys` (migration 0030).

use async_trait::async_trait;
use galaxy_core::domain::Timestamp;
use galaxy_core::ports::{KeyFingerprint, KeyRegistry, RecordedKey, StoreError};

use crate::PgStore;
use crate::error::{corrupt, db};

const KEY: &str = "installation key";

#[async_trait]
impl KeyRegistry for PgStore {
    async fn record_key(
        &self,
        name: &str,
        fingerprint: KeyFingerprint,
        at: Timestamp,
    ) -> Result<RecordedKey, StoreError> {
        // The insert does nothing when a row is there (or lands first from a concurrent
        // server, whose commit the conflict check waits for); the read that follows is a
        // statement of its own, so it sees whichever row won.
        sqlx::query(
            "INSERT INTO installation_keys (name, fingerprint, recorded_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fingerprint.0.as_slice())
        .bind(at)
        .execute(self.pool())
        .await
        .map_err(db(KEY))?;
        let (stored, recorded_at): (Vec<u8>, Timestamp) = sqlx::query_as(
            "SELECT fingerprint, recorded_at FROM installation_keys WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(db(KEY))?
        .ok_or_else(|| StoreError::conflict(KEY, name, "forgotten while it was recorded"))?;
        let fingerprint = stored
            .try_into()
            .map_err(|_| corrupt(KEY, "fingerprint", "not 8 bytes"))?;
        Ok(RecordedKey {
            fingerprint: KeyFingerprint(fingerprint),
            recorded_at,
        })
    }

    async fn forget_keys(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM installation_keys")
            .execute(self.pool())
            .await
            .map_err(db(KEY))?;
        Ok(done.rows_affected())
    }
}
