#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The authorization matrix: every route, called by every kind of caller, against a fresh
//! world each time, answers the status the API documents for that caller.

mod http_support;

use std::collections::BTreeSet;

use axum::http::Method;
use galaxy_server::http::routes;
use http_support::{ADMIN_EMAIL, Call, INTERNAL_TOKEN, Login, TestApp, assert_error_shape};
use serde_json::json;

/// The callers, in the order of each row's expectations.
#[derive(Debug, Clone, Copy)]
enum Caller {
    /// No credentials.
    Anonymous,
    /// The host of the world's games.
    Host,
    /// Another player, with a pending application to the open game.
    Other,
    /// A player blocked until tomorrow.
    Blocked,
    /// An admin.
    Admin,
    /// The gateway, with the internal token and no bearer token.
    Internal,
}

const CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::Host,
    Caller::Other,
    Caller::Blocked,
    Caller::Admin,
    Caller::Internal,
];

/// Everything a row can refer to.
struct World {
    app: TestApp,
    host: Login,
    other: Login,
    blocked: Login,
    admin: Login,
    draft: String,
    open: String,
    closed: String,
    pending: String,
    mail: String,
    challenge: (String, String),
}

impl World {
    async fn build() -> Self {
        let app = TestApp::new();
        let admin = app.login(ADMIN_EMAIL).await;
        let host = app.login("host@example.org").await;
        let other = app.login("other@example.org").await;
        let blocked = app.login("blocked@example.org").await;
        let p1 = app.login("p1@example.org").await;
        let p2 = app.login("p2@example.org").await;

        let draft = app.create_game(&host, "Draft game", 2, 4).await;

        let open = app.create_game(&host, "Open game", 2, 4).await;
        app.game_action(&host, &open, "open", 200).await;
        for (player, race) in [(&p1, "Alphas"), (&p2, "Betas")] {
            let id = app.apply(player, &open, race).await;
            app.game_action(&host, &open, &format!("applications/{id}/approve"), 200)
                .await;
        }
        let pending = app.apply(&other, &open, "Othar").await;

        let closed = app.create_game(&host, "Closed game", 2, 4).await;
        app.game_action(&host, &closed, "open", 200).await;
        for (player, race) in [(&p1, "Gammas"), (&p2, "Deltas")] {
            let id = app.apply(player, &closed, race).await;
            app.game_action(&host, &closed, &format!("applications/{id}/approve"), 200)
                .await;
        }
        app.game_action(&host, &closed, "close", 200).await;

        app.call(
            Method::POST,
            &format!("/api/v1/admin/users/{}/block", blocked.user_id),
            Some(&admin.token),
            Some(json!({ "until": "2030-01-02T00:00:00Z" })),
        )
        .await
        .expect(200);

        let mails = app
            .get("/api/v1/admin/mail?limit=1", Some(&admin.token))
            .await;
        let mail = mails.json["items"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let challenge = app.challenge("fresh@example.org").await;
        Self {
            app,
            host,
            other,
            blocked,
            admin,
            draft,
            open,
            closed,
            pending,
            mail,
            challenge,
        }
    }

    /// Replaces `:name` placeholders with the world's ids and secrets.
    fn fill(&self, template: &str) -> String {
        [
            (":draft", self.draft.as_str()),
            (":open", self.open.as_str()),
            (":closed", self.closed.as_str()),
            (":pending", self.pending.as_str()),
            (":mail", self.mail.as_str()),
            (":host_session", self.host.session_id.as_str()),
            (":host_token", self.host.token.as_str()),
            (":host_id", self.host.user_id.as_str()),
            (":other_id", self.other.user_id.as_str()),
            (":blocked_id", self.blocked.user_id.as_str()),
            (":challenge", self.challenge.0.as_str()),
            (":code", self.challenge.1.as_str()),
            (":random", "0190c0de-0000-7000-8000-000000000001"),
        ]
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(key, value)
        })
    }

    fn call_as(&self, caller: Caller, call: Call) -> Call {
        match caller {
            Caller::Anonymous => call,
            Caller::Host => call.bearer(&self.host.token),
            Caller::Other => call.bearer(&self.other.token),
            Caller::Blocked => call.bearer(&self.blocked.token),
            Caller::Admin => call.bearer(&self.admin.token),
            Caller::Internal => call.internal(INTERNAL_TOKEN),
        }
    }
}

/// One route: its pattern (as in the route table), the concrete request, and the
/// expected status per caller (anonymous, host, other, blocked, admin, internal).
struct Row {
    method: Method,
    route: &'static str,
    uri: &'static str,
    body: Option<&'static str>,
    expect: [u16; 6],
}

const ALL: fn(u16) -> [u16; 6] = |s| [s; 6];
/// A route for any signed-in, unblocked user.
const USER: fn(u16) -> [u16; 6] = |s| [401, s, s, 403, s, 401];
/// A route only a game's host (or an admin) may use.
const HOST: fn(u16) -> [u16; 6] = |s| [401, s, 403, 403, s, 401];
/// An admin route.
const ADMIN: fn(u16) -> [u16; 6] = |s| [401, 403, 403, 403, s, 401];
/// An internal route.
const INTERNAL: fn(u16) -> [u16; 6] = |s| [401, 401, 401, 401, 401, s];

// A table reads best one row per route.
#[rustfmt::skip]
fn rows() -> Vec<Row> {
    use Method as M;
    let row = |method, route, uri, body, expect| Row { method, route, uri, body, expect };
    let game = r#"{"name": "New game", "min_players": 2, "max_players": 4,
        "enrollment_deadline": "2030-02-01T00:00:00Z", "turn_schedule": "0 18 * * *"}"#;
    vec![
        row(M::GET, "/healthz", "/healthz", None, ALL(200)),
        row(M::GET, "/readyz", "/readyz", None, ALL(200)),
        row(M::GET, "/api/v1/openapi.json", "/api/v1/openapi.json", None, ALL(200)),
        row(M::POST, "/api/v1/public/auth/login-codes", "/api/v1/public/auth/login-codes",
            Some(r#"{"email": "new@example.org"}"#), ALL(202)),
        row(M::POST, "/api/v1/public/auth/sessions", "/api/v1/public/auth/sessions",
            Some(r#"{"challenge_id": ":challenge", "code": ":code"}"#), ALL(201)),
        row(M::GET, "/api/v1/public/games", "/api/v1/public/games", None, ALL(200)),
        row(M::GET, "/api/v1/public/games/{id}", "/api/v1/public/games/:open", None, ALL(200)),
        row(M::GET, "/api/v1/user/me", "/api/v1/user/me", None, USER(200)),
        row(M::PATCH, "/api/v1/user/me", "/api/v1/user/me",
            Some(r#"{"display_name": "Renamed"}"#), USER(200)),
        row(M::GET, "/api/v1/user/sessions", "/api/v1/user/sessions", None, USER(200)),
        row(M::DELETE, "/api/v1/user/sessions/current", "/api/v1/user/sessions/current", None,
            USER(200)),
        // Another user's session looks like no session at all.
        row(M::DELETE, "/api/v1/user/sessions/{id}", "/api/v1/user/sessions/:host_session", None,
            [401, 200, 404, 403, 404, 401]),
        row(M::GET, "/api/v1/user/race-names", "/api/v1/user/race-names", None, USER(200)),
        // Only its owner sees the name, and it is held for a pending application.
        row(M::DELETE, "/api/v1/user/race-names/{name}", "/api/v1/user/race-names/Othar", None,
            [401, 404, 409, 403, 404, 401]),
        row(M::GET, "/api/v1/user/games", "/api/v1/user/games", None, USER(200)),
        row(M::POST, "/api/v1/user/games", "/api/v1/user/games", Some(game), USER(201)),
        // A draft is visible to its host and admins only.
        row(M::GET, "/api/v1/user/games/{id}", "/api/v1/user/games/:draft", None,
            [401, 200, 404, 403, 200, 401]),
        row(M::POST, "/api/v1/user/games/{id}/open", "/api/v1/user/games/:draft/open", None,
            [401, 200, 404, 403, 200, 401]),
        row(M::POST, "/api/v1/user/games/{id}/close", "/api/v1/user/games/:open/close", None,
            HOST(200)),
        row(M::POST, "/api/v1/user/games/{id}/start", "/api/v1/user/games/:closed/start", None,
            HOST(200)),
        row(M::POST, "/api/v1/user/games/{id}/cancel", "/api/v1/user/games/:open/cancel", None,
            HOST(200)),
        // The other player already applied.
        row(M::POST, "/api/v1/user/games/{id}/applications",
            "/api/v1/user/games/:open/applications", Some(r#"{"race_name": "Newcomers"}"#),
            [401, 201, 409, 403, 201, 401]),
        row(M::GET, "/api/v1/user/games/{id}/applications",
            "/api/v1/user/games/:open/applications", None, USER(200)),
        row(M::POST, "/api/v1/user/games/{id}/applications/{app_id}/approve",
            "/api/v1/user/games/:open/applications/:pending/approve", None, HOST(200)),
        row(M::POST, "/api/v1/user/games/{id}/applications/{app_id}/reject",
            "/api/v1/user/games/:open/applications/:pending/reject", None, HOST(200)),
        row(M::DELETE, "/api/v1/user/games/{id}/applications/mine",
            "/api/v1/user/games/:open/applications/mine", None, [401, 404, 200, 403, 404, 401]),
        // Nobody among the callers plays in the open game (the other player's application
        // is pending): the game's engine is none of their business.
        row(M::PUT, "/api/v1/user/games/{id}/orders", "/api/v1/user/games/:open/orders",
            Some(r#"{"turn": 1, "orders": {"fleets": []}}"#), [401, 404, 404, 403, 404, 401]),
        row(M::GET, "/api/v1/user/games/{id}/orders/{turn}",
            "/api/v1/user/games/:open/orders/1", None, [401, 404, 404, 403, 404, 401]),
        row(M::GET, "/api/v1/user/games/{id}/reports/{turn}",
            "/api/v1/user/games/:open/reports/0", None, [401, 404, 404, 403, 404, 401]),
        // Orders by e-mail: an address only for a player of the game (nobody here).
        row(M::GET, "/api/v1/user/games/{id}/orders-address",
            "/api/v1/user/games/:open/orders-address", None, [401, 404, 404, 403, 404, 401]),
        row(M::POST, "/api/v1/user/games/{id}/orders-address/rotate",
            "/api/v1/user/games/:open/orders-address/rotate", None, [401, 404, 404, 403, 404, 401]),
        row(M::PUT, "/api/v1/user/games/{id}/report-delivery",
            "/api/v1/user/games/:open/report-delivery", Some(r#"{"as": "attachment"}"#),
            [401, 404, 404, 403, 404, 401]),
        // The turn history is as visible as the game: a draft only to its host and admins.
        row(M::GET, "/api/v1/user/games/{id}/turns", "/api/v1/user/games/:open/turns", None,
            USER(200)),
        row(M::GET, "/api/v1/user/games/{id}/turns", "/api/v1/user/games/:draft/turns", None,
            [401, 200, 404, 403, 200, 401]),
        // The play-by-email routes: nobody plays a race in the open game (its races
        // exist once it started), so every player action is a 404, as for orders.
        row(M::POST, "/api/v1/user/games/{id}/ready", "/api/v1/user/games/:open/ready",
            Some(r#"{"turn": 1}"#), [401, 404, 404, 403, 404, 401]),
        row(M::GET, "/api/v1/user/games/{id}/preferences",
            "/api/v1/user/games/:open/preferences", None, [401, 404, 404, 403, 404, 401]),
        row(M::PUT, "/api/v1/user/games/{id}/preferences",
            "/api/v1/user/games/:open/preferences",
            Some(r#"{"reminders": false, "message_mail": true}"#),
            [401, 404, 404, 403, 404, 401]),
        row(M::GET, "/api/v1/user/games/{id}/vacation", "/api/v1/user/games/:open/vacation",
            None, [401, 404, 404, 403, 404, 401]),
        row(M::POST, "/api/v1/user/games/{id}/vacation", "/api/v1/user/games/:open/vacation",
            Some(r#"{"turns": 1}"#), [401, 404, 404, 403, 404, 401]),
        row(M::POST, "/api/v1/user/games/{id}/seats/{race}/open",
            "/api/v1/user/games/:open/seats/Othar/open", None, [401, 404, 404, 403, 404, 401]),
        row(M::POST, "/api/v1/user/games/{id}/seats/{race}/reclaim",
            "/api/v1/user/games/:open/seats/Othar/reclaim", None,
            [401, 404, 404, 403, 404, 401]),
        row(M::POST, "/api/v1/user/games/{id}/seats/{race}/applications",
            "/api/v1/user/games/:open/seats/Othar/applications", None,
            [401, 404, 404, 403, 404, 401]),
        // A seat's applications are the host's business.
        row(M::GET, "/api/v1/user/games/{id}/seats/{race}/applications",
            "/api/v1/user/games/:open/seats/Othar/applications", None,
            [401, 200, 403, 403, 200, 401]),
        row(M::POST,
            "/api/v1/user/games/{id}/seats/{race}/applications/{application_id}/approve",
            "/api/v1/user/games/:open/seats/Othar/applications/:random/approve", None,
            [401, 404, 404, 403, 404, 401]),
        row(M::POST, "/api/v1/user/games/{id}/messages", "/api/v1/user/games/:open/messages",
            Some(r#"{"to": "all", "text": "hello"}"#), [401, 404, 404, 403, 404, 401]),
        row(M::GET, "/api/v1/user/games/{id}/messages", "/api/v1/user/games/:open/messages",
            None, [401, 404, 404, 403, 404, 401]),
        row(M::GET, "/api/v1/public/games", "/api/v1/public/games?open_seats=true", None,
            [200, 200, 200, 200, 200, 200]),
        row(M::GET, "/api/v1/admin/games", "/api/v1/admin/games?status=enrollment_open", None,
            ADMIN(200)),
        row(M::GET, "/api/v1/admin/users", "/api/v1/admin/users", None, ADMIN(200)),
        row(M::GET, "/api/v1/admin/users/{id}", "/api/v1/admin/users/:other_id", None,
            ADMIN(200)),
        row(M::POST, "/api/v1/admin/users/{id}/block", "/api/v1/admin/users/:other_id/block",
            Some(r#"{"until": "2030-01-05T00:00:00Z"}"#), ADMIN(200)),
        row(M::POST, "/api/v1/admin/users/{id}/unblock",
            "/api/v1/admin/users/:blocked_id/unblock", None, ADMIN(200)),
        row(M::GET, "/api/v1/admin/mail", "/api/v1/admin/mail?status=pending", None, ADMIN(200)),
        row(M::GET, "/api/v1/admin/mail/{id}", "/api/v1/admin/mail/:mail", None, ADMIN(200)),
        // The mail is pending, not dead: the admin gets past authorization to a conflict.
        row(M::POST, "/api/v1/admin/mail/{id}/retry", "/api/v1/admin/mail/:mail/retry", None,
            ADMIN(409)),
        row(M::POST, "/api/v1/admin/mail/retry-dead", "/api/v1/admin/mail/retry-dead", None,
            ADMIN(200)),
        row(M::GET, "/api/v1/admin/notifications/dead-letters",
            "/api/v1/admin/notifications/dead-letters", None, ADMIN(200)),
        // No such dead letter: the admin gets past authorization to a 404.
        row(M::POST, "/api/v1/admin/notifications/dead-letters/{id}/retry",
            "/api/v1/admin/notifications/dead-letters/:random/retry", None, ADMIN(404)),
        row(M::GET, "/api/v1/admin/runtime/records", "/api/v1/admin/runtime/records", None,
            ADMIN(200)),
        // The closed game has not started: it has no runtime record yet.
        row(M::GET, "/api/v1/admin/runtime/records/{game_id}",
            "/api/v1/admin/runtime/records/:closed", None, ADMIN(404)),
        row(M::GET, "/api/v1/admin/health-events", "/api/v1/admin/health-events?game_id=:closed",
            None, ADMIN(200)),
        // The closed game is not in play: the admin gets past authorization to a conflict.
        row(M::POST, "/api/v1/admin/games/{id}/pause", "/api/v1/admin/games/:closed/pause", None,
            ADMIN(409)),
        row(M::POST, "/api/v1/admin/games/{id}/resume", "/api/v1/admin/games/:closed/resume",
            None, ADMIN(409)),
        row(M::POST, "/api/v1/admin/games/{id}/stop", "/api/v1/admin/games/:closed/stop", None,
            ADMIN(409)),
        row(M::POST, "/api/v1/admin/games/{id}/force-next-turn",
            "/api/v1/admin/games/:closed/force-next-turn", None, ADMIN(409)),
        row(M::POST, "/api/v1/admin/games/{id}/retry-start",
            "/api/v1/admin/games/:closed/retry-start", None, ADMIN(409)),
        row(M::POST, "/api/v1/admin/games/{id}/recreate-engine",
            "/api/v1/admin/games/:closed/recreate-engine", None, ADMIN(409)),
        row(M::POST, "/api/v1/internal/sessions/resolve", "/api/v1/internal/sessions/resolve",
            Some(r#"{"token": ":host_token"}"#), INTERNAL(200)),
        row(M::GET, "/api/v1/internal/users/{id}", "/api/v1/internal/users/:host_id", None,
            INTERNAL(200)),
        // The gateway's pipe: a message is stored (and later answered or dropped).
        row(M::POST, "/api/v1/internal/mail-in", "/api/v1/internal/mail-in?sender=a%40example.org",
            Some("From: a@example.org\r\nTo: orders@galaxy.test\r\n\r\nmove 1 2\r\n"),
            INTERNAL(202)),
    ]
}

#[test]
fn the_matrix_covers_every_route() {
    let covered: BTreeSet<(String, &str)> = rows()
        .iter()
        .map(|row| (row.method.to_string(), row.route))
        .collect();
    let routed: BTreeSet<(String, &str)> = routes()
        .iter()
        .map(|spec| (spec.method.to_string(), spec.path))
        .collect();
    assert_eq!(covered, routed);
}

#[tokio::test]
async fn every_route_answers_every_caller_as_documented() {
    let mut failures = Vec::new();
    for row in rows() {
        for (caller, expected) in CALLERS.iter().zip(row.expect) {
            // A fresh world per call: one caller's success cannot change another's answer.
            let world = World::build().await;
            let mut call = Call::new(row.method.clone(), world.fill(row.uri));
            if let Some(body) = row.body {
                call = call.raw_json(world.fill(body));
            }
            let response = world.app.send(world.call_as(*caller, call)).await;
            if response.status.as_u16() != expected {
                failures.push(format!(
                    "{} {} as {caller:?}: expected {expected}, got {} {}",
                    row.method, row.route, response.status, response.text
                ));
            } else if expected >= 400 {
                assert_error_shape(&response);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn internal_routes_refuse_a_wrong_token_and_are_off_without_one() {
    let world = World::build().await;
    let call = Call::new(Method::GET, world.fill("/api/v1/internal/users/:host_id"));
    let wrong = world
        .app
        .send(call.clone().internal("internal-token-for-tests-0123456788"))
        .await;
    wrong.expect(401);
    let short = world.app.send(call.clone().internal("x")).await;
    short.expect(401);

    let off = TestApp::with(http_support::Options {
        internal_token: None,
        ..Default::default()
    });
    let response = off
        .send(
            Call::new(
                Method::GET,
                "/api/v1/internal/users/0190c0de-0000-7000-8000-000000000001",
            )
            .internal(INTERNAL_TOKEN),
        )
        .await;
    response.expect(401);
}
