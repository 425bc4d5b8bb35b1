#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What the API writes to the logs: one span per request with method, route and status,
//! and never a login code or a session token, whatever the client sends where.

mod http_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::Method;
use http_support::{Call, INTERNAL_TOKEN, TestApp};
use serde_json::{Value, json};

/// Log lines, shared with the subscriber.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn requests_are_traced_with_route_and_status_and_secrets_stay_out() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::new();
    let login = app.login("trace@example.org").await;
    let token = login.token.clone();
    let (challenge, code) = app.challenge("trace@example.org").await;
    // Secrets in every wrong place a client could put them.
    let calls = [
        Call::new(Method::POST, "/api/v1/public/auth/sessions").raw_json(format!(
            r#"{{"challenge_id": "{challenge}", "code": {code}}}"#
        )),
        Call::new(Method::POST, "/api/v1/public/auth/sessions").raw_json(format!(
            r#"{{"challenge_id": "{token}", "code": "{code}", "{code}": 1}}"#
        )),
        Call::new(Method::GET, format!("/api/v1/user/games/{token}")).bearer(&token),
        Call::new(Method::GET, format!("/api/v1/public/games?{token}=1")),
        Call::new(Method::GET, format!("/api/v1/public/games?after={token}")),
        Call::new(Method::GET, format!("/api/v1/public/games/%FF{token}")),
        Call::new(Method::GET, "/api/v1/user/me").bearer(&format!("{token}0")),
        Call::new(Method::POST, "/api/v1/internal/sessions/resolve")
            .internal(INTERNAL_TOKEN)
            .json(&json!({ "token": format!("{token}0") })),
        Call::new(Method::GET, format!("/api/v1/{token}")),
    ];
    for call in calls {
        let response = app.send(call).await;
        assert!(response.status.is_client_error(), "{}", response.text);
    }
    // A successful authenticated read.
    app.get("/api/v1/user/me", Some(&token)).await.expect(200);

    let logs = capture.text();
    assert!(!logs.contains(&token), "a session token was logged");
    assert!(!logs.contains(&code), "a login code was logged");
    assert!(
        !logs.contains(INTERNAL_TOKEN),
        "the internal token was logged"
    );

    let served: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "request served")
        .collect();
    let me = served
        .iter()
        .find(|line| line["span"]["route"] == "/api/v1/user/me" && line["fields"]["status"] == 200)
        .unwrap_or_else(|| panic!("no span for GET /api/v1/user/me in:\n{logs}"));
    assert_eq!(me["span"]["name"], "http_request");
    assert_eq!(me["span"]["method"], "GET");
    assert!(
        served
            .iter()
            .any(|line| line["span"]["route"] == "unmatched" && line["span"]["status"] == 404),
        "unmatched routes are labelled as such"
    );
}
