//! [`GeoCounterStore`] on `geo_counters`: one row per (user, country).

use async_trait::async_trait;
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{GeoCount, GeoCounterStore, GeoIncrement, StoreError};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::PgStore;
use crate::error::db;
use crate::rows::{RowExt, u64_param};

const COUNTER: &str = "geo counter";

fn count_from_row(row: &PgRow) -> Result<GeoCount, StoreError> {
    Ok(GeoCount {
        country: row.col(COUNTER, "country")?,
        count: row.col_u64(COUNTER, "count")?,
        last_seen_at: row.col(COUNTER, "last_seen_at")?,
    })
}

#[async_trait]
impl GeoCounterStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn add_geo_counts(
        &self,
        increments: &[GeoIncrement],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        if increments.is_empty() {
            return Ok(());
        }
        let users: Vec<Uuid> = increments.iter().map(|i| i.user_id.as_uuid()).collect();
        let countries: Vec<&str> = increments.iter().map(|i| i.country.as_str()).collect();
        let counts: Vec<i64> = increments.iter().map(|i| u64_param(i.count)).collect();
        // One statement, so the batch is atomic. Repeated keys are summed first (an
        // upsert may not touch one row twice), rows are written in key order so two
        // concurrent batches cannot deadlock, and sums saturate instead of overflowing.
        sqlx::query(
            "INSERT INTO geo_counters (user_id, country, count, last_seen_at) \
             SELECT u, c, LEAST(sum(n), 9223372036854775807)::bigint, $4 \
             FROM UNNEST($1::uuid[], $2::text[], $3::bigint[]) AS batch (u, c, n) \
             GROUP BY u, c ORDER BY u, c \
             ON CONFLICT (user_id, country) DO UPDATE SET \
                 count = LEAST(geo_counters.count::numeric + EXCLUDED.count, \
                               9223372036854775807)::bigint, \
                 last_seen_at = EXCLUDED.last_seen_at",
        )
        .bind(users)
        .bind(countries)
        .bind(counts)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(db(COUNTER))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn geo_counts(&self, user_id: UserId) -> Result<Vec<GeoCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT country, count, last_seen_at FROM geo_counters WHERE user_id = $1 \
             ORDER BY count DESC, country COLLATE \"C\"",
        )
        .bind(user_id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db(COUNTER))?;
        rows.iter().map(count_from_row).collect()
    }
}
