#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The served OpenAPI document describes every route, body and error status, and the
//! API overview in docs/api.md lists every route.

mod http_support;

use std::collections::BTreeSet;

use axum::http::Method;
use galaxy_server::http::{Access, openapi, routes};
use http_support::TestApp;
use serde_json::Value;

fn operation<'a>(doc: &'a Value, method: &Method, path: &str) -> &'a Value {
    &doc["paths"][path][method.as_str().to_ascii_lowercase()]
}

#[tokio::test]
async fn the_served_document_describes_every_route_and_its_errors() {
    let app = TestApp::new();
    let response = app.get("/api/v1/openapi.json", None).await;
    response.expect(200);
    let doc = response.json;
    assert_eq!(doc, serde_json::to_value(openapi()).unwrap_or_default());
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["internal_token"]["name"], "x-internal-token");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|s| (s.method.to_string(), s.path.to_owned()))
        .collect();
    assert_eq!(documented, routed, "the document and the router disagree");

    // Client generators need one operation per operationId.
    let mut ids = BTreeSet::new();
    for spec in routes() {
        let id = operation(&doc, &spec.method, spec.path)["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            !id.is_empty(),
            "{} {} has no operationId",
            spec.method,
            spec.path
        );
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");
    }

    for spec in routes() {
        let op = operation(&doc, &spec.method, spec.path);
        let responses = op["responses"].as_object().expect("responses");
        let statuses: BTreeSet<&str> = responses.keys().map(String::as_str).collect();
        let label = format!("{} {}", spec.method, spec.path);
        assert!(
            statuses.iter().any(|s| s.starts_with('2')),
            "{label}: no success response"
        );
        assert!(statuses.contains("503"), "{label}: no 503");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{label}: {status} is not an ErrorBody"
                );
            }
        }
        if op["requestBody"].is_object() {
            assert!(
                statuses.contains("400") && statuses.contains("413"),
                "{label}"
            );
        }
        if spec.path.contains('{') {
            assert!(
                statuses.contains("400"),
                "{label}: bad ids are not documented"
            );
        }
        let security = op["security"].to_string();
        match spec.access {
            Access::Public => assert!(op["security"].is_null(), "{label}"),
            Access::User | Access::Admin => {
                assert!(security.contains("bearer"), "{label}");
                assert!(
                    statuses.contains("401") && statuses.contains("403"),
                    "{label}"
                );
            }
            Access::Internal => {
                assert!(security.contains("internal_token"), "{label}");
                assert!(statuses.contains("401"), "{label}");
            }
        }
    }

    let login_codes = operation(&doc, &Method::POST, "/api/v1/public/auth/login-codes");
    assert!(login_codes["responses"]["429"]["headers"]["Retry-After"].is_object());
    let session = &doc["components"]["schemas"]["NewSessionView"]["properties"];
    assert!(session["token"].is_object() && session["user"].is_object());
    let game = &doc["components"]["schemas"]["GameView"]["properties"];
    for field in ["id", "status", "approved_count"] {
        assert!(game[field].is_object(), "GameView.{field}");
    }
    let application = &doc["components"]["schemas"]["ApplicationView"]["properties"];
    for field in ["id", "status", "race_name"] {
        assert!(application[field].is_object(), "ApplicationView.{field}");
    }
}

#[test]
fn docs_api_md_lists_every_route() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let missing: Vec<String> = routes()
        .iter()
        .map(|spec| format!("| {} | `{}` |", spec.method, spec.path))
        .filter(|row| !text.contains(row.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/api.md lacks:\n{}",
        missing.join("\n")
    );
}
