//! Health workers end to end: the `/healthz` probe with hysteresis (threshold 3) storing
//! events, alerting admins and pausing when configured; the inspect pass and its
//! restart-count delta; the events listener's deterministic step and its reconnects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use std::time::Duration;

use galaxy_core::domain::game::{GameStatus, GameTrigger};
use galaxy_core::domain::health::{ContainerHealth, HealthEventKind};
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::ports::{ContainerEvent, GameStore};
use galaxy_core::service::runtime::{HealthProbe, RuntimeConfig};
use galaxy_core::service::{ErrorKind, ServiceError};
use galaxy_core::worker::Worker;
use tokio_util::sync::CancellationToken;
use world::*;

fn pausing() -> RuntimeConfig {
    RuntimeConfig {
        pause_on_unhealthy: true,
        ..test_config()
    }
}

#[tokio::test]
async fn probe_failures_past_the_threshold_store_one_event_and_pause_the_game() {
    let w = World::with(pausing()).await;
    let (game, _) = w.running_game(2).await;
    let (other, _) = w.running_game(2).await;
    let endpoint = w.endpoint(game.id);
    w.engine.healthz_down(&endpoint, true);

    for pass in 1..=2 {
        let report = w.probe.pass().await.unwrap();
        assert_eq!(report.observed, 2);
        assert!(report.events.is_empty(), "pass {pass}: below the threshold");
        assert!(w.record(game.id).await.healthy);
    }
    let report = w.probe.pass().await.unwrap();
    assert_eq!((report.events.len(), report.paused), (1, 1));
    let events = w.health(game.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, HealthEventKind::ProbeFailed);
    assert_eq!(events[0].detail["consecutive_failures"], 3);
    assert_eq!(events[0].detail["last_status"], 503);
    assert!(!w.record(game.id).await.healthy);
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    let history = w.store.game_transitions(game.id).await.unwrap();
    assert_eq!(history.last().unwrap().trigger, GameTrigger::RuntimeEvent);
    assert_eq!(w.record(game.id).await.next_turn_at, None);
    let alerts = w.notes.of(NotificationKind::RuntimeHealthAlert);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].recipients, vec![w.admin.user_id]);
    assert_eq!(alerts[0].payload["kind"], "probe_failed");
    // Named as admins know the game, at a time as mails write it.
    assert_eq!(alerts[0].payload["game"], game.settings.name.as_str());
    let occurred = alerts[0].payload["occurred"].as_str().unwrap();
    assert!(
        occurred.ends_with(" UTC") && occurred.len() == 23,
        "{occurred}"
    );

    // Still down: no second event. The healthy game was never touched.
    assert!(w.probe.pass().await.unwrap().events.is_empty());
    assert_eq!(w.game(other.id).await.status, GameStatus::Running);
    assert!(w.health(other.id).await.is_empty());

    // Resuming an unhealthy runtime is refused; after recovery it is allowed.
    let refused = w.service.resume(w.admin, game.id).await.unwrap_err();
    assert_eq!(
        (refused.kind(), refused.code()),
        (ErrorKind::Conflict, "runtime_unhealthy")
    );
    w.engine.healthz_down(&endpoint, false);
    let report = w.probe.pass().await.unwrap();
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.events[0].kind, HealthEventKind::ProbeRecovered);
    assert_eq!(report.events[0].detail["prior_failure_count"], 4);
    assert!(w.record(game.id).await.healthy);
    let resumed = w.service.resume(w.admin, game.id).await.unwrap();
    assert_eq!(resumed.status, GameStatus::Running);
    assert_eq!(w.record(game.id).await.next_turn_at, Some(evening(1)));
    assert_eq!(
        w.probe.tick().await.unwrap().handled,
        0,
        "observers never ask to re-run"
    );
}

#[tokio::test]
async fn without_pause_on_unhealthy_the_game_keeps_running() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.engine.healthz_down(&w.endpoint(game.id), true);
    for _ in 0..3 {
        w.probe.pass().await.unwrap();
    }
    assert_eq!(w.health(game.id).await.len(), 1);
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert!(!w.record(game.id).await.healthy);
}

#[tokio::test]
async fn a_stopped_game_is_no_longer_probed() {
    let w = World::with(pausing()).await;
    let (game, _) = w.running_game(2).await;
    let endpoint = w.endpoint(game.id);
    w.engine.healthz_down(&endpoint, true);
    w.probe.pass().await.unwrap();
    w.probe.pass().await.unwrap();
    // The container goes: its record is no longer running, its failure run is pruned.
    w.service.stop(w.admin, game.id).await.unwrap();
    w.jobs.run_until_idle(5).await.unwrap();
    assert!(w.probe.pass().await.unwrap().events.is_empty());
    assert_eq!(w.probe.pass().await.unwrap().observed, 0);
}

#[tokio::test]
async fn inspect_reports_a_restart_after_the_baseline_and_a_stopped_container() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    let first = w.inspect.pass().await.unwrap();
    assert_eq!(
        (first.observed, first.events.len()),
        (1, 0),
        "the baseline only"
    );

    w.containers.edit(&container, |c| c.restart_count = 1);
    let report = w.inspect.pass().await.unwrap();
    assert_eq!(report.events.len(), 1);
    let event = &report.events[0];
    assert_eq!(event.kind, HealthEventKind::InspectUnhealthy);
    assert_eq!(event.detail["reason"], "restart_count_increased");
    assert_eq!(event.detail["previous_restart_count"], 0);
    assert_eq!(event.detail["container_id"], container.as_str());
    assert!(
        w.inspect.pass().await.unwrap().events.is_empty(),
        "no new restart"
    );

    w.containers
        .edit(&container, |c| c.health = Some(ContainerHealth::Unhealthy));
    let unhealthy = w.inspect.pass().await.unwrap();
    assert_eq!(unhealthy.events[0].detail["reason"], "unhealthy");
    w.containers.edit(&container, |c| c.state = "exited".into());
    let exited = w.inspect.pass().await.unwrap();
    assert_eq!(exited.events[0].detail["reason"], "not_running");
    assert_eq!(w.health(game.id).await.len(), 3);
    assert_eq!(w.notes.of(NotificationKind::RuntimeHealthAlert).len(), 3);
    // While it stays exited: no event and no alert per pass, a digest after hours.
    for _ in 0..20 {
        assert!(w.inspect.pass().await.unwrap().events.is_empty());
    }
    assert_eq!(w.health(game.id).await.len(), 3);
    assert_eq!(w.notes.of(NotificationKind::RuntimeHealthAlert).len(), 3);
    w.at(w.clock_now() + chrono::TimeDelta::hours(7));
    let digest = w.inspect.pass().await.unwrap();
    assert_eq!(digest.events.len(), 1);
    assert_eq!(digest.events[0].detail["digest"]["repeats"], 21);
    assert_eq!(w.notes.of(NotificationKind::RuntimeHealthAlert).len(), 4);
    assert!(w.inspect.pass().await.unwrap().events.is_empty());

    // A vanished container is the reconciler's business, not an inspect finding.
    w.containers.vanish(&container);
    assert!(w.inspect.pass().await.unwrap().events.is_empty());
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
}

#[tokio::test]
async fn the_events_listener_turns_container_events_into_health_events() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    let event = |action: &str, labelled: bool| ContainerEvent {
        container_id: container.clone(),
        game_id: labelled.then_some(game.id),
        action: action.into(),
    };

    let died = w.events.handle(&event("die", true)).await.unwrap().unwrap();
    assert_eq!(died.kind, HealthEventKind::InspectUnhealthy);
    assert_eq!(died.detail["reason"], "container_died");
    let oom = w
        .events
        .handle(&event("oom", false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        oom.detail["reason"], "out_of_memory",
        "found without the game label"
    );
    let gone = w
        .events
        .handle(&event("destroy", true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.kind, HealthEventKind::ContainerDisappeared);
    assert!(
        w.events
            .handle(&event("start", true))
            .await
            .unwrap()
            .is_none()
    );
    let stranger = ContainerEvent {
        container_id: "elsewhere".into(),
        game_id: Some(game.id),
        action: "die".into(),
    };
    assert!(w.events.handle(&stranger).await.unwrap().is_none());
    assert_eq!(w.health(game.id).await.len(), 3);
    assert_eq!(w.notes.of(NotificationKind::RuntimeHealthAlert).len(), 3);
    assert_eq!(
        w.game(game.id).await.status,
        GameStatus::Running,
        "the reconciler decides"
    );
}

#[tokio::test(start_paused = true)]
async fn the_events_listener_reconnects_until_cancelled() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    let die = ContainerEvent {
        container_id: container.clone(),
        game_id: Some(game.id),
        action: "die".into(),
    };
    // Two connections that each deliver one event and end; then the daemon is gone.
    w.containers.push_stream(vec![die.clone()]);
    w.containers.push_stream(vec![die]);
    let cancel = CancellationToken::new();
    let run = w.events.run(cancel.clone());
    let stop = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
    };
    tokio::join!(run, stop);
    assert_eq!(w.health(game.id).await.len(), 2);
    let connects = w.journal.count("events");
    // 10 ms, 20 ms, then 40 ms between attempts: about 25 attempts in one second.
    assert!(
        (20..=30).contains(&connects),
        "{connects} connection attempts"
    );
}

#[tokio::test]
async fn replicas_observing_one_incident_send_one_alert() {
    use galaxy_core::service::runtime::{EventsListener, InspectWorker};
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    // Three replicas on one Docker daemon: each listener gets the same `die` event, each
    // inspect pass sees the same restart.
    let listeners: Vec<EventsListener> = (0..3)
        .map(|_| EventsListener::new(w.ports.clone(), w.config.clone()))
        .collect();
    let died = ContainerEvent {
        container_id: container.clone(),
        game_id: Some(game.id),
        action: "die".into(),
    };
    for listener in &listeners {
        assert!(listener.handle(&died).await.unwrap().is_some());
    }
    let inspects: Vec<InspectWorker> = (0..3)
        .map(|_| InspectWorker::new(w.ports.clone(), w.config.clone()))
        .collect();
    for inspect in &inspects {
        inspect.pass().await.unwrap();
    }
    w.containers.edit(&container, |c| c.restart_count = 1);
    for inspect in &inspects {
        assert_eq!(inspect.pass().await.unwrap().events.len(), 1);
    }
    // Six events stored (each replica's own), one alert per incident.
    assert_eq!(w.health(game.id).await.len(), 6);
    let alerts = w.notes.of(NotificationKind::RuntimeHealthAlert);
    let reasons: Vec<&str> = alerts
        .iter()
        .map(|a| a.payload["detail"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["container_died", "restart_count_increased"]);
    // The same finding after the window is a new incident.
    w.at(w.clock_now() + chrono::TimeDelta::minutes(6));
    listeners[0].handle(&died).await.unwrap();
    assert_eq!(w.notes.of(NotificationKind::RuntimeHealthAlert).len(), 3);
}

/// Replicas probe the same engine, each counting its own failures: one that started
/// later (fewer failures in a row) never writes the flag back to healthy while the
/// engine is down; the first answer, on any replica, does.
#[tokio::test]
async fn a_replica_with_fewer_failures_never_marks_a_down_engine_healthy() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.engine.healthz_down(&w.endpoint(game.id), true);
    for _ in 0..3 {
        w.probe.pass().await.unwrap();
    }
    assert!(
        !w.record(game.id).await.healthy,
        "three failures: unhealthy"
    );
    let later = HealthProbe::new(w.ports.clone(), w.config.clone()).unwrap();
    for pass in 1..=2 {
        later.pass().await.unwrap();
        assert!(
            !w.record(game.id).await.healthy,
            "the later replica's pass {pass} (below its threshold) leaves the verdict"
        );
        w.probe.pass().await.unwrap();
        assert!(!w.record(game.id).await.healthy);
    }
    w.engine.healthz_down(&w.endpoint(game.id), false);
    later.pass().await.unwrap();
    assert!(w.record(game.id).await.healthy, "an answer: healthy again");
}
