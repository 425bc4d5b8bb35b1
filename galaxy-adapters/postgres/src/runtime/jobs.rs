//! [`RuntimeJobStore`] on `runtime_jobs`: durable start/stop/restart jobs, claimed by
//! the worker pool with `FOR UPDATE SKIP LOCKED`.

use std::sync::LazyLock;

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Leased};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::runtime::{JobKind, JobStatus, RuntimeJob};
use galaxy_core::domain::{GameId, JobId, LeaseToken, Timestamp};
use galaxy_core::ports::{BatchFinished, JobCompletion, JobOutcome, RuntimeJobStore, StoreError};
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::error::db;
use crate::queue::{self, ClaimOrder, Commit, FinishColumn, FinishPlan, QueueTable};
use crate::rows::{RowExt, cursor, keyset_page_sql, page_limit, page_of, u32_param};

const JOB: &str = RuntimeJob::ENTITY;

/// The jobs as a leased queue, run in creation order (ready table `runtime_jobs_ready`).
const QUEUE: QueueTable = QueueTable {
    table: "runtime_jobs",
    ready: "runtime_jobs_ready",
    waiting: &["queued"],
    leased: "running",
    due: "run_after",
    order: ClaimOrder::OldestFirst,
    // A claim is durable: a lost one would let a second worker run a job its first
    // claimer still runs, and two starts of one game at once are not safe. A finish is
    // relaxed: every job is idempotent when run again after it ended (a crash mid-job
    // replays it anyway), so a lost completion only replays the job once its lease lapses.
    claim_commit: Commit::Durable,
    finish_commit: Commit::Relaxed,
    dead: None,
};

/// What completing a job changes beyond the status.
const FINISH_COLUMNS: &[FinishColumn] = &[
    FinishColumn {
        name: "run_after",
        sql_type: "timestamptz",
        set: Some("run_after = COALESCE(u.run_after, q.run_after)"),
    },
    FinishColumn {
        name: "error",
        sql_type: "text",
        set: None,
    },
    FinishColumn {
        name: "keep_error",
        sql_type: "boolean",
        set: Some("error = CASE WHEN u.keep_error THEN q.error ELSE u.error END"),
    },
];

static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| QUEUE.claim_sql());
static ENQUEUE_SQL: LazyLock<String> = LazyLock::new(|| {
    QUEUE.keep_ready(
        "INSERT INTO runtime_jobs (id, game_id, kind, idempotency_key, status, attempts, \
         run_after, lease_token, lease_until, error, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
        None,
    )
});
/// A renewal moves the ready row to the new expiry.
static RENEW_SQL: LazyLock<String> = LazyLock::new(|| {
    QUEUE.keep_ready(
        "UPDATE runtime_jobs SET lease_until = $3, updated_at = $4 \
         WHERE id = $1 AND status = 'running' AND lease_token = $2 RETURNING *",
        None,
    )
});
static FINISH_SQL: LazyLock<String> = LazyLock::new(|| QUEUE.finish_sql(FINISH_COLUMNS, None));

/// The column changes of a [`JobOutcome`]: status, new `run_after` (`None` keeps it),
/// error, and whether the old error is kept instead.
fn outcome_columns(outcome: &JobOutcome) -> (JobStatus, Option<Timestamp>, Option<&str>, bool) {
    match outcome {
        JobOutcome::Succeeded => (JobStatus::Succeeded, None, None, false),
        JobOutcome::Failed(reason) => (JobStatus::Failed, None, Some(reason.as_str()), false),
        JobOutcome::Requeue(when) => (JobStatus::Queued, Some(*when), None, true),
    }
}

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
        let inserted = sqlx::query(ENQUEUE_SQL.as_str())
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
        QUEUE
            .claim(&self.pool, CLAIM_SQL.as_str(), claim, job_from_row)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn renew_job_lease(
        &self,
        id: JobId,
        token: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        let row = sqlx::query(RENEW_SQL.as_str())
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
        let batch = queue::one(id, token, outcome.clone(), at);
        queue::single(self.complete_jobs(&batch).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(batch = completions.len()), err(level = "debug"))]
    async fn complete_jobs(&self, completions: &[JobCompletion]) -> BatchFinished<RuntimeJob> {
        let plan = FinishPlan::new(completions, |id: JobId| id.as_uuid());
        let query = sqlx::query(FINISH_SQL.as_str())
            .bind(plan.ids())
            .bind(plan.tokens())
            .bind(plan.column(|o| outcome_columns(o).0.as_str()))
            .bind(plan.ats())
            .bind(plan.column(|o| outcome_columns(o).1))
            .bind(plan.column(|o| outcome_columns(o).2))
            .bind(plan.column(|o| outcome_columns(o).3));
        let rows = QUEUE.finish(&self.pool, query).await.map_err(db(JOB))?;
        QUEUE.settle(&self.pool, &plan, &rows, job_from_row).await
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
