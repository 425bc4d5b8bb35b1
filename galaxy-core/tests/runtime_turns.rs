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
    TurnArchiveStore,
};
use galaxy_core::service::ServiceError;
use galaxy_core::service::runtime::{RuntimeConfig, TurnScheduler};
use galaxy_core::worker::Worker;
use world::*;

#[tokio::test]
async fn a_scheduled_turn_runs_once_and_the_next_is_scheduled() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    w.at(evening(1) - TimeDelta::minutes(1));
    assert_eq!(
        w.scheduler.tick_and_drain().await.unwrap().handled,
        0,
        "not due yet"
    );

    w.at(evening(1));
    assert_eq!(w.scheduler.tick_and_drain().await.unwrap().handled, 1);
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
    let progress = w
        .service
        .progress(&w.game(game.id).await, None)
        .await
        .unwrap();
    assert_eq!(progress.next_turn_at, Some(evening(2)));
    w.at(evening(1) - TimeDelta::minutes(90));
    w.scheduler.tick_and_drain().await.unwrap();
    assert!(
        w.notes.of(NotificationKind::TurnReminder).is_empty(),
        "no reminder two hours before the skipped firing"
    );

    w.at(evening(1));
    assert_eq!(w.scheduler.tick_and_drain().await.unwrap().handled, 1);
    let record = w.record(game.id).await;
    assert_eq!(
        record.current_turn, 1,
        "the tick was consumed without a turn"
    );
    assert!(!record.skip_next_tick);
    assert_eq!(record.next_turn_at, Some(evening(2)));
    assert_eq!(w.engine.turn_of(&w.endpoint(game.id)), 1);

    w.at(evening(2) - TimeDelta::minutes(90));
    w.scheduler.tick_and_drain().await.unwrap();
    let reminders = w.notes.of(NotificationKind::TurnReminder);
    assert_eq!(
        reminders.len(),
        2,
        "both players, for turn 2: {reminders:?}"
    );
    let told = &reminders[0].payload["deadline"];
    assert_eq!(*told, serde_json::json!("2030-01-02 18:00 UTC"));

    w.at(evening(2));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 2);
}

#[tokio::test]
async fn a_downtime_past_the_told_deadline_after_a_forced_turn_owes_that_turn() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.at(evening(1) - TimeDelta::hours(2));
    w.service.force_next_turn(w.admin, game.id).await.unwrap();
    // Players were told turn 2 runs at evening(2); the server is down from before
    // evening(1) until after evening(2): the skipped firing passed, and so did theirs.
    w.at(evening(2) + TimeDelta::hours(1));
    w.scheduler.tick_and_drain().await.unwrap();
    let record = w.record(game.id).await;
    assert_eq!(record.current_turn, 2, "the turn told for evening(2) ran");
    assert!(!record.skip_next_tick);
    assert_eq!(record.next_turn_at, Some(evening(3)));
    assert_eq!(w.engine.turn_of(&w.endpoint(game.id)), 2);
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
    w.scheduler.tick_and_drain().await.unwrap();
    w.at(evening(2));
    w.scheduler.tick_and_drain().await.unwrap();

    let finished = w.game(game.id).await;
    assert_eq!(finished.status, GameStatus::Finished);
    let history = w.store.game_transitions(game.id).await.unwrap();
    assert_eq!(history.last().unwrap().trigger, GameTrigger::Engine);
    let record = w.record(game.id).await;
    assert_eq!((record.current_turn, record.next_turn_at), (2, None));
    let notes = w.notes.of(NotificationKind::GameFinished);
    assert_eq!(notes.len(), 1);
    let leader = w.engine.leader(&w.endpoint(game.id));
    assert_eq!(notes[0].payload["winner"], leader);
    assert_eq!(notes[0].payload["standings"][0]["race"], leader);
    assert!(
        notes[0].payload["standings_table"]
            .as_str()
            .unwrap()
            .contains(&leader),
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
    assert_eq!(w.scheduler.tick_and_drain().await.unwrap().handled, 0);
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
    w.scheduler.tick_and_drain().await.unwrap();

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
    assert_eq!(w.scheduler.tick_and_drain().await.unwrap().handled, 3);

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
    w.scheduler.tick_and_drain().await.unwrap();
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
async fn an_engine_state_that_does_not_fit_the_game_is_a_fault_and_nothing_is_kept() {
    for (fault, told) in [
        (
            TurnFault::StrangerStanding,
            "the standings name a race not in the game",
        ),
        (
            TurnFault::StrangerWinner,
            "the winner is not a race of the game: \"Nobody\"",
        ),
        (TurnFault::FarAhead, "is more than 100 turns beyond turn 1"),
    ] {
        let w = World::new().await;
        let (game, _) = w.running_game(2).await;
        w.engine.fault(&w.endpoint(game.id), Some(fault));
        let error = w
            .service
            .force_next_turn(w.admin, game.id)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "engine_unavailable", "{fault:?}");
        assert!(error.to_string().contains(told), "{fault:?}: {error}");
        assert_paused_by_fault(&w, game.id).await;
        assert_eq!(w.record(game.id).await.current_turn, 0, "{fault:?}");
        let turns = w.play.list_turns(game.id).await.unwrap();
        assert_eq!(
            turns.iter().map(|t| t.turn).collect::<Vec<_>>(),
            [0],
            "{fault:?}: only turn 0 is archived"
        );
        // The long name is cut in what the admins are told.
        assert!(error.to_string().len() < 400, "{fault:?}: {error}");
    }
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
    w.scheduler.tick_and_drain().await.unwrap();
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
        Err(OrdersDeskError::Refused { reason, .. }) => reason.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Orders of one race go to the engine one submission at a time: a mail that arrived
/// before the web orders in flight (the engine holds them, they are not recorded yet)
/// waits for them, then finds them in force and is refused, so the engine's last orders
/// are the ones recorded in force.
#[tokio::test]
async fn an_older_mail_never_overtakes_orders_in_flight() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, race) = seats.0[0].clone();
    let sent_to_engine = || {
        w.engine
            .orders()
            .into_iter()
            .filter(|(_, r, _, _)| *r == race)
            .map(|(_, _, _, orders)| orders)
            .collect::<Vec<_>>()
    };
    w.at(evening(1) - TimeDelta::hours(3));
    let mailed_at = w.now();
    w.at(evening(1) - TimeDelta::hours(2));
    let (held, release) = tokio::sync::oneshot::channel::<()>();
    let (in_engine, engine_has) = tokio::sync::oneshot::channel::<()>();
    w.engine.on_next_orders(Box::pin(async move {
        let _ = in_engine.send(());
        let _ = release.await;
    }));
    let newer = serde_json::json!("newer");
    let web = w.service.submit_orders(alice, game.id, 1, &newer);
    let mail = async {
        engine_has.await.unwrap();
        let desk: &dyn OrdersDesk = &w.service;
        let mailed = desk.submit_mailed_orders(alice.user_id, game.id, "older", mailed_at);
        // The mail waits for the web orders' lease; they finish meanwhile.
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), mailed);
        let (waited, ()) = tokio::join!(waited, async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            held.send(()).unwrap();
        });
        waited.expect("the mail went on once the web orders were recorded")
    };
    let (web, mail) = tokio::join!(web, mail);
    assert!(web.unwrap().accepted);
    let reason = refusal(mail);
    assert!(
        reason.contains("sent after this mail are in force"),
        "{reason}"
    );
    assert_eq!(sent_to_engine(), vec![serde_json::json!("newer")]);
    let read = w.service.orders(alice, game.id, 1).await.unwrap();
    assert_eq!(read.latest.unwrap().orders, serde_json::json!("newer"));
}

/// One mail processed twice at once (its first run outlasted its claim, and another
/// worker took it up): the second run waits for the first's lease, then finds the very
/// orders recorded and answers with their verdict; the engine gets them once.
#[tokio::test]
async fn a_mail_run_twice_at_once_reaches_the_engine_once() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, race) = seats.0[0].clone();
    w.at(evening(1) - TimeDelta::hours(2));
    let arrived = w.now();
    let (held, release) = tokio::sync::oneshot::channel::<()>();
    let (in_engine, engine_has) = tokio::sync::oneshot::channel::<()>();
    w.engine.on_next_orders(Box::pin(async move {
        let _ = in_engine.send(());
        let _ = release.await;
    }));
    let desk: &dyn OrdersDesk = &w.service;
    let first = desk.submit_mailed_orders(alice.user_id, game.id, "mine", arrived);
    let second = async {
        engine_has.await.unwrap();
        let again = desk.submit_mailed_orders(alice.user_id, game.id, "mine", arrived);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), again);
        let (waited, ()) = tokio::join!(waited, async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            held.send(()).unwrap();
        });
        waited.expect("the second run went on once the first was recorded")
    };
    let (first, second) = tokio::join!(first, second);
    let first = first.unwrap();
    assert!(first.accepted && first.turn == 1, "{first:?}");
    assert_eq!(second.unwrap(), first);
    let sent = w.engine.orders();
    let sent: Vec<_> = sent.iter().filter(|(_, r, _, _)| *r == race).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let read = w.service.orders(alice, game.id, 1).await.unwrap();
    assert!(read.latest.is_some() && read.history.is_empty(), "{read:?}");
}

/// Mailed orders the engine refuses in its own way (a 4xx with a reason, not a verdict
/// of `accepted: false`) were read and recorded: the reply is that verdict, refused with
/// the engine's reason, as a replay of the mail answers, never "not taken".
#[tokio::test]
async fn mailed_orders_an_engine_refuses_get_its_verdict() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, _) = seats.0[0].clone();
    w.engine
        .refuse_orders(Some((422, r#"{"error": "no such planet"}"#)));
    let desk: &dyn OrdersDesk = &w.service;
    let arrived = w.now();
    let verdict = desk
        .submit_mailed_orders(alice.user_id, game.id, "move 1 99", arrived)
        .await
        .expect("a verdict, not a refusal");
    assert!(!verdict.accepted);
    assert_eq!(verdict.turn, 1);
    assert!(verdict.errors[0].contains("no such planet"), "{verdict:?}");
    let again = desk
        .submit_mailed_orders(alice.user_id, game.id, "move 1 99", arrived)
        .await
        .unwrap();
    assert_eq!(again, verdict, "the replay answers alike");
}

/// A race whose orders lease another process holds (a submission in flight there, or a
/// holder that died with it): orders wait for it, then answer 503 `orders_busy` with
/// nothing sent; once it lapses, they go.
#[tokio::test(start_paused = true)]
async fn orders_wait_for_a_lease_held_elsewhere_then_are_busy() {
    use galaxy_core::domain::LeaseToken;
    use galaxy_core::domain::lease::Lease;
    use galaxy_core::ports::OrdersStore;
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, race) = seats.0[0].clone();
    let elsewhere = Lease {
        token: LeaseToken::from_uuid(uuid::Uuid::from_u128(7)),
        until: w.now() + TimeDelta::seconds(10),
    };
    assert!(
        w.play
            .lease_orders(game.id, &race, elsewhere, w.now())
            .await
            .unwrap()
    );
    let orders = serde_json::json!("mine");
    let busy = w.service.submit_orders(alice, game.id, 1, &orders).await;
    assert!(
        matches!(
            busy,
            Err(galaxy_core::service::runtime::RuntimeError::OrdersBusy)
        ),
        "{busy:?}"
    );
    assert_eq!(busy.unwrap_err().code(), "orders_busy");
    let sent = w.engine.orders();
    assert!(sent.iter().all(|(_, r, _, _)| *r != race), "{sent:?}");
    w.at(elsewhere.until);
    let taken = w.service.submit_orders(alice, game.id, 1, &orders).await;
    assert!(taken.unwrap().accepted, "the lapsed lease is taken over");
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
    assert_eq!(w.scheduler.tick_and_drain().await.unwrap().handled, 1);
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

/// The channels of a turn call held in the engine: `entered` fires when the engine has
/// the call, and the engine answers once `go` is sent (or dropped).
fn hold_next_turn(
    w: &World,
) -> (
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (entered_tx, entered) = tokio::sync::oneshot::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
    w.engine.on_next_turn(Box::pin(async move {
        let _ = entered_tx.send(());
        let _ = go_rx.await;
    }));
    (entered, go)
}

/// Test settings with a turn lease of 3 s (renewed every second, well within the 5 s
/// engine call timeout) and `concurrency` turns at once.
fn short_lease(concurrency: usize) -> RuntimeConfig {
    RuntimeConfig {
        turn_lease: TimeDelta::seconds(3),
        turn_concurrency: concurrency,
        ..test_config()
    }
}

/// Waits (bounded) until `game`'s record says `turn` with its lease free.
async fn recorded(w: &World, game: galaxy_core::domain::GameId, turn: u32) -> bool {
    for _ in 0..1_000 {
        let record = w.record(game).await;
        if record.current_turn == turn && record.turn_lease.is_none() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    false
}

#[tokio::test]
async fn a_forced_turn_runs_to_its_end_when_its_caller_goes_away() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let (entered, go) = hold_next_turn(&w);
    // The caller (an HTTP request cut off by its timeout) goes away while the engine
    // computes the turn.
    tokio::select! {
        forced = w.service.force_next_turn(w.admin, game.id) => panic!("the turn ended early: {forced:?}"),
        _ = entered => {}
    }
    go.send(()).unwrap();
    assert!(recorded(&w, game.id, 1).await, "the turn was recorded");
    let record = w.record(game.id).await;
    assert!(record.skip_next_tick, "the forced turn's skip flag is set");
    assert_eq!(
        w.archive.latest_turn(game.id).await.unwrap().unwrap().turn,
        1
    );
    assert_eq!(w.notes.of(NotificationKind::TurnCompleted).len(), 1);
}

#[tokio::test]
async fn an_engine_fault_whose_pause_fails_leaves_the_turn_due_not_the_game_unscheduled() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let endpoint = w.endpoint(game.id);
    w.engine.fault(&endpoint, Some(TurnFault::Garbage));
    // The pause is lost (a database failure, or a crash right there).
    w.faults.fail_next("update_game_status", 1);
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    let record = w.record(game.id).await;
    assert_eq!(
        (record.current_turn, record.next_turn_at, record.turn_lease),
        (0, Some(evening(1)), None),
        "released with its turn still due"
    );
    // The engine recovers: the next pass plays the turn.
    w.engine.fault(&endpoint, None);
    w.scheduler.tick_and_drain().await.unwrap();
    let record = w.record(game.id).await;
    assert_eq!(
        (record.current_turn, record.next_turn_at),
        (1, Some(evening(2)))
    );
}

/// Two scheduler passes at `evening(1)`, of two replicas: the first one's first
/// turn call is held in the engine while the clock moves past twice the turn lease and
/// `renewals` of tokio time pass (the held turn renews its lease meanwhile, or, with
/// none, never does); then the second pass runs, `after_second` changes the world, and
/// the held call is answered. Both passes' handled counts.
async fn a_second_pass_while_a_turn_is_held(
    w: &World,
    renewals: std::time::Duration,
    after_second: impl FnOnce(),
) -> (usize, usize) {
    let (entered, go) = hold_next_turn(w);
    w.at(evening(1));
    let first = w.scheduler.tick_and_drain();
    let second = async {
        entered.await.unwrap();
        w.at(evening(1) + w.config.turn_lease * 2);
        tokio::time::sleep(renewals).await;
        let replica = TurnScheduler::new(w.ports.clone(), w.config.clone());
        let claimed = replica.tick_and_drain().await.unwrap().handled;
        after_second();
        go.send(()).unwrap();
        claimed
    };
    let (first, second) = tokio::join!(first, second);
    (first.unwrap().handled, second)
}

#[tokio::test(start_paused = true)]
async fn a_turn_that_outlasts_its_lease_keeps_it_from_another_scheduler() {
    let w = World::with(short_lease(8)).await;
    let (game, _) = w.running_game(2).await;
    let endpoint = w.endpoint(game.id);
    // The engine takes twice the lease over the turn; meanwhile another replica's
    // scheduler looks for due games.
    let renewals = std::time::Duration::from_secs(2);
    let (first, second) = a_second_pass_while_a_turn_is_held(&w, renewals, || {}).await;
    assert_eq!(first, 1);
    assert_eq!(second, 0, "the turn in flight was not claimed again");
    assert_eq!(w.journal.count(&format!("turn {endpoint} 1")), 1);
    assert_eq!(w.record(game.id).await.current_turn, 1);
}

#[tokio::test(start_paused = true)]
async fn a_due_game_another_scheduler_took_while_it_waited_for_a_slot_is_left_to_it() {
    let w = World::with(short_lease(1)).await;
    let (held, _) = w.running_game(2).await;
    let (waiting, _) = w.running_game(2).await;
    // One pass claims both; its one slot plays `held` first, for longer than the lease,
    // and keeps its lease meanwhile; `waiting`, which has not started, does not. Another
    // replica's pass claims `waiting`, whose lease lapsed, and plays it.
    let renewals = std::time::Duration::from_secs(2);
    let (_, second) = a_second_pass_while_a_turn_is_held(&w, renewals, || {}).await;
    assert_eq!(second, 1);
    for game in [held.id, waiting.id] {
        let turns = w.journal.count(&format!("turn {} 1", w.endpoint(game)));
        assert_eq!(turns, 1, "one turn call for each game");
        assert_eq!(w.record(game).await.current_turn, 1);
    }
}

#[tokio::test]
async fn a_scheduler_whose_copy_of_the_game_is_stale_plays_no_turn_of_a_paused_game() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // This replica's cache still says running after another replica paused the game
    // and its note was lost.
    w.games.hold_stale(game.id).await;
    w.service.pause(w.admin, game.id).await.unwrap();
    // The pause's unschedule lost too (or landed after the claim): the turn is due.
    w.records
        .set_schedule(game.id, Some(evening(1)), false, w.now())
        .await
        .unwrap();
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(
        w.journal.count(&format!("turn {} 1", w.endpoint(game.id))),
        0
    );
    let record = w.record(game.id).await;
    assert_eq!((record.current_turn, record.next_turn_at), (0, None));
}

#[tokio::test]
async fn a_forced_turn_named_by_number_runs_once_however_often_it_is_asked() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let endpoint = w.endpoint(game.id);
    let record = w
        .service
        .force_turn(w.admin, game.id, Some(1))
        .await
        .unwrap();
    assert_eq!(record.current_turn, 1);
    // The same request again (its answer was lost): refused, no second turn.
    for asked in [1, 3] {
        let refused = w
            .service
            .force_turn(w.admin, game.id, Some(asked))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "turn_not_next", "{refused}");
        assert!(refused.to_string().contains("the next is 2"), "{refused}");
    }
    assert_eq!(w.journal.count(&format!("turn {endpoint} 2")), 0);
    let record = w.record(game.id).await;
    assert_eq!((record.current_turn, record.turn_lease), (1, None));
    assert!(
        record.skip_next_tick,
        "the refusal left the record as it was"
    );
    w.service
        .force_turn(w.admin, game.id, Some(2))
        .await
        .unwrap();
    assert_eq!(w.engine.turn_of(&endpoint), 2);
}

#[tokio::test(start_paused = true)]
async fn a_fault_after_another_scheduler_played_the_turn_pauses_and_holds_nothing() {
    let w = World::with(short_lease(8)).await;
    let (game, _) = w.running_game(2).await;
    let endpoint = w.endpoint(game.id);
    // The first scheduler's lease lapses (no renewal ran); another one claims the game
    // and plays the turn, then the first one's engine call fails.
    let fail = || w.engine.fault(&endpoint, Some(TurnFault::Garbage));
    let (_, second) = a_second_pass_while_a_turn_is_held(&w, std::time::Duration::ZERO, fail).await;
    assert_eq!(second, 1);
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    let record = w.record(game.id).await;
    assert_eq!(
        (record.current_turn, record.turn_lease),
        (1, None),
        "the played turn stands, and no lease is left held"
    );
    assert!(w.health(game.id).await.is_empty(), "no spurious alert");
}

/// Waits (in real time, bounded) until `game`'s record is at `turn`.
async fn until_turn(w: &World, game: galaxy_core::domain::GameId, turn: u32) {
    let reached = async {
        while w.record(game).await.current_turn < turn {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), reached)
        .await
        .unwrap_or_else(|_| panic!("game {game} never reached turn {turn}"));
}

#[tokio::test]
async fn a_slow_engine_holds_up_neither_other_due_games_nor_early_turns() {
    // The slow turn is held in real time: well within the engine call's bound.
    let w = World::with(RuntimeConfig {
        engine_call_timeout: std::time::Duration::from_secs(120),
        ..test_config()
    })
    .await;
    let (slow, _) = w.running_game(2).await;
    let on = |at: &'static str| {
        move |new: &mut galaxy_core::service::lobby::NewGame| new.turn_schedule = at.into()
    };
    let (ready, ready_seats) = w.running_game_with(2, on("30 18 * * *")).await;
    let (later, _) = w.running_game_with(2, on("2 18 * * *")).await;
    // 18:00: the slow game's turn call hangs until released.
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    w.engine.on_next_turn(Box::pin(async move {
        held.await.ok();
    }));
    w.at(evening(1));
    let pass = std::time::Duration::from_secs(30);
    let claimed = tokio::time::timeout(pass, w.scheduler.tick()).await;
    assert_eq!(
        claimed
            .expect("the pass waits for no turn")
            .unwrap()
            .handled,
        1
    );
    // 18:01, within the slow turn's lease: every race of another game is ready, and the
    // next pass runs its turn early.
    w.at(evening(1) + TimeDelta::minutes(1));
    for (player, _) in &ready_seats.0 {
        let orders = serde_json::json!({"turn": 1});
        let verdict = w.service.submit_orders(*player, ready.id, 1, &orders).await;
        assert!(verdict.unwrap().accepted);
    }
    tokio::time::timeout(pass, w.scheduler.tick())
        .await
        .expect("no wait")
        .unwrap();
    until_turn(&w, ready.id, 1).await;
    // 18:02: a third game falls due, and the next pass plays it.
    w.at(evening(1) + TimeDelta::minutes(2));
    let claimed = tokio::time::timeout(pass, w.scheduler.tick()).await;
    assert_eq!(claimed.expect("no wait").unwrap().handled, 1);
    until_turn(&w, later.id, 1).await;
    assert_eq!(w.record(slow.id).await.current_turn, 0, "still in its turn");
    // Released, the slow turn ends as any other.
    release.send(()).unwrap();
    w.scheduler.drain().await;
    assert_eq!(w.record(slow.id).await.current_turn, 1);
    assert_eq!(w.engine.turn_of(&w.endpoint(slow.id)), 1);
}

#[tokio::test]
async fn at_shutdown_a_due_game_still_waiting_for_a_slot_is_let_go_unplayed() {
    let config = RuntimeConfig {
        engine_call_timeout: std::time::Duration::from_secs(120),
        turn_concurrency: 1,
        ..test_config()
    };
    let w = World::with(config.clone()).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let scheduler = TurnScheduler::new(w.ports.clone(), config).with_cancellation(cancel.clone());
    let (first, _) = w.running_game(2).await;
    let (second, _) = w.running_game(2).await;
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    w.engine.on_next_turn(Box::pin(async move {
        held.await.ok();
    }));
    w.at(evening(1));
    // One slot: the pass claims both games, one turn begins and is held, the other game
    // waits for the slot; then shutdown begins.
    assert_eq!(scheduler.tick().await.unwrap().handled, 2);
    cancel.cancel();
    // The waiting game is let go at once, while the turn in progress still runs.
    let let_go = async {
        loop {
            let records = [w.record(first.id).await, w.record(second.id).await];
            if records.iter().any(|r| r.turn_lease.is_none()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let waited = std::time::Duration::from_secs(30);
    tokio::time::timeout(waited, let_go)
        .await
        .expect("let go before the held turn ends");
    release.send(()).unwrap();
    assert_eq!(scheduler.drain().await, 2);
    let records = [w.record(first.id).await, w.record(second.id).await];
    let played: Vec<_> = records.iter().filter(|r| r.current_turn == 1).collect();
    assert_eq!(played.len(), 1, "the turn in progress finished");
    let waited = records.iter().find(|r| r.current_turn == 0).unwrap();
    assert_eq!(waited.turn_lease, None, "let go, not left to lapse");
    assert_eq!(waited.next_turn_at, Some(evening(1)), "still due");
    assert!(!waited.skip_next_tick);
}

/// Orders mailed just before the deadline count by when they arrived: the scheduled turn
/// waits (up to its grace) while mail received before its deadline is still to be
/// processed, and runs once it is; mail received after the deadline holds nothing, and a
/// mail that is never processed holds the turn no longer than the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_turn_waits_for_the_mail_received_before_its_deadline() {
    use std::sync::Arc;
    use std::time::Duration;

    use galaxy_core::domain::lease::{ClaimRequest, Finish};
    use galaxy_core::domain::mail_in::{InboundEnd, InboundMail, InboundOutcome};
    use galaxy_core::domain::{InboundMailId, LeaseToken};
    use galaxy_core::ports::InboundMailStore;
    use galaxy_core::service::runtime::RuntimePorts;
    use galaxy_ports::memory::MemoryMailInStore;

    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let inbound = Arc::new(MemoryMailInStore::default());
    let scheduler = |grace| {
        let ports = RuntimePorts {
            inbound: Some(inbound.clone() as Arc<dyn InboundMailStore>),
            ..w.ports.clone()
        };
        let config = RuntimeConfig {
            turn_mail_grace: grace,
            ..w.config.clone()
        };
        Arc::new(TurnScheduler::new(ports, config))
    };
    let mail = |key: &str, received_at| {
        InboundMail::new(
            InboundMailId::from_uuid(uuid::Uuid::now_v7()),
            key.to_owned(),
            b"Subject: orders\r\n\r\nmove 1 2\r\n".to_vec(),
            Some("player@example.org".to_owned()),
            vec!["orders+x@example.org".to_owned()],
            received_at,
        )
    };

    // Received ten seconds before the deadline, not processed yet: the due turn waits.
    let just_in_time = mail("just-in-time", evening(1) - TimeDelta::seconds(10));
    inbound.insert_inbound(&just_in_time).await.unwrap();
    w.at(evening(1));
    let patient = scheduler(Duration::from_secs(60));
    let running = tokio::spawn({
        let patient = patient.clone();
        async move { patient.tick_and_drain().await }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        w.record(game.id).await.current_turn,
        0,
        "the turn ran before the mail was processed"
    );
    // The mail-in worker processes it: the turn runs.
    let token = LeaseToken::from_uuid(uuid::Uuid::now_v7());
    let claim = ClaimRequest {
        token,
        now: evening(1),
        lease: TimeDelta::minutes(1),
        limit: 10,
    };
    assert_eq!(inbound.claim_inbound(&claim).await.unwrap().len(), 1);
    let done = Finish {
        id: just_in_time.id,
        token,
        outcome: InboundEnd {
            outcome: InboundOutcome::Answered,
            detail: "orders taken".to_owned(),
        },
        at: evening(1),
    };
    inbound.finish_inbound(&done).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the turn ran once the mail was processed")
        .unwrap()
        .unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);

    // Received after the next deadline: it holds nothing.
    let late = mail("late", evening(2) + TimeDelta::seconds(1));
    inbound.insert_inbound(&late).await.unwrap();
    w.at(evening(2) + TimeDelta::seconds(2));
    tokio::time::timeout(Duration::from_secs(10), patient.tick_and_drain())
        .await
        .expect("mail received after the deadline held the turn")
        .unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 2);

    // Received before the deadline and never processed: the turn waits its grace, and
    // no longer.
    let stuck = mail("stuck", evening(3) - TimeDelta::seconds(1));
    inbound.insert_inbound(&stuck).await.unwrap();
    w.at(evening(3));
    let took = timed_turn(
        &scheduler(Duration::from_millis(400)),
        "a mail never processed held the turn past its grace",
    )
    .await;
    assert!(
        took >= Duration::from_millis(400),
        "the turn did not wait for the mail: {took:?}"
    );
    assert_eq!(w.record(game.id).await.current_turn, 3);

    // `stuck` was received before turn 3 was played: too late for turn 4 in any case, it
    // does not hold it.
    w.at(evening(4));
    let took = timed_turn(&patient, "mail from before the previous turn held the turn").await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(w.record(game.id).await.current_turn, 4);

    // Tried once and waiting to be tried again (its lease lapsed: an engine down, a
    // worker that died): it no longer holds a turn.
    let tried = mail("tried", evening(5) - TimeDelta::seconds(5));
    inbound.insert_inbound(&tried).await.unwrap();
    let token = LeaseToken::from_uuid(uuid::Uuid::now_v7());
    let claim = ClaimRequest {
        token,
        now: evening(5) - TimeDelta::seconds(4),
        lease: TimeDelta::seconds(2),
        limit: 10,
    };
    let claimed = inbound.claim_inbound(&claim).await.unwrap();
    assert!(claimed.iter().any(|m| m.id == tried.id), "{claimed:?}");
    w.at(evening(5));
    let took = timed_turn(&patient, "a mail tried already held the turn").await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(w.record(game.id).await.current_turn, 5);
}

/// How long one scheduler pass took to play its due turn; `what` names what went wrong
/// if it took over ten seconds.
async fn timed_turn(scheduler: &TurnScheduler, what: &str) -> std::time::Duration {
    let started = std::time::Instant::now();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        scheduler.tick_and_drain(),
    )
    .await
    .expect(what)
    .unwrap();
    started.elapsed()
}

/// A turn waiting for mail at shutdown does not run there: its claim goes back as it
/// stands, for the next scheduler, and the shutdown is not held for the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_waiting_for_mail_lets_its_claim_go_at_shutdown() {
    use std::sync::Arc;
    use std::time::Duration;

    use galaxy_core::domain::InboundMailId;
    use galaxy_core::domain::mail_in::InboundMail;
    use galaxy_core::ports::InboundMailStore;
    use galaxy_core::service::runtime::RuntimePorts;
    use galaxy_ports::memory::MemoryMailInStore;
    use tokio_util::sync::CancellationToken;

    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    let inbound = Arc::new(MemoryMailInStore::default());
    let waiting = InboundMail::new(
        InboundMailId::from_uuid(uuid::Uuid::now_v7()),
        "waiting".to_owned(),
        b"Subject: orders\r\n\r\nmove 1 2\r\n".to_vec(),
        Some("player@example.org".to_owned()),
        Vec::new(),
        evening(1) - TimeDelta::seconds(3),
    );
    inbound.insert_inbound(&waiting).await.unwrap();
    let cancel = CancellationToken::new();
    let ports = RuntimePorts {
        inbound: Some(inbound.clone() as Arc<dyn InboundMailStore>),
        ..w.ports.clone()
    };
    let config = RuntimeConfig {
        turn_mail_grace: Duration::from_secs(60),
        ..w.config.clone()
    };
    let scheduler = Arc::new(TurnScheduler::new(ports, config).with_cancellation(cancel.clone()));
    w.at(evening(1));
    let running = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.tick_and_drain().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the shutdown waited for the mail")
        .unwrap()
        .unwrap();
    let record = w.record(game.id).await;
    assert_eq!(record.current_turn, 0, "the turn ran at shutdown");
    assert_eq!(record.turn_lease, None, "the claim was not let go");
    assert_eq!(
        record.next_turn_at,
        Some(evening(1)),
        "the turn is still due"
    );
}
