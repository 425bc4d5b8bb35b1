//! Whole-engine behaviour over real sockets: resuming from the data directory after a
//! restart, a whole game played by bots, and determinism.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Http, init_body, start};
use galaxy_engine::bot;
use galaxy_engine::game::Report;
use serde_json::{Value, json};

const RACES: [&str; 3] = ["Ants", "Bees", "Cats"];

/// Submits every living race's bot orders for the next turn.
async fn bot_orders(http: &Http, turn: u32) {
    for race in RACES {
        let report: Report = serde_json::from_value(http.report(race, turn).await).unwrap();
        let orders = serde_json::to_value(bot::orders(&report)).unwrap();
        let (status, verdict) = http
            .put(
                &format!("/orders/{race}"),
                json!({"turn": turn + 1, "orders": orders}),
            )
            .await;
        assert_eq!(status, 200);
        let finished_or_out = report.finished || !report.alive;
        assert!(
            verdict["accepted"] == true || finished_or_out,
            "{race}: {verdict}"
        );
    }
}

/// Plays `turns` bot turns on an engine over `dir` (initialising it first when asked).
async fn play(dir: &Path, init: bool, from: u32, turns: u32) -> Vec<Value> {
    let engine = start(dir).await;
    let http = Http::new(&engine);
    if init {
        let (status, _) = http
            .post(
                "/admin/init",
                init_body("g", 5, &RACES, json!({"max_turns": 40})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let mut reports = Vec::new();
    for turn in from..from + turns {
        bot_orders(&http, turn).await;
        http.turn(turn + 1).await;
        for race in RACES {
            reports.push(http.report(race, turn + 1).await);
        }
    }
    engine.stop().await.unwrap();
    reports
}

#[tokio::test]
async fn a_restarted_engine_resumes_from_its_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    http.post(
        "/admin/init",
        init_body("g", 5, &RACES, json!({"max_turns": 40})),
    )
    .await;
    bot_orders(&http, 0).await;
    http.turn(1).await;
    bot_orders(&http, 1).await; // pending orders for turn 2, to be kept across the restart
    let before = http.report("Bees", 1).await;
    let state = http.get("/admin/state").await.1;
    engine.stop().await.unwrap();

    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    assert_eq!(http.get("/admin/state").await.1, state);
    assert_eq!(http.report("Bees", 1).await, before);
    assert_eq!(http.report("Ants", 0).await["turn"], 0);
    let (status, again) = http
        .post("/admin/init", init_body("g", 5, &RACES, json!(null)))
        .await;
    assert_eq!(
        (status, again["turn"].clone()),
        (200, json!(1)),
        "init stays idempotent"
    );
    http.turn(2).await;
    let resumed = http.report("Cats", 2).await;
    engine.stop().await.unwrap();

    // The orders submitted before the restart were applied: turn 2 matches an engine
    // that never stopped.
    let twin = tempfile::tempdir().unwrap();
    let straight = play(twin.path(), true, 0, 2).await;
    assert_eq!(straight[5], resumed);
}

#[tokio::test]
async fn a_bot_game_plays_to_the_end_and_replays_identically() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let first = play(one.path(), true, 0, 40).await;
    let second = play(two.path(), true, 0, 40).await;
    assert_eq!(first, second, "same seed, same orders: same reports");

    let engine = start(one.path()).await;
    let http = Http::new(&engine);
    let state = http.get("/admin/state").await.1;
    assert_eq!(state["turn"], 40);
    assert_eq!(state["finished"], true);
    let standings = state["races"].as_array().unwrap();
    assert_eq!(standings.len(), 3);
    assert!(
        standings
            .iter()
            .all(|s| s["score"].is_number() && s["alive"].is_boolean())
    );
    // After the end, a turn call runs nothing and orders are refused with a reason.
    let after = http.turn(41).await;
    assert_eq!(
        (after["turn"].clone(), after["finished"].clone()),
        (json!(40), json!(true))
    );
    let (_, verdict) = http
        .put("/orders/Ants", json!({"turn": 41, "orders": []}))
        .await;
    assert_eq!(verdict["accepted"], false);
    let last = http.report("Ants", 40).await;
    assert!(last["text"].as_str().unwrap().contains("The game is over"));
    engine.stop().await.unwrap();
}
