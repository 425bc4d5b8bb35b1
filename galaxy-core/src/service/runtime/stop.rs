//! The stop job: stop and remove a game's container(s) once the game ended or failed to
//! start.

use super::jobs::JobRunner;
use super::start::ignore_missing;
use super::{GAME_LABEL, INSTANCE_LABEL};
use crate::domain::game::GameStatus;
use crate::domain::runtime::{RuntimeJob, RuntimeRecord, RuntimeStatus};
use crate::ports::{ContainerError, JobOutcome, StoreError};

/// Stop and remove the game's container(s); the record ends `removed`. A record that
/// never ran (a failed start) keeps its status, so the start can be retried. A game
/// that is live again (starting, running, paused) is left alone.
pub(super) async fn run_stop(jobs: &JobRunner, job: &RuntimeJob) -> JobOutcome {
    match try_stop(jobs, job).await {
        Ok(()) => JobOutcome::Succeeded,
        Err(StopError::Store(error)) if error.is_retryable() => {
            JobOutcome::Requeue(jobs.now() + jobs.settings.retry_delay)
        }
        Err(error) => JobOutcome::Failed(error.to_string()),
    }
}

async fn try_stop(jobs: &JobRunner, job: &RuntimeJob) -> Result<(), StopError> {
    // Every stop job is for a game that ended or failed to start; a stale one (its
    // start retried since) must not kill the engine of a live game. Read past the cache:
    // the job's key is spent once it ends, so it must not end "nothing to do" on a live
    // status this replica still holds after another one ended the game.
    match jobs.statuses.games.get_game_fresh(job.game_id).await {
        Ok(game) if is_live_game(game.status) => {
            tracing::info!(game_id = %game.id, status = %game.status, "stop job for a live game: nothing to do");
            return Ok(());
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    let record = match jobs.statuses.records.get_record(job.game_id).await {
        Ok(record) => Some(record),
        Err(StoreError::NotFound { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let live = record
        .as_ref()
        .filter(|r| matches!(r.status, RuntimeStatus::Running | RuntimeStatus::Stopping));
    let record = match live {
        Some(r) => {
            jobs.statuses
                .advance_record(r, RuntimeStatus::Stopping)
                .await?
        }
        None => record,
    };
    let containers = &jobs.containers;
    for id in containers_of(jobs, job, record.as_ref()).await? {
        ignore_missing(containers.stop(&id, jobs.settings.stop_grace).await)?;
        ignore_missing(containers.remove(&id).await)?;
    }
    if record.is_some() {
        jobs.statuses.unschedule(job.game_id).await;
    }
    let stopping =
        |r: &RuntimeRecord| matches!(r.status, RuntimeStatus::Stopping | RuntimeStatus::Stopped);
    if let Some(record) = record.filter(stopping) {
        let stopped = jobs
            .statuses
            .advance_record(&record, RuntimeStatus::Stopped)
            .await?;
        if let Some(stopped) = stopped {
            jobs.statuses
                .advance_record(&stopped, RuntimeStatus::Removed)
                .await?;
        }
    }
    Ok(())
}

/// The bound container, plus any other container labelled with the game (an orphan
/// whose binding was never stored).
async fn containers_of(
    jobs: &JobRunner,
    job: &RuntimeJob,
    record: Option<&RuntimeRecord>,
) -> Result<Vec<String>, ContainerError> {
    let mut ids: Vec<String> = record
        .and_then(|r| r.binding.as_ref())
        .map(|b| b.container_id.clone())
        .into_iter()
        .collect();
    let labelled = jobs
        .containers
        .list_by_label(GAME_LABEL, &job.game_id.to_string())
        .await?;
    // Only this installation's (see `container_for`).
    let instance = jobs.settings.instance.as_str();
    for info in labelled {
        let ours = info.labels.get(INSTANCE_LABEL).map(String::as_str) == Some(instance);
        if ours && !ids.contains(&info.container_id) {
            ids.push(info.container_id);
        }
    }
    Ok(ids)
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
