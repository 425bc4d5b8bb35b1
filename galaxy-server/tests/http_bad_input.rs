#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Bad input on every route gives the documented 4xx in the API's error shape and
//! changes no state: malformed JSON, wrong content types, wrong types, unknown fields,
//! oversized bodies, bad ids, bad query parameters, unknown routes, wrong methods.

mod http_support;

use axum::http::Method;
use galaxy_server::http::{Access, routes};
use http_support::{
    ADMIN_EMAIL, BODY_LIMIT, Call, INTERNAL_TOKEN, Login, ORDERS_BODY_LIMIT, TestApp,
};
use serde_json::{Map, Value, json};

/// An app with an admin, a host and a game in enrollment, so valid ids exist.
struct World {
    app: TestApp,
    admin: Login,
    host: Login,
    game: String,
}

impl World {
    async fn build() -> Self {
        let app = TestApp::new();
        let admin = app.login(ADMIN_EMAIL).await;
        let host = app.login("host@example.org").await;
        let game = app.create_game(&host, "Bad input", 2, 4).await;
        app.game_action(&host, &game, "open", 200).await;
        Self {
            app,
            admin,
            host,
            game,
        }
    }

    /// Credentials that get past each route's authorization.
    fn authorize(&self, access: Access, call: Call) -> Call {
        match access {
            Access::Public => call,
            Access::User => call.bearer(&self.host.token),
            Access::Admin => call.bearer(&self.admin.token),
            Access::Internal => call.internal(INTERNAL_TOKEN),
        }
    }

    /// Sends `call` and checks the status, the error shape and that nothing changed.
    async fn refused(&self, call: Call, status: u16, failures: &mut Vec<String>) {
        self.refused_naming(call, status, None, failures).await;
    }

    /// [`World::refused`], and the error's `details.field` is `field` when given.
    async fn refused_naming(
        &self,
        call: Call,
        status: u16,
        field: Option<&str>,
        failures: &mut Vec<String>,
    ) {
        let before = self.app.snapshot();
        let label = format!("{} {} {:?}", call.method, call.uri, call.body);
        let response = self.app.send(call).await;
        if response.status.as_u16() != status {
            failures.push(format!(
                "{label}: expected {status}, got {} {}",
                response.status, response.text
            ));
            return;
        }
        http_support::assert_error_shape(&response);
        if let Some(field) = field
            && response.json["error"]["details"]["field"] != field
        {
            failures.push(format!(
                "{label}: the error names no field {field:?}: {}",
                response.text
            ));
        }
        if self.app.snapshot() != before {
            failures.push(format!("{label}: state changed"));
        }
    }
}

/// A valid body for each route that takes one.
fn valid_body(method: &Method, path: &str, world: &World) -> Option<Value> {
    let body = match (method.as_str(), path) {
        ("POST", "/api/v1/public/auth/login-codes") => json!({ "email": "x@example.org" }),
        ("POST", "/api/v1/public/auth/sessions") => json!({
            "challenge_id": "0190c0de-0000-7000-8000-000000000001",
            "code": "123456",
        }),
        ("PATCH", "/api/v1/user/me") => json!({
            "display_name": "Name",
            "locale": "en",
            "email_notifications": true,
        }),
        ("POST", "/api/v1/user/games") => json!({
            "name": "Game",
            "min_players": 2,
            "max_players": 4,
            "enrollment_deadline": "2030-02-01T00:00:00Z",
            "turn_schedule": "0 18 * * *",
            "engine": "reference",
            "auto_approve": false,
            "visibility": "public",
        }),
        ("POST", "/api/v1/user/games/{id}/applications") => json!({ "race_name": "Racers" }),
        ("POST", "/api/v1/admin/users/{id}/block") => json!({
            "until": "2030-01-02T00:00:00Z",
            "permanent": false,
        }),
        ("POST", "/api/v1/internal/sessions/resolve") => json!({ "token": world.host.token }),
        ("PUT", "/api/v1/user/games/{id}/orders") => json!({ "turn": 1, "orders": {"build": []} }),
        ("POST", "/api/v1/user/games/{id}/ready") => json!({ "turn": 1 }),
        ("PUT", "/api/v1/user/games/{id}/preferences") => {
            json!({ "reminders": true, "message_mail": false })
        }
        ("POST", "/api/v1/user/games/{id}/vacation") => json!({ "turns": 1 }),
        ("POST", "/api/v1/user/games/{id}/messages") => json!({ "to": "all", "text": "hi" }),
        ("PUT", "/api/v1/user/games/{id}/report-delivery") => json!({ "as": "attachment" }),
        _ => return None,
    };
    Some(body)
}

/// The route's path with every parameter set to something that exists.
fn concrete(path: &str, world: &World) -> String {
    path.replace("{id}", &world.game)
        .replace("{app_id}", "0190c0de-0000-7000-8000-000000000002")
        .replace("{name}", "Racers")
        .replace("{game_id}", &world.game)
        .replace("{turn}", "1")
        .replace("{race}", "Racers")
        .replace("{application_id}", "0190c0de-0000-7000-8000-000000000003")
}

/// The same object with one field's value swapped for a value of another JSON type.
fn wrong_types(body: &Value) -> Vec<Value> {
    let Value::Object(fields) = body else {
        return Vec::new();
    };
    fields
        .iter()
        // Orders are whatever the engine understands: every JSON type is valid there.
        .filter(|(name, _)| name.as_str() != "orders")
        .map(|(name, value)| {
            let wrong = match value {
                Value::String(_) => json!(12345),
                Value::Number(_) => json!("12"),
                Value::Bool(_) => json!("yes"),
                _ => json!([]),
            };
            let mut changed: Map<String, Value> = fields.clone();
            changed.insert(name.clone(), wrong);
            Value::Object(changed)
        })
        .collect()
}

fn with_field(body: &Value, name: &str, value: Value) -> Value {
    let mut body = body.clone();
    if let Value::Object(fields) = &mut body {
        fields.insert(name.to_owned(), value);
    }
    body
}

#[tokio::test]
async fn bad_bodies_are_refused_on_every_route_that_takes_one() {
    let world = World::build().await;
    let mut failures = Vec::new();
    let mut covered = 0;
    for spec in routes() {
        let Some(valid) = valid_body(&spec.method, spec.path, &world) else {
            continue;
        };
        covered += 1;
        let uri = concrete(spec.path, &world);
        let call = || world.authorize(spec.access, Call::new(spec.method.clone(), uri.clone()));
        let limit = if spec.path.ends_with("/orders") {
            ORDERS_BODY_LIMIT
        } else {
            BODY_LIMIT
        };
        let mut bad: Vec<(String, u16)> = vec![
            (r#"{"email": "#.to_owned(), 400),
            ("not json".to_owned(), 400),
            (String::new(), 400),
            ("[]".to_owned(), 400),
            ("null".to_owned(), 400),
            (with_field(&valid, "unexpected", json!(1)).to_string(), 400),
            (
                with_field(&valid, "padding", json!("x".repeat(limit))).to_string(),
                413,
            ),
        ];
        bad.extend(wrong_types(&valid).iter().map(|b| (b.to_string(), 400)));
        for (body, status) in bad {
            world
                .refused(call().raw_json(body), status, &mut failures)
                .await;
        }
        // A valid body without, or with the wrong, content type.
        world
            .refused(call().raw_body(valid.to_string()), 400, &mut failures)
            .await;
        world
            .refused(
                call()
                    .raw_body(valid.to_string())
                    .header("content-type", "text/plain"),
                400,
                &mut failures,
            )
            .await;
    }
    assert_eq!(covered, 13, "every route with a body is exercised");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn bad_ids_in_paths_are_refused_on_every_route_that_takes_one() {
    let world = World::build().await;
    let mut failures = Vec::new();
    for spec in routes().into_iter().filter(|s| s.path.contains('{')) {
        let params: Vec<&str> = spec
            .path
            .split('/')
            .filter(|segment| segment.starts_with('{'))
            .collect();
        for param in params {
            let bad_values: &[(&str, u16)] = if param == "{name}" {
                &[("!!", 422), ("x", 422), ("%FF%FE", 400)]
            } else if param == "{race}" {
                // Any text names a race (an unknown one is a 404 from the service).
                &[("%FF%FE", 400)]
            } else if param == "{turn}" {
                &[
                    ("x", 400),
                    ("-1", 400),
                    ("1.5", 400),
                    ("99999999999", 400),
                    ("%FF%FE", 400),
                ]
            } else {
                &[
                    ("not-a-uuid", 400),
                    ("12345", 400),
                    ("%FF%FE", 400),
                    ("%20", 400),
                ]
            };
            for (value, status) in bad_values {
                let uri = concrete(&spec.path.replace(param, value), &world);
                let mut call = world.authorize(spec.access, Call::new(spec.method.clone(), uri));
                if let Some(body) = valid_body(&spec.method, spec.path, &world) {
                    call = call.json(&body);
                }
                // A segment that decodes but does not parse names its parameter.
                let field = (*status == 400 && !value.starts_with('%'))
                    .then(|| param.trim_matches(['{', '}']));
                world
                    .refused_naming(call, *status, field, &mut failures)
                    .await;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn bad_query_parameters_are_refused_on_every_paged_list() {
    let world = World::build().await;
    let mut failures = Vec::new();
    let lists = [
        ("/api/v1/public/games", Access::Public),
        ("/api/v1/user/games", Access::User),
        ("/api/v1/admin/games", Access::Admin),
        ("/api/v1/admin/users", Access::Admin),
        ("/api/v1/admin/mail", Access::Admin),
        ("/api/v1/admin/notifications/dead-letters", Access::Admin),
        ("/api/v1/admin/runtime/records", Access::Admin),
        ("/api/v1/admin/health-events", Access::Admin),
    ];
    for (path, access) in lists {
        for query in [
            "limit=abc",
            "limit=0",
            "limit=201",
            "limit=-1",
            "limit=1.5",
            "limit=",
            "limit=1&limit=2",
            "after=",
            "after=not-a-cursor",
            "bogus=1",
            "%FF=1",
        ] {
            let call = world.authorize(access, Call::new(Method::GET, format!("{path}?{query}")));
            world.refused(call, 400, &mut failures).await;
        }
        // The same lists answer well-formed queries.
        let ok = world
            .app
            .send(world.authorize(access, Call::new(Method::GET, format!("{path}?limit=1"))))
            .await;
        assert_eq!(ok.status.as_u16(), 200, "{path}: {}", ok.text);
    }
    let call = world.authorize(
        Access::Admin,
        Call::new(Method::GET, "/api/v1/admin/mail?status=lost"),
    );
    world.refused(call, 400, &mut failures).await;
    let call = world.authorize(
        Access::Admin,
        Call::new(Method::GET, "/api/v1/admin/health-events?game_id=nope"),
    );
    world.refused(call, 400, &mut failures).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn invalid_values_in_well_formed_bodies_are_422_and_change_nothing() {
    let world = World::build().await;
    let mut failures = Vec::new();
    let game_uri = "/api/v1/user/games";
    let valid = valid_body(&Method::POST, game_uri, &world).unwrap_or_default();
    for (field, value) in [
        ("name", json!("x")),
        ("min_players", json!(1)),
        ("max_players", json!(1000)),
        ("enrollment_deadline", json!("2020-01-01T00:00:00Z")),
        ("turn_schedule", json!("every day")),
        ("engine", json!("unknown-engine")),
        // The play-by-email settings: a reminder as long as the (daily) turn period, a
        // duration that is not one, counts out of range.
        ("reminders", json!(["24h"])),
        ("reminders", json!(["soon"])),
        ("min_turn_gap", json!("0s")),
        ("idle_after", json!(0)),
        ("vacation_turns", json!(1001)),
    ] {
        let call = Call::new(Method::POST, game_uri)
            .bearer(&world.host.token)
            .json(&with_field(&valid, field, value));
        world.refused(call, 422, &mut failures).await;
    }
    let email = Call::new(Method::POST, "/api/v1/public/auth/login-codes")
        .json(&json!({ "email": "not an address" }));
    world.refused(email, 422, &mut failures).await;
    let code = Call::new(Method::POST, "/api/v1/public/auth/sessions")
        .json(&json!({ "challenge_id": "0190c0de-0000-7000-8000-000000000001", "code": "12" }));
    world.refused(code, 422, &mut failures).await;
    let race = Call::new(
        Method::POST,
        format!("{game_uri}/{}/applications", world.game),
    )
    .bearer(&world.host.token)
    .json(&json!({ "race_name": "💥" }));
    world.refused(race, 422, &mut failures).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_the_error_shape() {
    let world = World::build().await;
    let mut failures = Vec::new();
    for uri in [
        "/",
        "/api/v1",
        "/api/v1/nope",
        "/api/v2/user/me",
        "/api/v1/user/games/a/b/c/d",
    ] {
        world
            .refused(Call::new(Method::GET, uri), 404, &mut failures)
            .await;
    }
    let mut paths: Vec<&str> = routes().iter().map(|s| s.path).collect();
    paths.dedup();
    for path in paths {
        let taken: Vec<Method> = routes()
            .into_iter()
            .filter(|s| s.path == path)
            .map(|s| s.method)
            .collect();
        for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
            if taken.contains(&method) {
                continue;
            }
            let uri = concrete(path, &world);
            let call = Call::new(method, uri).bearer(&world.admin.token);
            world.refused(call, 405, &mut failures).await;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
