//! Durable runtime jobs of the in-memory runtime store.

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Lease};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::runtime::{JobStatus, RuntimeJob};
use galaxy_core::domain::{GameId, JobId, LeaseToken, Timestamp};
use galaxy_core::ports::{JobOutcome, RuntimeJobStore, StoreError};

use super::MemoryRuntimeStore;
use crate::memory::paging::{Order, paginate};

/// Entity name of runtime jobs in errors.
const JOB: &str = "runtime job";

#[async_trait]
impl RuntimeJobStore for MemoryRuntimeStore {
    async fn enqueue_job(&self, job: &RuntimeJob) -> Result<RuntimeJob, StoreError> {
        let mut state = self.lock();
        let existing = state.job_keys.get(&job.idempotency_key).copied();
        if let Some(first) = existing.and_then(|id| state.jobs.get(&id)) {
            return Ok(first.clone());
        }
        if state.jobs.contains_key(&job.id) {
            return Err(StoreError::duplicate(JOB, job.id));
        }
        state.job_keys.insert(job.idempotency_key.clone(), job.id);
        state.jobs.insert(job.id, job.clone());
        Ok(job.clone())
    }

    async fn get_job(&self, id: JobId) -> Result<RuntimeJob, StoreError> {
        let state = self.lock();
        let job = state.jobs.get(&id).cloned();
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
        let mut state = self.lock();
        let mut runnable: Vec<_> = state
            .jobs
            .values()
            .filter(|j| j.is_claimable_at(claim.now))
            .map(|j| (j.created_at, j.id))
            .collect();
        runnable.sort();
        runnable.truncate(claim.limit as usize);
        let lease = claim.lease();
        let mut claimed = Vec::with_capacity(runnable.len());
        for (_, id) in runnable {
            let Some(job) = state.jobs.get_mut(&id) else {
                continue;
            };
            job.status = JobStatus::Running;
            job.lease = Some(lease);
            job.attempts = job.attempts.saturating_add(1);
            job.updated_at = claim.now;
            claimed.push(job.clone());
        }
        Ok(claimed)
    }

    async fn renew_job_lease(
        &self,
        id: JobId,
        token: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        let mut state = self.lock();
        let job = state
            .jobs
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found(JOB, id))?;
        let lease = held_lease(job, token)?;
        lease.until = until;
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
        let job = state
            .jobs
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found(JOB, id))?;
        held_lease(job, token)?;
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
        job.lease = None;
        job.updated_at = at;
        Ok(job.clone())
    }
}

/// The job's lease, if `token` holds it. A lapsed lease nobody re-claimed still belongs to
/// its holder: only the token decides, as the SQL `WHERE lease_token = $token AND status =
/// 'running'` would.
fn held_lease(job: &mut RuntimeJob, token: LeaseToken) -> Result<&mut Lease, StoreError> {
    let status = job.status;
    match job.lease.as_mut() {
        Some(lease) if status == JobStatus::Running && lease.token == token => Ok(lease),
        _ => {
            let detail = format!(
                "status is {}, lease not held by this token",
                status.as_str()
            );
            Err(StoreError::conflict(JOB, job.id, detail))
        }
    }
}
