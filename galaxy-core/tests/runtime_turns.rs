//! The turn scheduler: scheduled turns, force-next-turn and its skip flag, at most one
//! catch-up turn after downtime, the end of a game, and engines that fail, hang or answer
//! the wrong turn (their game pauses, the others run on); mailed orders taken late only for
//! the turn they were written for, never over orders sent after them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use chrono::TimeDelta;
use galaxy_core::domain::game::{GameStatus, GameTrigger};
use galaxy_core::domain::health::HealthEventKind;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::runtime::{JobKind, RuntimeStatus};
use galaxy_core::ports::{
    Clock, GameStatusChange, GameStore, OrdersDesk, OrdersDeskError, RuntimeRecordStore,
};
use galaxy_core::service::ServiceError;
use galaxy_core::worker::Worker;
use world::*;

#[tokio::test]
async fn a_scheduled_turn_runs_once_and_the_next_is_scheduled() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    w.at(evening(1) - TimeDelta::minutes(1));
    assert_eq!(w.scheduler.tick().await.unwrap().handled, 0, "not due yet");

    w.at(evening(1));
    assert_eq!(w.scheduler.tick().await.unwrap().handled, 1);
    let record = w.record(game.id).await;
    assert_eq!(record.current_turn, 1);
    assert_eq!(record.next_turn_at, Some(evening(2)));
    assert_eq!(record.turn_lease, None);
    assert_eq!(
        w.scheduler.run_until_idle(5).await.unwrap(),
        0,
        "nothing else is due"
    );
    assert_eq!(
        w.journal.count(&format!("turn {} 1", w.endpoint(game.id))),
        1
    );

    let completed = w.notes.of(NotificationKind::TurnCompleted);
    assert_eq!(completed.len(), 1);
    let players: Vec<_> = seats.0.iter().map(|(a, _)| a.user_id).collect();
    let mut recipients = completed[0].recipients.clone();
    recipients.sort();
    let mut expected = players.clone();
    expected.sort();
    assert_eq!(recipients, expected);
    assert_eq!(completed[0].payload["turn"], 1);
    assert_eq!(completed[0].payload["game_id"], game.id.to_string());
}

#[tokio::test]
async fn force_next_turn_sets_the_skip_flag_the_next_tick_consumes() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.at(evening(1) - TimeDelta::hours(2));
    let forced = w.service.force_next_turn(w.admin, game.id).await.unwrap();
    assert_eq!(forced.current_turn, 1);
    assert!(forced.skip_next_tick);
    assert_eq!(
        forced.next_turn_at,
        Some(evening(1)),
        "the schedule is kept"
    );
    // Players are told the turn after the forced one runs at the firing after the
    // skipped one: in its turn mail, the game view and the reminders.
    let mails = w.notes.of(NotificationKind::TurnCompleted);
    let deadline = &mails.last().unwrap().payload["next_turn_at"];
    assert_eq!(*deadline, serde_json::json!(evening(2)), "{mails:?}");
    let progress = w.service.progress(&w.game(game.id).await).await.unwrap();
    assert_eq!(progress.next_turn_at, Some(evening(2)));
    w.at(evening(1) - TimeDelta::minutes(90));
    w.scheduler.tick().await.unwrap();
    assert!(
        w.notes.of(NotificationKind::TurnReminder).is_empty(),
        "no reminder two hours before the skipped firing"
    );

    w.at(evening(1));
    assert_eq!(w.scheduler.tick().await.unwrap().handled, 1);
    let record = w.record(game.id).await;
    assert_eq!(
        record.current_turn, 1,
        "the tick was consumed without a turn"
    );
    assert!(!record.skip_next_tick);
    assert_eq!(record.next_turn_at, Some(evening(2)));
    assert_eq!(w.engine.turn_of(&w.endpoint(game.id)), 1);

    w.at(evening(2) - TimeDelta::minutes(90));
    w.scheduler.tick().await.unwrap();
    let reminders = w.notes.of(NotificationKind::TurnReminder);
    assert_eq!(
        reminders.len(),
        2,
        "both players, for turn 2: {reminders:?}"
    );
    let told = &reminders[0].payload["deadline"];
    assert_eq!(*told, serde_json::json!("2030-01-02 18:00 UTC"));

    w.at(evening(2));
    w.scheduler.tick().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 2);
}

#[tokio::test]
async fn after_a_long_downtime_at_most_one_catch_up_turn_runs() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // Down from before the first firing until the afternoon of the 6th: five missed.
    w.at(evening(6) - TimeDelta::hours(3));
    w.scheduler.run_until_idle(10).await.unwrap();
    let record = w.record(game.id).await;
    assert_eq!(record.current_turn, 1);
    assert_eq!(record.next_turn_at, Some(evening(6)));
    assert_eq!(w.engine.turn_of(&w.endpoint(game.id)), 1);
}

#[tokio::test]
async fn a_finished_game_ends_finished_and_its_container_is_removed() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let container = w.container(game.id).container_id;
    w.engine.finish_at(&w.endpoint(game.id), 2);
    w.at(evening(1));
    w.scheduler.tick().await.unwrap();
    w.at(evening(2));
    w.scheduler.tick().await.unwrap();

    let finished = w.game(game.id).await;
    assert_eq!(finished.status, GameStatus::Finished);
    let history = w.store.game_transitions(game.id).await.unwrap();
    assert_eq!(history.last().unwrap().trigger, GameTrigger::Engine);
    let record = w.record(game.id).await;
    assert_eq!((record.current_turn, record.next_turn_at), (2, None));
    let notes = w.notes.of(NotificationKind::GameFinished);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].payload["winner"], "Zorgons");
    assert_eq!(notes[0].payload["standings"][0]["race"], "Zorgons");
    assert!(
        notes[0].payload["standings_table"]
            .as_str()
            .unwrap()
            .contains("Zorgons"),
        "{}",
        notes[0].payload
    );
    let stop = w.job_list(game.id).await;
    assert!(stop.iter().any(|j| j.kind == JobKind::Stop));

    w.jobs.run_until_idle(5).await.unwrap();
    assert!(
        w.journal.position(&format!("stop {container}")).unwrap()
            < w.journal.position(&format!("remove {container}")).unwrap()
    );
    assert!(w.containers.of_game(game.id).is_none());
    assert_eq!(w.record(game.id).await.status, RuntimeStatus::Removed);
    w.at(evening(3));
    assert_eq!(w.scheduler.tick().await.unwrap().handled, 0);
}

#[tokio::test]
async fn a_game_paused_while_its_last_turn_is_announced_still_finishes() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.engine.finish_at(&w.endpoint(game.id), 1);
    // An admin pauses the game between the announcement's read of it (running) and its
    // change to finished: that change loses, and must be made again from paused.
    let pause = GameStatusChange {
        to: GameStatus::Paused,
        trigger: GameTrigger::Admin,
        actor: Some(w.admin.user_id),
        reason: Some("paused by an admin".into()),
        at: w.clock.now(),
        expected_approved: None,
    };
    w.games.cut_in_before(GameStatus::Finished, pause);
    w.at(evening(1));
    w.scheduler.tick().await.unwrap();

    assert_eq!(w.game(game.id).await.status, GameStatus::Finished);
    let history = w.store.game_transitions(game.id).await.unwrap();
    let path: Vec<_> = history.iter().rev().take(2).map(|t| t.to).collect();
    assert_eq!(path, [GameStatus::Finished, GameStatus::Paused]);
    assert_eq!(w.notes.of(NotificationKind::GameFinished).len(), 1);
    assert!(
        w.job_list(game.id)
            .await
            .iter()
            .any(|j| j.kind == JobKind::Stop)
    );
}

#[tokio::test]
async fn a_failing_engine_pauses_its_game_while_the_others_run() {
    let w = World::new().await;
    let (sick, _) = w.running_game(2).await;
    let (well, _) = w.running_game(2).await;
    let (also_well, _) = w.running_game(2).await;
    w.engine
        .fault(&w.endpoint(sick.id), Some(TurnFault::Garbage));
    w.at(evening(1));
    assert_eq!(w.scheduler.tick().await.unwrap().handled, 3);

    for id in [well.id, also_well.id] {
        assert_eq!(w.record(id).await.current_turn, 1);
        assert_eq!(w.game(id).await.status, GameStatus::Running);
    }
    assert_paused_by_fault(&w, sick.id).await;
    assert_eq!(w.scheduler.run_until_idle(5).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_engine_times_out_and_its_game_pauses() {
    let w = World::new().await;
    let (hung, _) = w.running_game(2).await;
    let (well, _) = w.running_game(2).await;
    w.engine.fault(&w.endpoint(hung.id), Some(TurnFault::Hang));
    w.at(evening(1));
    w.scheduler.tick().await.unwrap();
    assert_paused_by_fault(&w, hung.id).await;
    assert_eq!(w.record(well.id).await.current_turn, 1);
    let detail = &w.health(hung.id).await[0].detail;
    assert!(detail["error"].as_str().unwrap().contains("did not answer"));
}

#[tokio::test]
async fn an_engine_answering_an_earlier_turn_is_a_fault() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.engine
        .fault(&w.endpoint(game.id), Some(TurnFault::WrongTurn));
    let error = w
        .service
        .force_next_turn(w.admin, game.id)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "engine_unavailable");
    assert_paused_by_fault(&w, game.id).await;
    let record = w.record(game.id).await;
    assert!(!record.skip_next_tick);
    assert_eq!(record.current_turn, 0);
}

#[tokio::test]
async fn an_engine_already_past_the_expected_turn_counts_as_done() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // The engine ran turn 1 but the answer was lost: the record still says 0.
    w.service.force_next_turn(w.admin, game.id).await.unwrap();
    let token = galaxy_core::domain::LeaseToken::from_uuid(uuid::Uuid::from_u128(7));
    let claim = galaxy_core::domain::lease::ClaimRequest {
        token,
        now: w.now(),
        lease: TimeDelta::minutes(1),
        limit: 1,
    };
    w.runtime.claim_turn(game.id, &claim).await.unwrap();
    let rewind = galaxy_core::ports::TurnUpdate {
        current_turn: 0,
        next_turn_at: Some(evening(1)),
        skip_next_tick: false,
    };
    w.runtime
        .complete_turn(game.id, token, &rewind, w.now())
        .await
        .unwrap();
    w.at(evening(1));
    w.scheduler.tick().await.unwrap();
    let record = w.record(game.id).await;
    assert_eq!(
        record.current_turn, 1,
        "the engine's answer for turn 1 is taken"
    );
    assert_eq!(
        w.engine.turn_of(&w.endpoint(game.id)),
        1,
        "no second turn ran"
    );
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
}

async fn assert_paused_by_fault(w: &World, game: galaxy_core::domain::GameId) {
    assert_eq!(w.game(game).await.status, GameStatus::Paused);
    let history = w.store.game_transitions(game).await.unwrap();
    assert_eq!(history.last().unwrap().trigger, GameTrigger::RuntimeEvent);
    let record = w.record(game).await;
    assert_eq!((record.next_turn_at, record.turn_lease), (None, None));
    assert!(!record.healthy);
    let events = w.health(game).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, HealthEventKind::TurnFailed);
    assert!(events[0].detail["expected_turn"].is_number());
    let alerts = w.notes.of(NotificationKind::RuntimeHealthAlert);
    let alert = alerts.iter().find(|n| n.game_id == Some(game)).unwrap();
    assert_eq!(alert.recipients, vec![w.admin.user_id]);
}

/// Why the desk refused mailed orders.
fn refusal(result: Result<galaxy_core::ports::MailedOrdersVerdict, OrdersDeskError>) -> String {
    match result {
        Err(OrdersDeskError::Refused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn mailed_orders_processed_late_never_replace_later_orders_nor_reach_the_next_turn() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, race) = seats.0[0].clone();
    let desk: &dyn OrdersDesk = &w.service;
    let sent_to_engine = || {
        w.engine
            .orders()
            .into_iter()
            .filter(|(_, r, _, _)| *r == race)
            .map(|(_, _, turn, orders)| (turn, orders))
            .collect::<Vec<_>>()
    };
    // A mail arrives and is held back (its engine was down); the player then sends newer
    // orders over the web.
    w.at(evening(1) - TimeDelta::hours(3));
    let held = w.now();
    w.at(evening(1) - TimeDelta::hours(2));
    w.service
        .submit_orders(alice, game.id, 1, &serde_json::json!("newer"))
        .await
        .unwrap();
    w.at(evening(1) - TimeDelta::hours(1));
    let reason = refusal(
        desk.submit_mailed_orders(alice.user_id, game.id, "older", held)
            .await,
    );
    assert!(
        reason.contains("sent after this mail are in force"),
        "{reason}"
    );
    assert_eq!(sent_to_engine(), vec![(1, serde_json::json!("newer"))]);

    // A mail that arrived after them replaces them; the same mail processed again (a
    // crash before its end was stored) gets the same verdict without a second call.
    let arrived = w.now();
    let taken = desk
        .submit_mailed_orders(alice.user_id, game.id, "latest", arrived)
        .await
        .unwrap();
    assert!(taken.accepted && taken.turn == 1, "{taken:?}");
    w.at(arrived + TimeDelta::minutes(6));
    let again = desk
        .submit_mailed_orders(alice.user_id, game.id, "latest", arrived)
        .await
        .unwrap();
    assert_eq!(again, taken);
    assert_eq!(sent_to_engine().len(), 2, "{:?}", sent_to_engine());

    // A turn played since a mail arrived: its orders were written for that turn.
    w.at(evening(1));
    assert_eq!(w.scheduler.tick().await.unwrap().handled, 1);
    w.at(evening(1) + TimeDelta::minutes(10));
    let reason = refusal(
        desk.submit_mailed_orders(alice.user_id, game.id, "late", arrived)
            .await,
    );
    assert!(
        reason.contains("before turn 1 was played") && reason.contains("not applied to turn 2"),
        "{reason}"
    );
    assert_eq!(sent_to_engine().len(), 2, "nothing reached the engine");
    // The mail taken for turn 1, processed again after the turn (a crash before its end
    // was stored): its recorded verdict for turn 1, not a refusal.
    let again = desk
        .submit_mailed_orders(alice.user_id, game.id, "latest", arrived)
        .await
        .unwrap();
    assert_eq!(
        (again.turn, again.accepted, again.deadline),
        (1, true, None)
    );
    assert_eq!(sent_to_engine().len(), 2);
    let fresh = desk
        .submit_mailed_orders(alice.user_id, game.id, "fresh", w.now())
        .await
        .unwrap();
    assert_eq!((fresh.turn, fresh.accepted), (2, true));
    assert_eq!(
        sent_to_engine().last(),
        Some(&(2, serde_json::json!("fresh")))
    );

    // Two mails held back while the engine was down, then processed: in the order they
    // arrived, the second replaces the first; in the other order, the first is refused.
    let first = w.now() + TimeDelta::minutes(1);
    let second = first + TimeDelta::minutes(1);
    w.at(second + TimeDelta::minutes(10));
    for (text, at) in [("first", first), ("second", second)] {
        let taken = desk
            .submit_mailed_orders(alice.user_id, game.id, text, at)
            .await;
        assert!(taken.unwrap().accepted, "{text}");
    }
    let third = w.now() + TimeDelta::minutes(1);
    let fourth = third + TimeDelta::minutes(1);
    w.at(fourth + TimeDelta::minutes(10));
    let newer = desk
        .submit_mailed_orders(alice.user_id, game.id, "fourth", fourth)
        .await;
    assert!(newer.unwrap().accepted);
    let reason = refusal(
        desk.submit_mailed_orders(alice.user_id, game.id, "third", third)
            .await,
    );
    assert!(
        reason.contains("sent after this mail are in force"),
        "{reason}"
    );
    let read = w.service.orders(alice, game.id, 2).await.unwrap();
    assert_eq!(read.latest.unwrap().orders, serde_json::json!("fourth"));
    assert_eq!(
        sent_to_engine().last(),
        Some(&(2, serde_json::json!("fourth")))
    );
}
