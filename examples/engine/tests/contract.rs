//! The engine contract over real sockets: the credential, init idempotency,
//! `expected_turn`, orders and their rejection, per-race reports, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Http, init_body, start};
use galaxy_engine::{RunningEngine, Token};
use hyper::Method;
use serde_json::json;

#[tokio::test]
async fn healthz_answers_before_init_and_other_routes_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    let (status, health) = http.get("/healthz").await;
    assert_eq!(status, 200);
    // The contract version it implements (docs/engine-contract.md, "Versions").
    assert_eq!(health["contract"], json!("2"));
    assert_eq!(galaxy_engine::CONTRACT_VERSION, "2");
    for (status, body) in [
        http.get("/admin/state").await,
        http.post("/admin/turn", json!({"expected_turn": 1})).await,
        http.put("/orders/A", json!({"turn": 1, "orders": []}))
            .await,
        http.get("/reports/A/0").await,
    ] {
        assert_eq!(status, 409, "{body}");
        assert!(body["error"].as_str().unwrap().contains("initialised"));
    }
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn with_a_token_every_route_but_healthz_requires_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6";
    let token = Token::parse(secret).unwrap();
    let engine =
        RunningEngine::start_with_token("127.0.0.1:0".parse().unwrap(), dir.path(), Some(token))
            .await
            .unwrap();
    let anonymous = Http::new(&engine);
    let wrong = Http::authorised(&engine, "Bearer a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d7");
    let basic = Http::authorised(&engine, &format!("Basic {secret}"));
    let player = Http::authorised(&engine, &format!("Bearer {secret}"));
    let body = init_body("g", 3, &["Red", "Blue"], json!({}));

    // Health tells nothing: anyone may ask.
    assert_eq!(anonymous.get("/healthz").await.0, 200);
    // Everything else, unknown routes included, answers 401 without the exact token,
    // and changes nothing.
    for client in [&anonymous, &wrong, &basic] {
        let (status, answer) = client.post("/admin/init", body.clone()).await;
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer")
        );
        assert_eq!(client.get("/admin/state").await.0, 401);
        assert_eq!(client.get("/reports/Red/0").await.0, 401);
        let orders = json!({ "turn": 1, "orders": [] });
        assert_eq!(client.put("/orders/Red", orders).await.0, 401);
        assert_eq!(
            client
                .post("/admin/turn", json!({"expected_turn": 1}))
                .await
                .0,
            401
        );
        assert_eq!(client.get("/no/such/route").await.0, 401);
    }
    assert_eq!(
        player.get("/admin/state").await.0,
        409,
        "still not initialised"
    );
    let (status, state) = player.post("/admin/init", body).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(player.report("Red", 0).await["race"], "Red");
    assert_eq!(player.turn(1).await["turn"], 1);
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn init_is_idempotent_for_the_same_game_and_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    let body = init_body(
        "game-1",
        42,
        &["Red Dwarf", "Blue/Giant"],
        json!({"max_turns": 10}),
    );
    let (status, first) = http.post("/admin/init", body.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["turn"], 0);
    assert_eq!(first["finished"], false);
    assert_eq!(first["races"].as_array().unwrap().len(), 2);
    assert_eq!(
        first["races"][0],
        json!({"name": "Red Dwarf", "alive": true, "score": 20.0})
    );

    // Every race has a turn-0 report, names with spaces and slashes included.
    let red = http.report("Red%20Dwarf", 0).await;
    assert_eq!(
        (red["race"].as_str(), red["turn"].as_u64()),
        (Some("Red Dwarf"), Some(0))
    );
    assert!(red["text"].as_str().unwrap().contains("turn 0"));
    assert_eq!(http.report("Blue%2FGiant", 0).await["race"], "Blue/Giant");

    // A repeat, even with other content, returns the current state and changes nothing.
    http.turn(1).await;
    let (status, again) = http
        .post("/admin/init", init_body("game-1", 7, &["X"], json!(null)))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["turn"], 1);
    assert_eq!(again["races"].as_array().unwrap().len(), 2);

    let (status, other) = http
        .post("/admin/init", init_body("game-2", 42, &["A"], json!(null)))
        .await;
    assert_eq!(status, 409, "{other}");
    assert!(other["error"].as_str().unwrap().contains("game-1"));
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_init_bodies_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    let (status, body) = http
        .post(
            "/admin/init",
            init_body(
                "g",
                1,
                &["A", "A", " B"],
                json!({"max_turns": 0, "colour": 1}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let details = body["details"].as_array().unwrap();
    assert!(details.len() >= 3, "{body}");
    let (status, body) = http
        .post("/admin/init", init_body("", 1, &[], json!(null)))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = http
        .post("/admin/init", json!({"game_id": "g", "races": []}))
        .await;
    assert_eq!(status, 400, "missing seed: {body}");
    let (status, body) = http
        .raw(Method::POST, "/admin/init", b"{not json".to_vec())
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid JSON"));
    let huge = vec![b' '; galaxy_engine::api::MAX_BODY_BYTES + 1];
    let (status, body) = http.raw(Method::POST, "/admin/init", huge).await;
    assert_eq!(status, 413, "{body}");
    // Nothing was initialised by any of these.
    assert_eq!(http.get("/admin/state").await.0, 409);
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn a_repeated_expected_turn_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    http.post("/admin/init", init_body("g", 9, &["A", "B"], json!(null)))
        .await;
    let first = http.turn(1).await;
    assert_eq!(first["turn"], 1);
    assert_eq!(first["standings"].as_array().unwrap().len(), 2);
    let report = http.report("A", 1).await;
    let repeat = http.turn(1).await;
    assert_eq!(repeat, first);
    assert_eq!(http.turn(0).await["turn"], 1, "older turns too");
    assert_eq!(
        http.report("A", 1).await,
        report,
        "turn 1 was not run again"
    );
    let (status, body) = http.post("/admin/turn", json!({"expected_turn": 3})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(http.get("/admin/state").await.1["turn"], 1);
    let (status, _) = http.get("/reports/A/2").await;
    assert_eq!(status, 404);
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn orders_are_checked_replaced_and_rejected_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    http.post("/admin/init", init_body("g", 3, &["A", "B"], json!(null)))
        .await;
    let home = http.report("A", 0).await["planets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["owner"] == "A")
        .unwrap()["id"]
        .as_u64()
        .unwrap();

    let good = json!({"turn": 1, "orders": [{"kind": "build_ships", "planet": home, "design": "Warship"}]});
    let (status, verdict) = http.put("/orders/A", good).await;
    assert_eq!(status, 200);
    assert_eq!(verdict, json!({"accepted": true, "errors": []}));

    let bad = json!({"turn": 1, "orders": [
        {"kind": "build_industry", "planet": home},
        {"kind": "build_ships", "planet": 999, "design": "Warship"},
        {"kind": "move", "fleet": 1, "to": 2},
        {"kind": "warp"},
    ]});
    let (status, verdict) = http.put("/orders/A", bad).await;
    assert_eq!(status, 200);
    assert_eq!(verdict["accepted"], false);
    let errors: Vec<&str> = verdict["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("order 2: unknown planet 999"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("order 3: you have no fleet 1"),
        "{errors:?}"
    );
    assert!(
        errors[2].starts_with("order 4: unknown variant `warp`"),
        "{errors:?}"
    );

    let (_, verdict) = http
        .put("/orders/A", json!({"turn": 5, "orders": []}))
        .await;
    assert_eq!(verdict["accepted"], false);
    assert!(
        verdict["errors"][0]
            .as_str()
            .unwrap()
            .contains("next turn is 1")
    );
    let (_, verdict) = http
        .put("/orders/A", json!({"turn": 1, "orders": {"kind": "move"}}))
        .await;
    assert_eq!(verdict["accepted"], false);
    assert_eq!(
        http.put("/orders/Nobody", json!({"turn": 1, "orders": []}))
            .await
            .0,
        404
    );
    assert_eq!(http.put("/orders/A", json!({"orders": []})).await.0, 400);
    assert_eq!(
        http.raw(Method::PUT, "/orders/A", b"[".to_vec()).await.0,
        400
    );

    // The good submission (not the rejected ones) is what the turn applied.
    http.turn(1).await;
    let report = http.report("A", 1).await;
    let planet = report["planets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == home)
        .unwrap();
    assert_eq!(
        planet["production"],
        json!({"build": "ships", "design": "Warship"})
    );

    // A later submission for the same turn replaces the earlier one.
    let first = json!({"turn": 2, "orders": [{"kind": "build_industry", "planet": home}]});
    assert_eq!(http.put("/orders/A", first).await.1["accepted"], true);
    assert_eq!(
        http.put("/orders/A", json!({"turn": 2, "orders": []}))
            .await
            .1["accepted"],
        true
    );
    http.turn(2).await;
    let report = http.report("A", 2).await;
    let planet = report["planets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == home)
        .unwrap();
    assert_eq!(
        planet["production"]["build"], "ships",
        "the empty submission replaced the first"
    );
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn each_report_holds_what_its_own_race_sees() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    http.post(
        "/admin/init",
        init_body("g", 11, &["A", "B"], json!({"scan_range": 5})),
    )
    .await;
    let a = http.report("A", 0).await;
    let b = http.report("B", 0).await;
    assert_eq!(a["race"], "A");
    assert_eq!(b["race"], "B");
    assert_ne!(a["text"], b["text"]);
    let planets = |r: &serde_json::Value, owner: &str| {
        r["planets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["owner"] == owner)
            .count()
    };
    // Each sees its own home and not the other's owner.
    assert_eq!((planets(&a, "A"), planets(&a, "B")), (1, 0));
    assert_eq!((planets(&b, "B"), planets(&b, "A")), (1, 0));
    let b_home = b["planets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["owner"] == "B")
        .unwrap()["id"]
        .clone();
    let seen_by_a = a["planets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == b_home)
        .unwrap();
    assert_eq!(seen_by_a["visible"], false);
    assert!(seen_by_a.get("industry").is_none() && seen_by_a.get("production").is_none());
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_and_bad_paths_answer_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let http = Http::new(&engine);
    http.post("/admin/init", init_body("g", 1, &["A"], json!(null)))
        .await;
    let (status, body) = http.get("/nope").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, body) = http.get("/reports/A/x").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("turn"));
    assert_eq!(http.get("/reports/Z/0").await.0, 404);
    assert_eq!(http.get("/reports/A/99999999999").await.0, 400);
    assert_eq!(
        http.raw(Method::DELETE, "/admin/state", Vec::new()).await.0,
        405
    );
    engine.stop().await.unwrap();
}
