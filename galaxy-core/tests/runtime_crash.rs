//! A turn, and a lobby transition, survive a failure at any of their writes: for each
//! write of a turn (and of a start, a finishing turn, a close, a cancellation) in turn, that write
//! fails, the turn scheduler or the lobby sweeper runs on, and in the end the game has
//! its right status and schedule, every notification and stop job exists exactly once and
//! no effects are left owed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use chrono::TimeDelta;
use galaxy_core::domain::game::{Game, GameStatus};
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::runtime::JobKind;
use galaxy_core::ports::TurnArchiveStore;
use galaxy_core::service::runtime::RuntimeConfig;
use galaxy_core::worker::Worker;
use world::*;

/// A running game whose first scheduled turn is played with the `k`-th write failing
/// (`0`: none), the game finishing with it when `finishing`. Returns the world, the game
/// and the writes the turn's tick took.
async fn turn_failing_at(k: usize, finishing: bool) -> (World, Game, Vec<String>) {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    if finishing {
        w.engine.finish_at(&w.endpoint(game.id), 1);
    }
    w.at(evening(1));
    w.faults.arm(k);
    // A failed write may fail the whole tick; what matters is what follows.
    let _ = w.scheduler.tick_and_drain().await;
    let writes = w.faults.writes();
    w.faults.disarm();
    // Later, past any lease the failure left: the scheduler replays or follows up.
    w.at(evening(1) + TimeDelta::minutes(30));
    for _ in 0..3 {
        w.scheduler.tick_and_drain().await.unwrap();
    }
    (w, game, writes)
}

/// What every case must end with, whichever write failed.
async fn assert_settled(w: &World, game: &Game, finishing: bool, case: &str) {
    let stored = w.game(game.id).await;
    let record = w.record(game.id).await;
    assert_eq!(record.current_turn, 1, "{case}: the turn is recorded");
    assert_eq!(
        w.engine.turn_of(&w.endpoint(game.id)),
        1,
        "{case}: the engine ran one turn"
    );
    assert!(
        w.play
            .unannounced_turns(None, 100)
            .await
            .unwrap()
            .is_empty(),
        "{case}: no turn's effects are owed"
    );
    let completed = w.notes.keyed(&format!("game:{}:turn:1", game.id));
    let over = w.notes.keyed(&format!("game:{}:finished", game.id));
    let stops = w
        .job_list(game.id)
        .await
        .into_iter()
        .filter(|j| j.kind == JobKind::Stop)
        .count();
    if finishing {
        assert_eq!(stored.status, GameStatus::Finished, "{case}");
        assert_eq!(record.next_turn_at, None, "{case}: no turn is scheduled");
        assert_eq!(over.len(), 1, "{case}: game_finished exactly once");
        assert_eq!(over[0].kind, NotificationKind::GameFinished, "{case}");
        assert_eq!(over[0].payload["turn"], 1, "{case}");
        assert!(
            completed.is_empty(),
            "{case}: no turn mail for the last turn"
        );
        assert_eq!(stops, 1, "{case}: the container is stopped");
    } else {
        assert_eq!(stored.status, GameStatus::Running, "{case}");
        assert_eq!(record.next_turn_at, Some(evening(2)), "{case}: next turn");
        assert_eq!(completed.len(), 1, "{case}: turn_completed exactly once");
        assert_eq!(completed[0].payload["turn"], 1, "{case}");
        assert_eq!(
            completed[0].payload["next_turn_at"],
            serde_json::json!(evening(2)),
            "{case}: the mail names the next deadline"
        );
        assert!(over.is_empty(), "{case}: the game goes on");
        assert_eq!(stops, 0, "{case}: the container stays");
    }
}

/// Runs the clean turn to count its writes, then one case per write.
async fn every_write_fails_in_turn(finishing: bool) {
    let (w, game, writes) = turn_failing_at(0, finishing).await;
    assert_settled(&w, &game, finishing, "no fault").await;
    assert!(
        writes.len() >= 4,
        "the turn's writes are counted: {writes:?}"
    );
    for k in 1..=writes.len() {
        let (w, game, _) = turn_failing_at(k, finishing).await;
        let case = format!("write {k} ({}) failed", writes[k - 1]);
        assert_settled(&w, &game, finishing, &case).await;
    }
}

#[tokio::test]
async fn a_turn_survives_a_failure_at_each_of_its_writes() {
    every_write_fails_in_turn(false).await;
}

#[tokio::test]
async fn a_finishing_turn_survives_a_failure_at_each_of_its_writes() {
    every_write_fails_in_turn(true).await;
}

#[tokio::test]
async fn an_owed_announcement_waits_until_the_turn_is_recorded() {
    let (_, _, writes) = turn_failing_at(0, false).await;
    let complete = writes.iter().position(|s| s == "complete_turn").unwrap() + 1;
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    w.at(evening(1));
    // The turn is archived, then recording it fails: the claim holds until its lease
    // lapses, and the follow-up pass must not announce a turn the record does not have.
    w.faults.arm(complete);
    let _ = w.scheduler.tick_and_drain().await;
    w.faults.disarm();
    w.at(evening(1) + TimeDelta::minutes(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 0);
    assert_eq!(w.play.unannounced_turns(None, 10).await.unwrap().len(), 1);
    assert!(
        w.notes.of(NotificationKind::TurnCompleted).is_empty(),
        "no mail for a turn not yet recorded"
    );
    w.at(evening(1) + TimeDelta::minutes(10));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1, "replayed");
    assert_eq!(w.notes.of(NotificationKind::TurnCompleted).len(), 1);
    assert!(w.play.unannounced_turns(None, 10).await.unwrap().is_empty());
}

/// The lobby's sweeper over the world's lobby.
fn sweeper(w: &World) -> galaxy_core::service::lobby::LobbySweeper {
    galaxy_core::service::lobby::LobbySweeper::new(w.lobby.clone())
}

/// Runs `call` with the `k`-th write failing (`0`: none); a call that failed (its own
/// change did not commit) is retried once faults are off, as its user would. Then the
/// sweeper runs. Returns the writes the first call took.
async fn lobby_call_failing_at<F, Fut>(w: &World, k: usize, call: F) -> Vec<String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    w.faults.arm(k);
    let succeeded = call().await;
    let writes = w.faults.writes();
    w.faults.disarm();
    if !succeeded {
        assert!(call().await, "the retried call succeeds");
    }
    let sweeper = sweeper(w);
    for _ in 0..3 {
        sweeper.tick().await.unwrap();
    }
    writes
}

/// An enrollment-open game with two approved players; returns it and its host.
async fn open_game(w: &World) -> (Game, galaxy_core::service::Actor) {
    let host = w.user().await;
    let new = w.new_game("Crash Cup");
    let game = w.lobby.create_game(host, new).await.unwrap();
    w.lobby.open(host, game.id).await.unwrap();
    for n in 0..2 {
        let player = w.user().await;
        let race = format!("Crashers {n}");
        let app = w.lobby.apply(player, game.id, &race).await.unwrap();
        w.lobby.approve(host, game.id, app.id).await.unwrap();
    }
    (w.game(game.id).await, host)
}

/// What every lobby case must end with: the status, the one notification under `key`,
/// `stops` stop jobs, and no transition owing effects.
async fn assert_lobby_settled(
    w: &World,
    game: &Game,
    status: GameStatus,
    key: &str,
    stops: usize,
    case: &str,
) {
    assert_eq!(w.game(game.id).await.status, status, "{case}");
    assert_eq!(w.notes.keyed(key).len(), 1, "{case}: {key} exactly once");
    let stop_jobs = w
        .job_list(game.id)
        .await
        .into_iter()
        .filter(|j| j.kind == JobKind::Stop)
        .count();
    assert_eq!(stop_jobs, stops, "{case}: stop jobs");
    use galaxy_core::ports::GameStore;
    assert!(
        w.store
            .unannounced_transitions(100)
            .await
            .unwrap()
            .is_empty(),
        "{case}: no transition owes effects"
    );
}

#[tokio::test]
async fn closing_enrollment_survives_a_failure_at_each_of_its_writes() {
    let mut k = 0;
    let mut total = usize::MAX;
    while k <= total {
        let w = World::new().await;
        let (game, host) = open_game(&w).await;
        let writes = lobby_call_failing_at(&w, k, || async {
            w.lobby.close(host, game.id).await.is_ok()
        })
        .await;
        if k == 0 {
            total = writes.len();
            assert!(total >= 2, "the close's writes are counted: {writes:?}");
        }
        let case = format!("write {k} of {writes:?} failed");
        let key = format!("game:{}:enrollment_closed", game.id);
        assert_lobby_settled(&w, &game, GameStatus::EnrollmentClosed, &key, 0, &case).await;
        k += 1;
    }
}

#[tokio::test]
async fn cancelling_a_running_game_survives_a_failure_at_each_of_its_writes() {
    let mut k = 0;
    let mut total = usize::MAX;
    while k <= total {
        let w = World::new().await;
        let (game, _) = w.running_game(2).await;
        let admin = w.admin;
        let writes = lobby_call_failing_at(&w, k, || async {
            w.lobby.cancel(admin, game.id).await.is_ok()
        })
        .await;
        if k == 0 {
            total = writes.len();
            assert!(total >= 3, "the cancel's writes are counted: {writes:?}");
        }
        let case = format!("write {k} of {writes:?} failed");
        let key = format!("game:{}:cancelled", game.id);
        assert_lobby_settled(&w, &game, GameStatus::Cancelled, &key, 1, &case).await;
        k += 1;
    }
}

/// A game whose start job runs with the `k`-th write failing (`0`: none); then the job
/// pool and the turn scheduler run on for a while (past any lease). Returns the world,
/// the game and the writes the first pass took.
async fn start_failing_at(k: usize) -> (World, Game, Vec<String>) {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    let begin = w.now();
    w.faults.arm(k);
    let _ = w.jobs.tick().await;
    w.jobs.drain().await;
    let writes = w.faults.writes();
    w.faults.disarm();
    for step in 1..=4 {
        w.at(begin + TimeDelta::minutes(30 * step));
        w.jobs.tick().await.unwrap();
        w.jobs.drain().await;
        w.scheduler.tick_and_drain().await.unwrap();
    }
    (w, game, writes)
}

#[tokio::test]
async fn a_start_survives_a_failure_at_each_of_its_writes() {
    let (_, _, writes) = start_failing_at(0).await;
    assert!(
        writes.len() >= 5,
        "the start's writes are counted: {writes:?}"
    );
    for k in 0..=writes.len() {
        let (w, game, _) = start_failing_at(k).await;
        let failed = k.checked_sub(1).map_or("nothing", |i| writes[i].as_str());
        let case = format!("write {k} ({failed}) failed");
        let started = w.notes.keyed(&format!("game:{}:started", game.id));
        let status = w.game(game.id).await.status;
        assert!(
            w.play
                .unannounced_turns(None, 100)
                .await
                .unwrap()
                .is_empty(),
            "{case}: no turn's effects are owed"
        );
        if failed == "set_binding" {
            // The orphan path: the start fails for good, by design.
            assert_eq!(status, GameStatus::StartFailed, "{case}");
            assert!(started.is_empty(), "{case}: no game_started");
            continue;
        }
        assert_eq!(status, GameStatus::Running, "{case}");
        assert_eq!(started.len(), 1, "{case}: game_started exactly once");
        assert_eq!(
            w.record(game.id).await.next_turn_at,
            Some(evening(1)),
            "{case}: the first turn is scheduled"
        );
    }
}

#[tokio::test]
async fn application_notifications_survive_a_failed_notification() {
    for k in 0..=1 {
        let w = World::new().await;
        let (game, host) = open_game(&w).await;
        let (accepted, refused) = (w.user().await, w.user().await);
        w.faults.arm(k);
        let a = w.lobby.apply(accepted, game.id, "Keepers").await.unwrap();
        w.faults.arm(k);
        let b = w.lobby.apply(refused, game.id, "Losers").await.unwrap();
        w.faults.arm(k);
        w.lobby.approve(host, game.id, a.id).await.unwrap();
        w.faults.arm(k);
        w.lobby.reject(host, game.id, b.id).await.unwrap();
        w.faults.disarm();
        sweeper(&w).run_until_idle(5).await.unwrap();
        for (application, applicant) in [(&a, accepted), (&b, refused)] {
            let key = format!(
                "application:{}:{}:submitted:{}:0",
                game.id,
                applicant.user_id,
                application.created_at.date_naive()
            );
            assert_eq!(w.notes.keyed(&key).len(), 1, "fault {k}: {key} once");
        }
        for (id, event) in [(a.id, "approved"), (b.id, "rejected")] {
            let key = format!("application:{id}:{event}");
            assert_eq!(w.notes.keyed(&key).len(), 1, "fault {k}: {key} once");
        }
        use galaxy_core::ports::ApplicationStore;
        assert!(
            w.store
                .unannounced_applications(100)
                .await
                .unwrap()
                .is_empty(),
            "fault {k}: nothing owed"
        );
    }
}

#[tokio::test]
async fn a_close_still_owed_when_the_game_is_cancelled_mails_no_starts_soon() {
    let w = World::new().await;
    let (game, host) = open_game(&w).await;
    // The close commits; its mail fails (the `notify` write): the effect stays owed.
    w.faults.arm(0);
    w.lobby.close(host, game.id).await.unwrap();
    let at = w
        .faults
        .writes()
        .iter()
        .position(|write| write.starts_with("notify"))
        .expect("the close mails")
        + 1;
    let w = World::new().await;
    let (game, host) = open_game(&w).await;
    w.faults.arm(at);
    let _ = w.lobby.close(host, game.id).await;
    w.faults.disarm();
    assert_eq!(w.game(game.id).await.status, GameStatus::EnrollmentClosed);
    // The host cancels before the sweeper completes the close.
    w.lobby.cancel(host, game.id).await.unwrap();
    let sweeper = sweeper(&w);
    for _ in 0..3 {
        sweeper.tick().await.unwrap();
    }
    let key = format!("game:{}:enrollment_closed", game.id);
    assert!(
        w.notes.keyed(&key).is_empty(),
        "no 'starts soon' after the cancellation"
    );
    assert_eq!(
        w.notes.keyed(&format!("game:{}:cancelled", game.id)).len(),
        1
    );
    use galaxy_core::ports::GameStore;
    assert!(
        w.store
            .unannounced_transitions(100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn owed_turns_that_must_wait_hold_up_no_other_announcement() {
    // Pages of one owed turn: the follow-up must page past the one that waits.
    let w = World::with(RuntimeConfig {
        turn_batch: 1,
        ..test_config()
    })
    .await;
    let (waits, _) = w.running_game(2).await;
    let later =
        |new: &mut galaxy_core::service::lobby::NewGame| new.turn_schedule = "5 18 * * *".into();
    let (owed, _) = w.running_game_with(2, later).await;
    // 18:00: a turn archived, its record not written, and its game paused before the
    // replay: its announcement waits for the resume.
    w.at(evening(1));
    w.faults.fail_next("complete_turn", 1);
    let _ = w.scheduler.tick_and_drain().await;
    w.service.pause(w.admin, waits.id).await.unwrap();
    // 18:05: another game's turn is played, and its mail is not raised.
    w.at(evening(1) + TimeDelta::minutes(5));
    w.faults.fail_next("notify turn_completed", 1);
    w.scheduler.tick_and_drain().await.unwrap();
    w.faults.disarm();
    assert_eq!(w.record(owed.id).await.current_turn, 1);
    assert_eq!(w.play.unannounced_turns(None, 10).await.unwrap().len(), 2);
    // The follow-up of the next pass.
    w.at(evening(1) + TimeDelta::minutes(6));
    w.scheduler.tick_and_drain().await.unwrap();
    let mailed = w.notes.of(NotificationKind::TurnCompleted);
    assert!(
        mailed
            .iter()
            .any(|n| n.payload["game_id"] == owed.id.to_string()),
        "the owed turn is announced: {mailed:?}"
    );
    let left = w.play.unannounced_turns(None, 10).await.unwrap();
    assert_eq!(left.len(), 1, "only the paused game's turn waits");
    assert_eq!(left[0].game_id, waits.id);
}

#[tokio::test]
async fn the_follow_up_goes_on_where_the_last_pass_stopped() {
    // Pages of one, and five turns that must wait ahead of the owed one: more than one
    // pass reads, so the second must go on from where the first stopped.
    let w = World::with(RuntimeConfig {
        turn_batch: 1,
        ..test_config()
    })
    .await;
    let mut waiting = Vec::new();
    for _ in 0..5 {
        waiting.push(w.running_game(2).await.0);
    }
    let later =
        |new: &mut galaxy_core::service::lobby::NewGame| new.turn_schedule = "5 18 * * *".into();
    let (owed, _) = w.running_game_with(2, later).await;
    w.at(evening(1));
    w.faults.fail_next("complete_turn", waiting.len());
    while w.scheduler.tick_and_drain().await.unwrap().handled > 0 {}
    w.faults.disarm();
    for game in &waiting {
        w.service.pause(w.admin, game.id).await.unwrap();
    }
    assert_eq!(w.play.unannounced_turns(None, 10).await.unwrap().len(), 5);
    // 18:05: a pass reads four of them (its bound); the owed turn's mail is not raised.
    w.at(evening(1) + TimeDelta::minutes(5));
    w.faults.fail_next("notify turn_completed", 1);
    w.scheduler.tick_and_drain().await.unwrap();
    w.faults.disarm();
    // 18:06: the next pass reads the fifth, then the owed turn.
    w.at(evening(1) + TimeDelta::minutes(6));
    w.scheduler.tick_and_drain().await.unwrap();
    let mailed = w.notes.of(NotificationKind::TurnCompleted);
    assert!(
        mailed
            .iter()
            .any(|n| n.payload["game_id"] == owed.id.to_string()),
        "the owed turn is announced: {mailed:?}"
    );
    assert_eq!(w.play.unannounced_turns(None, 10).await.unwrap().len(), 5);
}
