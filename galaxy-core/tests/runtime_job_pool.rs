//! The runtime job pool: jobs never wait on each other (a stop queued while a start is
//! stuck on `/healthz` is claimed and finished by the next pass), a start whose engine
//! exited for good fails at once with the exit code and the engine's last output, and a
//! running job keeps its lease past the first expiry.
//!
//! Every wait here is bounded far below the 60 s `/healthz` deadline the tests set, so
//! "before the deadline" never depends on timing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use std::time::Duration;

use chrono::TimeDelta;
use galaxy_core::domain::JobId;
use galaxy_core::domain::game::GameStatus;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::runtime::{JobKind, JobStatus, RuntimeJob, RuntimeStatus};
use galaxy_core::ports::RuntimeJobStore;
use galaxy_core::service::runtime::RuntimeConfig;
use galaxy_core::worker::Worker;
use world::*;

/// Far longer than any test may take: a start still waiting when a test asserts has not
/// reached it.
const HEALTHZ_DEADLINE: Duration = Duration::from_secs(60);
/// How long a test waits for something that takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);

fn slow_config() -> RuntimeConfig {
    RuntimeConfig {
        healthz_deadline: HEALTHZ_DEADLINE,
        healthz_poll_interval: Duration::from_millis(5),
        ..test_config()
    }
}

/// Polls the job until `done` holds, at most [`PATIENCE`].
async fn job_until(w: &World, id: JobId, done: impl Fn(&RuntimeJob) -> bool) -> RuntimeJob {
    let wait = async {
        loop {
            let job = w.runtime.get_job(id).await.unwrap();
            if done(&job) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the job got there in time")
}

async fn job_of(w: &World, game: galaxy_core::domain::GameId, kind: JobKind) -> RuntimeJob {
    let jobs = w.job_list(game).await;
    jobs.into_iter().find(|j| j.kind == kind).unwrap()
}

#[tokio::test]
async fn a_stop_queued_behind_a_stuck_start_is_claimed_and_finished_by_the_next_pass() {
    let w = World::with(slow_config()).await;
    let (ending, _) = w.running_game(2).await;
    let (stuck, _) = w.starting_game(2).await;
    w.engine.healthz_down(&w.endpoint(stuck.id), true);

    assert_eq!(w.jobs.tick().await.unwrap().handled, 1, "the start");
    let start = job_of(&w, stuck.id, JobKind::Start).await;
    assert_eq!(start.status, JobStatus::Running);

    w.service.stop(w.admin, ending.id).await.unwrap();
    assert_eq!(w.jobs.tick().await.unwrap().handled, 1, "the stop, at once");
    let stop = job_of(&w, ending.id, JobKind::Stop).await;
    let stop = job_until(&w, stop.id, |j| j.status == JobStatus::Succeeded).await;
    assert_eq!(stop.attempts, 1);
    assert_eq!(w.record(ending.id).await.status, RuntimeStatus::Removed);

    // The start is still waiting for its engine, untouched by the stop.
    let start = w.runtime.get_job(start.id).await.unwrap();
    assert_eq!((start.status, start.attempts), (JobStatus::Running, 1));
    assert_eq!(w.game(stuck.id).await.status, GameStatus::Starting);

    // Once the engine answers, the start finishes as usual.
    w.engine.healthz_down(&w.endpoint(stuck.id), false);
    tokio::time::timeout(PATIENCE, w.jobs.drain())
        .await
        .expect("the start finished");
    assert_eq!(w.game(stuck.id).await.status, GameStatus::Running);
}

#[tokio::test]
async fn a_start_whose_engine_exited_for_good_fails_at_once_with_its_code_and_output() {
    let w = World::with(slow_config()).await;
    let (game, _) = w.starting_game(2).await;
    w.engine.healthz_down(&w.endpoint(game.id), true);
    let output: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    let mut lines: Vec<&str> = output.iter().map(String::as_str).collect();
    lines.push("\u{1b}[31mERROR\u{1b}[0m boom: cannot open the data directory");
    w.containers.exit_on_start(Some((3, &lines)));

    tokio::time::timeout(PATIENCE, w.jobs.run_until_idle(5))
        .await
        .expect("failed long before the /healthz deadline")
        .unwrap();

    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    let reason = w.reason(game.id).await.unwrap();
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert!(
        reason.ends_with("ERROR boom: cannot open the data directory"),
        "{reason}"
    );
    assert!(reason.contains("line 12\n"), "the last 20 lines: {reason}");
    assert!(
        !reason.contains("line 11\n"),
        "only the last 20 lines: {reason}"
    );
    assert!(w.journal.count("healthz ") < 5, "{:?}", w.journal.entries());
    let start = job_of(&w, game.id, JobKind::Start).await;
    assert_eq!(start.status, JobStatus::Failed);
    assert_eq!(start.error.as_deref(), Some(reason.as_str()));
    let told = w.notes.of(NotificationKind::GameStartFailed);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].payload["reason"], reason.as_str());
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Failed);
}

#[tokio::test]
async fn a_restarting_engine_is_waited_for() {
    let w = World::with(slow_config()).await;
    let (game, _) = w.starting_game(2).await;
    // The engine crashed once; its restart policy brings it back, and it then answers.
    w.engine.not_ready_for(3);
    let endpoint = w.endpoint(game.id);
    let containers = w.containers.clone();
    w.engine.on_next_healthz(Box::pin(async move {
        let id = containers.all()[0].container_id.clone();
        containers.edit(&id, |c| {
            c.state = "restarting".into();
            c.exit_code = Some(1);
        });
    }));
    tokio::time::timeout(PATIENCE, w.jobs.run_until_idle(5))
        .await
        .expect("the start finished")
        .unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert!(w.journal.count(&format!("healthz {endpoint}")) >= 4);
    assert_eq!(w.journal.count("logs "), 0, "never taken for an exit");
}

#[tokio::test]
async fn a_running_job_renews_its_lease_so_no_pass_claims_it_again() {
    let config = RuntimeConfig {
        job_lease: TimeDelta::milliseconds(300),
        ..slow_config()
    };
    let w = World::with(config).await;
    let (game, _) = w.starting_game(2).await;
    w.engine.healthz_down(&w.endpoint(game.id), true);
    assert_eq!(w.jobs.tick().await.unwrap().handled, 1);
    let start = job_of(&w, game.id, JobKind::Start).await;
    let first = start.lease.unwrap().until;

    // Time passes; the job, still waiting for its engine, renews its lease from there.
    w.clock.advance(TimeDelta::milliseconds(200));
    let renewed = job_until(&w, start.id, |j| j.lease.is_some_and(|l| l.until > first)).await;
    w.clock.set(first + TimeDelta::milliseconds(50));
    assert!(renewed.lease.unwrap().is_held_at(w.now()));
    assert_eq!(w.jobs.tick().await.unwrap().handled, 0, "still held");
    let start = w.runtime.get_job(start.id).await.unwrap();
    assert_eq!((start.status, start.attempts), (JobStatus::Running, 1));

    w.engine.healthz_down(&w.endpoint(game.id), false);
    tokio::time::timeout(PATIENCE, w.jobs.drain())
        .await
        .expect("the start finished");
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    let start = w.runtime.get_job(start.id).await.unwrap();
    assert_eq!((start.status, start.lease), (JobStatus::Succeeded, None));
}

#[tokio::test]
async fn shutdown_lets_the_job_in_flight_finish_and_claims_nothing_more() {
    let cancel = tokio_util::sync::CancellationToken::new();
    let w = World::with(slow_config()).await;
    let jobs = galaxy_core::service::runtime::StartWorker::new(w.ports.clone(), slow_config())
        .with_cancellation(cancel.clone());
    let (game, _) = w.starting_game(2).await;
    w.engine.not_ready_for(20);
    assert_eq!(jobs.tick().await.unwrap().handled, 1);
    let begun = async {
        while w.journal.count("healthz ") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(PATIENCE, begun)
        .await
        .expect("the start began");
    let (later, _) = w.starting_game(2).await;
    cancel.cancel();
    assert_eq!(
        jobs.tick().await.unwrap().handled,
        0,
        "no claim after shutdown"
    );
    tokio::time::timeout(PATIENCE, jobs.drain())
        .await
        .expect("drained");
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    let queued = job_of(&w, later.id, JobKind::Start).await;
    assert_eq!(queued.status, JobStatus::Queued);
}
