//! [`RuntimeJobStore`] on `runtime_jobs`: durable start/stop/restart jobs, claimed by
//! the worker pool with `FOR UPDATE SKIP LOCKED`.

use async_trait::async_trait;
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::runtime::{JobKind, JobStatus, RuntimeJob};
use galaxy_core::domain::{GameId, JobId, LeaseToken, Timestamp};
use galaxy_core::ports::{JobOutcome, RuntimeJobStore, StoreError};
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::error::db;
use crate::rows::{RowExt, cursor, keyset_page_sql, limit_param, page_limit, page_of, u32_param};

const JOB: &str = "runtime job";

fn job_from_row(row: &PgRow) -> Result<RuntimeJob, StoreError> {
    Ok(RuntimeJob {
        id: JobId::from_uuid(row.col(JOB, "id")?),
        game_id: GameId::from_uuid(row.col(JOB, "game_id")?),
        kind: row.col_name(JOB, "kind", JobKind::parse)?,
        idempotency_key: row.col(JOB, "idempotency_key")?,
        status: row.col_name(JOB, "status", JobStatus::parse)?,
        attempts: row.col_u32(JOB, "attempts")?,
        run_after: row.col(JOB, "run_after")?,
        lease: row.col_lease(JOB, "lease_token", "lease_until")?,
        error: row.col(JOB, "error")?,
        created_at: row.col(JOB, "created_at")?,
        updated_at: row.col(JOB, "updated_at")?,
    })
}

fn jobs_from_rows(rows: &[PgRow]) -> Result<Vec<RuntimeJob>, StoreError> {
    rows.iter().map(job_from_row).collect()
}

#[async_trait]
impl RuntimeJobStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn enqueue_job(&self, job: &RuntimeJob) -> Result<RuntimeJob, StoreError> {
        let lease = job.lease.as_ref();
        // ON CONFLICT on the idempotency key only: a concurrent enqueue of the same key
        // waits for the first to commit and then inserts nothing; a clashing id is still
        // a `Duplicate`.
        let inserted = sqlx::query(
            "INSERT INTO runtime_jobs (id, game_id, kind, idempotency_key, status, attempts, \
             run_after, lease_token, lease_until, error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
        )
        .bind(job.id.as_uuid())
        .bind(job.game_id.as_uuid())
        .bind(job.kind.as_str())
        .bind(&job.idempotency_key)
        .bind(job.status.as_str())
        .bind(u32_param(job.attempts))
        .bind(job.run_after)
        .bind(lease.map(|l| l.token.as_uuid()))
        .bind(lease.map(|l| l.until))
        .bind(job.error.as_deref())
        .bind(job.created_at)
        .bind(job.updated_at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(JOB))?;
        if let Some(row) = inserted {
            return job_from_row(&row);
        }
        let row = sqlx::query("SELECT * FROM runtime_jobs WHERE idempotency_key = $1")
            .bind(&job.idempotency_key)
            .fetch_one(&self.pool)
            .await
            .map_err(db(JOB))?;
        job_from_row(&row)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_job(&self, id: JobId) -> Result<RuntimeJob, StoreError> {
        let row = sqlx::query("SELECT * FROM runtime_jobs WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(JOB))?;
        match row {
            Some(row) => job_from_row(&row),
            None => Err(StoreError::not_found(JOB, id)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_jobs(
        &self,
        game_id: Option<GameId>,
        page: &PageRequest,
    ) -> Result<Page<RuntimeJob>, StoreError> {
        let (after_at, after_id) = cursor(page)?;
        let rows = sqlx::query(keyset_page_sql!("runtime_jobs", "id", "game_id", "uuid"))
            .bind(game_id.map(|g| g.as_uuid()))
            .bind(after_at)
            .bind(after_id)
            .bind(page_limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(db(JOB))?;
        let jobs = jobs_from_rows(&rows)?;
        Ok(page_of(jobs, page, |j| (j.created_at, j.id.as_uuid())))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn claim_jobs(&self, claim: &ClaimRequest) -> Result<Vec<RuntimeJob>, StoreError> {
        let lease = claim.lease();
        let rows = sqlx::query(
            "UPDATE runtime_jobs j \
             SET status = 'running', lease_token = $1, lease_until = $2, \
                 attempts = LEAST(j.attempts + 1, 4294967295), updated_at = $3 \
             WHERE j.id IN ( \
                 SELECT id FROM runtime_jobs \
                 WHERE status IN ('queued', 'running') \
                 AND ((status = 'queued' AND run_after <= $3) \
                      OR (status = 'running' AND (lease_until IS NULL OR lease_until <= $3))) \
                 ORDER BY created_at, id \
                 LIMIT $4 FOR UPDATE SKIP LOCKED \
             ) RETURNING j.*",
        )
        .bind(lease.token.as_uuid())
        .bind(lease.until)
        .bind(claim.now)
        .bind(limit_param(claim.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(JOB))?;
        let mut jobs = jobs_from_rows(&rows)?;
        jobs.sort_by_key(|j| (j.created_at, j.id));
        Ok(jobs)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn renew_job_lease(
        &self,
        id: JobId,
        token: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        let row = sqlx::query(
            "UPDATE runtime_jobs SET lease_until = $3, updated_at = $4 \
             WHERE id = $1 AND status = 'running' AND lease_token = $2 RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(token.as_uuid())
        .bind(until)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(JOB))?;
        match row {
            Some(row) => job_from_row(&row),
            None => Err(self.lease_conflict(id).await),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn complete_job(
        &self,
        id: JobId,
        token: LeaseToken,
        outcome: &JobOutcome,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        // (status, run_after or NULL to keep it, error; `keep_error` keeps the old one).
        let (status, run_after, error, keep_error) = match outcome {
            JobOutcome::Succeeded => (JobStatus::Succeeded, None, None, false),
            JobOutcome::Failed(reason) => (JobStatus::Failed, None, Some(reason.as_str()), false),
            JobOutcome::Requeue(when) => (JobStatus::Queued, Some(*when), None, true),
        };
        let row = sqlx::query(
            "UPDATE runtime_jobs SET status = $3, run_after = COALESCE($4, run_after), \
             error = CASE WHEN $6 THEN error ELSE $5 END, lease_token = NULL, \
             lease_until = NULL, updated_at = $7 \
             WHERE id = $1 AND status = 'running' AND lease_token = $2 RETURNING *",
        )
        .bind(id.as_uuid())
        .bind(token.as_uuid())
        .bind(status.as_str())
        .bind(run_after)
        .bind(error)
        .bind(keep_error)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db(JOB))?;
        match row {
            Some(row) => job_from_row(&row),
            None => Err(self.lease_conflict(id).await),
        }
    }
}

impl PgStore {
    /// Why a lease-guarded update of job `id` matched no row: `NotFound`, or `Conflict`
    /// naming the job's status.
    async fn lease_conflict(&self, id: JobId) -> StoreError {
        match self.get_job(id).await {
            Ok(stored) => StoreError::conflict(
                JOB,
                id,
                format!(
                    "status is {}, lease not held by this token",
                    stored.status.as_str()
                ),
            ),
            Err(error) => error,
        }
    }
}
