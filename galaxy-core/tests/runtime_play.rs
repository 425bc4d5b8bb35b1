//! The record of play: every turn's reports archived (turn 0 at the start) before the turn
//! is recorded, crash-safe and retried; mails carry each player's own report; reports,
//! the reveal, orders read-back, "my games" and engine refusals keep their meaning.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use galaxy_core::domain::game::GameStatus;
use galaxy_core::domain::health::HealthEventKind;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::ports::{Clock, OrdersStore, TurnArchiveStore};
use galaxy_core::service::runtime::{
    MessageTo, MyGamesFilter, MyGamesRole, RuntimeError, StatusReason,
};
use galaxy_core::service::templates::recipient_payload;
use galaxy_core::service::{Actor, ServiceError};
use galaxy_core::worker::Worker;
use serde_json::json;
use world::*;

fn code<T: std::fmt::Debug>(result: Result<T, RuntimeError>) -> &'static str {
    result.unwrap_err().code()
}

#[tokio::test]
async fn turn_zero_is_archived_at_the_start_and_mailed_to_each_player() {
    let w = World::new().await;
    let (game, seats) = w.running_game(3).await;
    let turns = w.play.list_turns(game.id).await.unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].turn, 0);
    for (player, race) in &seats.0 {
        let report = w.play.get_report(game.id, 0, race).await.unwrap();
        assert_eq!(
            report.text(),
            Some(FakeEngine::report_text(race, 0).as_str())
        );
        let started = w.notes.of(NotificationKind::GameStarted);
        assert_eq!(started.len(), 1);
        let mine = recipient_payload(&started[0].payload, player.user_id);
        assert_eq!(mine["report_text"], FakeEngine::report_text(race, 0));
        assert_eq!(mine["race"], race.as_str());
        assert_eq!(mine["turn"], 1, "the first orders are for turn 1");
        assert_eq!(mine["report_turn"], 0, "the report is turn 0's");
        assert_eq!(mine["deadline"], "2030-01-01 18:00 UTC");
    }
    // The host plays no race: no race and no report (the templates word them), never
    // another player's.
    let started = &w.notes.of(NotificationKind::GameStarted)[0];
    let host = recipient_payload(&started.payload, game.host);
    assert_eq!(host["report_text"], serde_json::Value::Null);
    assert_eq!(host["race"], serde_json::Value::Null);
    let progress = w
        .service
        .progress(&w.game(game.id).await, None)
        .await
        .unwrap();
    assert_eq!(progress.current_turn, Some(0));
    assert_eq!(progress.next_turn_at, Some(evening(1)));
}

#[tokio::test]
async fn every_turn_is_archived_before_it_is_recorded_and_each_player_gets_their_own_report() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    let turn = w.notes.of(NotificationKind::TurnCompleted);
    assert_eq!(turn.len(), 1);
    for (player, race) in &seats.0 {
        let mine = recipient_payload(&turn[0].payload, player.user_id);
        assert_eq!(mine["report_text"], FakeEngine::report_text(race, 1));
        assert_eq!(mine["next_turn"], 2);
        assert_eq!(mine["report_turn"], 1);
        assert_eq!(mine["deadline"], "2030-01-02 18:00 UTC");
        // No other player's report leaks into this player's payload.
        let other = &seats.0.iter().find(|(p, _)| p != player).unwrap().1;
        assert!(
            !mine
                .to_string()
                .contains(&FakeEngine::report_text(other, 1))
        );
    }
    let turns = w.play.list_turns(game.id).await.unwrap();
    assert_eq!(turns.iter().map(|t| t.turn).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(
        turns[1].standings[0].race,
        w.engine.leader(&w.endpoint(game.id))
    );
}

#[tokio::test]
async fn a_crash_between_the_engines_answer_and_the_archive_resumes_without_a_second_turn() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let endpoint = w.endpoint(game.id);
    w.at(evening(1));
    w.archive.failures.store(1, Ordering::SeqCst);
    w.scheduler.tick_and_drain().await.unwrap();
    // The engine ran turn 1; the platform recorded nothing and told nobody.
    assert_eq!(w.engine.turn_of(&endpoint), 1);
    assert_eq!(w.record(game.id).await.current_turn, 0);
    assert_eq!(w.play.latest_turn(game.id).await.unwrap().unwrap().turn, 0);
    assert!(w.notes.of(NotificationKind::TurnCompleted).is_empty());
    assert_eq!(
        w.game(game.id).await.status,
        GameStatus::Running,
        "a store fault pauses nothing"
    );

    // Within the lease nobody takes the turn over; after it, the turn is resumed.
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 0);
    w.at(evening(1) + TimeDelta::minutes(6));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(
        w.engine.turn_of(&endpoint),
        1,
        "the engine ran no second turn"
    );
    assert_eq!(w.record(game.id).await.current_turn, 1);
    let archived = w.play.list_turns(game.id).await.unwrap();
    assert_eq!(archived.iter().map(|t| t.turn).collect::<Vec<_>>(), [0, 1]);
    for (_, race) in &seats.0 {
        assert!(w.play.get_report(game.id, 1, race).await.is_ok());
    }
    assert_eq!(w.notes.of(NotificationKind::TurnCompleted).len(), 1);
}

#[tokio::test]
async fn a_crash_before_turn_zero_is_archived_replays_the_start() {
    let w = World::new().await;
    let (game, _) = w.starting_game(2).await;
    w.archive.failures.store(1, Ordering::SeqCst);
    w.job_pass().await;
    assert_eq!(w.game(game.id).await.status, GameStatus::Starting);
    assert!(w.play.list_turns(game.id).await.unwrap().is_empty());
    w.at(w.clock.now() + TimeDelta::minutes(1));
    w.jobs.run_until_idle(10).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Running);
    assert_eq!(w.play.list_turns(game.id).await.unwrap().len(), 1);
    assert_eq!(w.notes.of(NotificationKind::GameStarted).len(), 1);
}

#[tokio::test]
async fn reports_are_retried_and_a_missing_report_fails_the_turn_loudly() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // Three failures are within the four tries: the turn goes through.
    w.engine.fail_reports(3);
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);

    // An engine that never gives the report: a health event, the game paused, no gap.
    w.engine.fail_reports(1000);
    w.at(evening(2));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(
        w.record(game.id).await.current_turn,
        1,
        "turn 2 is not recorded"
    );
    assert_eq!(w.play.latest_turn(game.id).await.unwrap().unwrap().turn, 1);
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    let events = w.health(game.id).await;
    assert_eq!(events[0].kind, HealthEventKind::TurnFailed);
    assert!(
        events[0].detail["error"]
            .as_str()
            .unwrap()
            .contains("report"),
        "{:?}",
        events[0]
    );
    assert_eq!(w.notes.of(NotificationKind::RuntimeHealthAlert).len(), 1);
}

#[tokio::test]
async fn an_oversized_report_is_refused_not_archived() {
    let config = galaxy_core::service::runtime::RuntimeConfig {
        max_report_bytes: 40,
        ..test_config()
    };
    let w = World::with(config).await;
    let (game, _) = w.starting_game(2).await;
    w.jobs.run_until_idle(10).await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    assert!(w.reason(game.id).await.unwrap().contains("at most 40"));
    assert!(w.play.list_turns(game.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_finish_archives_the_last_turn_and_mails_the_standings_and_final_reports() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    w.engine.finish_at(&w.endpoint(game.id), 1);
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Finished);
    assert!(
        w.notes.of(NotificationKind::TurnCompleted).is_empty(),
        "one game-over mail only"
    );
    let over = w.notes.of(NotificationKind::GameFinished);
    assert_eq!(over.len(), 1);
    let leader = w.engine.leader(&w.endpoint(game.id));
    for (player, race) in &seats.0 {
        let mine = recipient_payload(&over[0].payload, player.user_id);
        assert_eq!(mine["report_text"], FakeEngine::report_text(race, 1));
        let table = mine["standings_table"].as_str().unwrap();
        assert!(table.contains(&leader) && !table.contains('{'), "{table}");
    }
    let progress = w
        .service
        .progress(&w.game(game.id).await, None)
        .await
        .unwrap();
    let result = progress.result.unwrap();
    assert_eq!(result.winner, Some(leader.clone()));
    assert_eq!(result.finished_at, evening(1));
    assert_eq!(progress.current_turn, Some(1));
    assert_eq!(progress.next_turn_at, None);
    let reason = progress.status_reason.unwrap();
    let won = format!("won by {leader}");
    assert!(reason.text().contains(&won), "{reason:?}");
}

#[tokio::test]
async fn reports_are_read_from_the_archive_with_the_reveal_after_the_finish() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, alice_race) = seats.0[0].clone();
    let bob_race = seats.0[1].1.clone();
    // Before the finish: own report only, other races 404, future turns `turn_not_played`.
    let own = w.service.report(alice, game.id, 0, None).await.unwrap();
    assert_eq!(own.race, alice_race);
    let upper = alice_race.to_uppercase();
    assert_eq!(
        w.service
            .report(alice, game.id, 0, Some(&upper))
            .await
            .unwrap()
            .race,
        alice_race
    );
    assert_eq!(
        code(w.service.report(alice, game.id, 0, Some(&bob_race)).await),
        "not_found"
    );
    assert_eq!(
        code(w.service.report(alice, game.id, 1, None).await),
        "turn_not_played"
    );

    w.engine.finish_at(&w.endpoint(game.id), 1);
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    w.jobs.run_until_idle(10).await.unwrap();
    // The engine is gone; the archive answers, every race's report revealed.
    let bobs = w
        .service
        .report(alice, game.id, 1, Some(&bob_race))
        .await
        .unwrap();
    assert_eq!(
        bobs.text(),
        Some(FakeEngine::report_text(&bob_race, 1).as_str())
    );
    assert_eq!(
        code(w.service.report(alice, game.id, 2, None).await),
        "turn_not_played"
    );
    assert_eq!(
        code(w.service.report(alice, game.id, 1, Some("Nobody")).await),
        "not_found"
    );
    let stranger = w.user().await;
    assert_eq!(
        code(w.service.report(stranger, game.id, 1, None).await),
        "not_found"
    );
}

#[tokio::test]
async fn the_host_may_keep_the_reports_secret_after_the_finish() {
    let w = World::new().await;
    let (game, seats) = w
        .closed_game_with(2, |new| new.reveal_reports_after_finish = false)
        .await;
    w.lobby.start(w.admin, game.id).await.unwrap();
    w.jobs.run_until_idle(10).await.unwrap();
    w.engine.finish_at(&w.endpoint(game.id), 1);
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Finished);
    let (alice, _) = seats.0[0].clone();
    let bob_race = seats.0[1].1.clone();
    assert_eq!(
        code(w.service.report(alice, game.id, 1, Some(&bob_race)).await),
        "not_found"
    );
    assert!(w.service.report(alice, game.id, 1, None).await.is_ok());
}

/// Orders from a page are taken only over the submission the page showed: a form sent
/// again (Reload, Back, a second tab) does not replace orders sent since, and of two
/// forms of one page sent at once, one is taken.
#[tokio::test]
async fn orders_from_a_page_are_taken_only_over_what_it_showed() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, _) = seats.0[0].clone();
    // A page showing no orders yet: taken.
    w.service
        .submit_orders_over(alice, game.id, 1, &json!(["page"]), None)
        .await
        .unwrap();
    let shown = w.service.orders(alice, game.id, 1).await.unwrap();
    let shown = shown.latest.unwrap().id;
    // The same form sent again (Reload after sending): the verdict it got, nothing new
    // recorded.
    let again = w
        .service
        .submit_orders_over(alice, game.id, 1, &json!(["page"]), None)
        .await
        .unwrap();
    assert!(again.accepted);
    let read = w.service.orders(alice, game.id, 1).await.unwrap();
    assert_eq!((read.latest.unwrap().id, read.history.len()), (shown, 0));
    // The form with other orders (edited after Back): refused, the orders in force stay.
    let edited = w
        .service
        .submit_orders_over(alice, game.id, 1, &json!(["edited"]), None)
        .await
        .unwrap_err();
    assert_eq!(edited.code(), "orders_superseded");
    // Orders sent since (the API, a mail, another tab): a page that showed the earlier
    // ones no longer replaces them.
    w.service
        .submit_orders(alice, game.id, 1, &json!(["api"]))
        .await
        .unwrap();
    let stale = w
        .service
        .submit_orders_over(alice, game.id, 1, &json!(["stale page"]), Some(shown))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), "orders_superseded");
    let read = w.service.orders(alice, game.id, 1).await.unwrap();
    assert_eq!(read.latest.as_ref().unwrap().orders, json!(["api"]));
    // Two forms of one page sent at once: one is taken, the other refused.
    let current = read.latest.unwrap().id;
    let sends = (0..6).map(|i| {
        let service = w.service.clone();
        async move {
            service
                .submit_orders_over(
                    alice,
                    game.id,
                    1,
                    &json!([format!("tab {i}")]),
                    Some(current),
                )
                .await
        }
    });
    let results = futures::future::join_all(sends).await;
    let taken = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(taken, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.code() == "orders_superseded"),
        "{results:?}"
    );
}

#[tokio::test]
async fn orders_are_recorded_read_back_and_make_a_race_ready() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let (alice, race) = seats.0[0].clone();
    let bob = seats.0[1].0;
    w.service
        .submit_orders(alice, game.id, 1, &json!(["a"]))
        .await
        .unwrap();
    w.engine.refuse_orders(Some((
        409,
        r#"{"error": "orders are for turn 1, this is turn 2"}"#,
    )));
    let refused = w
        .service
        .submit_orders(alice, game.id, 2, &json!(["b"]))
        .await;
    let error = refused.unwrap_err();
    assert_eq!(
        (error.kind(), error.code()),
        (galaxy_core::service::ErrorKind::Conflict, "engine_conflict")
    );
    assert_eq!(
        error.to_string(),
        "the engine refused the request: orders are for turn 1, this is turn 2"
    );
    w.engine.refuse_orders(None);
    w.service
        .submit_orders(alice, game.id, 1, &json!(["c"]))
        .await
        .unwrap();

    let read = w.service.orders(alice, game.id, 1).await.unwrap();
    assert_eq!(read.race, race);
    assert_eq!(read.latest.as_ref().unwrap().orders, json!(["c"]));
    assert_eq!(read.history.len(), 1);
    assert_eq!(read.history[0].orders, json!(["a"]));
    let refusal = w.service.orders(alice, game.id, 2).await.unwrap();
    assert!(
        !refusal.latest.as_ref().unwrap().accepted,
        "a refusal is recorded too"
    );
    assert_eq!(
        w.play
            .races_with_orders_in(game.id, 1, galaxy_core::ports::OrdersCount::Latest)
            .await
            .unwrap(),
        vec![race.clone()]
    );
    assert!(
        w.service
            .orders(bob, game.id, 1)
            .await
            .unwrap()
            .latest
            .is_none()
    );

    let mine = w.all_my_games(alice).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].race.as_deref(), mine[0].orders_in),
        (Some(race.as_str()), Some(true))
    );
    let players_only = MyGamesFilter {
        role: Some(MyGamesRole::Player),
        ..MyGamesFilter::default()
    };
    let first = PageRequest::default();
    let bobs = w
        .service
        .my_games(bob, players_only, &first)
        .await
        .unwrap()
        .items;
    assert_eq!(bobs[0].orders_in, Some(false));
    let host = galaxy_core::service::Actor {
        user_id: game.host,
        is_admin: false,
    };
    let hosted = w.all_my_games(host).await;
    assert_eq!(
        (hosted.len(), hosted[0].hosting, hosted[0].race.clone()),
        (1, true, None)
    );
    assert!(
        w.service
            .my_games(host, players_only, &first)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn engine_refusals_become_client_errors_with_a_clean_message() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let alice = seats.0[0].0;
    let cases = [
        (
            404,
            r#"{"error": "no race \"X\" in this game"}"#,
            "engine_not_found",
            "no race \"X\" in this game",
        ),
        (
            422,
            r#"{"error": "bad orders", "details": ["fleet 3 unknown", "planet 9 not yours"]}"#,
            "engine_refused",
            "bad orders: fleet 3 unknown; planet 9 not yours",
        ),
        (
            400,
            "plain \u{202E}text\u{0007} reason",
            "engine_refused",
            "plain text  reason",
        ),
    ];
    for (status, body, expected_code, message) in cases {
        w.engine.refuse_orders(Some((status, body)));
        let error = w
            .service
            .submit_orders(alice, game.id, 1, &json!([]))
            .await
            .unwrap_err();
        assert_eq!(error.code(), expected_code, "{status}");
        assert_eq!(
            error.to_string(),
            format!("the engine refused the request: {message}")
        );
    }
    let long = "y".repeat(5000);
    w.engine.refuse_orders(Some((422, long.as_str())));
    let error = w
        .service
        .submit_orders(alice, game.id, 1, &json!([]))
        .await
        .unwrap_err();
    assert!(error.to_string().len() < 600, "bounded");
    // 5xx stays "unavailable".
    w.engine.refuse_orders(Some((502, "bad gateway")));
    let error = w
        .service
        .submit_orders(alice, game.id, 1, &json!([]))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "engine_unavailable");
}

#[tokio::test]
async fn a_refused_init_fails_the_start_with_the_engines_whole_reason() {
    let w = World::new().await;
    let (game, seats) = w.starting_game(2).await;
    let body = r#"{"error": "invalid\u202e settings", "details": ["settings.max_turns must be in 1..=1000, got 0"]}"#;
    w.engine.refuse_init(Some((422, body)));
    w.jobs.run_until_idle(10).await.unwrap();
    let failed = w.game(game.id).await;
    assert_eq!(failed.status, GameStatus::StartFailed);
    // The host (to fix the settings) and admins read the engine's words.
    let host = Actor {
        user_id: failed.host,
        is_admin: false,
    };
    for viewer in [host, w.admin] {
        let progress = w.service.progress(&failed, Some(&viewer)).await.unwrap();
        let Some(StatusReason::Stated(reason)) = progress.status_reason else {
            panic!("{viewer:?} sees {:?}", progress.status_reason);
        };
        assert!(
            reason.contains("invalid settings: settings.max_turns must be in 1..=1000"),
            "{reason}"
        );
        assert!(!reason.contains('\u{202E}'), "no bidi override: {reason:?}");
    }
    // A player and an anonymous visitor learn that the engine failed, not its output.
    let player = seats.0[0].0;
    assert_ne!(player.user_id, failed.host);
    for viewer in [Some(&player), None] {
        let progress = w.service.progress(&failed, viewer).await.unwrap();
        assert_eq!(progress.status_reason, Some(StatusReason::EngineFailure));
    }
    let notes = w.notes.of(NotificationKind::GameStartFailed);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].recipients.contains(&game.host));
    assert!(
        notes[0].payload["reason"]
            .as_str()
            .unwrap()
            .contains("max_turns")
    );
}

#[tokio::test]
async fn the_games_engine_settings_reach_init_over_the_operators_defaults() {
    let config = galaxy_core::service::runtime::RuntimeConfig {
        engine_settings: json!({"max_turns": 10, "scan_range": 7}),
        ..test_config()
    };
    let w = World::with(config).await;
    let (game, _) = w
        .closed_game_with(2, |new| new.engine_settings = json!({"max_turns": 3}))
        .await;
    w.lobby.start(w.admin, game.id).await.unwrap();
    w.jobs.run_until_idle(10).await.unwrap();
    let (_, init) = w.engine.inits().pop().unwrap();
    assert_eq!(init.settings, json!({"max_turns": 3, "scan_range": 7}));
}

/// Every notification kind the services raise, rendered in every built-in locale from
/// the payload the code really builds (flows driven through the real lobby and runtime),
/// for every recipient: no template field may be left unfilled. (Login codes are not
/// notifications: the auth service writes that mail itself.)
#[tokio::test]
async fn every_notification_renders_in_every_locale_without_a_missing_field() {
    use galaxy_core::domain::user::Locale;
    use galaxy_core::service::templates::{MailTemplates, TemplateContext};

    let w = World::new().await;
    // Applied, approved, closed, started, a turn, finished.
    let (game, _) = w.running_game(2).await;
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    w.engine.finish_at(&w.endpoint(game.id), 2);
    w.at(evening(2));
    w.scheduler.tick_and_drain().await.unwrap();
    // Rejected, then cancelled.
    let host = w.user().await;
    let fresh = w
        .lobby
        .create_game(host, w.new_game("Rejections"))
        .await
        .unwrap();
    w.lobby.open(host, fresh.id).await.unwrap();
    let applicant = w.user().await;
    let application = w
        .lobby
        .apply(applicant, fresh.id, "Rejectees")
        .await
        .unwrap();
    w.lobby
        .reject(host, fresh.id, application.id)
        .await
        .unwrap();
    w.lobby.cancel(host, fresh.id).await.unwrap();
    // A start refused by the engine, and one whose engine fails to register.
    let (refused, _) = w.starting_game(2).await;
    w.engine
        .refuse_init(Some((422, r#"{"error": "bad settings"}"#)));
    w.jobs.run_until_idle(10).await.unwrap();
    assert_eq!(w.game(refused.id).await.status, GameStatus::StartFailed);
    w.engine.refuse_init(None);
    let (paused, _) = w.starting_game(2).await;
    w.engine.init_fails(true);
    w.jobs.run_until_idle(10).await.unwrap();
    assert_eq!(w.game(paused.id).await.status, GameStatus::Paused);
    w.engine.init_fails(false);
    // An engine fault: a health alert.
    let (faulty, _) = w.running_game(2).await;
    w.engine
        .fault(&w.endpoint(faulty.id), Some(TurnFault::Garbage));
    w.at(evening(3));
    w.scheduler.tick_and_drain().await.unwrap();
    // The play-by-email habits: a message, a reminder, races gone idle, a seat handed on.
    let (pbem, seats) = w
        .closed_game_with(2, |new| new.pbem.idle_after = Some(1))
        .await;
    w.lobby.start(w.admin, pbem.id).await.unwrap();
    w.jobs.run_until_idle(10).await.unwrap();
    let (a, race_b) = (seats.0[0].0, seats.0[1].1.clone());
    w.service
        .send_message(a, pbem.id, MessageTo::All, "hello".into())
        .await
        .unwrap();
    w.at(evening(4) - TimeDelta::hours(1));
    w.scheduler.tick_and_drain().await.unwrap();
    w.at(evening(4));
    w.scheduler.tick_and_drain().await.unwrap();
    w.scheduler.tick_and_drain().await.unwrap();
    let host = galaxy_core::service::Actor {
        user_id: pbem.host,
        is_admin: false,
    };
    w.service.open_seat(host, pbem.id, &race_b).await.unwrap();
    let newcomer = w.user().await;
    let seat = w
        .service
        .apply_for_seat(newcomer, pbem.id, &race_b)
        .await
        .unwrap();
    w.service
        .approve_seat_application(host, pbem.id, &race_b, seat.id)
        .await
        .unwrap();

    let notes = w.notes.all();
    let raised: std::collections::BTreeSet<&str> = notes.iter().map(|n| n.kind.as_str()).collect();
    let expected: std::collections::BTreeSet<&str> = NotificationKind::ALL
        .iter()
        .filter(|k| **k != NotificationKind::LoginCode && !k.is_mail_in_reply())
        .map(|k| k.as_str())
        .collect();
    assert_eq!(raised, expected, "every kind was raised by a real flow");
    let templates = MailTemplates::builtin();
    let mut checked = 0;
    for note in &notes {
        for recipient in &note.recipients {
            for tag in ["en", "de"] {
                let context = TemplateContext::for_recipient(&note.payload, *recipient, "Reader");
                let locale = Locale::parse(tag).unwrap();
                let mail = templates.render(note.kind, &locale, &context).unwrap();
                assert_eq!(
                    mail.locale.as_str(),
                    tag,
                    "{} has its own {tag} template",
                    note.kind
                );
                assert!(
                    mail.missing_fields.is_empty(),
                    "{} in {tag} misses {:?}; payload {}",
                    note.kind,
                    mail.missing_fields,
                    note.payload
                );
                assert!(!mail.text.contains("{{"), "{}", mail.text);
                // What the real payloads leave `null` reads in the mail's language.
                if tag == "de" {
                    for english in [
                        "not scheduled",
                        "nobody",
                        "Anonymous",
                        "no deadline",
                        "(none:",
                    ] {
                        assert!(!mail.text.contains(english), "{}: {}", note.kind, mail.text);
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "{checked}");
}

/// "My games" comes a page at a time, newest first, every game once; ended games (or the
/// others) alone when asked; a cursor not of the list is refused.
#[tokio::test]
async fn my_games_come_in_pages_and_split_ended_from_going() {
    let w = World::new().await;
    let host = w.user().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let new = w.new_game(&format!("Paged Cup {i}"));
        ids.push(w.lobby.create_game(host, new).await.unwrap().id);
        w.clock.advance(TimeDelta::seconds(1));
    }
    for id in &ids[1..3] {
        w.lobby.cancel(host, *id).await.unwrap();
    }
    let all = w.all_my_games(host).await;
    let listed: Vec<_> = all.iter().map(|g| g.game.id).collect();
    let mut expected: Vec<_> = all.iter().map(|g| (g.game.created_at, g.game.id)).collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        listed,
        expected.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
        "newest first"
    );
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "each game once: {listed:?}");
    let first = PageRequest::first(10).unwrap();
    for (ended, count) in [(true, 2), (false, 3)] {
        let filter = MyGamesFilter {
            ended: Some(ended),
            ..MyGamesFilter::default()
        };
        let page = w.service.my_games(host, filter, &first).await.unwrap();
        assert_eq!(page.items.len(), count, "ended: {ended}");
        assert!(page.next_after.is_none());
        assert!(
            page.items
                .iter()
                .all(|g| (g.game.status == GameStatus::Cancelled) == ended)
        );
    }
    // The last game of a page ends before the next page is asked for: the walk goes on
    // after its place.
    let going = MyGamesFilter {
        ended: Some(false),
        ..MyGamesFilter::default()
    };
    let page = PageRequest::first(2).unwrap();
    let first_page = w.service.my_games(host, going, &page).await.unwrap();
    let boundary = first_page.items[1].game.id;
    let after = first_page.next_after.unwrap();
    w.lobby.cancel(host, boundary).await.unwrap();
    let page = PageRequest::after(2, after).unwrap();
    let rest = w.service.my_games(host, going, &page).await.unwrap();
    let seen: Vec<_> = first_page
        .items
        .iter()
        .chain(&rest.items)
        .map(|g| g.game.id)
        .collect();
    assert_eq!(seen, [ids[4], ids[3], ids[0]], "newest first, each once");
    assert!(rest.next_after.is_none());
    let stranger = PageRequest::after(2, uuid::Uuid::nil().to_string()).unwrap();
    // (A game's id is not a cursor of this list.)
    let refused = w
        .service
        .my_games(host, MyGamesFilter::default(), &stranger)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            RuntimeError::Store(galaxy_core::ports::StoreError::InvalidCursor(_))
        ),
        "{refused:?}"
    );
}

/// Orders for a turn played already, and a race's submissions past the per-turn bound,
/// never reach the engine nor the record; the bound holds for submissions made at once.
#[tokio::test]
async fn stale_orders_and_submissions_past_the_bound_are_refused_before_the_engine() {
    let w = Arc::new(World::new().await);
    let (game, seats) = w.running_game(2).await;
    let (alice, race) = seats.0[0].clone();
    w.service
        .submit_orders(alice, game.id, 1, &json!(["first"]))
        .await
        .unwrap();
    w.service
        .force_turn(w.admin, game.id, Some(1))
        .await
        .unwrap();
    let sent = w.engine.orders().len();
    let stale = w
        .service
        .submit_orders(alice, game.id, 1, &json!(["late"]))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), "turn_not_next", "{stale}");
    assert_eq!(
        stale.to_string(),
        "turn 1 is not the next turn of this game (the next is 2)"
    );
    assert_eq!(
        w.engine.orders().len(),
        sent,
        "the engine never heard of it"
    );
    let turn_one = w.play.list_orders(game.id, &race, 1).await.unwrap();
    assert_eq!(turn_one.len(), 1, "nothing recorded");

    // Up to two short of the bound one at a time, then more at once than are left.
    let bound = galaxy_core::service::runtime::MAX_SUBMISSIONS_PER_TURN;
    for i in 0..bound - 2 {
        w.service
            .submit_orders(alice, game.id, 2, &json!([i]))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let w = Arc::clone(&w);
            tokio::spawn(async move {
                w.service
                    .submit_orders(alice, game.id, 2, &json!(["racing", i]))
                    .await
            })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap().map_or_else(|e| e.code(), |_| "ok"));
    }
    codes.sort_unstable();
    assert_eq!(
        codes,
        [
            "ok",
            "ok",
            "rate_limited",
            "rate_limited",
            "rate_limited",
            "rate_limited"
        ]
    );
    assert_eq!(w.play.count_orders(game.id, &race, 2).await.unwrap(), bound);
    let turn_two = w.engine.orders().into_iter().filter(|o| o.2 == 2).count();
    assert_eq!(u64::try_from(turn_two).unwrap(), bound);
    // The orders in force are the last ones taken.
    let read = w.service.orders(alice, game.id, 2).await.unwrap();
    assert_eq!(read.latest.unwrap().orders[0], "racing");
}
