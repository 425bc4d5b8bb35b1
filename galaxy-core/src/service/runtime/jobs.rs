//! The bounded pool that runs durable runtime jobs: start (see `start.rs`), stop and
//! restart. Callers only queue jobs and return; a pass claims at most `job_pool_size`
//! jobs under a lease and runs them concurrently.

use async_trait::async_trait;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::restart::run_restart;
use super::shared::Shared;
use super::start::{ignore_missing, run_start};
use super::{GAME_LABEL, RuntimeConfig, RuntimePorts};
use crate::domain::LeaseToken;
use crate::domain::game::GameStatus;
use crate::domain::lease::ClaimRequest;
use crate::domain::runtime::{JobKind, RuntimeJob, RuntimeRecord, RuntimeStatus};
use crate::ports::{ContainerError, JobOutcome, StoreError};
use crate::worker::{TickReport, Worker};

/// Runs start, stop and restart jobs, at most `job_pool_size` at once.
pub struct StartWorker {
    /// Ports and configuration.
    shared: Shared,
    /// Fires on shutdown: claimed jobs not yet begun go back to the queue at once.
    cancel: CancellationToken,
}

impl StartWorker {
    /// A pool over `ports`.
    pub fn new(ports: RuntimePorts, config: RuntimeConfig) -> Self {
        Self {
            shared: Shared::new(ports, config),
            cancel: CancellationToken::new(),
        }
    }

    /// Ties the pool to a shutdown token: jobs in progress finish, claimed jobs not yet
    /// begun are put back for the next process.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    async fn run_job(&self, job: RuntimeJob, token: LeaseToken) {
        let outcome = if self.cancel.is_cancelled() {
            JobOutcome::Requeue(self.shared.now())
        } else {
            match job.kind {
                JobKind::Start => run_start(&self.shared, &job).await,
                JobKind::Stop => self.stop(&job).await,
                JobKind::Restart => run_restart(&self.shared, &job).await,
            }
        };
        tracing::info!(job_id = %job.id, game_id = %job.game_id, kind = job.kind.as_str(), ?outcome, "runtime job done");
        let jobs = &self.shared.ports.jobs;
        match jobs
            .complete_job(job.id, token, &outcome, self.shared.now())
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                tracing::warn!(job_id = %job.id, "job lease lost before completion; another worker owns it");
            }
            Err(error) => {
                tracing::warn!(%error, job_id = %job.id, "job outcome not stored; it runs again after its lease");
            }
        }
    }

    /// Stop and remove the game's container(s); the record ends `removed`. A record that
    /// never ran (a failed start) keeps its status, so the start can be retried. A game
    /// that is live again (starting, running, paused) is left alone.
    async fn stop(&self, job: &RuntimeJob) -> JobOutcome {
        match self.try_stop(job).await {
            Ok(()) => JobOutcome::Succeeded,
            Err(StopError::Store(error)) if error.is_retryable() => {
                JobOutcome::Requeue(self.shared.now() + self.shared.config.job_retry_delay)
            }
            Err(error) => JobOutcome::Failed(error.to_string()),
        }
    }

    async fn try_stop(&self, job: &RuntimeJob) -> Result<(), StopError> {
        let shared = &self.shared;
        // Every stop job is for a game that ended or failed to start; a stale one (its
        // start retried since) must not kill the engine of a live game.
        match shared.ports.games.get_game(job.game_id).await {
            Ok(game) if is_live_game(game.status) => {
                tracing::info!(game_id = %game.id, status = %game.status, "stop job for a live game: nothing to do");
                return Ok(());
            }
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let record = match shared.ports.records.get_record(job.game_id).await {
            Ok(record) => Some(record),
            Err(StoreError::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        let live = record
            .as_ref()
            .filter(|r| matches!(r.status, RuntimeStatus::Running | RuntimeStatus::Stopping));
        let record = match live {
            Some(r) => shared.advance_record(r, RuntimeStatus::Stopping).await?,
            None => record,
        };
        let containers = &shared.ports.containers;
        for id in self.containers_of(job, record.as_ref()).await? {
            ignore_missing(containers.stop(&id, shared.config.stop_grace).await)?;
            ignore_missing(containers.remove(&id).await)?;
        }
        if record.is_some() {
            shared.unschedule(job.game_id).await;
        }
        let stopping = |r: &RuntimeRecord| {
            matches!(r.status, RuntimeStatus::Stopping | RuntimeStatus::Stopped)
        };
        if let Some(record) = record.filter(stopping) {
            let stopped = shared
                .advance_record(&record, RuntimeStatus::Stopped)
                .await?;
            if let Some(stopped) = stopped {
                shared
                    .advance_record(&stopped, RuntimeStatus::Removed)
                    .await?;
            }
        }
        Ok(())
    }

    /// The bound container, plus any other container labelled with the game (an orphan
    /// whose binding was never stored).
    async fn containers_of(
        &self,
        job: &RuntimeJob,
        record: Option<&RuntimeRecord>,
    ) -> Result<Vec<String>, ContainerError> {
        let mut ids: Vec<String> = record
            .and_then(|r| r.binding.as_ref())
            .map(|b| b.container_id.clone())
            .into_iter()
            .collect();
        let containers = &self.shared.ports.containers;
        let labelled = containers
            .list_by_label(GAME_LABEL, &job.game_id.to_string())
            .await?;
        for info in labelled {
            if !ids.contains(&info.container_id) {
                ids.push(info.container_id);
            }
        }
        Ok(ids)
    }
}

fn is_live_game(status: GameStatus) -> bool {
    matches!(
        status,
        GameStatus::Starting | GameStatus::Running | GameStatus::Paused
    )
}

/// Why a stop job failed.
#[derive(Debug, thiserror::Error)]
enum StopError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Container(#[from] ContainerError),
}

#[async_trait]
impl Worker for StartWorker {
    fn name(&self) -> &'static str {
        "runtime_jobs"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        let shared = &self.shared;
        let pool = shared.config.job_pool_size.max(1);
        let claim = ClaimRequest {
            token: shared.lease_token(),
            now: shared.now(),
            lease: shared.config.job_lease,
            limit: pool,
        };
        let jobs = shared.ports.jobs.claim_jobs(&claim).await?;
        let handled = jobs.len();
        futures::stream::iter(jobs)
            .map(|job| self.run_job(job, claim.token))
            .buffer_unordered(pool as usize)
            .collect::<Vec<()>>()
            .await;
        Ok(TickReport { handled })
    }
}
