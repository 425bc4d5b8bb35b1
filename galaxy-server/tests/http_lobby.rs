#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The lobby over the API: a host and three players take a game from draft to starting.

mod http_support;

use axum::http::Method;
use http_support::TestApp;
use serde_json::json;

#[tokio::test]
async fn three_players_take_a_game_from_draft_to_starting() {
    let app = TestApp::new();
    let host = app.login("host@example.org").await;
    let players = [
        app.login("ann@example.org").await,
        app.login("ben@example.org").await,
        app.login("cat@example.org").await,
    ];

    let created = app
        .call(
            Method::POST,
            "/api/v1/user/games",
            Some(&host.token),
            Some(http_support::game_body("Three of a kind", 3, 3)),
        )
        .await;
    created.expect(201);
    assert_eq!(created.json["status"], "draft");
    assert_eq!(created.json["approved_count"], 0);
    assert_eq!(created.json["host"], host.user_id.as_str());
    assert_eq!(created.json["settings"]["visibility"], "public");
    let game = created.json["id"].as_str().unwrap().to_owned();

    // A draft is the host's alone.
    let public = app.get(&format!("/api/v1/public/games/{game}"), None).await;
    public.expect(404);
    let peek = app
        .get(
            &format!("/api/v1/user/games/{game}"),
            Some(&players[0].token),
        )
        .await;
    peek.expect(404);

    let opened = app.game_action(&host, &game, "open", 200).await;
    assert_eq!(opened["status"], "enrollment_open");
    let listed = app.get("/api/v1/public/games", None).await;
    listed.expect(200);
    assert_eq!(listed.json["items"][0]["id"], game.as_str());
    assert!(listed.json["next_after"].is_null());

    let mut applications = Vec::new();
    for (player, race) in players.iter().zip(["Ants", "Bees", "Cats"]) {
        let response = app
            .call(
                Method::POST,
                &format!("/api/v1/user/games/{game}/applications"),
                Some(&player.token),
                Some(json!({ "race_name": race })),
            )
            .await;
        response.expect(201);
        assert_eq!(response.json["status"], "pending");
        assert_eq!(response.json["race_name"], race);
        applications.push(response.json["id"].as_str().unwrap().to_owned());
    }
    // The same race name, differently spelled, is taken.
    let taken = app
        .call(
            Method::POST,
            &format!("/api/v1/user/games/{game}/applications"),
            Some(&host.token),
            Some(json!({ "race_name": "ANTS" })),
        )
        .await;
    taken.expect(409);
    assert_eq!(taken.code(), "race_name_taken");

    // A player sees their own application, the host sees all.
    let own = app
        .get(
            &format!("/api/v1/user/games/{game}/applications"),
            Some(&players[1].token),
        )
        .await;
    own.expect(200);
    assert_eq!(own.json["items"].as_array().map(Vec::len), Some(1));
    let all = app
        .get(
            &format!("/api/v1/user/games/{game}/applications"),
            Some(&host.token),
        )
        .await;
    assert_eq!(all.json["items"].as_array().map(Vec::len), Some(3));

    // Too early to close.
    let early = app.game_action(&host, &game, "close", 409).await;
    assert_eq!(early["error"]["code"], "no_quorum");

    for id in &applications[..2] {
        let approved = app
            .game_action(&host, &game, &format!("applications/{id}/approve"), 200)
            .await;
        assert_eq!(approved["status"], "approved");
    }
    let game_now = app
        .get(&format!("/api/v1/user/games/{game}"), Some(&host.token))
        .await;
    assert_eq!(game_now.json["approved_count"], 2);
    assert_eq!(game_now.json["status"], "enrollment_open");

    // The third approval fills the game, which closes enrollment by itself.
    let third = &applications[2];
    app.game_action(&host, &game, &format!("applications/{third}/approve"), 200)
        .await;
    let full = app
        .get(&format!("/api/v1/user/games/{game}"), Some(&host.token))
        .await;
    assert_eq!(full.json["approved_count"], 3);
    assert_eq!(full.json["status"], "enrollment_closed");
    // Closing again is a conflict, not an error.
    app.game_action(&host, &game, "close", 409).await;

    // A player cannot start the host's game.
    app.game_action(&players[0], &game, "start", 403).await;
    let started = app.game_action(&host, &game, "start", 200).await;
    assert_eq!(started["status"], "starting");

    let names = app
        .get("/api/v1/user/race-names", Some(&players[0].token))
        .await;
    names.expect(200);
    assert_eq!(names.json["items"][0]["name"], "Ants");
    assert_eq!(names.json["items"][0]["status"], "registered");
    let hosted = app.get("/api/v1/user/games", Some(&host.token)).await;
    assert_eq!(hosted.json["items"][0]["status"], "starting");
}

#[tokio::test]
async fn a_close_then_start_by_the_host_and_withdrawal_by_a_player() {
    let app = TestApp::new();
    let host = app.login("host@example.org").await;
    let ann = app.login("ann@example.org").await;
    let ben = app.login("ben@example.org").await;
    let cat = app.login("cat@example.org").await;
    let game = app.create_game(&host, "Open field", 2, 8).await;
    app.game_action(&host, &game, "open", 200).await;
    let a = app.apply(&ann, &game, "Ants").await;
    let b = app.apply(&ben, &game, "Bees").await;
    let c = app.apply(&cat, &game, "Cats").await;
    app.game_action(&host, &game, &format!("applications/{a}/approve"), 200)
        .await;
    app.game_action(&host, &game, &format!("applications/{b}/approve"), 200)
        .await;
    let withdrawn = app
        .call(
            Method::DELETE,
            &format!("/api/v1/user/games/{game}/applications/mine"),
            Some(&cat.token),
            None,
        )
        .await;
    withdrawn.expect(200);
    assert_eq!(withdrawn.json["id"], c.as_str());
    assert_eq!(withdrawn.json["status"], "withdrawn");
    app.game_action(&host, &game, &format!("applications/{c}/approve"), 409)
        .await;
    let closed = app.game_action(&host, &game, "close", 200).await;
    assert_eq!(closed["status"], "enrollment_closed");
    assert_eq!(closed["approved_count"], 2);
    let started = app.game_action(&host, &game, "start", 200).await;
    assert_eq!(started["status"], "starting");
}

#[tokio::test]
async fn the_public_list_is_searched_by_name_and_free_seat_over_every_game() {
    let app = TestApp::new();
    let host = app.login("host@example.org").await;
    let player = app.login("pia@example.org").await;
    // More open games than one page of 2, the ones looked for on different pages.
    let mut ids = Vec::new();
    for name in ["Vega Cup", "Altair", "Deneb", "the vega_league", "Sirius"] {
        let id = app.create_game(&host, name, 2, 2).await;
        app.game_action(&host, &id, "open", 200).await;
        ids.push(id);
    }
    let names = |json: &serde_json::Value| -> Vec<String> {
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let found = app.get("/api/v1/public/games?q=VEGA&limit=1", None).await;
    found.expect(200);
    assert_eq!(names(&found.json), ["Vega Cup"]);
    let after = found.json["next_after"].as_str().unwrap().to_owned();
    let next = app
        .get(
            &format!("/api/v1/public/games?q=VEGA&limit=1&after={after}"),
            None,
        )
        .await;
    assert_eq!(names(&next.json), ["the vega_league"]);
    assert!(next.json["next_after"].is_null(), "{}", next.json);
    // `_` is a plain character, not a wildcard.
    let literal = app.get("/api/v1/public/games?q=a_l", None).await;
    assert_eq!(names(&literal.json), ["the vega_league"]);
    // A game with every seat taken drops out of `free=true`.
    app.apply(&player, &ids[0], "Pians").await;
    let pending = app
        .get(
            &format!("/api/v1/user/games/{}/applications", ids[0]),
            Some(&host.token),
        )
        .await;
    let application = pending.json["items"][0]["id"].as_str().unwrap().to_owned();
    let other = app.login("oto@example.org").await;
    let second = app.apply(&other, &ids[0], "Otters").await;
    for id in [application, second] {
        app.call(
            Method::POST,
            &format!("/api/v1/user/games/{}/applications/{id}/approve", ids[0]),
            Some(&host.token),
            None,
        )
        .await
        .expect(200);
    }
    let free = app.get("/api/v1/public/games?q=vega&free=true", None).await;
    assert_eq!(names(&free.json), ["the vega_league"]);
    // Bad input.
    app.get("/api/v1/public/games?free=yes", None)
        .await
        .expect(400);
    app.get("/api/v1/public/games?q=x&open_seats=true", None)
        .await
        .expect(400);
    app.get("/api/v1/public/games?q=a%00b", None)
        .await
        .expect(422);
    let long = app
        .get(&format!("/api/v1/public/games?q={}", "x".repeat(300)), None)
        .await;
    long.expect(422);
    assert_eq!(long.json["error"]["details"]["field"], "q", "{}", long.json);
}

/// "My games" pages newest first, splits ended games from those going on, and says
/// which query field it refuses.
#[tokio::test]
async fn my_games_are_paged_and_split_by_ended() {
    let app = TestApp::new();
    let host = app.login("host@example.org").await;
    let mut ids = Vec::new();
    for name in ["First Cup", "Second Cup", "Third Cup"] {
        ids.push(app.create_game(&host, name, 2, 2).await);
        app.clock.advance(chrono::TimeDelta::minutes(1));
    }
    app.game_action(&host, &ids[0], "cancel", 200).await;
    let token = Some(host.token.as_str());
    let listed = |json: &serde_json::Value| -> Vec<String> {
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = app.get("/api/v1/user/games?limit=2", token).await;
    first.expect(200);
    let after = first.json["next_after"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/api/v1/user/games?limit=2&after={after}"), token)
        .await;
    second.expect(200);
    assert!(second.json["next_after"].is_null(), "{}", second.json);
    let mut seen = listed(&first.json);
    seen.extend(listed(&second.json));
    let mut all = ids.clone();
    all.reverse();
    assert_eq!(seen, all, "newest first, each once");
    let ended = app.get("/api/v1/user/games?ended=true", token).await;
    assert_eq!(listed(&ended.json), [ids[0].clone()]);
    let going = app.get("/api/v1/user/games?ended=false", token).await;
    assert_eq!(listed(&going.json), [ids[2].clone(), ids[1].clone()]);
    for (query, field) in [("ended=yes", "ended"), ("after=not-a-game", "after")] {
        let refused = app.get(&format!("/api/v1/user/games?{query}"), token).await;
        refused.expect(400);
        assert_eq!(
            refused.json["error"]["details"]["field"], field,
            "{}",
            refused.json
        );
    }
}
