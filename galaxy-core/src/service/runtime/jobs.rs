//! The bounded pool that runs durable runtime jobs: start (see `start.rs`), stop
//! (`stop.rs`) and restart (`restart.rs`). Callers only queue jobs and return.
//!
//! Jobs never wait on each other. A pass claims one job per free slot, runs each in a task
//! of its own and returns without waiting for them; when every slot is busy, the pass
//! waits for the first job to finish and claims at once. So a stop queued while a start
//! waits out its `/healthz` deadline is claimed by the next pass, within one poll
//! interval, not after the start.
//!
//! A running job renews its lease every third of `job_lease`, so a job that outlasts one
//! lease (an image pull, a slow engine) is never claimed a second time, by another server
//! or by this pool's own next pass. A server that dies stops renewing, and its jobs are
//! taken over once their lease lapses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;

use super::lease::holding_lease;
use super::ready::Readiness;
use super::restart::run_restart;
use super::shared::{Engines, HealthLog, Initialiser, JobQueue, Notices, Statuses};
use super::start::run_start;
use super::stop::run_stop;
use super::turns::TurnRunner;
use super::{EngineRegistry, RuntimeConfig, RuntimePorts};
use crate::domain::LeaseToken;
use crate::domain::game::EngineName;
use crate::domain::lease::ClaimRequest;
use crate::domain::runtime::{JobKind, RuntimeJob};
use crate::ports::{ContainerRuntime, EngineLimits, JobOutcome, StoreError};
use crate::worker::pool::TaskPool;
use crate::worker::{TickReport, Worker};

/// Runs start, stop and restart jobs, at most `job_pool_size` at once, each claimed as
/// soon as a slot is free.
///
/// [`Worker::tick`] claims what fits the free slots and starts it without waiting for
/// it (so `handled` counts jobs claimed, not finished); [`Worker::drain`] waits for the
/// jobs in flight, and [`Worker::run_until_idle`] runs passes and drains until nothing is
/// left, which is how tests drive the pool deterministically.
pub struct StartWorker {
    /// What every job task needs: ports, configuration and the shutdown token.
    runner: Runner,
    /// The job tasks in flight, one slot each. Draining awaits them; dropping the pool
    /// (a drain abandoned at the shutdown bound) aborts them.
    pool: TaskPool,
}

/// What start, stop and restart jobs use.
#[derive(Clone)]
pub(super) struct JobRunner {
    /// Game and record changes.
    pub(super) statuses: Statuses,
    /// The job table: claims, leases, outcomes, and the jobs a job queues.
    pub(super) queue: JobQueue,
    /// Creates, starts, stops and removes the engine containers.
    pub(super) containers: Arc<dyn ContainerRuntime>,
    /// Engine credentials and calls (the credential check of a start).
    pub(super) engines: Engines,
    /// `/admin/init` of a started engine.
    pub(super) init: Initialiser,
    /// Waits for a launched engine's `/healthz`.
    pub(super) ready: Readiness,
    /// A failed or paused start's notification to the admins.
    pub(super) notices: Notices,
    /// A restart that gave up: its health event and alert.
    pub(super) health: HealthLog,
    /// Turn 0: archived and announced as any turn.
    pub(super) turns: TurnRunner,
    /// The job settings.
    pub(super) settings: Arc<JobSettings>,
}

/// The settings of the start, stop and restart jobs.
#[derive(Debug)]
pub(super) struct JobSettings {
    /// `job_lease`: how long a claimed job is held (renewed every third of it).
    pub(super) lease: TimeDelta,
    /// `job_retry_delay`: how long a store failure puts a job back.
    pub(super) retry_delay: TimeDelta,
    /// `start_requeue_delay`: a start job finding its game not yet `starting` waits...
    pub(super) start_requeue_delay: TimeDelta,
    /// ...at most `start_wait_window` after it was queued.
    pub(super) start_wait_window: TimeDelta,
    /// `stop_grace`: how long a stopping container may take before it is killed.
    pub(super) stop_grace: Duration,
    /// `restart_attempts`: claims of a restart job before it gives up.
    pub(super) restart_attempts: u32,
    /// `restart_backoff`: the pause before a failed restart is tried again, times the
    /// attempts so far.
    pub(super) restart_backoff: TimeDelta,
    /// The engines the operator registered, by name.
    pub(super) engines: EngineRegistry,
    /// The installation's name, stamped on its containers.
    pub(super) instance: String,
    /// What each engine may consume.
    pub(super) limits: EngineLimits,
    /// Engines started without the credential check.
    pub(super) engines_without_token: BTreeSet<EngineName>,
    /// Extra environment for every engine.
    pub(super) engine_env: BTreeMap<String, String>,
}

impl JobRunner {
    fn new(ports: &RuntimePorts, config: RuntimeConfig) -> Self {
        let init = Initialiser::new(ports, &config);
        Self {
            statuses: Statuses::new(ports),
            queue: JobQueue::new(ports),
            containers: Arc::clone(&ports.containers),
            engines: Engines::new(ports, &config),
            init,
            ready: Readiness::new(ports, &config),
            notices: Notices::new(ports),
            health: HealthLog::new(ports),
            turns: TurnRunner::new(ports, &config),
            settings: Arc::new(JobSettings {
                lease: config.job_lease,
                retry_delay: config.job_retry_delay,
                start_requeue_delay: config.start_requeue_delay,
                start_wait_window: config.start_wait_window,
                stop_grace: config.stop_grace,
                restart_attempts: config.restart_attempts,
                restart_backoff: config.restart_backoff,
                engines: config.engines,
                instance: config.instance,
                limits: config.limits,
                engines_without_token: config.engines_without_token,
                engine_env: config.engine_env,
            }),
        }
    }

    pub(super) fn now(&self) -> crate::domain::Timestamp {
        self.statuses.now()
    }
}

/// The part of the pool a job task takes along.
#[derive(Clone)]
struct Runner {
    /// What the jobs use.
    jobs: JobRunner,
    /// Fires on shutdown: no new job is claimed, and a claimed job not yet begun goes
    /// back to the queue at once.
    cancel: CancellationToken,
}

impl StartWorker {
    /// A pool over `ports`.
    pub fn new(ports: RuntimePorts, config: RuntimeConfig) -> Self {
        let pool = usize::try_from(config.job_pool_size.max(1)).unwrap_or(1);
        Self {
            runner: Runner {
                jobs: JobRunner::new(&ports, config),
                cancel: CancellationToken::new(),
            },
            pool: TaskPool::new("runtime job", pool),
        }
    }

    /// Ties the pool to a shutdown token: passes stop claiming, jobs in progress finish
    /// (and are awaited by [`Worker::drain`]), claimed jobs not yet begun are put back
    /// for the next process.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.runner.cancel = cancel;
        self
    }
}

impl Runner {
    /// Runs one job to its outcome, renewing its lease meanwhile, and stores the outcome.
    async fn run_job(self, job: RuntimeJob, token: LeaseToken) {
        let jobs = &self.jobs;
        let work = async {
            if self.cancel.is_cancelled() {
                return JobOutcome::Requeue(jobs.now());
            }
            match job.kind {
                JobKind::Start => run_start(jobs, &job).await,
                JobKind::Stop => run_stop(jobs, &job).await,
                JobKind::Restart => run_restart(jobs, &job).await,
            }
        };
        let holder = format!("runtime job {}", job.id);
        let renew = || async {
            let now = jobs.now();
            let until = now + jobs.settings.lease;
            let queue = &jobs.queue.jobs;
            queue
                .renew_job_lease(job.id, token, until, now)
                .await
                .map(drop)
        };
        let outcome = holding_lease(jobs.settings.lease, &holder, renew, work).await;
        tracing::info!(job_id = %job.id, game_id = %job.game_id, kind = job.kind.as_str(), ?outcome, "runtime job done");
        let now = jobs.now();
        match jobs
            .queue
            .jobs
            .complete_job(job.id, token, &outcome, now)
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
}

#[async_trait]
impl Worker for StartWorker {
    fn name(&self) -> &'static str {
        "runtime_jobs"
    }

    /// Claims one job per free slot (waiting for a slot when all are busy) and starts
    /// each in a task of its own; returns without waiting for them.
    async fn tick(&self) -> Result<TickReport, StoreError> {
        let Some(slots) = self.pool.wait_free(&self.runner.cancel).await else {
            return Ok(TickReport::default());
        };
        let runner = &self.runner.jobs;
        let claim = ClaimRequest {
            token: runner.statuses.time.lease_token(),
            now: runner.now(),
            lease: runner.settings.lease,
            limit: u32::try_from(slots.len()).unwrap_or(u32::MAX),
        };
        let jobs = runner.queue.jobs.claim_jobs(&claim).await?;
        let handled = jobs.len();
        for (job, slot) in jobs.into_iter().zip(slots) {
            let runner = self.runner.clone();
            self.pool.spawn(slot, runner.run_job(job, claim.token));
        }
        Ok(TickReport { handled })
    }

    /// Waits for every job in flight.
    async fn drain(&self) -> usize {
        self.pool.drain().await
    }
}
