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

/// A Python 3 with `openapi-spec-validator` (`GALAXY_TEST_PYTHON`, `python3` or
/// `/usr/bin/python3`); scripts/test.sh installs it.
fn validator_python() -> std::path::PathBuf {
    let candidates: Vec<std::path::PathBuf> = std::env::var_os("GALAXY_TEST_PYTHON")
        .map(Into::into)
        .into_iter()
        .chain(["python3".into(), "/usr/bin/python3".into()])
        .collect();
    for python in &candidates {
        let ok = std::process::Command::new(python)
            .args(["-c", "import openapi_spec_validator"])
            .output()
            .is_ok_and(|out| out.status.success());
        if ok {
            return python.clone();
        }
    }
    panic!(
        "no Python with openapi-spec-validator (tried {candidates:?}): \
         `pip install openapi-spec-validator` (scripts/test.sh does), or point \
         GALAXY_TEST_PYTHON at an interpreter that has it"
    );
}

/// Runs openapi-spec-validator on `doc`: `Ok` or the validator's complaint.
fn validate(python: &std::path::Path, doc: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
    let script = "import json, sys\n\
        from openapi_spec_validator import validate\n\
        validate(json.load(open(sys.argv[1])))\n";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&path)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_document_passes_openapi_spec_validator() {
    let python = validator_python();
    let doc = serde_json::to_value(openapi()).unwrap();
    if let Err(why) = validate(&python, &doc) {
        panic!("the OpenAPI document is invalid:\n{why}");
    }
    // The validator is not a rubber stamp: a repeated operationId (the bug this test
    // guards against) and a dangling reference are refused.
    let mut twice = doc.clone();
    let mut ops = routes()
        .into_iter()
        .map(|s| (s.method.as_str().to_ascii_lowercase(), s.path.to_owned()));
    let (m1, p1) = ops.next().unwrap();
    let (m2, p2) = ops.next().unwrap();
    let id = twice["paths"][&p1][&m1]["operationId"].clone();
    twice["paths"][&p2][&m2]["operationId"] = id;
    let why = validate(&python, &twice).expect_err("a repeated operationId passed");
    assert!(
        why.contains("operationId") || why.contains("Operation ID"),
        "{why}"
    );
    let mut dangling = doc;
    dangling["paths"][&p1][&m1]["responses"]["200"] =
        serde_json::json!({"$ref": "#/components/responses/Nothing"});
    validate(&python, &dangling).expect_err("a dangling $ref passed");
}

/// The body of the block that opens at the first `{` at or after `from`.
fn block(text: &str, from: usize) -> &str {
    let open = from + text[from..].find('{').unwrap();
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..=open + i];
                }
            }
            _ => {}
        }
    }
    &text[open..]
}

/// Every `"snake_case"` string literal in `text`.
fn snake_literals(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !s.starts_with('_')
        })
        .map(str::to_owned)
        .collect()
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// The error codes the HTTP API can answer, read from the code: the classes
/// (`ErrorKind::code`), the specific codes of every service error the HTTP layer converts
/// (`impl From<E> for ApiError` → `impl ServiceError for E`'s `fn code`), and the codes
/// the HTTP layer builds itself (`ApiError::new(status, "code", ...)`, or `Self::new` in
/// `ApiError`'s own constructors).
fn codes_in_the_code() -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let http = sources(&root.join("galaxy-server/src/http"));
    let core = sources(&root.join("galaxy-core/src"));
    let mut codes = BTreeSet::new();

    let kinds = &core
        .iter()
        .find(|(p, _)| p.ends_with("service/mod.rs"))
        .unwrap()
        .1;
    let at = kinds.find("impl ErrorKind").unwrap();
    codes.extend(snake_literals(block(kinds, at)));
    assert!(codes.contains("not_found") && codes.contains("internal"));

    let mut converted = BTreeSet::new();
    for (_, text) in &http {
        for part in text.split("impl From<").skip(1) {
            if let Some((name, rest)) = part.split_once('>')
                && rest.trim_start().starts_with("for ApiError")
            {
                converted.insert(name.trim().to_owned());
            }
        }
        let calls = text.split("ApiError::new(").skip(1);
        for part in calls.chain(text.split("Self::new(").skip(1)) {
            // The second argument, when it is a literal, is the code.
            if let Some((status, rest)) = part.split_once(',')
                && (status.contains("StatusCode") || status.trim() == "status")
                && let Some(lit) = rest.trim_start().strip_prefix('"')
                && let Some((code, _)) = lit.split_once('"')
            {
                codes.insert(code.to_owned());
            }
        }
    }
    assert!(converted.contains("LobbyError") && converted.contains("RuntimeError"));
    for name in &converted {
        let needle = format!("impl ServiceError for {name} ");
        let (_, text) = core
            .iter()
            .find(|(_, t)| t.contains(&needle))
            .unwrap_or_else(|| panic!("no `{needle}` in galaxy-core"));
        let body = block(text, text.find(&needle).unwrap());
        if let Some(at) = body.find("fn code(") {
            codes.extend(snake_literals(block(body, at)));
        }
    }
    codes
}

#[test]
fn docs_api_md_lists_every_error_code_the_code_returns() {
    let codes = codes_in_the_code();
    // Today's specific codes, as a floor: the scan must keep finding them.
    for known in [
        "game_full",
        "invalid_status",
        "engine_unavailable",
        "method_not_allowed",
    ] {
        assert!(codes.contains(known), "the scan lost {known}: {codes:?}");
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
    let text = std::fs::read_to_string(path).unwrap();
    let errors = text
        .split("## Errors")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/api.md has an Errors section");
    let mut documented = BTreeSet::new();
    for row in errors.lines().filter(|l| l.starts_with("| ")) {
        if let Some(cell) = row.split('|').nth(2) {
            documented.extend(cell.split('`').skip(1).step_by(2).map(str::to_owned));
        }
    }
    let missing: Vec<_> = codes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "docs/api.md's Errors table lacks {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&codes).collect();
    assert!(
        stale.is_empty(),
        "docs/api.md lists codes the code never returns: {stale:?}"
    );
}
