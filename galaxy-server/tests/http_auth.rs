#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Logging in over the API: the code flow, sessions, rate limits, the gateway's session
//! resolution, and secrets kept out of error bodies.

mod http_support;

use std::net::SocketAddr;

use axum::http::{Method, header};
use http_support::{Call, INTERNAL_TOKEN, TestApp};
use serde_json::json;

#[tokio::test]
async fn the_login_flow_from_code_to_logout() {
    let app = TestApp::new();
    let issued = app
        .call(
            Method::POST,
            "/api/v1/public/auth/login-codes",
            None,
            Some(json!({ "email": "Alice@Example.org" })),
        )
        .await;
    issued.expect(202);
    let challenge_id = issued.json["challenge_id"].as_str().unwrap().to_owned();
    assert!(issued.json["expires_at"].is_string());
    let code = app.login_code("alice@example.org").await;

    let session = app
        .call(
            Method::POST,
            "/api/v1/public/auth/sessions",
            None,
            Some(json!({ "challenge_id": challenge_id, "code": code })),
        )
        .await;
    session.expect(201);
    let token = session.json["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    let user_id = session.json["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(session.json["user"]["email"], "alice@example.org");
    assert!(session.json["session_id"].is_string());
    assert!(session.json["expires_at"].is_string());

    let me = app.get("/api/v1/user/me", Some(&token)).await;
    me.expect(200);
    assert_eq!(me.json["id"], user_id.as_str());

    let sessions = app.get("/api/v1/user/sessions", Some(&token)).await;
    sessions.expect(200);
    assert_eq!(sessions.json["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(sessions.json["items"][0]["current"], true);
    assert!(
        !sessions.text.contains(&token),
        "a session list never shows tokens"
    );

    // The same code does not work twice.
    let again = app
        .call(
            Method::POST,
            "/api/v1/public/auth/sessions",
            None,
            Some(json!({ "challenge_id": challenge_id, "code": code })),
        )
        .await;
    again.expect(409);

    let patched = app
        .call(
            Method::PATCH,
            "/api/v1/user/me",
            Some(&token),
            Some(json!({ "display_name": "Alice A.", "locale": "pt-BR" })),
        )
        .await;
    patched.expect(200);
    assert_eq!(patched.json["display_name"], "Alice A.");
    assert_eq!(patched.json["locale"], "pt-BR");
    let invalid = app
        .call(
            Method::PATCH,
            "/api/v1/user/me",
            Some(&token),
            Some(json!({ "locale": "klingon" })),
        )
        .await;
    invalid.expect(422);
    assert_eq!(invalid.json["error"]["details"]["field"], "locale");

    let logout = app
        .call(
            Method::DELETE,
            "/api/v1/user/sessions/current",
            Some(&token),
            None,
        )
        .await;
    logout.expect(200);
    assert_eq!(logout.json["status"], "revoked");
    let after = app.get("/api/v1/user/me", Some(&token)).await;
    after.expect(401);
    assert_eq!(after.code(), "unauthenticated");
    assert_eq!(
        after
            .headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
}

#[tokio::test]
async fn wrong_codes_cost_attempts_and_are_never_echoed() {
    let app = TestApp::new();
    let (challenge_id, code) = app.challenge("bob@example.org").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        let response = app
            .call(
                Method::POST,
                "/api/v1/public/auth/sessions",
                None,
                Some(json!({ "challenge_id": challenge_id, "code": wrong })),
            )
            .await;
        response.expect(401);
        assert!(!response.text.contains(wrong));
        assert!(!response.text.contains(&code));
    }
    let locked = app
        .call(
            Method::POST,
            "/api/v1/public/auth/sessions",
            None,
            Some(json!({ "challenge_id": challenge_id, "code": wrong })),
        )
        .await;
    locked.expect(409);
    // The right code no longer helps.
    let late = app
        .call(
            Method::POST,
            "/api/v1/public/auth/sessions",
            None,
            Some(json!({ "challenge_id": challenge_id, "code": code })),
        )
        .await;
    late.expect(409);
}

#[tokio::test]
async fn an_address_past_its_wrong_code_budget_gets_429_for_every_code() {
    let app = TestApp::new();
    let exchange = |challenge_id: String, code: String| {
        app.call(
            Method::POST,
            "/api/v1/public/auth/sessions",
            None,
            Some(json!({ "challenge_id": challenge_id, "code": code })),
        )
    };
    // Two codes locked by five wrong guesses each spend the default budget of 10.
    for _ in 0..2 {
        let (challenge_id, code) = app.challenge("erin@example.org").await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            let response = exchange(challenge_id.clone(), wrong.to_owned()).await;
            assert!(
                matches!(response.status.as_u16(), 401 | 409),
                "{}",
                response.text
            );
        }
    }
    let (challenge_id, code) = app.challenge("erin@example.org").await;
    let before = app.snapshot();
    let limited = exchange(challenge_id.clone(), code.clone()).await;
    limited.expect(429);
    assert_eq!(limited.code(), "rate_limited");
    assert!(!limited.text.contains(&code));
    let retry_after: u64 = limited
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(app.snapshot(), before, "no code was checked");
}

#[tokio::test]
async fn secrets_sent_in_the_wrong_place_are_not_reflected() {
    let app = TestApp::new();
    let login = app.login("carol@example.org").await;
    let token = login.token.as_str();
    let (challenge_id, code) = app.challenge("carol@example.org").await;
    let bodies = [
        // The code as a number: a type error.
        format!(r#"{{"challenge_id": "{challenge_id}", "code": {code}}}"#),
        // The token where the challenge id belongs.
        format!(r#"{{"challenge_id": "{token}", "code": "{code}"}}"#),
        // The token as an unknown field's name and value.
        format!(r#"{{"challenge_id": "{challenge_id}", "code": "{code}", "{token}": "{token}"}}"#),
        // A truncated body holding the token.
        format!(r#"{{"challenge_id": "{token}"#),
    ];
    for body in bodies {
        let response = app
            .send(Call::new(Method::POST, "/api/v1/public/auth/sessions").raw_json(body))
            .await;
        assert!(response.status.is_client_error(), "{}", response.text);
        http_support::assert_error_shape(&response);
        assert!(
            !response.text.contains(token),
            "token echoed: {}",
            response.text
        );
        assert!(
            !response.text.contains(&code),
            "code echoed: {}",
            response.text
        );
    }
    // A token in the path or in a query parameter is not echoed either.
    let in_path = app
        .get(&format!("/api/v1/user/games/{token}"), Some(token))
        .await;
    in_path.expect(400);
    assert!(!in_path.text.contains(token));
    let in_query = app
        .get(&format!("/api/v1/public/games?limit={token}"), None)
        .await;
    in_query.expect(400);
    assert!(!in_query.text.contains(token));
    let unknown_param = app
        .get(&format!("/api/v1/public/games?{token}=1"), None)
        .await;
    unknown_param.expect(400);
    assert!(!unknown_param.text.contains(token));
    // A malformed or revoked bearer token is refused without being repeated.
    for bad in [format!("{token}x"), "not-a-token".to_owned()] {
        let response = app.get("/api/v1/user/me", Some(&bad)).await;
        response.expect(401);
        assert!(!response.text.contains(&bad));
    }
    let resolve = app
        .send(
            Call::new(Method::POST, "/api/v1/internal/sessions/resolve")
                .internal(INTERNAL_TOKEN)
                .json(&json!({ "token": format!("{token}0") })),
        )
        .await;
    resolve.expect(401);
    assert!(!resolve.text.contains(token));
}

#[tokio::test]
async fn login_codes_are_rate_limited_per_email_with_retry_after() {
    let app = TestApp::new();
    let ask = || {
        app.call(
            Method::POST,
            "/api/v1/public/auth/login-codes",
            None,
            Some(json!({ "email": "dave@example.org" })),
        )
    };
    // By default an address holds at most 3 unused codes (before its 5 per 15 minutes).
    for _ in 0..3 {
        ask().await.expect(202);
    }
    let before = app.snapshot();
    let limited = ask().await;
    limited.expect(429);
    assert_eq!(limited.code(), "rate_limited");
    assert!(
        limited.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unused login codes")),
        "{}",
        limited.json
    );
    let retry_after: u64 = limited
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(
        limited.json["error"]["details"]["retry_after_seconds"],
        retry_after
    );
    assert_eq!(app.snapshot(), before, "a refused request stores nothing");

    app.clock.advance(chrono::TimeDelta::seconds(
        i64::try_from(retry_after).unwrap(),
    ));
    ask().await.expect(202);
}

#[tokio::test]
async fn login_codes_are_rate_limited_per_client_address() {
    let app = TestApp::new();
    let client: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let ask = |n: usize| {
        app.send(
            Call::new(Method::POST, "/api/v1/public/auth/login-codes")
                .json(&json!({ "email": format!("user{n}@example.org") }))
                .client(client),
        )
    };
    for n in 0..20 {
        ask(n).await.expect(202);
    }
    let limited = ask(20).await;
    limited.expect(429);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    // Another address is not affected.
    let elsewhere = app
        .send(
            Call::new(Method::POST, "/api/v1/public/auth/login-codes")
                .json(&json!({ "email": "user21@example.org" }))
                .client("198.51.100.1:1".parse().unwrap()),
        )
        .await;
    elsewhere.expect(202);
}

#[tokio::test]
async fn the_gateway_resolves_tokens_and_blocks_end_sessions() {
    let app = TestApp::new();
    let admin = app.login(http_support::ADMIN_EMAIL).await;
    let erin = app.login("erin@example.org").await;
    let resolve = |token: String| {
        app.send(
            Call::new(Method::POST, "/api/v1/internal/sessions/resolve")
                .internal(INTERNAL_TOKEN)
                .json(&json!({ "token": token })),
        )
    };
    let resolved = resolve(erin.token.clone()).await;
    resolved.expect(200);
    assert_eq!(resolved.json["user"]["id"], erin.user_id.as_str());
    assert_eq!(resolved.json["session_id"], erin.session_id.as_str());
    let user = app
        .send(
            Call::new(
                Method::GET,
                format!("/api/v1/internal/users/{}", erin.user_id),
            )
            .internal(INTERNAL_TOKEN),
        )
        .await;
    user.expect(200);
    assert_eq!(user.json["email"], "erin@example.org");

    // A temporary block refuses the token (403); a permanent one revokes it (401).
    let block_uri = format!("/api/v1/admin/users/{}/block", erin.user_id);
    let block = |body: serde_json::Value| {
        app.call(Method::POST, &block_uri, Some(&admin.token), Some(body))
    };
    block(json!({ "until": "2030-01-03T00:00:00Z" }))
        .await
        .expect(200);
    app.get("/api/v1/user/me", Some(&erin.token))
        .await
        .expect(403);
    resolve(erin.token.clone()).await.expect(403);
    block(json!({ "permanent": true })).await.expect(200);
    app.call(
        Method::POST,
        &format!("/api/v1/admin/users/{}/unblock", erin.user_id),
        Some(&admin.token),
        None,
    )
    .await
    .expect(200);
    app.get("/api/v1/user/me", Some(&erin.token))
        .await
        .expect(401);
    resolve(erin.token.clone()).await.expect(401);
    // An admin cannot block themself, and a block needs exactly one of its fields.
    app.call(
        Method::POST,
        &format!("/api/v1/admin/users/{}/block", admin.user_id),
        Some(&admin.token),
        Some(json!({ "permanent": true })),
    )
    .await
    .expect(403);
    block(json!({})).await.expect(422);
    block(json!({ "until": "2030-01-03T00:00:00Z", "permanent": true }))
        .await
        .expect(422);
    block(json!({ "until": "2029-01-01T00:00:00Z" }))
        .await
        .expect(422);
}
