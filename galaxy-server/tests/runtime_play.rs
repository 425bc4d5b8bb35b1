//! The play loop end to end, in dev mode with the real reference engine as a child
//! process: a three-player game with engine settings (`max_turns: 3`) is played to its
//! finish. Every player gets their own report by mail for every turn (turn 0 in the
//! started mail, the last one in the game-over mail with a standings table), reports are
//! read from the platform's archive after the engine is gone (own, and every race's after
//! the reveal), the result and turn history are in the API, orders are read back, and the
//! error codes keep their meaning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::time::Duration;

use lifecycle_support::eventually;
use runtime_support::{RunningGame, SentMail, mails_to, process_vars, run_a_game_with};
use serde_json::{Value, json};

const SEATS: [(&str, &str); 3] = [
    ("ann@example.org", "Aldebarans"),
    ("bob@example.org", "Betelgeusians"),
    ("cy@example.org", "Capellans"),
];
/// The game's length, set through its engine settings.
const LAST_TURN: u64 = 3;

async fn get(running: &RunningGame, who: usize, path: &str) -> (u16, Value) {
    running.players[who].0.request("GET", path, None).await
}

/// The report text of `race` at `turn`, as the archive serves it to its player.
async fn report_text(running: &RunningGame, who: usize, turn: u64) -> String {
    let path = format!("/api/v1/user/games/{}/reports/{turn}", running.game);
    let (status, report) = get(running, who, &path).await;
    assert_eq!(status, 200, "{path}: {report}");
    assert_eq!(report["race"], running.players[who].1, "{report}");
    report["text"].as_str().unwrap().to_owned()
}

/// Waits for the mail of `kind` (and subject fragment) to `email`.
async fn mail_of(running: &RunningGame, email: &str, kind: &str, subject: &str) -> SentMail {
    let (dir, email, kind, subject) = (
        running.mail.clone(),
        email.to_owned(),
        kind.to_owned(),
        subject.to_owned(),
    );
    eventually(Duration::from_secs(30), "a mail", move || {
        let (dir, email, kind, subject) =
            (dir.clone(), email.clone(), kind.clone(), subject.clone());
        async move {
            mails_to(&dir, &email)
                .into_iter()
                .find(|m| m.kind == kind && m.subject.contains(&subject))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_game_reaches_every_player_and_outlives_its_engine() {
    // The admin forces every turn: with every race's orders in, an early turn would run
    // on its own and race the steps that read the state before the turn.
    let settings = json!({ "engine_settings": { "max_turns": LAST_TURN }, "early_turn": false });
    let running = run_a_game_with(&process_vars(), &SEATS, settings).await;
    let games = format!("/api/v1/user/games/{}", running.game);

    // Turn 0 is archived at the start; the game view and the history show it.
    let view = running.game_view().await;
    assert_eq!(view["current_turn"], 0, "{view}");
    assert!(view["next_turn_at"].is_string(), "{view}");
    assert_eq!(view["settings"]["engine_settings"]["max_turns"], LAST_TURN);
    let (_, turns) = get(&running, 1, &format!("{games}/turns")).await;
    assert_eq!(turns["items"][0]["turn"], 0, "{turns}");
    assert_eq!(turns["items"][0]["standings"].as_array().unwrap().len(), 3);

    // Orders: recorded with the engine's verdict and read back; "orders in" follows the
    // latest submission. A 100 KiB orders value passes the transport (the engine judges).
    for who in 0..3 {
        let (status, verdict) = running.players[who]
            .0
            .request(
                "PUT",
                &format!("{games}/orders"),
                Some(json!({"turn": 1, "orders": []})),
            )
            .await;
        assert_eq!(
            (status, &verdict["accepted"]),
            (200, &json!(true)),
            "{verdict}"
        );
    }
    let big = "x".repeat(100 * 1024);
    let (status, verdict) = running.players[0]
        .0
        .request(
            "PUT",
            &format!("{games}/orders"),
            Some(json!({"turn": 1, "orders": big})),
        )
        .await;
    assert_eq!(
        (status, &verdict["accepted"]),
        (200, &json!(false)),
        "{verdict}"
    );
    let (status, read) = get(&running, 0, &format!("{games}/orders/1")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["race"], "Aldebarans");
    assert_eq!(read["latest"]["accepted"], false, "{read}");
    assert_eq!(read["latest"]["size"], 100 * 1024 + 2);
    assert_eq!(read["history"].as_array().unwrap().len(), 1, "{read}");
    assert_eq!(read["history"][0]["orders"], json!([]));
    let (_, mine) = get(&running, 0, "/api/v1/user/games?role=player").await;
    assert_eq!(mine["items"][0]["race"], "Aldebarans", "{mine}");
    assert_eq!(mine["items"][0]["orders_in"], false, "{mine}");
    assert_eq!(mine["items"][0]["current_turn"], 0, "{mine}");
    let (_, mine) = get(&running, 1, "/api/v1/user/games").await;
    assert_eq!(mine["items"][0]["orders_in"], true, "{mine}");
    assert_eq!(mine["items"][0]["hosting"], false, "{mine}");
    let (status, _) = running.players[0]
        .0
        .request(
            "PUT",
            &format!("{games}/orders"),
            Some(json!({"turn": 1, "orders": []})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, mine) = get(&running, 0, "/api/v1/user/games").await;
    assert_eq!(mine["items"][0]["orders_in"], true, "{mine}");
    assert_eq!(mine["items"][0]["hosting"], true, "{mine}");

    // Before the finish: another race's report is hidden, a future turn is not played.
    let (status, error) = get(&running, 0, &format!("{games}/reports/0?race=Capellans")).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (404, &json!("not_found"))
    );
    let (status, error) = get(&running, 0, &format!("{games}/reports/9")).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (404, &json!("turn_not_played"))
    );

    // Play to the end: turns 1 and 2 run, turn 3 finishes the game.
    for _ in 0..LAST_TURN {
        runtime_support::force(&running.admin, &running.game).await;
    }
    let view = running.game_view().await;
    assert_eq!(view["status"], "finished", "{view}");
    assert_eq!(view["current_turn"], LAST_TURN, "{view}");
    let result = &view["result"];
    assert_eq!(result["standings"].as_array().unwrap().len(), 3, "{view}");
    let races: Vec<&str> = result["standings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["race"].as_str().unwrap())
        .collect();
    for (_, race) in SEATS {
        assert!(races.contains(&race), "{races:?}");
    }
    assert!(result["finished_at"].is_string(), "{view}");
    assert!(view["status_reason"].is_string(), "{view}");
    let public = running
        .outsider
        .request(
            "GET",
            &format!("/api/v1/public/games/{}", running.game),
            None,
        )
        .await
        .1;
    assert_eq!(public["result"]["standings"], result["standings"]);

    // The engine is gone once the stop job ran; the archive still answers.
    let engine = running.endpoint.trim_start_matches("http://").to_owned();
    eventually(Duration::from_secs(30), "the engine gone", || {
        let engine = engine.clone();
        async move {
            tokio::net::TcpStream::connect(engine)
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;
    let (_, turns) = get(&running, 2, &format!("{games}/turns")).await;
    let numbers: Vec<u64> = turns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..=LAST_TURN).collect::<Vec<_>>());
    assert_eq!(turns["items"][LAST_TURN as usize]["finished"], true);

    // Every player's mail carries their own report of every turn.
    for (who, (email, race)) in SEATS.iter().enumerate() {
        let started = mail_of(&running, email, "game_started", "has started").await;
        let text0 = report_text(&running, who, 0).await;
        assert!(started.text.contains(text0.trim()), "{}", started.text);
        assert!(
            started.text.contains(" UTC"),
            "the first deadline: {}",
            started.text
        );
        assert!(started.text.contains(race), "{}", started.text);
        for turn in 1..LAST_TURN {
            let mail = mail_of(&running, email, "turn_completed", &format!("turn {turn} ")).await;
            let text = report_text(&running, who, turn).await;
            assert!(
                mail.text.contains(text.trim()),
                "turn {turn}: {}",
                mail.text
            );
        }
        let over = mail_of(&running, email, "game_finished", "is over").await;
        let last = report_text(&running, who, LAST_TURN).await;
        assert!(over.text.contains(last.trim()), "{}", over.text);
        assert!(
            over.text.contains("Score"),
            "a standings table: {}",
            over.text
        );
        assert!(!over.text.contains('{'), "no JSON in mail: {}", over.text);
        for (_, other) in SEATS {
            assert!(over.text.contains(other), "{}", over.text);
        }
        let turn_mails = mails_to(&running.mail, email)
            .into_iter()
            .filter(|m| m.kind == "turn_completed")
            .count();
        assert_eq!(
            turn_mails as u64,
            LAST_TURN - 1,
            "the last turn's mail is the game-over mail"
        );
    }

    // After the finish: every race's report of every turn is revealed to every player;
    // a turn never played is still 404; a non-player still sees nothing.
    for turn in 0..=LAST_TURN {
        for (_, race) in SEATS {
            let path = format!("{games}/reports/{turn}?race={}", race.to_lowercase());
            let (status, report) = get(&running, 0, &path).await;
            assert_eq!(status, 200, "{path}: {report}");
            assert_eq!(report["race"], race);
        }
    }
    // The game's page offers the reveal too: another race's report, chosen by race.
    let other = SEATS[1].1;
    let page = format!("/games/{}?turn=1&race={other}", running.game);
    let (status, html) = running.players[0].0.page(&page).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<select id=\"race\" name=\"race\">"),
        "{html}"
    );
    assert!(html.contains(&format!(" 1 · {other}")), "{html}");
    let (status, error) = get(&running, 1, &format!("{games}/reports/{}", LAST_TURN + 1)).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (404, &json!("turn_not_played"))
    );
    let (status, _) = running
        .outsider
        .request("GET", &format!("{games}/reports/1"), None)
        .await;
    assert_eq!(status, 404);
    let (status, error) = running.players[0]
        .0
        .request(
            "PUT",
            &format!("{games}/orders"),
            Some(json!({"turn": 4, "orders": []})),
        )
        .await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (409, &json!("invalid_status"))
    );

    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_engine_settings_fail_the_start_with_the_engines_reason() {
    let settings = json!({ "engine_settings": { "max_turns": 0, "planets_per_race": 99 } });
    let running = runtime_support::start_game_with(&process_vars(), &SEATS[..2], settings).await;
    let games = format!("/api/v1/user/games/{}", running.game);
    let view = eventually(Duration::from_secs(60), "the start failed", || async {
        let (_, view) = running.players[0].0.request("GET", &games, None).await;
        (view["status"] == "start_failed").then_some(view)
    })
    .await;
    let reason = view["status_reason"].as_str().unwrap();
    assert!(reason.contains("422"), "{reason}");
    assert!(
        reason.contains("max_turns"),
        "the engine's details: {reason}"
    );
    assert!(
        reason.contains("planets_per_race"),
        "the engine's details: {reason}"
    );
    // Another player and the public game view are told the engine failed, without its
    // output (which may name the engine's address or the container runtime's insides).
    let (_, seen) = running.players[1].0.request("GET", &games, None).await;
    let public = format!("/api/v1/public/games/{}", running.game);
    let (_, public) = running.outsider.request("GET", &public, None).await;
    for view in [seen, public] {
        let reason = view["status_reason"].as_str().unwrap();
        assert!(reason.contains("engine failed"), "{reason}");
        assert!(!reason.contains("422"), "{reason}");
    }
    let mail = mail_of(&running, SEATS[0].0, "game_start_failed", "").await;
    assert!(mail.text.contains("max_turns"), "{}", mail.text);
    running.shut_down().await;
}
