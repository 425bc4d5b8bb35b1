//! [`RuntimeRecordStore`] on `runtime_records` (with `runtime_transitions` as its
//! status history): one record per game, and the scheduler's turn claims.

use async_trait::async_trait;
use galaxy_core::domain::game::EngineName;
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::runtime::{RuntimeBinding, RuntimeRecord, RuntimeStatus};
use galaxy_core::domain::{GameId, LeaseToken, Timestamp};
use galaxy_core::ports::{RuntimeRecordStore, StoreError, TurnUpdate};
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::error::{corrupt, db};
use crate::rows::{RowExt, cursor, keyset_page_sql, limit_param, page_limit, page_of, u32_param};

const RECORD: &str = "runtime record";

fn record_from_row(row: &PgRow) -> Result<RuntimeRecord, StoreError> {
    let container_id: Option<String> = row.col(RECORD, "container_id")?;
    let engine_endpoint: Option<String> = row.col(RECORD, "engine_endpoint")?;
    let binding = match (container_id, engine_endpoint) {
        (Some(container_id), Some(engine_endpoint)) => Some(RuntimeBinding {
            container_id,
            engine_endpoint,
        }),
        (None, None) => None,
        _ => return Err(corrupt(RECORD, "container_id", "binding half stored")),
    };
    Ok(RuntimeRecord {
        game_id: GameId::from_uuid(row.col(RECORD, "game_id")?),
        status: row.col_name(RECORD, "status", RuntimeStatus::parse)?,
        engine: row.col_parse(RECORD, "engine", EngineName::parse)?,
        binding,
        current_turn: row.col_u32(RECORD, "current_turn")?,
        next_turn_at: row.col(RECORD, "next_turn_at")?,
        skip_next_tick: row.col(RECORD, "skip_next_tick")?,
        turn_lease: row.col_lease(RECORD, "turn_lease_token", "turn_lease_until")?,
        healthy: row.col(RECORD, "healthy")?,
        created_at: row.col(RECORD, "created_at")?,
        updated_at: row.col(RECORD, "updated_at")?,
    })
}

fn records_from_rows(rows: &[PgRow]) -> Result<Vec<RuntimeRecord>, StoreError> {
    rows.iter().map(record_from_row).collect()
}

impl PgStore {
    /// The record after an update, or `NotFound` when no row matched.
    fn updated_record(row: Option<PgRow>, game_id: GameId) -> Result<RuntimeRecord, StoreError> {
        match row {
            Some(row) => record_from_row(&row),
            None => Err(StoreError::not_found(RECORD, game_id)),
        }
    }
}

#[async_trait]
impl RuntimeRecordStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn insert_record(&self, record: &RuntimeRecord) -> Result<(), StoreError> {
        let binding = record.binding.as_ref();
        let lease = record.turn_lease.as_ref();
        sqlx::query(
            "INSERT INTO runtime_records (game_id, status, engine, container_id, \
             engine_endpoint, current_turn, next_turn_at, skip_next_tick, turn_lease_token, \
             turn_lease_until, healthy, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(record.game_id.as_uuid())
        .bind(record.status.as_str())
        .bind(record.engine.as_str())
        .bind(binding.map(|b| b.container_id.as_str()))
        .bind(binding.map(|b| b.engine_endpoint.as_str()))
        .bind(u32_param(record.current_turn))
        .bind(record.next_turn_at)
        .bind(record.skip_next_tick)
        .bind(lease.map(|l| l.token.as_uuid()))
        .bind(lease.map(|l| l.until))
        .bind(record.healthy)
        .bind(record.created_at)
        .bind(record.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db(RECORD))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_record(&self, game_id: GameId) -> Result<RuntimeRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM runtime_records WHERE game_id = $1")
            .bind(game_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(RECORD))?;
        Self::updated_record(row, game_id)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_records(
        &self,
        status: Option<RuntimeStatus>,
        page: &PageRequest,
    ) -> Result<Page<RuntimeRecord>, StoreError> {
        let (after_at, after_id) = cursor(page)?;
        let rows = sqlx::query(keyset_page_sql!(
            "runtime_records",
            "game_id",
            "status",
            "text"
        ))
        .bind(status.map(|s| s.as_str()))
        .bind(after_at)
        .bind(after_id)
        .bind(page_limit(page))
        .fetch_all(&self.pool)
        .await
        .map_err(db(RECORD))?;
        let records = records_from_rows(&rows)?;
        Ok(page_of(records, page, |r| {
            (r.created_at, r.game_id.as_uuid())
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn update_record_status(
        &self,
        game_id: GameId,
        expected: RuntimeStatus,
        to: RuntimeStatus,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        expected.check(to)?;
        let row = sqlx::query(
            "WITH updated AS ( \
                 UPDATE runtime_records SET status = $3, updated_at = $4 \
                 WHERE game_id = $1 AND status = $2 RETURNING * \
             ), history AS ( \
                 INSERT INTO runtime_transitions (game_id, from_status, to_status, at) \
                 SELECT game_id, $2, $3, $4 FROM updated \
             ) SELECT * FROM updated",
        )
        .bind(game_id.as_uuid())
        .bind(expected.as_str())
        .bind(to.as_str())
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(RECORD))?;
        if let Some(row) = row {
            return record_from_row(&row);
        }
        let stored = self.get_record(game_id).await?;
        Err(StoreError::conflict(
            RECORD,
            game_id,
            format!("status is {}, expected {expected}", stored.status),
        ))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn set_binding(
        &self,
        game_id: GameId,
        binding: Option<RuntimeBinding>,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        let binding = binding.as_ref();
        let row = sqlx::query(
            "UPDATE runtime_records SET container_id = $2, engine_endpoint = $3, \
             updated_at = $4 WHERE game_id = $1 RETURNING *",
        )
        .bind(game_id.as_uuid())
        .bind(binding.map(|b| b.container_id.as_str()))
        .bind(binding.map(|b| b.engine_endpoint.as_str()))
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(RECORD))?;
        Self::updated_record(row, game_id)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn set_healthy(
        &self,
        game_id: GameId,
        healthy: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        let row = sqlx::query(
            "UPDATE runtime_records SET healthy = $2, updated_at = $3 WHERE game_id = $1 \
             RETURNING *",
        )
        .bind(game_id.as_uuid())
        .bind(healthy)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(RECORD))?;
        Self::updated_record(row, game_id)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn set_schedule(
        &self,
        game_id: GameId,
        next_turn_at: Option<Timestamp>,
        skip_next_tick: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        let row = sqlx::query(
            "UPDATE runtime_records SET next_turn_at = $2, skip_next_tick = $3, \
             updated_at = $4 WHERE game_id = $1 RETURNING *",
        )
        .bind(game_id.as_uuid())
        .bind(next_turn_at)
        .bind(skip_next_tick)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(RECORD))?;
        Self::updated_record(row, game_id)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn claim_due_turns(
        &self,
        claim: &ClaimRequest,
    ) -> Result<Vec<RuntimeRecord>, StoreError> {
        let lease = claim.lease();
        // SKIP LOCKED: a game another replica is claiming right now is passed over, and
        // a row claimed since this statement's snapshot is re-checked after its lock.
        let rows = sqlx::query(
            "UPDATE runtime_records r \
             SET turn_lease_token = $1, turn_lease_until = $2, updated_at = $3 \
             WHERE r.game_id IN ( \
                 SELECT game_id FROM runtime_records \
                 WHERE status = 'running' AND next_turn_at <= $3 \
                 AND (turn_lease_until IS NULL OR turn_lease_until <= $3) \
                 ORDER BY next_turn_at, created_at, game_id \
                 LIMIT $4 FOR UPDATE SKIP LOCKED \
             ) RETURNING r.*",
        )
        .bind(lease.token.as_uuid())
        .bind(lease.until)
        .bind(claim.now)
        .bind(limit_param(claim.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(RECORD))?;
        let mut records = records_from_rows(&rows)?;
        records.sort_by_key(|r| (r.next_turn_at, r.created_at, r.game_id));
        Ok(records)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn claim_turn(
        &self,
        game_id: GameId,
        claim: &ClaimRequest,
    ) -> Result<RuntimeRecord, StoreError> {
        let lease = claim.lease();
        let row = sqlx::query(
            "UPDATE runtime_records \
             SET turn_lease_token = $2, turn_lease_until = $3, updated_at = $4 \
             WHERE game_id = $1 AND status = 'running' \
             AND (turn_lease_token IS NULL OR turn_lease_token = $2 OR turn_lease_until <= $4) \
             RETURNING *",
        )
        .bind(game_id.as_uuid())
        .bind(lease.token.as_uuid())
        .bind(lease.until)
        .bind(claim.now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(RECORD))?;
        if let Some(row) = row {
            return record_from_row(&row);
        }
        let stored = self.get_record(game_id).await?;
        let detail = match stored.turn_lease {
            _ if stored.status != RuntimeStatus::Running => {
                format!("status is {}, not running", stored.status)
            }
            Some(held) => format!("turn held by another claim until {}", held.until),
            None => "turn claimed concurrently".to_owned(),
        };
        Err(StoreError::conflict(RECORD, game_id, detail))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn renew_turn_lease(
        &self,
        game_id: GameId,
        token: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        let row = sqlx::query(
            "UPDATE runtime_records SET turn_lease_until = $3, updated_at = $4 \
             WHERE game_id = $1 AND turn_lease_token = $2 RETURNING *",
        )
        .bind(game_id.as_uuid())
        .bind(token.as_uuid())
        .bind(until)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(RECORD))?;
        match row {
            Some(row) => record_from_row(&row),
            None => {
                // Not found, or held by another token (or by none).
                self.get_record(game_id).await?;
                Err(StoreError::conflict(
                    RECORD,
                    game_id,
                    "turn lease not held by this token",
                ))
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn complete_turn(
        &self,
        game_id: GameId,
        token: LeaseToken,
        update: &TurnUpdate,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        // Only the token decides: a lapsed lease nobody re-claimed still belongs to its
        // holder.
        let row = sqlx::query(
            "UPDATE runtime_records SET current_turn = $3, next_turn_at = $4, \
             skip_next_tick = $5, turn_lease_token = NULL, turn_lease_until = NULL, \
             updated_at = $6 WHERE game_id = $1 AND turn_lease_token = $2 RETURNING *",
        )
        .bind(game_id.as_uuid())
        .bind(token.as_uuid())
        .bind(u32_param(update.current_turn))
        .bind(update.next_turn_at)
        .bind(update.skip_next_tick)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(RECORD))?;
        if let Some(row) = row {
            return record_from_row(&row);
        }
        self.get_record(game_id).await?;
        Err(StoreError::conflict(
            RECORD,
            game_id,
            "turn lease not held by this token",
        ))
    }
}
