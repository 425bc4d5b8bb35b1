//! The restart job: bring a running game's stopped container back.
//!
//! Docker's `on-failure` restart policy restarts an engine that crashed, but not one
//! stopped by `docker kill` (Docker takes that for a manual stop), so such a container
//! stays `exited` while its game is `running`. The [`super::InspectWorker`] then queues a
//! restart job (see [`restart_key`]), which this module runs:
//!
//! - a game no longer `running` or `paused`, or a record no longer `running`, makes it a
//!   no-op (the game ended or is being stopped);
//! - otherwise the bound container is started again: the same container, so the same
//!   volume (the engine resumes its state from it, it is never initialised again) and the
//!   same endpoint; then `/healthz` is polled with the start deadline and the record is
//!   marked healthy;
//! - a failure puts the job back after `restart_backoff` times the attempts so far, up to
//!   `restart_attempts` claims; then the game is paused (`running -> paused`, trigger
//!   `runtime_event`, schedule cleared), the record marked unhealthy, and an
//!   `inspect_unhealthy` health event with reason `restart_failed` is stored and sent to
//!   the admins as a `runtime_health_alert`;
//! - an engine that stopped again after [`CRASH_LOOP_RESTARTS`] restarts within
//!   [`CRASH_LOOP_WINDOW`] gets no further job: the inspect pass pauses its game the same
//!   way, with reason `crash_loop`.
//!
//! The same job **re-creates** an engine whose container is gone, when an admin asks for
//! it (`RuntimeService::recreate_engine`): a paused game whose record the reconciler
//! marked `removed` (a restored backup on a fresh machine, a lost Docker host). Both
//! runtimes keep an engine's data by the container's name (a Docker volume, a process
//! engine's data directory), which derives from the game id, so the new container finds
//! the engine's state and resumes from it; it is never initialised again. The record
//! goes `removed -> starting -> running` with the new binding and healthy; the game stays
//! paused for the admin to resume. After the same attempts as a restart the record is
//! `failed`, with an `inspect_unhealthy` event (reason `recreate_failed`) and an alert.

use chrono::TimeDelta;
use serde_json::json;

use super::jobs::JobRunner;
use super::ready::{NotReady, wait_until_ready};
use super::shared::JobQueue;
use crate::domain::game::{Game, GameStatus};
use crate::domain::health::HealthEventKind;
use crate::domain::runtime::{JobKind, JobStatus, RuntimeBinding, RuntimeJob, RuntimeStatus};
use crate::domain::{GameId, Timestamp};
use crate::ports::{ContainerError, GameStore, JobOutcome, StoreError};

/// Why one attempt to bring a container back failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RestartFailure {
    /// The container runtime would not start the container.
    #[error(transparent)]
    Start(#[from] ContainerError),
    /// The engine never answered `/healthz`: the deadline passed, or it exited for good
    /// first (with its exit code and last lines of output), or its container vanished.
    #[error(transparent)]
    NotReady(#[from] NotReady),
}

/// The idempotency key of a game's restart job for one incident:
/// `restart:<game>:<n>`, where `n` is the number of the game's restart jobs already
/// finished (succeeded or failed). While a restart job is queued or running, `n` does not
/// change, so every inspect pass that sees the container still stopped computes the key
/// of that job and queues nothing new; once it finished, the next incident gets `n + 1`.
/// The count is read from the durable job store, so it survives a server restart.
pub(super) fn restart_key(game_id: GameId, finished_restarts: usize) -> String {
    format!("restart:{game_id}:{finished_restarts}")
}

/// How many restarts of a game's engine that each brought it back may come within
/// [`CRASH_LOOP_WINDOW`] before the next incident pauses the game instead: an engine
/// that exits again some time after each restart (a corrupt state file it reads in the
/// background, say) would otherwise be restarted for as long as no turn is due (days
/// with a weekly schedule), each time with its health events and an alert.
pub const CRASH_LOOP_RESTARTS: usize = 3;

/// The window of [`CRASH_LOOP_RESTARTS`].
pub const CRASH_LOOP_WINDOW: TimeDelta = TimeDelta::hours(1);

/// What [`queue_restart`] did.
#[derive(Debug)]
pub(super) enum RestartQueued {
    /// The game is not running: nothing (a paused game is an admin's to resume).
    NotRunning,
    /// The incident's restart job is queued (now, or already).
    Queued,
    /// A restart job finished after the container was seen stopped: the sighting is of
    /// an incident already handled (another replica's pass saw it first and its job
    /// brought the engine back while this one looked), so nothing is queued; the next
    /// pass sees the container as it is now.
    Handled,
    /// [`CRASH_LOOP_RESTARTS`] restarts brought the engine back within
    /// [`CRASH_LOOP_WINDOW`] and it stopped again: no job; the game is to be paused.
    CrashLoop {
        /// The restarts within the window.
        restarts: usize,
    },
}

/// Queues a restart job for a running game whose bound container was seen stopped at
/// `seen` (at most one per incident, see [`restart_key`]), unless the engine is in a
/// crash loop or a restart finished since. Games not `running` are left alone: a paused
/// game is an admin's to resume, and a restart that gave up paused it.
///
/// `seen` is the instant before the container was inspected: a restart job that
/// finished after it answered that sighting already, and counting the sighting as a
/// new incident would queue a restart of a running engine (a no-op that would still
/// count towards [`CRASH_LOOP_RESTARTS`], so that with replicas a game could pause after
/// fewer real restarts).
pub(super) async fn queue_restart(
    games: &dyn GameStore,
    queue: &JobQueue,
    game_id: GameId,
    seen: Timestamp,
) -> Result<RestartQueued, StoreError> {
    let game = games.get_game(game_id).await?;
    if game.status != GameStatus::Running {
        return Ok(RestartQueued::NotRunning);
    }
    let jobs = restart_jobs(queue, game_id).await?;
    let finished: Vec<&RuntimeJob> = jobs.iter().filter(|j| is_finished(j)).collect();
    if finished.iter().any(|job| job.updated_at > seen) {
        return Ok(RestartQueued::Handled);
    }
    let key = restart_key(game_id, finished.len());
    // An incident whose job is queued or running is being handled (its enqueue below
    // returns that job): only a new incident is refused for the loop.
    let open = jobs.len() > finished.len();
    let recent = finished
        .iter()
        .filter(|job| job.status == JobStatus::Succeeded)
        .filter(|job| job.updated_at > seen - CRASH_LOOP_WINDOW)
        .count();
    if recent >= CRASH_LOOP_RESTARTS && !open {
        return Ok(RestartQueued::CrashLoop { restarts: recent });
    }
    let job = queue.enqueue(game_id, JobKind::Restart, key).await?;
    tracing::info!(%game_id, job_id = %job.id, key = job.idempotency_key, "restart job queued");
    Ok(RestartQueued::Queued)
}

/// Queues the restart job that creates a paused game's engine again (the admin's
/// `recreate_engine`); keyed like a restart incident, so asking twice while it is queued
/// or running queues one job.
pub(super) async fn queue_recreate(
    queue: &JobQueue,
    game_id: GameId,
) -> Result<RuntimeJob, StoreError> {
    let jobs = restart_jobs(queue, game_id).await?;
    let finished = jobs.iter().filter(|j| is_finished(j)).count();
    queue
        .enqueue(game_id, JobKind::Restart, restart_key(game_id, finished))
        .await
}

/// Whether a job is done (succeeded or failed).
fn is_finished(job: &RuntimeJob) -> bool {
    matches!(job.status, JobStatus::Succeeded | JobStatus::Failed)
}

/// The game's restart jobs, done or not.
async fn restart_jobs(queue: &JobQueue, game_id: GameId) -> Result<Vec<RuntimeJob>, StoreError> {
    use crate::domain::page::PageRequest;
    const PAGE: u32 = 200;
    let jobs = &queue.jobs;
    let mut page = PageRequest::first(PAGE).map_err(StoreError::internal)?;
    let mut finished = Vec::new();
    loop {
        let got = jobs.list_jobs(Some(game_id), &page).await?;
        finished.extend(got.items.into_iter().filter(|j| j.kind == JobKind::Restart));
        match got.next_after {
            Some(after) => page = PageRequest::after(PAGE, after).map_err(StoreError::internal)?,
            None => return Ok(finished),
        }
    }
}

/// Runs one restart job to its outcome.
pub(super) async fn run_restart(jobs: &JobRunner, job: &RuntimeJob) -> JobOutcome {
    match try_restart(jobs, job).await {
        Ok(outcome) => outcome,
        Err(error) if error.is_retryable() => {
            tracing::warn!(%error, game_id = %job.game_id, "restart job put back after a store failure");
            JobOutcome::Requeue(jobs.now() + jobs.settings.retry_delay)
        }
        Err(error) => JobOutcome::Failed(format!("store failure: {error}")),
    }
}

async fn try_restart(jobs: &JobRunner, job: &RuntimeJob) -> Result<JobOutcome, StoreError> {
    // Jobs decide on the status of record, past any cache (see `try_stop`).
    let game = match jobs.statuses.games.get_game_fresh(job.game_id).await {
        Ok(game) => game,
        Err(StoreError::NotFound { .. }) => return Ok(JobOutcome::Failed("no such game".into())),
        Err(error) => return Err(error),
    };
    if !matches!(game.status, GameStatus::Running | GameStatus::Paused) {
        // A re-creation that bound its engine and then crashed (or failed a store call)
        // before queuing the stop of a game ended meanwhile is run again here: its engine
        // is still up, and the admin's stop job is spent.
        if game.status.is_terminal() {
            match jobs.statuses.records.get_record(game.id).await {
                Ok(record) if record.binding.is_some() && record.status.is_live() => {
                    stop_ended(jobs, job, &game).await?;
                }
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        tracing::info!(game_id = %game.id, status = %game.status, "restart job for a game not running: nothing to do");
        return Ok(JobOutcome::Succeeded);
    }
    let records = &jobs.statuses.records;
    let record = match records.get_record(game.id).await {
        Ok(record) => record,
        Err(StoreError::NotFound { .. }) => {
            return Ok(JobOutcome::Failed("the game has no runtime record".into()));
        }
        Err(error) => return Err(error),
    };
    // `starting` here is a re-creation this job began before a crash; `failed`, one that
    // gave up before and was asked for again.
    if game.status == GameStatus::Paused
        && matches!(
            record.status,
            RuntimeStatus::Removed | RuntimeStatus::Starting | RuntimeStatus::Failed
        )
    {
        return recreate(jobs, job, &game).await;
    }
    if record.status != RuntimeStatus::Running {
        tracing::info!(game_id = %game.id, status = %record.status, "restart job for a record not running: nothing to do");
        return Ok(JobOutcome::Succeeded);
    }
    let Some(binding) = record.binding else {
        return Ok(JobOutcome::Failed(
            "the game has no container to restart".into(),
        ));
    };
    match relaunch(jobs, game.id, &binding).await {
        Ok(()) => {
            records.set_healthy(game.id, true, jobs.now()).await?;
            tracing::info!(game_id = %game.id, container = binding.container_id, "engine container restarted");
            Ok(JobOutcome::Succeeded)
        }
        Err(cause) if job.attempts < jobs.settings.restart_attempts => {
            tracing::warn!(%cause, game_id = %game.id, attempts = job.attempts, "restart failed; trying again");
            Ok(JobOutcome::Requeue(jobs.now() + backoff(jobs, job)))
        }
        Err(cause) => give_up(jobs, job, game.id, &binding, cause).await,
    }
}

/// Creates the engine's container again (same name, so the same kept data), waits for
/// the engine and binds the record to it; see the module docs.
async fn recreate(
    jobs: &JobRunner,
    job: &RuntimeJob,
    game: &Game,
) -> Result<JobOutcome, StoreError> {
    let statuses = &jobs.statuses;
    // The old binding goes first: a `starting` record still bound to the vanished
    // container would be marked `removed` again by the reconciler while the new one is
    // being created.
    let record = statuses
        .records
        .set_binding(game.id, None, jobs.now())
        .await?;
    let Some(record) = statuses
        .advance_record(&record, RuntimeStatus::Starting)
        .await?
    else {
        return Ok(JobOutcome::Failed(format!(
            "the runtime record moved on (it is no longer {})",
            record.status
        )));
    };
    match super::start::launch(jobs, game, &record).await {
        Ok(binding) => {
            if let Some(why) = data_mismatch(jobs, game.id, &binding, record.current_turn).await {
                return gave_up_recreating(
                    jobs,
                    game.id,
                    &record,
                    job,
                    why,
                    Some(binding.container_id),
                )
                .await;
            }
            let records = &statuses.records;
            let now = jobs.now();
            records
                .set_binding(game.id, Some(binding.clone()), now)
                .await?;
            if statuses
                .advance_record(&record, RuntimeStatus::Running)
                .await?
                .is_none()
            {
                return Ok(JobOutcome::Failed(
                    "the runtime record moved on while the engine was created again".into(),
                ));
            }
            records.set_healthy(game.id, true, now).await?;
            tracing::info!(game_id = %game.id, container = binding.container_id, "engine created again from its kept data");
            // The game was read paused when this job began; an admin may have stopped it
            // while the engine was being created, and its stop job, finding no container
            // yet, is done (its key spent). A stop of its own removes this one.
            let now = statuses.games.get_game_fresh(game.id).await?;
            if now.status.is_terminal() {
                stop_ended(jobs, job, &now).await?;
            }
            Ok(JobOutcome::Succeeded)
        }
        Err((cause, _)) if job.attempts < jobs.settings.restart_attempts => {
            tracing::warn!(%cause, game_id = %game.id, attempts = job.attempts, "re-creating the engine failed; trying again");
            Ok(JobOutcome::Requeue(jobs.now() + backoff(jobs, job)))
        }
        Err((cause, container)) => {
            let why = format!(
                "the engine could not be created again after {} attempts: {cause}",
                job.attempts
            );
            gave_up_recreating(jobs, game.id, &record, job, why, container).await
        }
    }
}

/// Queues the stop of an engine this job brought up for a game that ended meanwhile (one
/// per restart job, whoever of its runs queues it).
async fn stop_ended(jobs: &JobRunner, job: &RuntimeJob, game: &Game) -> Result<(), StoreError> {
    tracing::info!(game_id = %game.id, status = %game.status, "game ended while its engine was created again: stopping it");
    let key = format!("stop:{}:{}:recreated:{}", game.id, game.status, job.id);
    jobs.queue.enqueue(game.id, JobKind::Stop, key).await?;
    Ok(())
}

/// Why the re-created engine is not the game's (its data did not come back: it is at
/// another turn, or holds no game at all), or `None` when it is. Only checked for a game
/// that played a turn: before that, the engine is initialised on resume.
async fn data_mismatch(
    jobs: &JobRunner,
    game_id: GameId,
    binding: &RuntimeBinding,
    turn: u32,
) -> Option<String> {
    if turn == 0 {
        return None;
    }
    let target = jobs.engines.engine_target(game_id, binding);
    match jobs
        .engines
        .engine_call(jobs.engines.client.state(&target))
        .await
    {
        Ok(state) if state.turn == turn => None,
        Ok(state) => Some(format!(
            "the re-created engine is at turn {}, the game at turn {turn}: its data did not \
             come back (restore the engine's data volume or directory first)",
            state.turn
        )),
        Err(error) => Some(format!(
            "the re-created engine holds no game ({error}): its data did not come back \
             (restore the engine's data volume or directory first)"
        )),
    }
}

/// The re-creation ends without an engine the game can use: the record is `failed` and
/// unhealthy (an admin may ask again once the data is back), with an `inspect_unhealthy`
/// health event (`recreate_failed`) and an alert.
async fn gave_up_recreating(
    jobs: &JobRunner,
    game_id: GameId,
    record: &crate::domain::runtime::RuntimeRecord,
    job: &RuntimeJob,
    why: String,
    container: Option<String>,
) -> Result<JobOutcome, StoreError> {
    tracing::warn!(%game_id, reason = %why, "re-creation gave up");
    let statuses = &jobs.statuses;
    statuses
        .advance_record(record, RuntimeStatus::Failed)
        .await?;
    statuses
        .records
        .set_healthy(game_id, false, jobs.now())
        .await?;
    let detail = json!({
        "reason": "recreate_failed",
        "container_id": container,
        "attempts": job.attempts,
        "error": why,
    });
    let event = jobs
        .health
        .store_health_event(game_id, HealthEventKind::InspectUnhealthy, detail)
        .await?;
    jobs.health.alert(&event).await;
    Ok(JobOutcome::Failed(why))
}

/// The wait before the next attempt: `restart_backoff` times the attempts so far.
fn backoff(jobs: &JobRunner, job: &RuntimeJob) -> chrono::TimeDelta {
    let factor = i32::try_from(job.attempts.max(1)).unwrap_or(i32::MAX);
    jobs.settings
        .restart_backoff
        .checked_mul(factor)
        .unwrap_or(jobs.settings.restart_backoff)
}

/// Starts the same container (a no-op for a running one) and waits for its engine; an
/// engine that exits for good at once fails the attempt without waiting out the deadline.
async fn relaunch(
    jobs: &JobRunner,
    game_id: GameId,
    binding: &RuntimeBinding,
) -> Result<(), RestartFailure> {
    let containers = &jobs.containers;
    containers.start(&binding.container_id).await?;
    let target = jobs.engines.engine_target(game_id, binding);
    wait_until_ready(&jobs.ready, binding, &target).await?;
    Ok(())
}

/// The last attempt failed: pause the game, mark the record unhealthy, store the health
/// event and alert the admins.
async fn give_up(
    jobs: &JobRunner,
    job: &RuntimeJob,
    game_id: GameId,
    binding: &RuntimeBinding,
    cause: RestartFailure,
) -> Result<JobOutcome, StoreError> {
    tracing::warn!(%cause, %game_id, attempts = job.attempts, "restart gave up: pausing the game");
    let reason = format!(
        "the engine container could not be restarted after {} attempts: {cause}",
        job.attempts
    );
    let paused = jobs
        .statuses
        .pause_for_health(game_id, reason.clone())
        .await?;
    let records = &jobs.statuses.records;
    records.set_healthy(game_id, false, jobs.now()).await?;
    let detail = json!({
        "reason": "restart_failed",
        "container_id": binding.container_id,
        "attempts": job.attempts,
        "error": cause.to_string(),
        "paused": paused,
    });
    let event = jobs
        .health
        .store_health_event(game_id, HealthEventKind::InspectUnhealthy, detail)
        .await?;
    jobs.health.alert(&event).await;
    Ok(JobOutcome::Failed(reason))
}
