//! The start job: launch the container, wait for the engine, then handle the result as
//! seed 001 says.
//!
//! Every step is idempotent, because a crash mid-job leaves the job claimable again after
//! its lease: the record is created or reused; a container of the game that the record
//! is bound to is reused, and an unbound one (left by a start that crashed before the
//! binding was stored, so its engine was never initialised) is removed and created anew;
//! `/admin/init` is idempotent by contract and its seed derives from the game id.

use std::collections::BTreeMap;

use serde_json::json;

use super::jobs::JobRunner;
use super::ready::{NotReady, wait_until_ready};
use super::{BACKEND_LABEL, GAME_LABEL, INSTANCE_LABEL, RuntimeError, container_name};
use super::{announce, archive};
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::notification::NotificationKind;
use crate::domain::runtime::{JobKind, RuntimeBinding, RuntimeJob, RuntimeRecord, RuntimeStatus};
use crate::ports::{
    ContainerError, ContainerSpec, EngineError, EngineTarget, JobOutcome, StoreError,
};

/// Why launching failed before the engine answered: the `start_failed` reasons.
#[derive(Debug, thiserror::Error)]
pub(super) enum LaunchError {
    /// The game names an engine nobody registered.
    #[error(transparent)]
    Engine(#[from] super::RegistryError),
    /// The container runtime refused or failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The engine never answered `/healthz`: the deadline passed, or it exited for good
    /// first (the reason then carries its exit code and last lines of output).
    #[error(transparent)]
    NotReady(#[from] NotReady),
    /// The engine answered a call that carried no credential: anyone who can reach it
    /// could play every race, and the operator did not accept that for this engine.
    #[error(
        "engine {engine:?} does not check its credential: GET /admin/state without \
         `Authorization: Bearer <GALAXY_ENGINE_TOKEN>` {answer}, where the engine contract \
         asks for 401 (docs/engine-contract.md); fix the engine, or list {engine:?} in \
         GALAXY_ENGINES_WITHOUT_TOKEN to run it anyway"
    )]
    Unguarded {
        /// The engine's registered name.
        engine: String,
        /// What it answered instead of 401.
        answer: String,
    },
}

/// Why a start failed: the reason of `starting -> start_failed`, stored in the game's
/// history, sent to the admins and the host, and kept as the job's failure.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartFailure {
    /// The game's runtime record is in a status from which it cannot start (e.g.
    /// `stopped`).
    #[error("the runtime record is {0} and cannot start again")]
    RecordNotStartable(RuntimeStatus),
    /// The engine never came up: unknown engine, container failure, `/healthz` deadline,
    /// engine exit (with its code and output) or an unguarded engine.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The engine refused the game at `/admin/init` with a 4xx: starting it again cannot
    /// help, so the start fails with the engine's reason (its `error` and `details`,
    /// cleaned and bounded as any engine text a person reads).
    #[error("the engine refused the game at init ({status}): {reason}")]
    InitRefused {
        /// The HTTP status the engine answered.
        status: u16,
        /// The engine's reason.
        reason: String,
    },
    /// The container runs, but its binding could not be stored (the orphan path).
    #[error("the runtime binding could not be stored: {0}")]
    BindingNotStored(#[source] StoreError),
}

/// Why a started engine could not be registered: the game is paused (not failed), since
/// its container is alive and an admin may resume it.
#[derive(Debug, thiserror::Error)]
pub(super) enum RegistrationFailure {
    /// `/admin/init` failed other than by a refusal (a 5xx, a timeout, a broken answer).
    #[error(transparent)]
    Init(EngineError),
    /// Turn 0's reports could not be archived.
    #[error("turn 0 could not be archived: {0}")]
    TurnZeroNotArchived(#[source] RuntimeError),
}

/// What keeps the record from starting: a store failure (retried) or a start failure.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    /// The store failed; the job is put back or fails as a store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The record cannot start: the game's start fails.
    #[error(transparent)]
    Refused(StartFailure),
}

/// Runs one start job to its outcome.
pub(super) async fn run_start(jobs: &JobRunner, job: &RuntimeJob) -> JobOutcome {
    match try_start(jobs, job).await {
        Ok(outcome) => outcome,
        Err(error) if error.is_retryable() => {
            tracing::warn!(%error, game_id = %job.game_id, "start job put back after a store failure");
            JobOutcome::Requeue(jobs.now() + jobs.settings.retry_delay)
        }
        Err(error) => JobOutcome::Failed(format!("store failure: {error}")),
    }
}

async fn try_start(jobs: &JobRunner, job: &RuntimeJob) -> Result<JobOutcome, StoreError> {
    // Jobs decide on the status of record, past any cache (see `try_stop`).
    let game = match jobs.statuses.games.get_game_fresh(job.game_id).await {
        Ok(game) => game,
        Err(StoreError::NotFound { .. }) => return Ok(JobOutcome::Failed("no such game".into())),
        Err(error) => return Err(error),
    };
    match game.status {
        GameStatus::Starting => {}
        // The lobby queues the job before its compare-and-set to `starting`: give that
        // change a moment to land, but not forever (a crash may have lost it).
        GameStatus::EnrollmentClosed
            if jobs.now() < job.created_at + jobs.settings.start_wait_window =>
        {
            return Ok(JobOutcome::Requeue(
                jobs.now() + jobs.settings.start_requeue_delay,
            ));
        }
        status => {
            tracing::info!(game_id = %game.id, %status, "start job for a game not starting: nothing to do");
            return Ok(JobOutcome::Succeeded);
        }
    }
    let record = match starting_record(jobs, &game).await {
        Ok(record) => record,
        Err(RecordError::Store(error)) => return Err(error),
        Err(RecordError::Refused(failure)) => {
            return start_failed(jobs, job, &game, failure, None).await;
        }
    };
    match launch(jobs, &game, &record).await {
        Ok(binding) => handle_success(jobs, job, binding).await,
        Err((error, container)) => start_failed(jobs, job, &game, error.into(), container).await,
    }
}

/// The game's record, created if absent, in `starting` (or already `running`: a replay
/// after a crash late in a previous attempt).
async fn starting_record(jobs: &JobRunner, game: &Game) -> Result<RuntimeRecord, RecordError> {
    let records = &jobs.statuses.records;
    let record = match records.get_record(game.id).await {
        Ok(record) => record,
        Err(StoreError::NotFound { .. }) => {
            let fresh = RuntimeRecord::new(game.id, game.settings.engine.clone(), jobs.now());
            match records.insert_record(&fresh).await {
                Ok(()) => fresh,
                Err(StoreError::Duplicate { .. }) => records.get_record(game.id).await?,
                Err(error) => return Err(error.into()),
            }
        }
        Err(error) => return Err(error.into()),
    };
    if matches!(
        record.status,
        RuntimeStatus::Starting | RuntimeStatus::Running
    ) {
        return Ok(record);
    }
    match jobs
        .statuses
        .advance_record(&record, RuntimeStatus::Starting)
        .await?
    {
        Some(record) => Ok(record),
        None => Err(RecordError::Refused(StartFailure::RecordNotStartable(
            record.status,
        ))),
    }
}

/// Image, container, start, `/healthz` (or the engine's exit). On failure, says which
/// container (if any) it left behind. The restart job's re-creation uses it too.
pub(super) async fn launch(
    jobs: &JobRunner,
    game: &Game,
    record: &RuntimeRecord,
) -> Result<RuntimeBinding, (LaunchError, Option<String>)> {
    let containers = &jobs.containers;
    let target = jobs
        .settings
        .engines
        .resolve(&game.settings.engine)
        .map_err(|e| (e.into(), None))?;
    containers
        .ensure_image(target)
        .await
        .map_err(|e| (e.into(), None))?;
    let binding = container_for(jobs, game, record, target)
        .await
        .map_err(|e| (e.into(), None))?;
    let id = Some(binding.container_id.clone());
    // Starting a running container is a no-op for every runtime (Docker answers 304).
    containers
        .start(&binding.container_id)
        .await
        .map_err(|e| (e.into(), id.clone()))?;
    let target = jobs.engines.engine_target(game.id, &binding);
    wait_until_ready(&jobs.ready, &binding, &target)
        .await
        .map_err(|e| (e.into(), id.clone()))?;
    check_credential(jobs, game, &target)
        .await
        .map_err(|e| (e, id))?;
    Ok(binding)
}

/// Checks that the engine refuses a call without its credential (401, or 403): the one
/// call the platform ever makes without it. Skipped for the engines the operator allows
/// without a token.
async fn check_credential(
    jobs: &JobRunner,
    game: &Game,
    target: &EngineTarget,
) -> Result<(), LaunchError> {
    let engine = &game.settings.engine;
    if jobs.settings.engines_without_token.contains(engine) {
        tracing::info!(game_id = %game.id, engine = engine.as_str(), "engine allowed without a credential check");
        return Ok(());
    }
    let anonymous = EngineTarget::anonymous(target.endpoint.clone());
    let answer = match jobs
        .engines
        .engine_call(jobs.engines.client.state(&anonymous))
        .await
    {
        Err(EngineError::Status {
            status: 401 | 403, ..
        }) => return Ok(()),
        Ok(_) => "answered with its state".to_owned(),
        Err(EngineError::Status { status, .. }) => format!("answered {status}"),
        Err(error) => format!("failed ({error})"),
    };
    Err(LaunchError::Unguarded {
        engine: engine.as_str().to_owned(),
        answer,
    })
}

/// Reuses the container the record is bound to, or creates one after removing any
/// unbound leftover of the same game.
async fn container_for(
    jobs: &JobRunner,
    game: &Game,
    record: &RuntimeRecord,
    target: &str,
) -> Result<RuntimeBinding, ContainerError> {
    let containers = &jobs.containers;
    let game_id = game.id.to_string();
    let instance = jobs.settings.instance.as_str();
    for existing in containers.list_by_label(GAME_LABEL, &game_id).await? {
        // Another installation's container of a game with the same id (a database
        // copied without `galaxy-cli restore`) is never taken or removed.
        if existing.labels.get(INSTANCE_LABEL).map(String::as_str) != Some(instance) {
            continue;
        }
        if let Some(bound) = record
            .binding
            .as_ref()
            .filter(|b| b.container_id == existing.container_id)
        {
            return Ok(bound.clone());
        }
        tracing::info!(game_id = %game.id, container = existing.container_id, "removing an unbound leftover container");
        let grace = jobs.settings.stop_grace;
        ignore_missing(containers.stop(&existing.container_id, grace).await)?;
        ignore_missing(containers.remove(&existing.container_id).await)?;
    }
    let mut env = jobs.settings.engine_env.clone();
    env.insert("GALAXY_GAME_ID".to_owned(), game_id.clone());
    let token = jobs.engines.token_for(game.id);
    let spec = ContainerSpec {
        name: container_name(game.id),
        game_id: game.id,
        engine: target.to_owned(),
        labels: BTreeMap::from([
            (BACKEND_LABEL.to_owned(), "1".to_owned()),
            (GAME_LABEL.to_owned(), game_id),
            (INSTANCE_LABEL.to_owned(), jobs.settings.instance.clone()),
        ]),
        env,
        token,
        limits: jobs.settings.limits,
    };
    let created = containers.create(&spec).await?;
    Ok(RuntimeBinding {
        container_id: created.container_id,
        engine_endpoint: created.engine_endpoint,
    })
}

/// `NotFound` means the container is already gone, which is what the caller wanted.
pub(super) fn ignore_missing(result: Result<(), ContainerError>) -> Result<(), ContainerError> {
    match result {
        Err(ContainerError::NotFound(_)) => Ok(()),
        other => other,
    }
}

/// The success branch of seed 001: re-read the game (a duplicate result finds it no
/// longer `starting` and does nothing), store the binding (or take the orphan path),
/// initialise the engine (or pause the game), then `starting -> running`.
///
/// The record is marked running and scheduled before the game's compare-and-set: a crash
/// between the two leaves a `starting` game whose replayed job finishes the change,
/// while the other order could leave a `running` game that nobody ever schedules (the
/// scheduler postpones turns of a game still `starting`).
async fn handle_success(
    jobs: &JobRunner,
    job: &RuntimeJob,
    binding: RuntimeBinding,
) -> Result<JobOutcome, StoreError> {
    let game = jobs.statuses.games.get_game_fresh(job.game_id).await?;
    if game.status != GameStatus::Starting {
        tracing::info!(game_id = %game.id, status = %game.status, "duplicate start result ignored");
        return Ok(JobOutcome::Succeeded);
    }
    let records = &jobs.statuses.records;
    let bound = match records
        .set_binding(game.id, Some(binding.clone()), jobs.now())
        .await
    {
        Ok(record) => record,
        Err(error) => return orphan(jobs, job, &game, &binding, error).await,
    };
    let target = jobs.engines.engine_target(game.id, &binding);
    let state = match jobs.init.init_engine(&game, &target).await? {
        Ok(state) => state,
        // A 4xx is the engine refusing this game (bad settings, too many races): starting
        // it again cannot help, so the start fails with the engine's whole reason.
        Err(EngineError::Status { status, body }) if (400..500).contains(&status) => {
            let refused = StartFailure::InitRefused {
                status,
                reason: super::error::engine_message(&body),
            };
            let container = Some(binding.container_id.clone());
            return start_failed(jobs, job, &game, refused, container).await;
        }
        Err(error) => {
            let cause = RegistrationFailure::Init(error);
            return paused_after_start(jobs, job, &game, &bound, cause).await;
        }
    };
    // Turn 0 is archived before the game runs: a crash here replays the job, whose init is
    // idempotent, and archives then.
    let seats = archive::seats(&jobs.turns, game.id).await?;
    let answered = (&state, jobs.now());
    match archive::archive_turns(&jobs.turns, game.id, &target, &seats, 0, answered).await {
        Ok(_) => {}
        Err(RuntimeError::Store(error)) => return Err(error),
        Err(fault) => {
            let cause = RegistrationFailure::TurnZeroNotArchived(fault);
            return paused_after_start(jobs, job, &game, &bound, cause).await;
        }
    }
    jobs.statuses
        .advance_record(&bound, RuntimeStatus::Running)
        .await?;
    let next = jobs.statuses.next_turn_at(&game);
    records
        .set_schedule(game.id, next, false, jobs.now())
        .await?;
    jobs.statuses
        .change_game(
            game.id,
            GameStatus::Starting,
            GameStatus::Running,
            GameTrigger::RuntimeEvent,
            None,
            None,
        )
        .await?;
    // `game_started` is owed by the archived turn 0: raised here at once, or by the
    // turn scheduler's follow-up pass (see `announce.rs`).
    announce::announce_latest(&jobs.turns, game.id).await;
    Ok(JobOutcome::Succeeded)
}

/// The orphan path: the container runs but its binding could not be stored. Stop it
/// first, so nothing keeps running untracked whatever happens next; then `starting ->
/// start_failed`; then, if that change was this job's, queue a stop job to remove the
/// container. (A crash before the change replays the start job, whose launch removes an
/// unbound leftover; a stop job queued before the change could race a retried start.)
async fn orphan(
    jobs: &JobRunner,
    job: &RuntimeJob,
    game: &Game,
    binding: &RuntimeBinding,
    cause: StoreError,
) -> Result<JobOutcome, StoreError> {
    tracing::warn!(error = %cause, game_id = %game.id, "runtime binding not stored: orphan container path");
    let containers = &jobs.containers;
    let stopped = containers
        .stop(&binding.container_id, jobs.settings.stop_grace)
        .await;
    if let Err(error) = ignore_missing(stopped) {
        tracing::warn!(%error, game_id = %game.id, "orphan container not stopped");
    }
    let failure = StartFailure::BindingNotStored(cause);
    let outcome = start_failed(jobs, job, game, failure, None).await?;
    if matches!(outcome, JobOutcome::Failed(_)) {
        let key = format!("stop:{}:orphan:{}", game.id, job.id);
        if let Err(error) = jobs.queue.enqueue(game.id, JobKind::Stop, key).await {
            tracing::warn!(%error, game_id = %game.id, "stop job for the orphan container not queued; the reconciler removes it once the game ends");
        }
    }
    Ok(outcome)
}

/// The container is alive but the engine refused registration: `starting -> paused` and
/// the admins are told. The record is running (bound, alive) but unscheduled.
async fn paused_after_start(
    jobs: &JobRunner,
    job: &RuntimeJob,
    game: &Game,
    record: &RuntimeRecord,
    cause: RegistrationFailure,
) -> Result<JobOutcome, StoreError> {
    tracing::warn!(%cause, game_id = %game.id, "engine registration failed: pausing after start");
    let reason = format!("engine registration failed: {cause}");
    let paused = jobs
        .statuses
        .change_game(
            game.id,
            GameStatus::Starting,
            GameStatus::Paused,
            GameTrigger::RuntimeEvent,
            None,
            Some(reason.clone()),
        )
        .await?;
    let Some(paused) = paused else {
        return Ok(JobOutcome::Succeeded);
    };
    jobs.statuses
        .advance_record(record, RuntimeStatus::Running)
        .await?;
    let payload = json!({
        "game_id": paused.id,
        "game_name": paused.settings.name.as_str(),
        "reason": reason,
    });
    let key = format!("game:{}:paused_after_start:{}", paused.id, job.id);
    let kind = NotificationKind::GamePausedAfterStart;
    jobs.notices
        .notify_admins(kind, key, &paused, false, payload)
        .await;
    Ok(JobOutcome::Failed(reason))
}

/// `starting -> start_failed` with the reason; the record fails and the admins and the
/// host are told. A container left running by a late failure (`/healthz` deadline) is
/// stopped so it holds no resources; a retry replaces it (it was never bound).
async fn start_failed(
    jobs: &JobRunner,
    job: &RuntimeJob,
    game: &Game,
    failure: StartFailure,
    container: Option<String>,
) -> Result<JobOutcome, StoreError> {
    tracing::warn!(error = %failure, game_id = %game.id, "game start failed");
    // The reason users see (history, notification, job failure) is the failure's message.
    let reason = failure.to_string();
    let failed = jobs
        .statuses
        .change_game(
            game.id,
            GameStatus::Starting,
            GameStatus::StartFailed,
            GameTrigger::RuntimeEvent,
            None,
            Some(reason.clone()),
        )
        .await?;
    let Some(failed) = failed else {
        return Ok(JobOutcome::Succeeded);
    };
    // Only after winning the change: a duplicate job must not stop the winner's engine.
    if let Some(container) = container {
        let grace = jobs.settings.stop_grace;
        let stopped = jobs.containers.stop(&container, grace).await;
        if let Err(error) = ignore_missing(stopped) {
            tracing::warn!(%error, game_id = %game.id, "container of a failed start not stopped");
        }
    }
    match jobs.statuses.records.get_record(game.id).await {
        Ok(record) => {
            jobs.statuses
                .advance_record(&record, RuntimeStatus::Failed)
                .await?;
        }
        Err(StoreError::NotFound { .. }) => {}
        Err(error) => tracing::warn!(%error, game_id = %game.id, "record not marked failed"),
    }
    let payload = json!({
        "game_id": failed.id,
        "game_name": failed.settings.name.as_str(),
        "reason": reason,
    });
    let key = format!("game:{}:start_failed:{}", failed.id, job.id);
    let kind = NotificationKind::GameStartFailed;
    jobs.notices
        .notify_admins(kind, key, &failed, true, payload)
        .await;
    Ok(JobOutcome::Failed(reason))
}
