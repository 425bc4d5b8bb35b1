//! The restart job: a running game's container found `exited` (e.g. `docker kill`, which
//! Docker's restart policy ignores) is started again by a durable restart job queued by
//! the inspect pass, once per incident; a restart that keeps failing pauses the game and
//! alerts the admins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::GameId;
use galaxy_core::domain::game::GameStatus;
use galaxy_core::domain::health::HealthEventKind;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::runtime::{JobKind, JobStatus, RuntimeJob};
use galaxy_core::ports::RuntimeRecordStore;
use galaxy_core::service::ServiceError;
use galaxy_core::worker::Worker;
use world::*;

async fn restarts(w: &World, game: GameId) -> Vec<RuntimeJob> {
    let jobs = w.job_list(game).await;
    jobs.into_iter()
        .filter(|j| j.kind == JobKind::Restart)
        .collect()
}

#[tokio::test]
async fn an_exited_container_gets_one_restart_job_that_brings_it_back() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    assert!(w.inspect.pass().await.unwrap().events.is_empty());
    assert!(
        restarts(&w, game.id).await.is_empty(),
        "a running container"
    );

    w.containers.edit(&container, |c| c.state = "exited".into());
    w.runtime
        .set_healthy(game.id, false, w.now())
        .await
        .unwrap();
    let turn = w.record(game.id).await.current_turn;
    w.inspect.pass().await.unwrap();
    w.inspect.pass().await.unwrap();
    let queued = restarts(&w, game.id).await;
    assert_eq!(queued.len(), 1, "one job per incident: {queued:?}");
    assert_eq!(queued[0].idempotency_key, format!("restart:{}:0", game.id));
    assert_eq!(queued[0].status, JobStatus::Queued);

    let inits = w.engine.inits().len();
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(w.container(game.id).state, "running");
    assert_eq!(
        w.container(game.id).container_id,
        container,
        "the same container"
    );
    assert_eq!(
        w.engine.inits().len(),
        inits,
        "the engine is not initialised again"
    );
    let record = w.record(game.id).await;
    assert!(record.healthy);
    assert_eq!(record.current_turn, turn);
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert_eq!(restarts(&w, game.id).await[0].status, JobStatus::Succeeded);

    // Back to running: nothing more is queued; a new incident gets a new job.
    w.inspect.pass().await.unwrap();
    assert_eq!(restarts(&w, game.id).await.len(), 1);
    w.containers.edit(&container, |c| c.state = "dead".into());
    w.inspect.pass().await.unwrap();
    let again = restarts(&w, game.id).await;
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].idempotency_key, format!("restart:{}:1", game.id));
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(w.container(game.id).state, "running");

    // The engine goes on from where it was.
    let endpoint = w.endpoint(game.id);
    assert_eq!(w.engine.turn_of(&endpoint), turn);
}

#[tokio::test]
async fn a_restart_that_keeps_failing_pauses_the_game_and_alerts_the_admins() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    w.containers.edit(&container, |c| c.state = "exited".into());
    w.containers.fail("start", "no such volume");
    w.inspect.pass().await.unwrap();

    let attempts = test_config().restart_attempts;
    for attempt in 1..attempts {
        assert_eq!(w.job_pass().await, 1, "attempt {attempt}");
        let job = &restarts(&w, game.id).await[0];
        assert_eq!(job.status, JobStatus::Queued, "put back after a backoff");
        assert!(job.run_after > w.now());
        assert_eq!(w.game(game.id).await.status, GameStatus::Running);
        // The inspect pass sees the same incident: no second job.
        w.inspect.pass().await.unwrap();
        assert_eq!(restarts(&w, game.id).await.len(), 1);
        w.at(w.now() + TimeDelta::minutes(5));
    }
    assert_eq!(w.job_pass().await, 1);
    let job = &restarts(&w, game.id).await[0];
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts, attempts);

    let paused = w.game(game.id).await;
    assert_eq!(paused.status, GameStatus::Paused);
    assert!(w.reason(game.id).await.unwrap().contains("no such volume"));
    let record = w.record(game.id).await;
    assert!(!record.healthy);
    assert_eq!(record.next_turn_at, None, "a paused game is unscheduled");
    let event = w
        .health(game.id)
        .await
        .into_iter()
        .find(|e| e.detail["reason"] == "restart_failed")
        .expect("a restart_failed event");
    assert_eq!(event.kind, HealthEventKind::InspectUnhealthy);
    assert_eq!(event.detail["paused"], true);
    let alerts: Vec<_> = w
        .notes
        .of(NotificationKind::RuntimeHealthAlert)
        .into_iter()
        .filter(|n| n.payload["detail"]["reason"] == "restart_failed")
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts.last().unwrap().recipients, vec![w.admin.user_id]);

    // A paused game gets no new restart job.
    w.inspect.pass().await.unwrap();
    assert_eq!(restarts(&w, game.id).await.len(), 1);
}

#[tokio::test]
async fn a_restart_job_of_a_game_no_longer_running_does_nothing() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    w.containers.edit(&container, |c| c.state = "exited".into());
    w.inspect.pass().await.unwrap();
    assert_eq!(restarts(&w, game.id).await.len(), 1);
    w.service.stop(w.admin, game.id).await.unwrap();
    w.jobs.run_until_idle(5).await.unwrap();
    let job = &restarts(&w, game.id).await[0];
    assert_eq!(job.status, JobStatus::Succeeded);
    assert!(
        w.containers.of_game(game.id).is_none(),
        "the stop removed it"
    );
    assert_eq!(
        w.journal.count(&format!("start {container}")),
        1,
        "only the first start"
    );
}

#[tokio::test]
async fn an_admin_has_a_vanished_engine_created_again_from_its_kept_data() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    let turn = w.record(game.id).await.current_turn;
    let inits = w.engine.inits().len();
    // Only a paused game whose record is `removed` is created again.
    let early = w.service.recreate_engine(w.admin, game.id).await;
    assert!(early.is_err(), "a running game: {early:?}");
    w.containers.vanish(&container);
    w.reconciler.pass().await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    let player = w.user().await;
    let refused = w.service.recreate_engine(player, game.id).await;
    assert!(refused.is_err(), "admins only: {refused:?}");
    assert!(restarts(&w, game.id).await.is_empty());

    // Asked twice while queued: one job.
    w.service.recreate_engine(w.admin, game.id).await.unwrap();
    w.service.recreate_engine(w.admin, game.id).await.unwrap();
    assert_eq!(restarts(&w, game.id).await.len(), 1);
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(restarts(&w, game.id).await[0].status, JobStatus::Succeeded);
    let record = w.record(game.id).await;
    assert_eq!(
        record.status,
        galaxy_core::domain::runtime::RuntimeStatus::Running
    );
    assert!(record.healthy);
    assert_eq!(record.current_turn, turn);
    let fresh = w.container(game.id);
    assert_ne!(fresh.container_id, container, "a new container");
    assert_eq!(fresh.state, "running");
    assert_eq!(
        w.engine.inits().len(),
        inits,
        "the engine is not initialised again"
    );
    assert_eq!(
        w.game(game.id).await.status,
        GameStatus::Paused,
        "the admin resumes it"
    );
    w.service.resume(w.admin, game.id).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    // The engine is back: nothing left to create.
    w.service.pause(w.admin, game.id).await.unwrap();
    assert!(w.service.recreate_engine(w.admin, game.id).await.is_err());
}

#[tokio::test]
async fn a_re_creation_that_keeps_failing_leaves_the_game_paused_and_alerts_the_admins() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    w.containers.vanish(&container);
    w.reconciler.pass().await.unwrap();
    w.containers.fail("create", "no space left on device");
    w.service.recreate_engine(w.admin, game.id).await.unwrap();
    let attempts = test_config().restart_attempts;
    for attempt in 1..attempts {
        assert_eq!(w.job_pass().await, 1, "attempt {attempt}");
        assert_eq!(restarts(&w, game.id).await[0].status, JobStatus::Queued);
        w.at(w.now() + TimeDelta::minutes(5));
    }
    assert_eq!(w.job_pass().await, 1);
    assert_eq!(restarts(&w, game.id).await[0].status, JobStatus::Failed);
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    let record = w.record(game.id).await;
    assert_eq!(
        record.status,
        galaxy_core::domain::runtime::RuntimeStatus::Failed
    );
    assert!(!record.healthy);
    let event = w
        .health(game.id)
        .await
        .into_iter()
        .find(|e| e.detail["reason"] == "recreate_failed")
        .expect("a recreate_failed event");
    assert!(
        event.detail["error"]
            .as_str()
            .unwrap()
            .contains("no space left"),
        "{event:?}"
    );
    assert!(
        w.notes
            .of(NotificationKind::RuntimeHealthAlert)
            .iter()
            .any(|n| n.payload["detail"]["reason"] == "recreate_failed")
    );
}

#[tokio::test]
async fn an_engine_created_again_without_its_data_is_not_taken_for_the_game() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.service.force_next_turn(w.admin, game.id).await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    let container = w.container(game.id).container_id;
    w.containers.vanish(&container);
    w.reconciler.pass().await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    // The fake engine created again answers turn 0: its data did not come back.
    w.service.recreate_engine(w.admin, game.id).await.unwrap();
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(restarts(&w, game.id).await[0].status, JobStatus::Failed);
    let record = w.record(game.id).await;
    assert_eq!(
        record.status,
        galaxy_core::domain::runtime::RuntimeStatus::Failed
    );
    assert!(!record.healthy);
    let event = w
        .health(game.id)
        .await
        .into_iter()
        .find(|e| e.detail["reason"] == "recreate_failed")
        .expect("a recreate_failed event");
    assert!(
        event.detail["error"]
            .as_str()
            .unwrap()
            .contains("at turn 0, the game at turn 1"),
        "{event:?}"
    );
    assert!(w.service.resume(w.admin, game.id).await.is_err());
    // Once the data is back an admin may ask again: a failed re-creation is retried.
    w.service.recreate_engine(w.admin, game.id).await.unwrap();
    assert_eq!(restarts(&w, game.id).await.len(), 2);
}

#[tokio::test]
async fn a_game_stopped_while_its_engine_is_created_again_keeps_no_container() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    w.containers.vanish(&container);
    w.reconciler.pass().await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    w.service.recreate_engine(w.admin, game.id).await.unwrap();
    // While the job creates the engine, an admin stops the game and another replica's
    // pool runs the stop job at once: no container exists yet, so it removes nothing.
    let (service, admin, id) = (w.service.clone(), w.admin, game.id);
    let other = galaxy_core::service::runtime::StartWorker::new(w.ports.clone(), w.config.clone());
    w.containers.before_next_create(Box::pin(async move {
        service.stop(admin, id).await.unwrap();
        other.run_until_idle(5).await.unwrap();
    }));
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(restarts(&w, game.id).await[0].status, JobStatus::Succeeded);
    assert_eq!(w.game(game.id).await.status, GameStatus::Cancelled);
    assert!(
        w.containers.all().is_empty(),
        "the engine created for a stopped game is removed: {:?}",
        w.containers.all()
    );
    assert_eq!(
        w.record(game.id).await.status,
        galaxy_core::domain::runtime::RuntimeStatus::Removed
    );
}

#[tokio::test]
async fn a_re_creation_run_again_after_its_stop_was_not_queued_stops_the_engine() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    w.containers.vanish(&container);
    w.reconciler.pass().await.unwrap();
    w.service.recreate_engine(w.admin, game.id).await.unwrap();
    // The game is stopped while the engine is created (the stop job runs at once on
    // another replica); then the job's queuing of its own stop fails (the engine is
    // bound by then), so the job runs again later.
    let (service, admin, id) = (w.service.clone(), w.admin, game.id);
    let other = galaxy_core::service::runtime::StartWorker::new(w.ports.clone(), w.config.clone());
    let faults = w.faults.clone();
    w.containers.before_next_create(Box::pin(async move {
        service.stop(admin, id).await.unwrap();
        other.run_until_idle(5).await.unwrap();
        // Bind, record running, healthy, then the stop job: that one fails.
        faults.arm(4);
    }));
    w.jobs.run_until_idle(5).await.unwrap();
    let writes = w.faults.writes();
    w.faults.disarm();
    assert_eq!(
        writes.get(3).map(String::as_str),
        Some("enqueue_job"),
        "{writes:?}"
    );
    assert!(
        !w.containers.all().is_empty(),
        "the engine is up, its stop not queued"
    );
    // The job is put back after the store failure and runs again.
    w.at(w.clock_now() + chrono::TimeDelta::minutes(10));
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Cancelled);
    assert!(
        w.containers.all().is_empty(),
        "the engine created for a stopped game is removed: {:?}",
        w.containers.all()
    );
}

#[tokio::test]
async fn an_engine_that_keeps_stopping_after_its_restarts_pauses_the_game() {
    use galaxy_core::service::runtime::{CRASH_LOOP_RESTARTS, CRASH_LOOP_WINDOW};
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    // Each restart brings the engine back, and it stops again a little later.
    let incident = |w: &World| {
        w.containers.edit(&container, |c| c.state = "exited".into());
    };
    for n in 0..CRASH_LOOP_RESTARTS {
        incident(&w);
        w.inspect.pass().await.unwrap();
        w.jobs.run_until_idle(5).await.unwrap();
        assert_eq!(w.container(game.id).state, "running", "restart {n}");
        w.at(w.now() + TimeDelta::minutes(10));
    }
    assert_eq!(restarts(&w, game.id).await.len(), CRASH_LOOP_RESTARTS);
    // Once more within the hour: no restart, the game pauses for an admin.
    incident(&w);
    let report = w.inspect.pass().await.unwrap();
    assert_eq!(restarts(&w, game.id).await.len(), CRASH_LOOP_RESTARTS);
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    let reason = w.reason(game.id).await.unwrap();
    assert!(
        reason.contains("after 3 restarts within 60 minutes"),
        "{reason}"
    );
    assert!(!w.record(game.id).await.healthy);
    let event = report
        .events
        .iter()
        .find(|e| e.detail["reason"] == "crash_loop")
        .expect("a crash_loop event");
    assert_eq!(event.kind, HealthEventKind::InspectUnhealthy);
    assert_eq!(event.detail["restarts"], 3);
    let alerts = w.notes.of(NotificationKind::RuntimeHealthAlert);
    assert!(
        alerts
            .iter()
            .any(|n| n.payload["detail"]["reason"] == "crash_loop"),
        "{alerts:?}"
    );
    w.inspect.pass().await.unwrap();
    assert_eq!(restarts(&w, game.id).await.len(), CRASH_LOOP_RESTARTS);
    // Resume is refused while the engine is down; an admin has it started again, then
    // resumes.
    let refused = w.service.resume(w.admin, game.id).await.unwrap_err();
    assert_eq!(refused.code(), "runtime_unhealthy", "{refused}");
    w.service.recreate_engine(w.admin, game.id).await.unwrap();
    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(w.container(game.id).state, "running");
    assert_eq!(w.container(game.id).container_id, container, "the same one");
    assert!(w.record(game.id).await.healthy);
    w.service.resume(w.admin, game.id).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);

    // Restarts spread over more than the window are incidents, not a loop.
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    let spread = CRASH_LOOP_WINDOW / i32::try_from(CRASH_LOOP_RESTARTS).unwrap();
    for n in 0..=CRASH_LOOP_RESTARTS {
        w.containers.edit(&container, |c| c.state = "exited".into());
        w.inspect.pass().await.unwrap();
        w.jobs.run_until_idle(5).await.unwrap();
        assert_eq!(w.container(game.id).state, "running", "restart {n}");
        w.at(w.now() + spread + TimeDelta::minutes(1));
    }
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert_eq!(restarts(&w, game.id).await.len(), CRASH_LOOP_RESTARTS + 1);
}

#[tokio::test]
async fn a_stopped_engine_seen_by_two_replicas_is_one_restart_not_two() {
    use galaxy_core::service::runtime::{CRASH_LOOP_RESTARTS, InspectWorker};
    let w = Arc::new(World::new().await);
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    // Each incident is seen by two replicas' passes at once: the other one's pass and
    // its restart job run while this one holds what it read (the container stopped).
    let other = Arc::new(InspectWorker::new(w.ports.clone(), w.config.clone()));
    for n in 0..CRASH_LOOP_RESTARTS {
        w.containers.edit(&container, |c| c.state = "exited".into());
        let (world, other) = (w.clone(), other.clone());
        w.containers.during_next_inspect(Box::pin(async move {
            other.pass().await.unwrap();
            // The restart takes a moment: its job finishes after the first sighting.
            world.at(world.now() + TimeDelta::seconds(2));
            world.jobs.run_until_idle(5).await.unwrap();
        }));
        w.inspect.pass().await.unwrap();
        w.jobs.run_until_idle(5).await.unwrap();
        assert_eq!(w.container(game.id).state, "running", "incident {n}");
        assert_eq!(
            restarts(&w, game.id).await.len(),
            n + 1,
            "one restart per incident (incident {n})"
        );
        assert_eq!(
            w.game(game.id).await.status,
            GameStatus::Running,
            "incident {n}"
        );
        w.at(w.now() + TimeDelta::minutes(10));
    }
    // The next stop within the hour is the loop, whichever replica sees it.
    w.containers.edit(&container, |c| c.state = "exited".into());
    other.pass().await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    assert_eq!(restarts(&w, game.id).await.len(), CRASH_LOOP_RESTARTS);
}
