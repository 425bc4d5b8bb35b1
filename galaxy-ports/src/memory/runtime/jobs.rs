//! Durable runtime jobs of the in-memory runtime store.

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Leased};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::runtime::{JobStatus, RuntimeJob};
use galaxy_core::domain::{GameId, JobId, LeaseToken, Timestamp};
use galaxy_core::ports::{BatchFinished, JobCompletion, JobOutcome, RuntimeJobStore, StoreError};

use super::MemoryRuntimeStore;
use crate::memory::paging::{Order, paginate};

/// Entity name of runtime jobs in errors.
const JOB: &str = RuntimeJob::ENTITY;

#[async_trait]
impl RuntimeJobStore for MemoryRuntimeStore {
    async fn enqueue_job(&self, job: &RuntimeJob) -> Result<RuntimeJob, StoreError> {
        let mut state = self.lock();
        let existing = state.job_keys.get(&job.idempotency_key).copied();
        if let Some(first) = existing.and_then(|id| state.jobs.get(id)) {
            return Ok(first.clone());
        }
        if state.jobs.contains(job.id) {
            return Err(StoreError::duplicate(JOB, job.id));
        }
        state.job_keys.insert(job.idempotency_key.clone(), job.id);
        state.jobs.insert(job.clone());
        Ok(job.clone())
    }

    async fn get_job(&self, id: JobId) -> Result<RuntimeJob, StoreError> {
        let state = self.lock();
        let job = state.jobs.get(id).cloned();
        job.ok_or_else(|| StoreError::not_found(JOB, id))
    }

    async fn list_jobs(
        &self,
        game_id: Option<GameId>,
        page: &PageRequest,
    ) -> Result<Page<RuntimeJob>, StoreError> {
        let state = self.lock();
        let rows = state
            .jobs
            .values()
            .filter(|j| game_id.is_none_or(|g| j.game_id == g));
        let key = |j: &RuntimeJob| (j.created_at, j.id.as_uuid());
        paginate(rows, key, Order::Ascending, page)
    }

    async fn claim_jobs(&self, claim: &ClaimRequest) -> Result<Vec<RuntimeJob>, StoreError> {
        Ok(self.lock().jobs.claim(claim))
    }

    async fn renew_job_lease(
        &self,
        id: JobId,
        token: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        let mut state = self.lock();
        let job = state.jobs.renew(id, token, until)?;
        job.updated_at = at;
        Ok(job.clone())
    }

    async fn complete_job(
        &self,
        id: JobId,
        token: LeaseToken,
        outcome: &JobOutcome,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        let mut state = self.lock();
        state
            .jobs
            .finish(id, token, at, |job| end_job(job, outcome))
    }

    async fn complete_jobs(&self, completions: &[JobCompletion]) -> BatchFinished<RuntimeJob> {
        let mut state = self.lock();
        Ok(state
            .jobs
            .finish_all(completions, |job, outcome, _| end_job(job, outcome)))
    }
}

/// Applies how a job ended to a job its token holds (the queue frees the lease).
fn end_job(job: &mut RuntimeJob, outcome: &JobOutcome) {
    match outcome {
        JobOutcome::Succeeded => {
            job.status = JobStatus::Succeeded;
            job.error = None;
        }
        JobOutcome::Failed(reason) => {
            job.status = JobStatus::Failed;
            job.error = Some(reason.clone());
        }
        JobOutcome::Requeue(run_after) => {
            job.status = JobStatus::Queued;
            job.run_after = *run_after;
        }
    }
}
