//! The play-by-email habits on the manual clock: early turns (once, even with two
//! schedulers, keeping `min_turn_gap`), reminders only to players without orders (once
//! per player, turn and offset), idle races and their seats changing hands, vacation,
//! and messages that reach only their recipients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_world.rs"]
mod world;

use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::game::{Game, GameStatus};
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::pbem::{GamePreferences, RaceState};
use galaxy_core::service::runtime::{MessageTo, RuntimeConfig, RuntimeError, TurnScheduler};
use galaxy_core::service::templates::recipient_payload;
use galaxy_core::service::{Actor, ServiceError};
use galaxy_core::worker::Worker;
use serde_json::json;
use world::*;

fn code<T: std::fmt::Debug>(result: Result<T, RuntimeError>) -> &'static str {
    result.unwrap_err().code()
}

async fn orders(
    w: &World,
    player: galaxy_core::service::Actor,
    game: &galaxy_core::domain::game::Game,
    turn: u32,
) {
    let verdict = w
        .service
        .submit_orders(player, game.id, turn, &json!({"turn": turn}))
        .await
        .unwrap();
    assert!(verdict.accepted);
}

async fn state_of(
    w: &World,
    game: &galaxy_core::domain::game::Game,
    race: &str,
) -> (bool, RaceState) {
    let game = w.game(game.id).await;
    let races = w.service.races(&game).await.unwrap();
    let r = races.iter().find(|r| r.race == race).unwrap();
    (r.ready, r.state)
}

/// A running game of two races, A and B, where a race goes idle after one missed turn:
/// A sent orders for turn 1, B nothing, and the clock stands at turn 1's firing (the
/// next tick plays it). The game and both seats.
async fn turn_one_due_without_b(w: &World) -> (Game, (Actor, String), (Actor, String)) {
    let (game, seats) = w
        .running_game_with(2, |new| new.pbem.idle_after = Some(1))
        .await;
    let [a, b] = [seats.0[0].clone(), seats.0[1].clone()];
    orders(w, a.0, &game, 1).await;
    w.at(evening(1));
    (game, a, b)
}

#[tokio::test]
async fn the_turn_runs_early_once_every_race_is_ready_and_the_gap_holds() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let [(a, race_a), (b, race_b)] = [seats.0[0].clone(), seats.0[1].clone()];
    // 17:10: one race ready is not enough.
    w.at(evening(1) - TimeDelta::minutes(50));
    orders(&w, a, &game, 1).await;
    assert_eq!(
        state_of(&w, &game, &race_a).await,
        (true, RaceState::Active)
    );
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 0);
    // B marks itself ready without orders: the turn runs at the next tick, once, even
    // with a second scheduler (another replica) ticking at the same time.
    assert_eq!(
        code(w.service.mark_ready(b, game.id, 2).await),
        "validation"
    );
    w.service.mark_ready(b, game.id, 1).await.unwrap();
    assert_eq!(
        state_of(&w, &game, &race_b).await,
        (true, RaceState::Active)
    );
    let other = TurnScheduler::new(w.ports.clone(), w.config.clone());
    let (x, y) = tokio::join!(w.scheduler.tick_and_drain(), other.tick_and_drain());
    x.unwrap();
    y.unwrap();
    let record = w.record(game.id).await;
    assert_eq!(record.current_turn, 1, "one early turn");
    // 17:10 + 1 h = 18:10: today's 18:00 is too close, so tomorrow's.
    assert_eq!(record.next_turn_at, Some(evening(2)));
    assert_eq!(w.notes.of(NotificationKind::TurnCompleted).len(), 1);
    for _ in 0..3 {
        w.scheduler.tick_and_drain().await.unwrap();
        other.tick_and_drain().await.unwrap();
    }
    assert_eq!(w.record(game.id).await.current_turn, 1, "turn 2 waits");
    assert_eq!(
        state_of(&w, &game, &race_b).await,
        (false, RaceState::Active)
    );
    // A later submission replaces "ready": refused orders leave B not ready.
    w.service.mark_ready(b, game.id, 2).await.unwrap();
    assert!(state_of(&w, &game, &race_b).await.0);
    w.engine
        .refuse_orders(Some((422, r#"{"error": "bad orders"}"#)));
    let refused = w.service.submit_orders(b, game.id, 2, &json!({})).await;
    assert!(refused.is_err());
    w.engine.refuse_orders(None);
    assert_eq!(
        state_of(&w, &game, &race_b).await,
        (false, RaceState::Active)
    );
}

#[tokio::test]
async fn a_game_paused_just_before_its_early_turn_is_claimed_plays_no_turn() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let [(a, _), (b, _)] = [seats.0[0].clone(), seats.0[1].clone()];
    w.at(evening(1) - TimeDelta::minutes(50));
    orders(&w, a, &game, 1).await;
    w.service.mark_ready(b, game.id, 1).await.unwrap();
    // The pass reads the game running and every race ready; an admin's pause lands
    // (status first) before its claim of the turn.
    w.records
        .before_next_claim_turn(w.pause_by_another_admin(game.id));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.game(game.id).await.status, GameStatus::Paused);
    assert_eq!(
        w.record(game.id).await.current_turn,
        0,
        "no turn while paused"
    );
    assert_eq!(w.engine.turn_of(&w.endpoint(game.id)), 0);
    assert!(
        w.record(game.id).await.turn_lease.is_none(),
        "the claim let go"
    );
}

#[tokio::test]
async fn a_game_without_early_turns_waits_for_the_schedule() {
    let w = World::new().await;
    let (game, seats) = w
        .running_game_with(2, |new| new.pbem.early_turn = Some(false))
        .await;
    for (player, _) in &seats.0 {
        orders(&w, *player, &game, 1).await;
    }
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 0);
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
}

#[tokio::test]
async fn reminders_reach_only_players_without_orders_once() {
    let w = World::new().await;
    let (game, seats) = w.running_game(4).await;
    let s = &seats.0;
    // A daily game keeps the 2 h default (24 h is not shorter than the period).
    assert_eq!(
        w.game(game.id).await.settings.pbem.reminders,
        vec![TimeDelta::hours(2)]
    );
    orders(&w, s[0].0, &game, 1).await;
    w.service.take_vacation(s[2].0, game.id, 1).await.unwrap();
    let off = GamePreferences {
        reminders: false,
        message_mail: true,
    };
    w.service
        .set_preferences(s[3].0, game.id, off)
        .await
        .unwrap();
    // Before the reminder's time: nothing.
    w.at(evening(1) - TimeDelta::hours(3));
    w.scheduler.tick_and_drain().await.unwrap();
    assert!(w.notes.of(NotificationKind::TurnReminder).is_empty());
    // At 16:00, twice, on two schedulers: one reminder, to B only.
    w.at(evening(1) - TimeDelta::hours(2));
    let other = TurnScheduler::new(w.ports.clone(), w.config.clone());
    for _ in 0..2 {
        let (x, y) = tokio::join!(w.scheduler.tick_and_drain(), other.tick_and_drain());
        x.unwrap();
        y.unwrap();
    }
    let reminders = w.notes.of(NotificationKind::TurnReminder);
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].recipients, vec![s[1].0.user_id]);
    let payload = recipient_payload(&reminders[0].payload, s[1].0.user_id);
    assert_eq!(payload["race"], s[1].1.as_str());
    assert_eq!(payload["turn"], 1);
    assert_eq!(payload["before"], "2h");
    // The turn runs; the next reminder is for turn 2 (C's vacation is over).
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    w.at(evening(2) - TimeDelta::minutes(90));
    w.scheduler.tick_and_drain().await.unwrap();
    let reminders = w.notes.of(NotificationKind::TurnReminder);
    let to: Vec<_> = reminders[1..]
        .iter()
        .flat_map(|n| n.recipients.clone())
        .collect();
    let mut expected = vec![s[0].0.user_id, s[1].0.user_id, s[2].0.user_id];
    let mut got = to.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "A, B and C for turn 2; D turned them off");
    // Due at 16:00 but sent at 16:30: it says what is left.
    let late = recipient_payload(&reminders[1].payload, reminders[1].recipients[0]);
    assert_eq!(late["before"], "1h 30m");
}

#[tokio::test]
async fn an_idle_race_whose_player_took_vacation_is_not_reminded() {
    let w = World::new().await;
    let (game, seats) = w
        .running_game_with(2, |new| new.pbem.idle_after = Some(1))
        .await;
    let [(a, _), (b, race_b)] = [seats.0[0].clone(), seats.0[1].clone()];
    orders(&w, a, &game, 1).await;
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    // The next tick tallies turn 1: B missed it.
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Idle);
    // B comes back only to book the coming turn off.
    w.service.take_vacation(b, game.id, 1).await.unwrap();
    w.at(evening(2) - TimeDelta::hours(2));
    w.scheduler.tick_and_drain().await.unwrap();
    let reminders = w.notes.of(NotificationKind::TurnReminder);
    let told: Vec<_> = reminders
        .iter()
        .flat_map(|n| n.recipients.clone())
        .collect();
    assert_eq!(told, vec![a.user_id], "{reminders:?}");
}

#[tokio::test]
async fn a_ready_mark_made_after_the_engine_played_the_turn_does_not_count_for_it() {
    let w = std::sync::Arc::new(World::new().await);
    let (game, seats) = w
        .running_game_with(2, |new| new.pbem.idle_after = Some(1))
        .await;
    let [(a, _), (b, race_b)] = [seats.0[0].clone(), seats.0[1].clone()];
    orders(&w, a, &game, 1).await;
    w.at(evening(1));
    // B marks itself ready while the turn's reports are fetched: the engine has played
    // the turn without B, and the record is not yet on turn 1, so the mark is taken.
    let (world, id) = (w.clone(), game.id);
    w.engine.on_next_report(Box::pin(async move {
        world.at(world.now() + TimeDelta::seconds(1));
        world.service.mark_ready(b, id, 1).await.unwrap();
    }));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    // The next tick tallies turn 1: B missed it, the late mark aside.
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Idle);
}

#[tokio::test]
async fn a_turn_played_while_the_pass_runs_gets_no_reminder() {
    let w = World::new().await;
    let (game, _) = w.running_game(2).await;
    // The pass lists the running games; meanwhile an admin (or another replica) plays
    // turn 1, whose reminder window the pass is in.
    w.at(evening(1) - TimeDelta::hours(2));
    let (service, admin, id) = (w.service.clone(), w.admin, game.id);
    w.records.after_next_list(Box::pin(async move {
        service.force_next_turn(admin, id).await.unwrap();
    }));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1, "the forced turn");
    let reminded = w.notes.of(NotificationKind::TurnReminder);
    assert!(reminded.is_empty(), "turn 1 ran already: {reminded:?}");
}

#[tokio::test]
async fn no_reminder_for_a_game_that_has_none_or_is_not_running() {
    let w = World::new().await;
    // One game without reminders, one paused.
    w.running_game_with(2, |new| new.pbem.reminders = Some(vec![]))
        .await;
    let (paused, _) = w.running_game(2).await;
    w.service.pause(w.admin, paused.id).await.unwrap();
    w.at(evening(1) - TimeDelta::minutes(30));
    w.scheduler.tick_and_drain().await.unwrap();
    assert!(w.notes.of(NotificationKind::TurnReminder).is_empty());
}

#[tokio::test]
async fn a_reminder_as_long_as_the_turn_period_is_refused() {
    let w = World::new().await;
    let host = w.user().await;
    let mut new = w.new_game("Reminded");
    new.pbem.reminders = Some(vec!["24h".into()]);
    let refused = w.lobby.create_game(host, new.clone()).await.unwrap_err();
    assert_eq!(refused.code(), "validation");
    assert!(refused.to_string().contains("reminders"), "{refused}");
    new.pbem.reminders = Some(vec!["23h".into(), "30m".into()]);
    new.pbem.min_turn_gap = Some("90m".into());
    let game = w.lobby.create_game(host, new).await.unwrap();
    let pbem = &game.settings.pbem;
    assert_eq!(
        pbem.reminders,
        vec![TimeDelta::hours(23), TimeDelta::minutes(30)]
    );
    assert_eq!(pbem.min_turn_gap, TimeDelta::minutes(90));
}

#[tokio::test]
async fn a_race_goes_idle_and_its_seat_changes_hands() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let [(a, race_a), (b, race_b)] = [seats.0[0].clone(), seats.0[1].clone()];
    // Three turns run on schedule; only A sends orders.
    for day in 1..=3 {
        orders(&w, a, &game, day).await;
        w.at(evening(day));
        w.scheduler.tick_and_drain().await.unwrap();
        assert_eq!(w.record(game.id).await.current_turn, day);
    }
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Active);
    // The next tick tallies turn 3: B missed three in a row.
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Idle);
    assert_eq!(state_of(&w, &game, &race_a).await.1, RaceState::Active);
    let idle = w.notes.of(NotificationKind::RaceIdle);
    assert_eq!(idle.len(), 1);
    let mut told = idle[0].recipients.clone();
    told.sort();
    let mut expected = vec![b.user_id, game.host];
    expected.sort();
    assert_eq!(told, expected);
    // Seat actions: 403 for non-hosts, 409 on a race that is not idle.
    let host = galaxy_core::service::Actor {
        user_id: game.host,
        is_admin: false,
    };
    assert_eq!(
        code(w.service.open_seat(a, game.id, &race_b).await),
        "forbidden"
    );
    assert_eq!(
        code(w.service.open_seat(host, game.id, &race_a).await),
        "conflict"
    );
    assert_eq!(
        code(w.service.open_seat(host, game.id, "Nobody").await),
        "not_found"
    );
    w.service.open_seat(host, game.id, &race_b).await.unwrap();
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::OpenSeat);
    assert_eq!(
        w.service.open_seats(&[game.id]).await.unwrap(),
        vec![(game.id, vec![race_b.clone()])]
    );
    // Players may not apply; a stranger may; the host approves.
    assert_eq!(
        code(w.service.apply_for_seat(a, game.id, &race_b).await),
        "conflict"
    );
    // A seat application makes its applicant active in the game: refused at the
    // account's active-games limit, with nothing stored.
    let full = w.user_with(|u| u.entitlements.max_active_games = 0).await;
    let refused = w.service.apply_for_seat(full, game.id, &race_b).await;
    assert!(
        matches!(
            refused,
            Err(RuntimeError::TooManyActiveGames { live: 0, max: 0 })
        ),
        "{refused:?}"
    );
    assert_eq!(code(refused), "forbidden");
    let mine = w.service.own_seat_applications(full, game.id).await;
    assert_eq!(mine.unwrap(), vec![]);
    let newcomer = w.user().await;
    let other = w.user().await;
    let application = w
        .service
        .apply_for_seat(newcomer, game.id, &race_b)
        .await
        .unwrap();
    let second = w
        .service
        .apply_for_seat(other, game.id, &race_b)
        .await
        .unwrap();
    assert_eq!(
        code(w.service.apply_for_seat(newcomer, game.id, &race_b).await),
        "conflict"
    );
    assert_eq!(
        code(
            w.service
                .approve_seat_application(a, game.id, &race_b, application.id)
                .await
        ),
        "forbidden"
    );
    let record = w
        .service
        .approve_seat_application(host, game.id, &race_b, application.id)
        .await
        .unwrap();
    assert_eq!(record.user_id, newcomer.user_id);
    assert_eq!(
        code(
            w.service
                .approve_seat_application(host, game.id, &race_b, second.id)
                .await
        ),
        "conflict"
    );
    let changed = w.notes.of(NotificationKind::SeatChanged);
    assert_eq!(changed.len(), 1);
    assert!(changed[0].recipients.contains(&b.user_id));
    assert!(changed[0].recipients.contains(&newcomer.user_id));
    // The newcomer plays the race under its name and reads its archived reports; the
    // old player lost access.
    let report = w.service.report(newcomer, game.id, 1, None).await.unwrap();
    assert_eq!(report.race, race_b);
    orders(&w, newcomer, &game, 4).await;
    assert_eq!(
        code(w.service.report(b, game.id, 1, None).await),
        "not_found"
    );
    assert_eq!(
        code(w.service.submit_orders(b, game.id, 4, &json!({})).await),
        "not_found"
    );
    // Orders by e-mail asks the race record too: the newcomer may have an orders address
    // in the game (no lobby application of theirs says so), the old player no longer.
    let desk: &dyn galaxy_core::ports::OrdersDesk = &w.service;
    assert!(desk.plays_in(newcomer.user_id, game.id).await.unwrap());
    assert!(!desk.plays_in(b.user_id, game.id).await.unwrap());
    let mine = w.all_my_games(newcomer).await;
    let listed = mine.iter().find(|g| g.game.id == game.id).unwrap();
    assert_eq!(listed.race.as_deref(), Some(race_b.as_str()));
    let old = w.all_my_games(b).await;
    assert!(
        old.iter().all(|g| g.game.id != game.id),
        "the old player no longer plays it"
    );
    // The engine plays the same race: the orders went to race B.
    assert_eq!(
        state_of(&w, &game, &race_b).await,
        (true, RaceState::Active)
    );
    // An admin stops the game: whoever plays each race now is told, not the replaced
    // player, and the mail does not claim the game never started.
    w.service.stop(w.admin, game.id).await.unwrap();
    let cancelled = w.notes.of(NotificationKind::GameCancelled);
    let mut told = cancelled[0].recipients.clone();
    told.sort();
    let mut expected = vec![a.user_id, newcomer.user_id, game.host];
    expected.sort();
    assert_eq!(told, expected);
    let templates = galaxy_core::service::templates::MailTemplates::builtin();
    for locale in ["en", "de"] {
        let context = galaxy_core::service::templates::TemplateContext::for_recipient(
            &cancelled[0].payload,
            newcomer.user_id,
            "Newcomer",
        );
        let locale = galaxy_core::domain::user::Locale::parse(locale).unwrap();
        let mail = templates
            .render(NotificationKind::GameCancelled, &locale, &context)
            .unwrap();
        assert!(
            !mail.text.contains("before it started") && !mail.text.contains("vor seinem Beginn"),
            "{}",
            mail.text
        );
    }
}

#[tokio::test]
async fn an_eliminated_race_never_goes_idle() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let [(a, _), (_, race_b)] = [seats.0[0].clone(), seats.0[1].clone()];
    // B is out of the game from turn 1 on: it sends no orders, and owes none.
    w.engine.eliminate(&w.endpoint(game.id), &race_b);
    for day in 1..=4 {
        orders(&w, a, &game, day).await;
        w.at(evening(day));
        w.scheduler.tick_and_drain().await.unwrap();
    }
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 4);
    // Every player sees it as out of the game: not idle, not an active race the next
    // turn waits for.
    assert_eq!(
        state_of(&w, &game, &race_b).await,
        (false, RaceState::Eliminated)
    );
    assert!(w.notes.of(NotificationKind::RaceIdle).is_empty());
}

#[tokio::test]
async fn an_eliminated_race_sends_no_orders_ready_marks_or_vacations() {
    let w = World::new().await;
    let (game, seats) = w
        .running_game_with(2, |new| new.pbem.vacation_turns = Some(3))
        .await;
    let [(a, _), (b, race_b)] = [seats.0[0].clone(), seats.0[1].clone()];
    w.engine.eliminate(&w.endpoint(game.id), &race_b);
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    let sent = w.engine.orders().len();
    let refused = w
        .service
        .submit_orders(b, game.id, 2, &json!({"turn": 2}))
        .await;
    assert_eq!(code(refused), "race_eliminated");
    assert_eq!(
        w.engine.orders().len(),
        sent,
        "the engine never heard of them"
    );
    assert_eq!(
        code(w.service.mark_ready(b, game.id, 2).await),
        "race_eliminated"
    );
    assert_eq!(
        code(w.service.take_vacation(b, game.id, 1).await),
        "race_eliminated"
    );
    // The race still reads its reports; the other plays on.
    w.service.report(b, game.id, 1, None).await.unwrap();
    orders(&w, a, &game, 2).await;
}

#[tokio::test]
async fn the_old_player_may_reclaim_an_open_seat() {
    let w = World::new().await;
    let (game, (a, _), (b, race_b)) = turn_one_due_without_b(&w).await;
    w.scheduler.tick_and_drain().await.unwrap();
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Idle);
    let host = galaxy_core::service::Actor {
        user_id: game.host,
        is_admin: false,
    };
    assert_eq!(
        code(w.service.reclaim_seat(b, game.id, &race_b).await),
        "conflict"
    );
    w.service.open_seat(host, game.id, &race_b).await.unwrap();
    let stranger = w.user().await;
    let application = w
        .service
        .apply_for_seat(stranger, game.id, &race_b)
        .await
        .unwrap();
    assert_eq!(
        code(w.service.reclaim_seat(a, game.id, &race_b).await),
        "forbidden"
    );
    w.service.reclaim_seat(b, game.id, &race_b).await.unwrap();
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Active);
    assert_eq!(
        code(
            w.service
                .approve_seat_application(host, game.id, &race_b, application.id)
                .await
        ),
        "conflict"
    );
}

#[tokio::test]
async fn vacation_comes_from_a_budget_pauses_the_count_and_does_not_hold_early_turns() {
    let w = World::new().await;
    let (game, seats) = w
        .running_game_with(2, |new| new.pbem.idle_after = Some(1))
        .await;
    let [(a, _), (b, race_b)] = [seats.0[0].clone(), seats.0[1].clone()];
    let before = w.service.vacation(b, game.id).await.unwrap();
    assert_eq!((before.from, before.used, before.left), (None, 0, 2));
    let stranger = w.user().await;
    assert_eq!(
        code(w.service.vacation(stranger, game.id).await),
        "not_found"
    );
    assert_eq!(
        code(w.service.take_vacation(b, game.id, 3).await),
        "validation"
    );
    assert_eq!(
        code(w.service.take_vacation(b, game.id, 0).await),
        "validation"
    );
    let booked = w.service.take_vacation(b, game.id, 2).await.unwrap();
    assert_eq!(
        (booked.from, booked.until, booked.left),
        (Some(1), Some(2), 0)
    );
    assert_eq!(w.service.vacation(b, game.id).await.unwrap(), booked);
    assert_eq!(
        code(w.service.take_vacation(b, game.id, 1).await),
        "validation"
    );
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Vacation);
    // A alone is ready: B on vacation does not hold the early turn back.
    orders(&w, a, &game, 1).await;
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    orders(&w, a, &game, 2).await;
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 2);
    w.scheduler.tick_and_drain().await.unwrap();
    // Two missed turns on vacation: not idle (idle_after is 1); the next miss counts.
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Active);
    orders(&w, a, &game, 3).await;
    w.at(w.record(game.id).await.next_turn_at.unwrap());
    w.scheduler.tick_and_drain().await.unwrap();
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Idle);
}

#[tokio::test]
async fn messages_reach_only_their_recipients() {
    let w = World::new().await;
    let (game, seats) = w.running_game(3).await;
    let s = &seats.0;
    let (a, b, c) = (s[0].0, s[1].0, s[2].0);
    let to = |races: &[&String]| MessageTo::Races(races.iter().map(|r| r.to_lowercase()).collect());
    let sent = w
        .service
        .send_message(a, game.id, to(&[&s[1].1]), "<b>hello</b> B".into())
        .await
        .unwrap();
    assert_eq!(sent.to, vec![s[1].1.clone()]);
    w.service
        .send_message(b, game.id, MessageTo::All, "hello all".into())
        .await
        .unwrap();
    let page = PageRequest::first(10).unwrap();
    let texts = |who| {
        let w = &w;
        let page = page.clone();
        async move {
            w.service
                .messages(who, game.id, &page)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|m| m.text)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(texts(a).await, vec!["hello all", "<b>hello</b> B"]);
    assert_eq!(texts(b).await, vec!["hello all", "<b>hello</b> B"]);
    assert_eq!(
        texts(c).await,
        vec!["hello all"],
        "C never sees A's message to B"
    );
    // Neither the host nor an admin reads them.
    let host = galaxy_core::service::Actor {
        user_id: game.host,
        is_admin: false,
    };
    assert_eq!(
        code(w.service.messages(host, game.id, &page).await),
        "not_found"
    );
    assert_eq!(
        code(w.service.messages(w.admin, game.id, &page).await),
        "not_found"
    );
    // Delivered by notification to the recipients only, mail included by default.
    let notes = w.notes.of(NotificationKind::RaceMessage);
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].recipients, vec![b.user_id]);
    assert_eq!(notes[0].payload["from"], s[0].1.as_str());
    assert!(notes[0].payload.get("mail").is_none());
    // Bad input: 422.
    let bad = [
        (to(&[&"Nobody".to_owned()]), "hi".to_owned()),
        (to(&[&s[0].1]), "to myself".to_owned()),
        (MessageTo::Races(vec![]), "to nobody".to_owned()),
        (MessageTo::All, String::new()),
        (MessageTo::All, "  \n ".to_owned()),
        (MessageTo::All, "x".repeat(4097)),
    ];
    for (to, text) in bad {
        let result = w.service.send_message(a, game.id, to.clone(), text).await;
        assert_eq!(code(result), "validation", "{to:?}");
    }
    // A stranger: 404.
    let stranger = w.user().await;
    let result = w
        .service
        .send_message(stranger, game.id, MessageTo::All, "hi".into())
        .await;
    assert_eq!(code(result), "not_found");
    // C opts out of message mail: push only.
    let prefs = GamePreferences {
        reminders: true,
        message_mail: false,
    };
    w.service.set_preferences(c, game.id, prefs).await.unwrap();
    w.service
        .send_message(a, game.id, MessageTo::All, "again".into())
        .await
        .unwrap();
    let notes = w.notes.of(NotificationKind::RaceMessage);
    let push_only: Vec<_> = notes
        .iter()
        .filter(|n| n.payload["mail"] == false)
        .collect();
    assert_eq!(push_only.len(), 1);
    assert_eq!(push_only[0].recipients, vec![c.user_id]);
}

#[tokio::test]
async fn anonymous_messages_hide_the_sender_everywhere() {
    let w = World::new().await;
    let (game, seats) = w
        .running_game_with(3, |new| new.pbem.anonymous_messages = Some(true))
        .await;
    let [(a, race_a), (b, race_b), (c, race_c)] =
        [seats.0[0].clone(), seats.0[1].clone(), seats.0[2].clone()];
    w.service
        .send_message(a, game.id, MessageTo::All, "guess who".into())
        .await
        .unwrap();
    let to_two = MessageTo::Races(vec![race_b.clone(), race_c.clone()]);
    w.service
        .send_message(a, game.id, to_two, "you two".into())
        .await
        .unwrap();
    let page = PageRequest::first(10).unwrap();
    // The other recipients are hidden too: "all but one race", or a list without one,
    // names the sender.
    for (reader, race) in [(b, &race_b), (c, &race_c)] {
        let seen = w
            .service
            .messages(reader, game.id, &page)
            .await
            .unwrap()
            .items;
        assert_eq!(seen.len(), 2);
        for message in &seen {
            assert_eq!(message.from, None);
            assert_eq!(&message.to, &vec![race.clone()]);
            assert!(!format!("{message:?}").contains(&race_a), "{message:?}");
        }
    }
    let own = w.service.messages(a, game.id, &page).await.unwrap().items;
    assert_eq!(own[0].from.as_deref(), Some(race_a.as_str()));
    let mut both = vec![race_b.clone(), race_c.clone()];
    both.sort();
    assert!(own.iter().all(|m| m.to == both), "{own:?}");
    for note in w.notes.of(NotificationKind::RaceMessage) {
        assert!(
            !note.payload.to_string().contains(&race_a),
            "{}",
            note.payload
        );
    }
}

#[tokio::test]
async fn the_message_rate_limit_holds_under_concurrent_senders() {
    let config = RuntimeConfig {
        message_rate: RateLimit {
            max: 5,
            window: TimeDelta::hours(1),
        },
        ..test_config()
    };
    let w = Arc::new(World::with(config).await);
    let (game, seats) = w.running_game(2).await;
    let a = seats.0[0].0;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let w = Arc::clone(&w);
            tokio::spawn(async move {
                w.service
                    .send_message(a, game.id, MessageTo::All, format!("spam {i}"))
                    .await
            })
        })
        .collect();
    let mut sent = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => sent += 1,
            Err(error) => {
                assert_eq!(error.code(), "rate_limited");
                assert!(error.retry_after().is_some());
                limited += 1;
            }
        }
    }
    assert_eq!((sent, limited), (5, 15));
    w.at(w.now() + TimeDelta::hours(1) + TimeDelta::seconds(1));
    w.service
        .send_message(a, game.id, MessageTo::All, "later".into())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_turn_is_tallied_from_what_was_in_force_when_it_was_played() {
    let w = World::new().await;
    let (game, seats) = w
        .running_game_with(3, |new| new.pbem.idle_after = Some(1))
        .await;
    let [(a, race_a), (b, race_b), (c, race_c)] =
        [seats.0[0].clone(), seats.0[1].clone(), seats.0[2].clone()];
    // A sends orders, B marks itself ready without: both are in for turn 1.
    orders(&w, a, &game, 1).await;
    w.service.mark_ready(b, game.id, 1).await.unwrap();
    w.service.mark_ready(c, game.id, 1).await.unwrap();
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    // Before the next pass tallies turn 1: B sends orders for turn 2 (which take back a
    // mark for turn 2, not B's mark for turn 1), and A, from a page loaded before the
    // turn, orders for turn 1, which are refused as over.
    w.at(evening(1) + TimeDelta::minutes(1));
    orders(&w, b, &game, 2).await;
    // C marks itself ready for turn 2 as well: its mark for turn 1 is counted first.
    w.service.mark_ready(c, game.id, 2).await.unwrap();
    w.engine
        .refuse_orders(Some((409, r#"{"error": "turn 1 is over"}"#)));
    let stale = json!({"turn": 1});
    let late = w.service.submit_orders(a, game.id, 1, &stale).await;
    assert!(late.is_err());
    w.engine.refuse_orders(None);
    w.scheduler.tick_and_drain().await.unwrap();
    for race in [&race_a, &race_b, &race_c] {
        assert_eq!(
            state_of(&w, &game, race).await.1,
            RaceState::Active,
            "{race} did not miss turn 1"
        );
    }
    assert!(w.notes.of(NotificationKind::RaceIdle).is_empty());
}

/// A refused submission after accepted orders (a "thanks" mailed to the orders address)
/// leaves them in force at the engine: the race is not ready for an early turn (its
/// player may be changing them), but the turn played them, so it missed nothing.
#[tokio::test]
async fn a_refusal_after_accepted_orders_misses_no_turn() {
    let w = World::new().await;
    let (game, seats) = w
        .running_game_with(2, |new| new.pbem.idle_after = Some(1))
        .await;
    let [(a, race_a), (b, _)] = [seats.0[0].clone(), seats.0[1].clone()];
    w.at(evening(1) - TimeDelta::minutes(50));
    orders(&w, a, &game, 1).await;
    orders(&w, b, &game, 1).await;
    w.engine
        .refuse_orders(Some((422, r#"{"error": "no orders in this text"}"#)));
    let thanks = w
        .service
        .submit_orders(a, game.id, 1, &json!("Thanks!"))
        .await;
    assert!(thanks.is_err());
    w.engine.refuse_orders(None);
    assert_eq!(
        state_of(&w, &game, &race_a).await,
        (false, RaceState::Active)
    );
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 0, "no early turn");
    w.at(evening(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    w.at(evening(1) + TimeDelta::minutes(1));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(
        state_of(&w, &game, &race_a).await.1,
        RaceState::Active,
        "the engine played A's accepted orders: no missed turn"
    );
    assert!(w.notes.of(NotificationKind::RaceIdle).is_empty());
}

#[tokio::test]
async fn a_turn_forced_before_the_next_pass_leaves_the_turn_before_tallied() {
    let w = World::new().await;
    let (game, (a, _), (b, race_b)) = turn_one_due_without_b(&w).await;
    // B sends nothing for turn 1, which the schedule plays.
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    // Before any pass tallies turn 1, both send orders for turn 2 and an admin forces it.
    orders(&w, a, &game, 2).await;
    orders(&w, b, &game, 2).await;
    w.service.force_next_turn(w.admin, game.id).await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 2);
    w.scheduler.tick_and_drain().await.unwrap();
    // Turn 1 was counted (B missed it and went idle, its player and the host were told);
    // turn 2, with B's orders, brought B back.
    let idle = w.notes.of(NotificationKind::RaceIdle);
    assert_eq!(idle.len(), 1, "turn 1 was never tallied");
    assert_eq!(idle[0].payload["turn"], 1);
    assert_eq!(idle[0].payload["race"], race_b.as_str());
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Active);
}

#[tokio::test]
async fn a_turn_forced_right_after_a_scheduled_one_tallies_that_one() {
    let w = World::new().await;
    let (game, (a, _), (b, race_b)) = turn_one_due_without_b(&w).await;
    // Just before the force claims, another replica's scheduler plays turn 1 (B sent
    // nothing), then both players send orders for turn 2.
    let other = TurnScheduler::new(w.ports.clone(), w.config.clone());
    let (service, id) = (w.service.clone(), game.id);
    w.records.before_next_claim_turn(Box::pin(async move {
        other.tick_and_drain().await.unwrap();
        for player in [a, b] {
            let orders = json!({"turn": 2});
            service.submit_orders(player, id, 2, &orders).await.unwrap();
        }
    }));
    w.service.force_next_turn(w.admin, game.id).await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 2);
    let idle = w.notes.of(NotificationKind::RaceIdle);
    assert_eq!(idle.len(), 1, "turn 1 was never tallied");
    assert_eq!(idle[0].payload["turn"], 1);
    assert_eq!(idle[0].payload["race"], race_b.as_str());
}

#[tokio::test]
async fn a_ready_mark_made_after_its_turn_was_played_is_refused_and_not_counted() {
    let w = World::new().await;
    let (game, _, (b, race_b)) = turn_one_due_without_b(&w).await;
    // Turn 1 is archived, its record not yet moved on (the coming turn still reads 1),
    // when B, a minute later, marks itself ready for it.
    let (service, clock, id) = (w.service.clone(), w.clock.clone(), game.id);
    let (answer, answered) = tokio::sync::oneshot::channel();
    w.archive.after_next_archive(Box::pin(async move {
        clock.advance(TimeDelta::minutes(1));
        let _ = answer.send(service.mark_ready(b, id, 1).await);
    }));
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    let refused = answered.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), "validation", "{refused}");
    assert!(
        refused.to_string().contains("turn 1 was played"),
        "{refused}"
    );
    // The next pass tallies turn 1 from what was in force when it was played: B had
    // neither orders nor a mark then, missed it and went idle.
    w.at(evening(1) + TimeDelta::minutes(2));
    w.scheduler.tick_and_drain().await.unwrap();
    let idle = w.notes.of(NotificationKind::RaceIdle);
    assert_eq!(idle.len(), 1, "the late mark counted for turn 1");
    assert_eq!(idle[0].payload["race"], race_b.as_str());
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Idle);
}

#[tokio::test]
async fn an_idle_notice_that_failed_to_be_raised_is_raised_by_the_next_pass() {
    let w = World::new().await;
    let (game, _, (_, race_b)) = turn_one_due_without_b(&w).await;
    w.scheduler.tick_and_drain().await.unwrap();
    assert_eq!(w.record(game.id).await.current_turn, 1);
    // The pass tallies turn 1 (B sent nothing and goes idle); the notifier fails on
    // the notice, and on the pass's second try.
    w.at(evening(1) + TimeDelta::minutes(1));
    w.faults.arm(0);
    w.faults.fail_next("notify race_idle", 2);
    w.scheduler.tick_and_drain().await.unwrap();
    assert!(
        w.faults
            .writes()
            .iter()
            .any(|write| write == "notify race_idle"),
        "{:?}",
        w.faults.writes()
    );
    assert!(w.notes.of(NotificationKind::RaceIdle).is_empty());
    assert_eq!(state_of(&w, &game, &race_b).await.1, RaceState::Idle);
    // An admin pauses the game meanwhile; the next pass raises it even so, once.
    w.service.pause(w.admin, game.id).await.unwrap();
    w.faults.disarm();
    w.at(evening(1) + TimeDelta::minutes(2));
    w.scheduler.tick_and_drain().await.unwrap();
    w.at(evening(1) + TimeDelta::minutes(3));
    w.scheduler.tick_and_drain().await.unwrap();
    let idle = w.notes.of(NotificationKind::RaceIdle);
    assert_eq!(idle.len(), 1, "the notice was lost");
    assert_eq!(idle[0].payload["race"], race_b.as_str());
    assert_eq!(idle[0].payload["turn"], 1);
}

#[tokio::test]
async fn a_message_whose_notice_failed_is_noticed_by_a_later_pass() {
    let w = World::new().await;
    let (game, seats) = w.running_game(2).await;
    let [(a, _), (b, race_b)] = [seats.0[0].clone(), seats.0[1].clone()];
    // The message is stored; its notice fails (the notifier's store went away).
    w.faults.arm(0);
    w.faults.fail_next("notify race_message", 1);
    w.service
        .send_message(a, game.id, MessageTo::All, "meet at Vega".into())
        .await
        .unwrap();
    assert!(w.notes.of(NotificationKind::RaceMessage).is_empty());
    // A pass right away leaves it to the sender's own request; a later one raises it.
    w.scheduler.tick_and_drain().await.unwrap();
    assert!(w.notes.of(NotificationKind::RaceMessage).is_empty());
    w.at(w.now() + TimeDelta::minutes(1));
    w.scheduler.tick_and_drain().await.unwrap();
    w.at(w.now() + TimeDelta::minutes(1));
    w.scheduler.tick_and_drain().await.unwrap();
    let notes = w.notes.of(NotificationKind::RaceMessage);
    assert_eq!(notes.len(), 1, "the notice was lost");
    assert_eq!(notes[0].recipients, vec![b.user_id]);
    assert_eq!(notes[0].payload["text"], "meet at Vega");
    let to_b = recipient_payload(&notes[0].payload, b.user_id);
    assert_eq!(to_b["race"], race_b.as_str(), "{to_b}");
}

#[tokio::test]
async fn a_seat_change_whose_notice_failed_is_noticed_by_a_later_pass() {
    let w = World::new().await;
    let (game, _, (b, race_b)) = turn_one_due_without_b(&w).await;
    // B sends nothing for turn 1 and goes idle; the host opens its seat.
    w.scheduler.tick_and_drain().await.unwrap();
    w.at(evening(1) + TimeDelta::minutes(1));
    w.scheduler.tick_and_drain().await.unwrap();
    let host = galaxy_core::service::Actor {
        user_id: game.host,
        is_admin: false,
    };
    w.service.open_seat(host, game.id, &race_b).await.unwrap();
    let newcomer = w.user().await;
    let application = w
        .service
        .apply_for_seat(newcomer, game.id, &race_b)
        .await
        .unwrap();
    // The handover commits; its notice fails (the notifier's store went away).
    w.faults.arm(0);
    w.faults.fail_next("notify seat_changed", 1);
    w.service
        .approve_seat_application(host, game.id, &race_b, application.id)
        .await
        .unwrap();
    assert!(w.notes.of(NotificationKind::SeatChanged).is_empty());
    // The next pass raises it, once.
    w.at(evening(1) + TimeDelta::minutes(2));
    w.scheduler.tick_and_drain().await.unwrap();
    w.at(evening(1) + TimeDelta::minutes(3));
    w.scheduler.tick_and_drain().await.unwrap();
    let notes = w.notes.of(NotificationKind::SeatChanged);
    assert_eq!(notes.len(), 1, "the notice was lost");
    let mut told = notes[0].recipients.clone();
    told.sort();
    let mut expected = vec![b.user_id, newcomer.user_id];
    expected.sort();
    assert_eq!(told, expected);
}
