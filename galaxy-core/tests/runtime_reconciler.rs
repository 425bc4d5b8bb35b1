//! The reconciler: adopting unrecorded containers, removing strays of ended games, and
//! reporting recorded-but-missing containers to the lobby as a start result would be.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use std::collections::BTreeMap;

use galaxy_core::domain::GameId;
use galaxy_core::domain::game::{EngineName, GameStatus, GameTrigger};
use galaxy_core::domain::health::HealthEventKind;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::runtime::{JobKind, RuntimeBinding, RuntimeRecord, RuntimeStatus};
use galaxy_core::ports::{ContainerInfo, GameStatusChange, GameStore, RuntimeRecordStore};
use galaxy_core::service::runtime::{
    BACKEND_LABEL, ENDPOINT_LABEL, GAME_LABEL, INSTANCE_LABEL, ReconcileReport,
};
use galaxy_core::worker::Worker;
use world::*;

fn labelled(id: &str, game: GameId, endpoint: Option<&str>) -> ContainerInfo {
    let mut labels = BTreeMap::from([
        (BACKEND_LABEL.to_owned(), "1".to_owned()),
        (GAME_LABEL.to_owned(), game.to_string()),
        (INSTANCE_LABEL.to_owned(), "galaxy".to_owned()),
    ]);
    if let Some(endpoint) = endpoint {
        labels.insert(ENDPOINT_LABEL.to_owned(), endpoint.to_owned());
    }
    ContainerInfo {
        container_id: id.into(),
        state: "running".into(),
        restart_count: 0,
        exit_code: None,
        health: None,
        labels,
    }
}

#[tokio::test]
async fn an_unrecorded_container_of_a_live_game_is_adopted() {
    let w = World::new().await;
    let (reachable, _) = w.closed_game(2).await;
    let (unreachable, _) = w.closed_game(2).await;
    w.containers
        .add(labelled("x1", reachable.id, Some("http://x1:8080")));
    w.containers.add(labelled("x2", unreachable.id, None));

    let report = w.reconciler.pass().await.unwrap();
    assert_eq!(
        report,
        ReconcileReport {
            adopted: 2,
            ..ReconcileReport::default()
        }
    );
    let record = w.record(reachable.id).await;
    assert_eq!(record.status, RuntimeStatus::Running);
    let binding = RuntimeBinding {
        container_id: "x1".into(),
        engine_endpoint: "http://x1:8080".into(),
    };
    assert_eq!(record.binding, Some(binding));
    assert_eq!(record.next_turn_at, None, "the game is not running");
    let record = w.record(unreachable.id).await;
    assert_eq!(
        (record.status, record.binding),
        (RuntimeStatus::Failed, None)
    );
    assert_eq!(w.containers.all().len(), 2, "adopted containers stay");

    // Idempotent: the next pass finds both recorded.
    assert_eq!(w.reconciler.tick().await.unwrap().handled, 0);
}

#[tokio::test]
async fn a_stray_container_of_an_ended_or_unknown_game_is_removed() {
    let w = World::new().await;
    let (game, _) = w.closed_game(2).await;
    let host = game.host;
    w.lobby
        .cancel(
            galaxy_core::service::Actor {
                user_id: host,
                is_admin: false,
            },
            game.id,
        )
        .await
        .unwrap();
    w.containers
        .add(labelled("x1", game.id, Some("http://x1:8080")));
    let unknown = GameId::from_uuid(uuid::Uuid::from_u128(99));
    w.containers.add(labelled("x2", unknown, None));
    // Another installation's container on the same daemon is none of our business.
    let mut foreign = labelled("other", unknown, None);
    foreign
        .labels
        .insert(INSTANCE_LABEL.to_owned(), "another-galaxy".to_owned());
    w.containers.add(foreign);

    let report = w.reconciler.pass().await.unwrap();
    assert_eq!(report.removed_containers, 2);
    let left: Vec<_> = w
        .containers
        .all()
        .into_iter()
        .map(|c| c.container_id)
        .collect();
    assert_eq!(
        left,
        vec!["other".to_owned()],
        "only our strays are removed"
    );
    assert!(w.journal.position("stop x1").unwrap() < w.journal.position("remove x1").unwrap());
    assert!(
        w.runtime.get_record(game.id).await.is_err(),
        "nothing adopted"
    );
}

#[tokio::test]
async fn a_running_game_whose_container_vanished_is_paused() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let (other, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    w.containers.vanish(&container);

    let report = w.reconciler.pass().await.unwrap();
    assert_eq!(report.marked_removed, 1);
    let record = w.record(game.id).await;
    assert_eq!(record.status, RuntimeStatus::Removed);
    assert_eq!(record.next_turn_at, None);
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    let history = w.store.game_transitions(game.id).await.unwrap();
    assert_eq!(history.last().unwrap().trigger, GameTrigger::RuntimeEvent);
    let events = w.health(game.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, HealthEventKind::ContainerDisappeared);
    assert_eq!(events[0].detail["container_id"], container.as_str());
    assert_eq!(w.notes.of(NotificationKind::RuntimeHealthAlert).len(), 1);
    assert_eq!(w.game(other.id).await.status, GameStatus::Running);
    assert_eq!(
        w.reconciler.pass().await.unwrap(),
        ReconcileReport::default()
    );
}

#[tokio::test]
async fn a_starting_game_whose_container_vanished_becomes_start_failed() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    // Bound mid-start (between the binding and the engine's init) to a container that
    // is gone by the time the reconciler looks.
    let mut record = RuntimeRecord::new(game.id, EngineName::reference(), w.now());
    record.status = RuntimeStatus::Starting;
    record.binding = Some(RuntimeBinding {
        container_id: "gone".into(),
        engine_endpoint: w.endpoint(game.id),
    });
    w.runtime.insert_record(&record).await.unwrap();

    let report = w.reconciler.pass().await.unwrap();
    assert_eq!(report.marked_removed, 1);
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Removed);
    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    assert!(w.reason(game.id).await.unwrap().contains("disappeared"));
    let failed = w.notes.of(NotificationKind::GameStartFailed);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].recipients.contains(&game.host));
    assert_eq!(
        w.health(game.id).await[0].kind,
        HealthEventKind::ContainerDisappeared
    );
}

#[tokio::test]
async fn a_running_record_of_an_ended_game_gets_its_stop_job() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // Cancelled, but the stop job was never queued (a crash right after the change).
    let change = GameStatusChange {
        to: GameStatus::Cancelled,
        trigger: GameTrigger::Admin,
        actor: None,
        reason: None,
        at: w.now(),
        expected_approved: None,
    };
    w.store
        .update_game_status(game.id, GameStatus::Running, &change)
        .await
        .unwrap();
    w.runtime
        .set_schedule(game.id, None, false, w.now())
        .await
        .unwrap();

    let report = w.reconciler.pass().await.unwrap();
    assert_eq!(report.stops_queued, 1);
    assert!(
        w.job_list(game.id)
            .await
            .iter()
            .any(|j| j.kind == JobKind::Stop)
    );
    w.jobs.run_until_idle(5).await.unwrap();
    assert!(w.containers.of_game(game.id).is_none());
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Removed);
}

#[tokio::test]
async fn a_runtime_that_cannot_list_changes_nothing() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.containers.fail("list", "daemon down");
    assert_eq!(
        w.reconciler.pass().await.unwrap(),
        ReconcileReport::default()
    );
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Running);
}

#[tokio::test]
async fn the_leftover_of_a_failed_start_goes_once_its_game_is_cancelled() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    w.engine.healthz_down(&w.endpoint(game.id), true);
    w.job_pass().await;
    assert_eq!(w.game(game.id).await.status, GameStatus::StartFailed);
    assert_eq!(
        w.container(game.id).state,
        "exited",
        "stopped, kept for a retry"
    );
    assert_eq!(
        w.reconciler.pass().await.unwrap(),
        ReconcileReport::default()
    );

    let host = galaxy_core::service::Actor {
        user_id: game.host,
        is_admin: false,
    };
    w.lobby.cancel(host, game.id).await.unwrap();
    let report = w.reconciler.pass().await.unwrap();
    assert_eq!(report.removed_containers, 1);
    assert!(w.containers.of_game(game.id).is_none());
}

#[tokio::test]
async fn a_running_game_with_no_turn_due_is_scheduled_again() {
    let w = World::new().await;
    let (stuck, _) = w.running_game(2).await;
    let (claimed, _) = w.running_game(2).await;
    let (paused, _) = w.running_game(2).await;
    let (finishing, _) = w.running_game(2).await;
    w.service.pause(w.admin, paused.id).await.unwrap();
    // The last turn of `finishing` ended the game; its end is not announced yet.
    w.engine.finish_at(&w.endpoint(finishing.id), 1);
    w.faults.fail_next("update_game_status", 1);
    w.service
        .force_next_turn(w.admin, finishing.id)
        .await
        .unwrap();
    assert_eq!(w.game(finishing.id).await.status, GameStatus::Running);
    // `stuck` lost its schedule to two processes interleaving (a release after a
    // resume); `claimed` has a turn in flight, which writes its own schedule.
    for id in [stuck.id, claimed.id] {
        w.runtime
            .set_schedule(id, None, false, w.now())
            .await
            .unwrap();
    }
    let token = galaxy_core::domain::LeaseToken::from_uuid(uuid::Uuid::from_u128(9));
    let claim = galaxy_core::domain::lease::ClaimRequest {
        token,
        now: w.now(),
        lease: chrono::TimeDelta::minutes(5),
        limit: 1,
    };
    w.runtime.claim_turn(claimed.id, &claim).await.unwrap();

    let report = w.reconciler.pass().await.unwrap();
    assert_eq!(report.rescheduled, 1, "{report:?}");
    assert_eq!(w.record(stuck.id).await.next_turn_at, Some(evening(1)));
    for id in [claimed.id, paused.id, finishing.id] {
        assert_eq!(w.record(id).await.next_turn_at, None);
    }
    // And the stuck game plays its turn when due.
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(stuck.id).await.current_turn, 1);
}

#[tokio::test]
async fn a_running_game_whose_schedule_has_no_firing_left_is_left_alone() {
    let w = World::new().await;
    // One firing only: 18:00 on the first day of 2030.
    let (game, _) = w
        .running_game_with(2, |g| g.turn_schedule = "0 0 18 1 1 * 2030".into())
        .await;
    w.at(evening(1) + chrono::TimeDelta::hours(1));
    w.runtime
        .set_schedule(game.id, None, false, w.now())
        .await
        .unwrap();
    let report = w.reconciler.pass().await.unwrap();
    assert_eq!(report.rescheduled, 0, "{report:?}");
    assert_eq!(
        w.reconciler.tick().await.unwrap().handled,
        0,
        "no busy loop"
    );
    assert_eq!(w.record(game.id).await.next_turn_at, None);
}
