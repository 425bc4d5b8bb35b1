//! Shared helpers of the engine's HTTP tests: an engine on 127.0.0.1:0 over a temporary
//! data directory, and a tiny JSON client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use galaxy_engine::RunningEngine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Starts an engine on a free loopback port over `dir`.
pub async fn start(dir: &Path) -> RunningEngine {
    RunningEngine::start("127.0.0.1:0".parse().unwrap(), dir)
        .await
        .unwrap()
}

/// A JSON client of one engine.
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    /// Sent as `Authorization` when set.
    authorization: Option<String>,
}

impl Http {
    pub fn new(engine: &RunningEngine) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: engine.url(),
            authorization: None,
        }
    }

    /// The same client, sending `authorization` as the `Authorization` header.
    pub fn authorised(engine: &RunningEngine, authorization: &str) -> Self {
        Self {
            authorization: Some(authorization.to_owned()),
            ..Self::new(engine)
        }
    }

    /// Sends raw bytes; the status and the JSON answer (`Value::Null` if not JSON).
    pub async fn raw(&self, method: Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        let request = request.body(Full::from(body)).unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.raw(Method::GET, path, Vec::new()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.raw(Method::POST, path, body.to_string().into_bytes())
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.raw(Method::PUT, path, body.to_string().into_bytes())
            .await
    }

    /// Runs turn `expected`; panics unless the engine answers 200.
    pub async fn turn(&self, expected: u32) -> Value {
        let (status, body) = self
            .post("/admin/turn", json!({ "expected_turn": expected }))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn report(&self, race: &str, turn: u32) -> Value {
        let (status, body) = self.get(&format!("/reports/{race}/{turn}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// An init body for `races` (player ids derived from the names).
pub fn init_body(game_id: &str, seed: u64, races: &[&str], settings: Value) -> Value {
    let races: Vec<Value> = races
        .iter()
        .map(|r| json!({ "race_name": r, "player_id": format!("player-{r}") }))
        .collect();
    json!({ "game_id": game_id, "seed": seed, "settings": settings, "races": races })
}
