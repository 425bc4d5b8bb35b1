//! The runtime service: admin-only actions (pause, resume, stop, retry-start, listings),
//! players' orders and reports for their own race only, and the engine registry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use galaxy_core::domain::game::{EngineName, GameStatus, GameTrigger};
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::runtime::{JobKind, RuntimeStatus};
use galaxy_core::ports::{GameStore, RuntimeRecordStore, TurnArchiveStore};
use galaxy_core::service::runtime::{
    DEFAULT_REFERENCE_TARGET, EngineRegistry, RegistryError, RuntimeConfig, RuntimeError,
    RuntimeService,
};
use galaxy_core::service::{ErrorKind, ServiceError};
use galaxy_core::worker::Worker;
use serde_json::json;
use world::*;

fn class<T: std::fmt::Debug>(result: Result<T, RuntimeError>) -> (ErrorKind, &'static str) {
    let error = result.unwrap_err();
    (error.kind(), error.code())
}

const FORBIDDEN: (ErrorKind, &str) = (ErrorKind::Forbidden, "forbidden");

#[tokio::test]
async fn every_admin_action_is_refused_to_non_admins() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let host = galaxy_core::service::Actor {
        user_id: game.host,
        is_admin: false,
    };
    let page = PageRequest::default();
    for actor in [host, seats.0[0].0] {
        let s = &w.service;
        assert_eq!(class(s.pause(actor, game.id).await), FORBIDDEN);
        assert_eq!(class(s.resume(actor, game.id).await), FORBIDDEN);
        assert_eq!(class(s.stop(actor, game.id).await), FORBIDDEN);
        assert_eq!(class(s.force_next_turn(actor, game.id).await), FORBIDDEN);
        assert_eq!(class(s.retry_start(actor, game.id).await), FORBIDDEN);
        assert_eq!(class(s.records(actor, &page).await), FORBIDDEN);
        assert_eq!(class(s.record(actor, game.id).await), FORBIDDEN);
        assert_eq!(class(s.health_events(actor, None, &page).await), FORBIDDEN);
    }
    assert_eq!(
        w.game(game.id).await.status,
        GameStatus::Running,
        "nothing changed"
    );
    assert_eq!(w.record(game.id).await.current_turn, 0);
    let records = w.service.records(w.admin, &page).await.unwrap();
    assert_eq!(records.items.len(), 1);
    assert_eq!(
        w.service.record(w.admin, game.id).await.unwrap().game_id,
        game.id
    );
    let events = w
        .service
        .health_events(w.admin, Some(game.id), &page)
        .await
        .unwrap();
    assert!(events.items.is_empty());
}

#[tokio::test]
async fn pause_suspends_turns_and_resume_reschedules_them() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let paused = w.service.pause(w.admin, game.id).await.unwrap();
    assert_eq!(paused.status, GameStatus::Paused);
    let history = w.store.game_transitions(game.id).await.unwrap();
    assert_eq!(history.last().unwrap().trigger, GameTrigger::Admin);
    assert_eq!(history.last().unwrap().actor, Some(w.admin.user_id));
    assert_eq!(w.record(game.id).await.next_turn_at, None);
    w.at(evening(1));
    assert_eq!(
        w.scheduler.tick_and_drain().await.unwrap().handled,
        0,
        "no turn while paused"
    );
    assert_eq!(
        class(w.service.pause(w.admin, game.id).await).1,
        "invalid_status"
    );
    let forced = w.service.force_next_turn(w.admin, game.id).await;
    assert_eq!(class(forced).1, "invalid_status");

    w.runtime
        .set_healthy(game.id, false, w.now())
        .await
        .unwrap();
    let refused = w.service.resume(w.admin, game.id).await;
    assert_eq!(class(refused), (ErrorKind::Conflict, "runtime_unhealthy"));
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    w.runtime.set_healthy(game.id, true, w.now()).await.unwrap();
    let resumed = w.service.resume(w.admin, game.id).await.unwrap();
    assert_eq!(resumed.status, GameStatus::Running);
    assert_eq!(w.record(game.id).await.next_turn_at, Some(evening(2)));
    assert_eq!(
        class(w.service.resume(w.admin, game.id).await).1,
        "invalid_status"
    );
}

#[tokio::test]
async fn resume_after_a_failed_registration_initialises_the_engine() {
    let w = World::new().await;
    let (game, seats) = w.starting_game(2).await;
    w.engine.init_fails(true);
    w.job_pass().await;
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    let still_failing = w.service.resume(w.admin, game.id).await;
    assert_eq!(class(still_failing).0, ErrorKind::Unavailable);
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);

    w.engine.init_fails(false);
    w.service.resume(w.admin, game.id).await.unwrap();
    assert_eq!(w.engine.inits().len(), 1);
    assert_eq!(w.record(game.id).await.next_turn_at, Some(evening(1)));
    // The start completes: turn 0 archived (its reports readable, the game's turn known,
    // so mailed orders are taken for turn 1) and `game_started` sent, once.
    let turns = w.play.list_turns(game.id).await.unwrap();
    assert_eq!(turns.iter().map(|t| t.turn).collect::<Vec<_>>(), vec![0]);
    let player = seats.0[0].0;
    let report = w.service.report(player, game.id, 0, None).await.unwrap();
    assert_eq!(report.race, seats.0[0].1);
    let progress = w
        .service
        .progress(&w.game(game.id).await, None)
        .await
        .unwrap();
    assert_eq!(progress.current_turn, Some(0));
    let started = w.notes.keyed(&format!("game:{}:started", game.id));
    assert_eq!(started.len(), 1);
    w.service.pause(w.admin, game.id).await.unwrap();
    w.service.resume(w.admin, game.id).await.unwrap();
    assert_eq!(w.play.list_turns(game.id).await.unwrap().len(), 1);
    assert_eq!(
        w.notes.keyed(&format!("game:{}:started", game.id)).len(),
        1,
        "announced once"
    );
}

#[tokio::test]
async fn stop_cancels_the_game_and_a_stop_job_removes_its_container() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let cancelled = w.service.stop(w.admin, game.id).await.unwrap();
    assert_eq!(cancelled.status, GameStatus::Cancelled);
    assert_eq!(w.record(game.id).await.next_turn_at, None);
    let jobs = w.job_list(game.id).await;
    let stop = jobs.iter().find(|j| j.kind == JobKind::Stop).unwrap();
    assert_eq!(stop.idempotency_key, format!("stop:{}:cancelled", game.id));
    let notes = w.notes.of(NotificationKind::GameCancelled);
    assert!(notes[0].recipients.contains(&seats.0[1].0.user_id));

    w.jobs.run_until_idle(5).await.unwrap();
    assert!(w.containers.of_game(game.id).is_none());
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Removed);
    let again = w.service.stop(w.admin, game.id).await;
    assert_eq!(class(again), (ErrorKind::Conflict, "invalid_status"));
    let (closed, _) = w.closed_game(2).await;
    assert_eq!(
        class(w.service.stop(w.admin, closed.id).await).1,
        "invalid_status"
    );
}

#[tokio::test]
async fn retry_start_queues_a_new_start_job_under_the_lobby_key() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    w.containers.fail("ensure_image", "pull access denied");
    w.job_pass().await;
    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);

    w.containers.heal("ensure_image");
    let starting = w.service.retry_start(w.admin, game.id).await.unwrap();
    assert_eq!(starting.status, GameStatus::Starting);
    let history = w.store.game_transitions(game.id).await.unwrap();
    assert_eq!(history.last().unwrap().trigger, GameTrigger::Admin);
    let keys: Vec<String> = w
        .job_list(game.id)
        .await
        .into_iter()
        .map(|j| j.idempotency_key)
        .collect();
    assert_eq!(
        keys,
        vec![
            format!("start:{}:0", game.id),
            format!("start:{}:1", game.id)
        ]
    );

    w.jobs.run_until_idle(5).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Running);
    let again = w.service.retry_start(w.admin, game.id).await;
    assert_eq!(class(again).1, "invalid_status");
    let missing = galaxy_core::domain::GameId::from_uuid(uuid::Uuid::from_u128(5));
    assert_eq!(
        class(w.service.retry_start(w.admin, missing).await).0,
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn orders_and_reports_go_to_the_callers_own_race_only() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, alice_race) = &seats.0[0];
    let (bob, bob_race) = &seats.0[1];
    let orders = json!({ "fleets": [{ "from": "Home", "to": "Sirius" }] });
    let verdict = w
        .service
        .submit_orders(*alice, game.id, 1, &orders)
        .await
        .unwrap();
    assert!(verdict.accepted);
    w.service
        .submit_orders(*bob, game.id, 1, &json!("plain text orders"))
        .await
        .unwrap();
    let sent = w.engine.orders();
    assert_eq!(
        sent[0],
        (w.endpoint(game.id), alice_race.clone(), 1, orders)
    );
    assert_eq!(sent[1].1, *bob_race);

    let report = w.service.report(*bob, game.id, 0, None).await.unwrap();
    assert_eq!(report.race, *bob_race);
    assert_eq!(report.report["turn"], 0);
    assert_eq!(
        report.text(),
        Some(FakeEngine::report_text(bob_race, 0).as_str())
    );

    // The host does not play, a stranger even less: the game looks absent to them.
    let host = galaxy_core::service::Actor {
        user_id: game.host,
        is_admin: false,
    };
    let stranger = w.user().await;
    for outsider in [host, stranger, w.admin] {
        let refused = w.service.report(outsider, game.id, 0, None).await;
        assert_eq!(class(refused).0, ErrorKind::NotFound);
        let refused = w
            .service
            .submit_orders(outsider, game.id, 1, &json!({}))
            .await;
        assert_eq!(class(refused).0, ErrorKind::NotFound);
    }
    assert_eq!(w.engine.orders().len(), 2);
}

#[tokio::test]
async fn orders_are_size_bounded_and_need_a_game_in_play() {
    let config = RuntimeConfig {
        max_orders_bytes: 64,
        ..test_config()
    };
    let w = World::with(config).await;
    let (game, seats) = w.running_game(2).await;
    let player = seats.0[0].0;
    let big = json!("x".repeat(100));
    let refused = w.service.submit_orders(player, game.id, 1, &big).await;
    assert_eq!(class(refused), (ErrorKind::Validation, "orders_too_large"));
    assert!(w.engine.orders().is_empty());

    w.service.pause(w.admin, game.id).await.unwrap();
    w.service
        .submit_orders(player, game.id, 1, &json!({}))
        .await
        .unwrap();
    w.service.stop(w.admin, game.id).await.unwrap();
    let ended = w
        .service
        .submit_orders(player, game.id, 1, &json!({}))
        .await;
    assert_eq!(class(ended), (ErrorKind::Conflict, "invalid_status"));
    // Reports come from the archive: still readable once the game is over.
    let report = w.service.report(player, game.id, 0, None).await.unwrap();
    assert_eq!(report.turn, 0);
}

#[test]
fn the_registry_resolves_registered_engines_and_refuses_others() {
    let default = EngineRegistry::default();
    let reference = EngineName::reference();
    assert_eq!(
        default.resolve(&reference).unwrap(),
        DEFAULT_REFERENCE_TARGET
    );
    let parsed =
        EngineRegistry::parse("reference=galaxy-engine:0.1; classic=/opt/pbem --port 0").unwrap();
    assert_eq!(parsed.resolve(&reference).unwrap(), "galaxy-engine:0.1");
    let classic = EngineName::parse("classic").unwrap();
    assert_eq!(parsed.resolve(&classic).unwrap(), "/opt/pbem --port 0");
    assert_eq!(parsed.names().len(), 2);
    let unknown = default.resolve(&classic).unwrap_err();
    assert!(
        unknown.to_string().contains("known: reference"),
        "{unknown}"
    );
    assert!(matches!(
        EngineRegistry::parse("reference"),
        Err(RegistryError::Entry(_))
    ));
    assert!(matches!(
        EngineRegistry::parse("Big=x"),
        Err(RegistryError::Name(_))
    ));
    assert!(matches!(
        EngineRegistry::parse("a=x;a=y"),
        Err(RegistryError::Twice(_))
    ));
    assert!(matches!(
        EngineRegistry::parse("a= "),
        Err(RegistryError::EmptyTarget(_))
    ));
}

#[tokio::test]
async fn a_game_naming_an_engine_the_runtime_does_not_know_fails_to_start() {
    // The lobby accepted `classic` (configured apart), the runtime never registered it.
    let lobby_engines = [
        EngineName::reference(),
        EngineName::parse("classic").unwrap(),
    ];
    let w = World::build(test_config(), Some(lobby_engines.into())).await;
    let (game, _) = w.closed_game_on(Some("classic"), 2).await;
    w.lobby.start(w.admin, game.id).await.unwrap();
    w.job_pass().await;
    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    let reason = w.reason(game.id).await.unwrap();
    assert!(reason.contains("\"classic\" is not registered"), "{reason}");
    assert_eq!(w.journal.count("create "), 0);
}

#[tokio::test]
async fn cancelling_a_running_game_through_the_lobby_stops_its_engine_at_once() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    let cancelled = w.lobby.cancel(w.admin, game.id).await.unwrap();
    assert_eq!(cancelled.status, GameStatus::Cancelled);
    let stops: Vec<_> = w
        .job_list(game.id)
        .await
        .into_iter()
        .filter(|j| j.kind == JobKind::Stop)
        .collect();
    assert_eq!(
        stops.len(),
        1,
        "a durable stop job is queued with the change"
    );
    w.jobs.run_until_idle(5).await.unwrap();
    assert!(w.journal.position(&format!("remove {container}")).is_some());
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Removed);
    // The admin route's stop of the same game finds the same job, not a second one.
    let stopped = w.service.stop(w.admin, game.id).await;
    assert!(stopped.is_err(), "already cancelled");
    let stops = w
        .job_list(game.id)
        .await
        .into_iter()
        .filter(|j| j.kind == JobKind::Stop)
        .count();
    assert_eq!(stops, 1);
}

#[tokio::test]
async fn a_game_stopped_while_its_turn_runs_stays_unscheduled_and_mails_no_deadline() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let (paused, _) = w.running_game(2).await;
    // An admin stops one game, and pauses the other, while the engine computes its turn.
    for (id, stop) in [(game.id, true), (paused.id, false)] {
        let admin = RuntimeService::new(w.ports.clone(), w.config.clone());
        let by = w.admin;
        w.engine.on_next_turn(Box::pin(async move {
            if stop {
                admin.stop(by, id).await.unwrap();
            } else {
                admin.pause(by, id).await.unwrap();
            }
        }));
        w.at(evening(1));
        w.service.force_next_turn(w.admin, id).await.unwrap();
        let record = w.record(id).await;
        assert_eq!(record.current_turn, 1, "the turn ran");
        assert_eq!(
            (record.next_turn_at, record.skip_next_tick),
            (None, false),
            "left unscheduled"
        );
    }
    assert!(
        w.notes
            .keyed(&format!("game:{}:turn:1", game.id))
            .is_empty(),
        "no turn mail after the cancellation"
    );
    let mails = w.notes.keyed(&format!("game:{}:turn:1", paused.id));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].payload["next_turn_at"], json!(null));
    // A firing later: nothing runs for either game.
    w.at(evening(2));
    w.scheduler.run_until_idle(5).await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    assert_eq!(w.record(paused.id).await.current_turn, 1);
}

#[tokio::test]
async fn a_turn_forced_as_the_game_is_paused_is_not_played() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // The force reads the game running; another admin's pause lands (status first)
    // before the force claims the turn.
    w.records
        .before_next_claim_turn(w.pause_by_another_admin(game.id));
    let forced = w.service.force_next_turn(w.admin, game.id).await;
    assert_eq!(class(forced).1, "invalid_status");
    assert_eq!(w.engine.turn_of(&w.endpoint(game.id)), 0, "no turn played");
    let record = w.record(game.id).await;
    assert_eq!(record.current_turn, 0);
    assert!(record.turn_lease.is_none(), "the claim let go");
    assert_eq!(
        record.next_turn_at, None,
        "a paused game is left unscheduled"
    );
}

#[tokio::test]
async fn a_resume_landing_inside_a_pause_keeps_the_game_scheduled() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // Another admin resumes (status, then schedule) after this pause changed the status
    // and before its schedule clear is written.
    let (service, admin, id) = (w.service.clone(), w.admin, game.id);
    w.records.before_next_set_schedule(Box::pin(async move {
        service.resume(admin, id).await.unwrap();
    }));
    w.service.pause(w.admin, game.id).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    let next = w.record(game.id).await.next_turn_at;
    assert_eq!(next, Some(evening(1)), "a running game keeps its schedule");
    // And its turn runs when due.
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
}

#[tokio::test]
async fn a_resume_whose_schedule_write_fails_leaves_the_game_paused() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.service.pause(w.admin, game.id).await.unwrap();
    w.faults.fail_next("set_schedule", 1);
    assert!(w.service.resume(w.admin, game.id).await.is_err());
    // Not a running game that no turn is ever due for: still paused, and resumable.
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    w.service.resume(w.admin, game.id).await.unwrap();
    assert_eq!(w.record(game.id).await.next_turn_at, Some(evening(1)));
}

#[tokio::test]
async fn a_schedule_cleared_while_a_resume_lands_is_given_back() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.service.pause(w.admin, game.id).await.unwrap();
    // A scheduler reaching the firing between the resume's schedule and its status
    // change finds the game paused and clears the schedule.
    let (records, id, now) = (w.records.clone(), game.id, w.now());
    w.games.before_next_change(Box::pin(async move {
        records.set_schedule(id, None, false, now).await.unwrap();
    }));
    w.service.resume(w.admin, game.id).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert_eq!(w.record(game.id).await.next_turn_at, Some(evening(1)));
}

#[tokio::test]
async fn a_stop_job_decides_on_the_stored_status_not_a_stale_copy() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // The replica running the job still holds the game as running (the stop's change
    // note has not reached it): the job must stop the engine all the same, since its
    // key is spent once it ends.
    w.games.hold_stale(game.id).await;
    w.service.stop(w.admin, game.id).await.unwrap();
    w.jobs.run_until_idle(5).await.unwrap();
    assert!(
        w.containers.of_game(game.id).is_none(),
        "the engine was removed"
    );
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Removed);
}
