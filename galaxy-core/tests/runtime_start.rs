//! Start jobs: every branch of the start-result handling of seed 001 (running, orphan
//! path, paused after start, start failed, duplicate result), the lobby's early job, a
//! crashed start resumed after its lease, and the stop job.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use galaxy_core::domain::game::EngineName;
use galaxy_core::domain::game::{GameStatus, GameTrigger};
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::runtime::{
    JobKind, JobStatus, RuntimeBinding, RuntimeRecord, RuntimeStatus,
};
use galaxy_core::domain::{GameId, LeaseToken};
use galaxy_core::ports::{
    Clock, ContainerRuntime, ContainerSpec, EngineLimits, GameStatusChange, GameStore,
    RuntimeJobStore, RuntimeRecordStore, SecretGenerator,
};
use galaxy_core::service::runtime::{BACKEND_LABEL, GAME_LABEL, INSTANCE_LABEL, container_name};
use galaxy_core::worker::Worker;
use world::*;

#[tokio::test]
async fn a_start_binds_waits_for_healthz_then_initialises_and_runs() {
    let w = World::new().await;
    let (game, seats) = w.starting_game(2).await;
    w.engine.not_ready_for(3);
    assert_eq!(w.job_pass().await, 1);

    let game = w.game(game.id).await;
    assert_eq!(game.status, GameStatus::Running);
    let history = w.store.game_transitions(game.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.from, last.trigger),
        (GameStatus::Starting, GameTrigger::RuntimeEvent)
    );

    let container = w.container(game.id);
    assert_eq!(container.labels.get(BACKEND_LABEL).unwrap(), "1");
    assert_eq!(
        container.labels.get(GAME_LABEL).unwrap(),
        &game.id.to_string()
    );
    assert_eq!(container.state, "running");
    let record = w.record(game.id).await;
    assert_eq!(record.status, RuntimeStatus::Running);
    let endpoint = w.endpoint(game.id);
    let binding = RuntimeBinding {
        container_id: container.container_id.clone(),
        engine_endpoint: endpoint.clone(),
    };
    assert_eq!(record.binding, Some(binding));
    assert_eq!(record.next_turn_at, Some(evening(1)));

    // The engine was polled until it answered, and only then initialised.
    let name = container_name(game.id);
    let create = w.journal.position(&format!("create {name}")).unwrap();
    let start = w.journal.position("start ").unwrap();
    let init = w.journal.position("init ").unwrap();
    assert!(create < start && start < init);
    assert_eq!(w.journal.count("healthz "), 4, "3 failed polls, then ready");
    let healthz_after_start = w.journal.entries()[start..init]
        .iter()
        .filter(|e| e.starts_with("healthz"))
        .count();
    assert_eq!(healthz_after_start, 4);
    let inits = w.engine.inits();
    assert_eq!(inits.len(), 1);
    let races: Vec<(String, String)> = inits[0]
        .1
        .races
        .iter()
        .map(|r| (r.race_name.clone(), r.player_id.clone()))
        .collect();
    let expected: Vec<(String, String)> = seats
        .0
        .iter()
        .map(|(actor, race)| (race.clone(), actor.user_id.to_string()))
        .collect();
    assert_eq!(races, expected);
    assert_eq!(inits[0].1.game_id, game.id.to_string());

    let jobs = w.job_list(game.id).await;
    assert_eq!(jobs[0].status, JobStatus::Succeeded);
    assert_eq!(jobs[0].idempotency_key, format!("start:{}:0", game.id));
    let started = w.notes.of(NotificationKind::GameStarted);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].recipients.len(), 3, "both players and the host");
}

#[tokio::test]
async fn every_engine_call_carries_the_games_own_derived_credential() {
    let config = test_config();
    let key = config.engine_tokens.clone();
    let w = World::with(config).await;
    let (first, _) = w.starting_game(2).await;
    let (second, _) = w.starting_game(2).await;
    assert_eq!(w.job_pass().await, 2);

    // The fake engine refuses (401) any call whose token is not the one its container
    // was created with: the games run, so healthz, init and the turn-0 reports carried it.
    for game in [first.id, second.id] {
        assert_eq!(w.game(game).await.status, GameStatus::Running);
        let spec = w.containers.spec(&w.container(game).container_id).unwrap();
        assert_eq!(
            spec.token,
            key.token_for(game),
            "handed to the engine at launch"
        );
        assert!(
            !spec.env.contains_key("GALAXY_ENGINE_TOKEN"),
            "the token travels apart from the configured environment"
        );
    }
    assert_ne!(key.token_for(first.id), key.token_for(second.id));
    // The one call made without it: the start's check that the engine refuses it.
    assert_eq!(w.journal.count("state "), 2);
    assert_eq!(
        w.journal.count("unauthorised "),
        2,
        "{:?}",
        w.journal.entries()
    );
}

#[tokio::test]
async fn an_engine_that_serves_calls_without_its_credential_fails_unless_allowed() {
    let w = World::new().await;
    w.engine.unguarded(true);
    let (game, _) = w.starting_game(2).await;
    w.job_pass().await;
    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    let reason = w.reason(game.id).await.unwrap();
    assert!(
        reason.contains("does not check its credential")
            && reason.contains("answered with its state")
            && reason.contains("GALAXY_ENGINES_WITHOUT_TOKEN"),
        "{reason}"
    );
    let container = w.container(game.id);
    assert_eq!(container.state, "exited", "the unguarded engine is stopped");
    assert!(w.engine.inits().is_empty(), "never initialised");

    // The operator accepts it for this engine: it starts, and is not probed.
    let mut config = test_config();
    config.engines_without_token = [EngineName::reference()].into();
    let w = World::with(config).await;
    w.engine.unguarded(true);
    let (game, _) = w.starting_game(2).await;
    w.job_pass().await;
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert_eq!(w.journal.count("state "), 0);
}

#[tokio::test]
async fn orphan_path_stops_the_container_before_start_failed() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    w.records.fail_binding.store(true, Ordering::SeqCst);
    w.job_pass().await;

    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    let container = w.container(game.id).container_id;
    let stop = w.journal.position(&format!("stop {container}")).unwrap();
    let failed = w.journal.position("game start_failed").unwrap();
    assert!(stop < failed, "{:?}", w.journal.entries());
    assert!(
        w.engine.inits().is_empty(),
        "no init without a stored binding"
    );
    assert!(w.reason(game.id).await.unwrap().contains("binding"));
    let record = w.record(game.id).await;
    assert_eq!(
        (record.status, record.binding),
        (RuntimeStatus::Failed, None)
    );
    let failed = w.notes.of(NotificationKind::GameStartFailed);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].recipients.contains(&w.admin.user_id));
    assert!(failed[0].recipients.contains(&game.host));

    // The queued stop job removes the orphan; the record stays retryable.
    let stop_job = w.job_list(game.id).await;
    assert!(stop_job.iter().any(|j| j.kind == JobKind::Stop));
    w.records.fail_binding.store(false, Ordering::SeqCst);
    w.jobs.run_until_idle(5).await.unwrap();
    assert!(w.containers.of_game(game.id).is_none());
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Failed);
}

#[tokio::test]
async fn engine_registration_failure_pauses_with_an_admin_notification() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    w.engine.init_fails(true);
    w.job_pass().await;

    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    assert!(w.reason(game.id).await.unwrap().contains("registration"));
    let record = w.record(game.id).await;
    assert_eq!(
        record.status,
        RuntimeStatus::Running,
        "the container is alive"
    );
    assert!(record.binding.is_some());
    assert_eq!(record.next_turn_at, None, "a paused game is not scheduled");
    assert_eq!(w.container(game.id).state, "running");
    let paused = w.notes.of(NotificationKind::GamePausedAfterStart);
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].recipients, vec![w.admin.user_id]);
    assert!(w.notes.of(NotificationKind::GameStarted).is_empty());
    assert_eq!(w.job_list(game.id).await[0].status, JobStatus::Failed);
}

#[tokio::test]
async fn a_docker_failure_is_start_failed_with_the_reason() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    w.containers.fail("create", "no space left on device");
    w.job_pass().await;

    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    assert!(w.reason(game.id).await.unwrap().contains("no space left"));
    let job = &w.job_list(game.id).await[0];
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.as_deref().unwrap().contains("no space left"));
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Failed);
    assert_eq!(w.notes.of(NotificationKind::GameStartFailed).len(), 1);
    assert!(w.engine.inits().is_empty());
}

#[tokio::test]
async fn an_engine_that_never_answers_healthz_fails_the_start_and_is_stopped() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    w.engine.healthz_down(&w.endpoint(game.id), true);
    w.job_pass().await;

    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    assert!(w.reason(game.id).await.unwrap().contains("/healthz"));
    assert!(w.engine.inits().is_empty(), "never initialised");
    assert_eq!(w.container(game.id).state, "exited");
    assert!(
        w.journal.count("healthz ") >= 2,
        "polled until the deadline"
    );
}

#[tokio::test]
async fn a_duplicate_result_changes_nothing() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let before = w.journal.entries().len();
    let transitions = w.store.game_transitions(game.id).await.unwrap().len();
    // A second start job of the same game (a replayed request) finds it running.
    let key = format!("start:{}:9", game.id);
    let job = galaxy_core::domain::runtime::RuntimeJob::new(
        galaxy_core::domain::JobId::from_uuid(w.ids.uuid()),
        game.id,
        JobKind::Start,
        key,
        w.clock.now(),
    );
    w.runtime.enqueue_job(&job).await.unwrap();
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(
        w.journal.entries().len(),
        before,
        "no container or engine call"
    );
    assert_eq!(
        w.store.game_transitions(game.id).await.unwrap().len(),
        transitions
    );
    assert_eq!(
        w.runtime.get_job(job.id).await.unwrap().status,
        JobStatus::Succeeded
    );
}

#[tokio::test]
async fn a_result_arriving_after_the_game_left_starting_is_ignored() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    // While the engine comes up, another worker's duplicate job already failed the start.
    let games = w.ports.games.clone();
    let at = w.clock.now();
    w.engine.on_next_healthz(Box::pin(async move {
        let change = GameStatusChange {
            to: GameStatus::StartFailed,
            trigger: GameTrigger::RuntimeEvent,
            actor: None,
            reason: Some("the other copy failed".into()),
            at,
            expected_approved: None,
        };
        games
            .update_game_status(game.id, GameStatus::Starting, &change)
            .await
            .unwrap();
    }));
    w.job_pass().await;
    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    assert_eq!(
        w.record(game.id).await.binding,
        None,
        "binding not overwritten"
    );
    assert!(w.engine.inits().is_empty(), "no init");
    assert!(w.notes.of(NotificationKind::GameStartFailed).is_empty());
}

#[tokio::test]
async fn a_job_queued_before_the_lobby_change_waits_for_it() {
    let w = World::new().await;
    let (game, _) = w.closed_game(2).await;
    let job = enqueue_start(&w, game.id, "start:early").await;
    w.job_pass().await;
    let seen = w.runtime.get_job(job).await.unwrap();
    assert_eq!(seen.status, JobStatus::Queued);
    assert!(seen.run_after > w.clock.now());
    assert_eq!(w.journal.count("create "), 0);
    // The change never lands: after the wait window the job ends as a no-op.
    w.clock.advance(TimeDelta::minutes(6));
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(
        w.runtime.get_job(job).await.unwrap().status,
        JobStatus::Succeeded
    );
    assert_eq!(w.game(game.id).await.status, GameStatus::EnrollmentClosed);
}

#[tokio::test]
async fn a_start_that_crashed_after_create_resumes_after_its_lease() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    // A worker claimed the job, created the container, and died.
    let claim = ClaimRequest {
        token: LeaseToken::from_uuid(w.ids.uuid()),
        now: w.clock.now(),
        lease: TimeDelta::minutes(10),
        limit: 1,
    };
    assert_eq!(w.runtime.claim_jobs(&claim).await.unwrap().len(), 1);
    let spec = leftover_spec(&w, game.id);
    let leftover = w.containers.create(&spec).await.unwrap().container_id;
    assert_eq!(w.job_pass().await, 0, "leased");

    w.clock.advance(TimeDelta::minutes(11));
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert!(w.journal.position(&format!("remove {leftover}")).is_some());
    assert_eq!(
        w.containers.all().len(),
        1,
        "one container, freshly created"
    );
    assert_eq!(w.job_list(game.id).await[0].attempts, 2);
}

#[tokio::test]
async fn a_container_of_another_installation_is_neither_taken_nor_removed() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    // The same game id under another installation (a database copied without
    // `galaxy-cli restore`) on the same container runtime.
    let mut spec = leftover_spec(&w, game.id);
    spec.labels
        .insert(INSTANCE_LABEL.to_owned(), "production".to_owned());
    let theirs = w.containers.create(&spec).await.unwrap().container_id;
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert!(
        w.journal.position(&format!("remove {theirs}")).is_none(),
        "{:?}",
        w.journal.entries()
    );
    let bound = w.record(game.id).await.binding.unwrap().container_id;
    assert_ne!(bound, theirs, "a container of its own");
    // Stopping the game leaves theirs alone too.
    w.service.stop(w.admin, game.id).await.unwrap();
    w.jobs.run_until_idle(5).await.unwrap();
    assert!(
        w.journal.position(&format!("remove {bound}")).is_some(),
        "its own is removed"
    );
    assert!(w.journal.position(&format!("remove {theirs}")).is_none());
    assert!(w.journal.position(&format!("stop {theirs}")).is_none());
}

#[tokio::test]
async fn a_start_that_crashed_after_binding_reuses_the_bound_container() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    // A worker claimed the job, created, started and bound the container, and died.
    let claim = ClaimRequest {
        token: LeaseToken::from_uuid(w.ids.uuid()),
        now: w.clock.now(),
        lease: TimeDelta::minutes(10),
        limit: 1,
    };
    w.runtime.claim_jobs(&claim).await.unwrap();
    let mut record = RuntimeRecord::new(game.id, EngineName::reference(), w.clock.now());
    record.status = RuntimeStatus::Starting;
    w.runtime.insert_record(&record).await.unwrap();
    let created = w
        .containers
        .create(&leftover_spec(&w, game.id))
        .await
        .unwrap();
    w.containers.start(&created.container_id).await.unwrap();
    let binding = RuntimeBinding {
        container_id: created.container_id.clone(),
        engine_endpoint: created.engine_endpoint,
    };
    let now = w.clock.now();
    w.runtime
        .set_binding(game.id, Some(binding), now)
        .await
        .unwrap();

    w.clock.advance(TimeDelta::minutes(11));
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert_eq!(
        w.journal.count("create "),
        1,
        "the bound container is reused"
    );
    assert_eq!(w.journal.count("remove "), 0);
    assert_eq!(w.container(game.id).container_id, created.container_id);
    assert_eq!(w.engine.inits().len(), 1);
}

#[tokio::test]
async fn a_stale_stop_job_leaves_a_live_game_alone() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let stale = galaxy_core::domain::runtime::RuntimeJob::new(
        galaxy_core::domain::JobId::from_uuid(w.ids.uuid()),
        game.id,
        JobKind::Stop,
        "stop:stale".into(),
        w.clock.now(),
    );
    w.runtime.enqueue_job(&stale).await.unwrap();
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(
        w.runtime.get_job(stale.id).await.unwrap().status,
        JobStatus::Succeeded
    );
    assert_eq!(w.container(game.id).state, "running");
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Running);
    assert_eq!(w.journal.count("stop "), 0);
}

async fn enqueue_start(w: &World, game: GameId, key: &str) -> galaxy_core::domain::JobId {
    let job = galaxy_core::domain::runtime::RuntimeJob::new(
        galaxy_core::domain::JobId::from_uuid(w.ids.uuid()),
        game,
        JobKind::Start,
        key.into(),
        w.clock.now(),
    );
    w.runtime.enqueue_job(&job).await.unwrap().id
}

/// The spec of a container an earlier start of `game` made.
fn leftover_spec(w: &World, game: GameId) -> ContainerSpec {
    ContainerSpec {
        name: container_name(game),
        game_id: game,
        engine: "galaxy-engine:latest".into(),
        labels: [
            (GAME_LABEL.to_owned(), game.to_string()),
            (INSTANCE_LABEL.to_owned(), w.config.instance.clone()),
        ]
        .into(),
        env: Default::default(),
        token: w.config.engine_tokens.token_for(game),
        limits: EngineLimits::default(),
    }
}
