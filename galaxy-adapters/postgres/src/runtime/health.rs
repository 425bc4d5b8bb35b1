//! [`HealthEventStore`] on `health_events`.

use async_trait::async_trait;
use galaxy_core::domain::health::{HealthEvent, HealthEventKind};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::{GameId, HealthEventId};
use galaxy_core::ports::{HealthEventStore, StoreError};
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::PgStore;
use crate::error::db;
use crate::rows::{RowExt, cursor, page_limit, page_of};

const EVENT: &str = "health event";

fn event_from_row(row: &PgRow) -> Result<HealthEvent, StoreError> {
    let Json(detail): Json<serde_json::Value> = row.col(EVENT, "detail")?;
    Ok(HealthEvent {
        id: HealthEventId::from_uuid(row.col(EVENT, "id")?),
        game_id: GameId::from_uuid(row.col(EVENT, "game_id")?),
        kind: row.col_parse(EVENT, "kind", HealthEventKind::parse)?,
        detail,
        occurred_at: row.col(EVENT, "occurred_at")?,
    })
}

#[async_trait]
impl HealthEventStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn append_health_event(&self, event: &HealthEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO health_events (id, game_id, kind, detail, occurred_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event.id.as_uuid())
        .bind(event.game_id.as_uuid())
        .bind(event.kind.as_str())
        .bind(Json(&event.detail))
        .bind(event.occurred_at)
        .execute(&self.pool)
        .await
        .map_err(db(EVENT))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_health_events(
        &self,
        game_id: Option<GameId>,
        page: &PageRequest,
    ) -> Result<Page<HealthEvent>, StoreError> {
        // Newest first: the keyset runs backwards from the cursor.
        let (before_at, before_id) = cursor(page)?;
        let rows = sqlx::query(
            "SELECT * FROM health_events WHERE ($1::uuid IS NULL OR game_id = $1) \
             AND (occurred_at, id) < (COALESCE($2, 'infinity'::timestamptz), \
                 COALESCE($3, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)) \
             ORDER BY occurred_at DESC, id DESC LIMIT $4",
        )
        .bind(game_id.map(|g| g.as_uuid()))
        .bind(before_at)
        .bind(before_id)
        .bind(page_limit(page))
        .fetch_all(&self.pool)
        .await
        .map_err(db(EVENT))?;
        let events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(events, page, |e| (e.occurred_at, e.id.as_uuid())))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn count_health_events(
        &self,
        game_id: Option<GameId>,
        kind: HealthEventKind,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM health_events WHERE kind = $2 \
             AND ($1::uuid IS NULL OR game_id = $1)",
        )
        .bind(game_id.map(|g| g.as_uuid()))
        .bind(kind.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db(EVENT))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
