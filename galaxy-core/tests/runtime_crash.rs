//! A turn survives a failure at any of its writes: for each write of a turn (and of a
//! finishing turn) in turn, that write fails, the turn scheduler runs on, and in the end
//! the game has its right status and schedule, every notification exists exactly once
//! and no turn's effects are left owed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use chrono::TimeDelta;
use galaxy_core::domain::game::{Game, GameStatus};
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::runtime::JobKind;
use galaxy_core::ports::TurnArchiveStore;
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
    let _ = w.scheduler.tick().await;
    let writes = w.faults.writes();
    w.faults.disarm();
    // Later, past any lease the failure left: the scheduler replays or follows up.
    w.at(evening(1) + TimeDelta::minutes(30));
    for _ in 0..3 {
        w.scheduler.tick().await.unwrap();
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
        w.play.unannounced_turns(100).await.unwrap().is_empty(),
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
    let _ = w.scheduler.tick().await;
    w.faults.disarm();
    w.at(evening(1) + TimeDelta::minutes(1));
    w.scheduler.tick().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 0);
    assert_eq!(w.play.unannounced_turns(10).await.unwrap().len(), 1);
    assert!(
        w.notes.of(NotificationKind::TurnCompleted).is_empty(),
        "no mail for a turn not yet recorded"
    );
    w.at(evening(1) + TimeDelta::minutes(10));
    w.scheduler.tick().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1, "replayed");
    assert_eq!(w.notes.of(NotificationKind::TurnCompleted).len(), 1);
    assert!(w.play.unannounced_turns(10).await.unwrap().is_empty());
}
