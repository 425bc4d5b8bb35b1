//! The `EngineClient` conformance suite of galaxy-ports on the HTTP client, against the
//! reference engine served in-process on a real loopback socket and guarded by a token,
//! as the platform runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::EngineTarget;
use galaxy_engine::{RunningEngine, Token};
use galaxy_engine_http::{ClientOptions, HttpEngineClient};
use galaxy_ports::conformance::engine::{EngineFixture, run_all};
use serde_json::{Value, json};

/// The token the suite's engines are started with.
const TOKEN: &str = "0c6f1e2d3b4a59687766554433221100ffeeddccbbaa99887766554433221100";
/// The client's request and turn timeout: the hanging-engine case waits this long, and
/// a turn of the example engine (four fsyncs) must fit in it on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Engines in one temporary directory, kept running until the fixture is dropped.
struct Fixture {
    dir: tempfile::TempDir,
    engines: tokio::sync::Mutex<Vec<RunningEngine>>,
}

#[async_trait]
impl EngineFixture for Fixture {
    type Client = HttpEngineClient;

    fn client(&self) -> HttpEngineClient {
        HttpEngineClient::new(ClientOptions {
            request_timeout: TIMEOUT,
            turn_timeout: TIMEOUT,
            ..ClientOptions::default()
        })
    }

    async fn engine(&self) -> EngineTarget {
        let data = self.dir.path().join(uuid_dir());
        let token = Some(Token::parse(TOKEN).unwrap());
        let engine = RunningEngine::start_with_token("127.0.0.1:0".parse().unwrap(), &data, token)
            .await
            .unwrap();
        let target = EngineTarget::new(engine.url(), EngineToken::new(TOKEN));
        self.engines.lock().await.push(engine);
        target
    }

    fn valid_orders(&self) -> Value {
        json!([])
    }

    fn invalid_orders(&self) -> Value {
        json!([{"kind": "build_industry", "planet": 999}])
    }

    fn timeout(&self) -> Duration {
        TIMEOUT
    }
}

/// A fresh directory name.
fn uuid_dir() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("engine-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

#[tokio::test]
async fn the_http_client_conforms_against_the_reference_engine() {
    let fixture = Fixture {
        dir: tempfile::tempdir().unwrap(),
        engines: tokio::sync::Mutex::new(Vec::new()),
    };
    run_all(&fixture).await;
    for engine in fixture.engines.lock().await.drain(..) {
        engine.stop().await.unwrap();
    }
}
