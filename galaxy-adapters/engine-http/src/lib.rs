#![doc = include_str!("../README.md")]

mod endpoint;
mod exchange;
mod health;
mod request;

use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::ports::{
    EngineClient, EngineError, EngineInit, EngineState, EngineTarget, OrdersVerdict,
};
use serde::Serialize;

use endpoint::Endpoint;
pub use endpoint::RequestError;
use exchange::Transport;
pub use health::{CONTRACT_VERSION, Health};
pub use request::{EngineAnswer, EngineRequest};

/// Limits and timeouts of an [`HttpEngineClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Longest wait for the TCP connection (a timeout gives `EngineError::Timeout`).
    pub connect_timeout: Duration,
    /// Whole-call bound of `healthz`, `submit_orders`, `report` and `state`.
    pub request_timeout: Duration,
    /// Whole-call bound of `init` and `run_turn`, which do the engine's real work.
    pub turn_timeout: Duration,
    /// Largest accepted response body in bytes; a larger one is `EngineError::Malformed`.
    pub max_response_bytes: usize,
    /// Largest serialized orders value sent to an engine; larger ones are refused before
    /// sending (see [`RequestError::OrdersTooLarge`]).
    pub max_orders_bytes: usize,
    /// How much of a non-2xx body is kept in `EngineError::Status`, in bytes.
    pub max_error_body_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            turn_timeout: Duration::from_secs(120),
            max_response_bytes: 1024 * 1024,
            max_orders_bytes: 256 * 1024,
            max_error_body_bytes: 1024,
        }
    }
}

/// The engine contract (SPEC section 9) over HTTP/1, one engine per base URL.
///
/// Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct HttpEngineClient {
    /// The pooled hyper client and the limits it enforces.
    transport: Transport,
    /// Kept for the orders bound and the per-call timeouts.
    options: ClientOptions,
}

impl Default for HttpEngineClient {
    fn default() -> Self {
        Self::new(ClientOptions::default())
    }
}

impl HttpEngineClient {
    /// A client with these limits.
    pub fn new(options: ClientOptions) -> Self {
        Self {
            transport: Transport::new(&options),
            options,
        }
    }

    /// The limits in force.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Sends any request of the contract to `target` and returns the answer whatever its
    /// status: the transport behind every typed method, for callers that must judge the
    /// engine's raw answers (the contract checker). Failures to get an answer at all
    /// (refused, timed out, too large, a bad endpoint) are still `EngineError`s.
    pub async fn send(
        &self,
        target: &EngineTarget,
        request: EngineRequest,
    ) -> Result<EngineAnswer, EngineError> {
        let timeout = if request.is_slow() {
            self.options.turn_timeout
        } else {
            self.options.request_timeout
        };
        let (method, path, body) = request.into_parts();
        let uri = Endpoint::parse(&target.endpoint)
            .and_then(|e| e.uri(&path))
            .map_err(request_error)?;
        self.transport
            .round_trip(method, uri, target.token.as_ref(), body, timeout)
            .await
    }

    /// `GET /healthz` with what the engine says of itself: `Ok` on any 2xx, with the
    /// contract version when its body says one (engines of contract 1 do not).
    pub async fn health(&self, target: &EngineTarget) -> Result<Health, EngineError> {
        let answer = self.send(target, EngineRequest::healthz()).await?;
        if answer.is_success() {
            Ok(Health::from_body(&answer.body))
        } else {
            Err(EngineError::Status {
                status: answer.status,
                body: answer.text(),
            })
        }
    }

    /// Sends `request` and decodes a 2xx answer as `T`; any other status is
    /// `EngineError::Status`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        target: &EngineTarget,
        request: EngineRequest,
    ) -> Result<T, EngineError> {
        let path = request.path().to_owned();
        let answer = self.send(target, request).await?;
        if !answer.is_success() {
            return Err(EngineError::Status {
                status: answer.status,
                body: answer.text(),
            });
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| EngineError::Malformed(format!("{path}: not the expected JSON: {e}")))
    }
}

fn request_error(e: RequestError) -> EngineError {
    EngineError::InvalidRequest {
        source: Box::new(e),
    }
}

fn json_body(value: &impl Serialize) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(value).map_err(|e| EngineError::Transport {
        source: Box::new(e),
    })
}

#[async_trait]
impl EngineClient for HttpEngineClient {
    async fn healthz(&self, target: &EngineTarget) -> Result<(), EngineError> {
        let health = self.health(target).await?;
        // Read and logged, never required: engines of contract 1 say nothing.
        match health.contract.as_deref() {
            Some(CONTRACT_VERSION) => {}
            Some(other) => tracing::debug!(
                endpoint = %target.endpoint,
                contract = other,
                expected = CONTRACT_VERSION,
                "engine speaks another contract version"
            ),
            None => tracing::debug!(
                endpoint = %target.endpoint,
                "engine does not say its contract version (taken as 1)"
            ),
        }
        Ok(())
    }

    async fn init(
        &self,
        target: &EngineTarget,
        init: &EngineInit,
    ) -> Result<EngineState, EngineError> {
        self.call(target, EngineRequest::init(json_body(init)?))
            .await
    }

    async fn run_turn(
        &self,
        target: &EngineTarget,
        expected_turn: u32,
    ) -> Result<EngineState, EngineError> {
        let body = json_body(&serde_json::json!({ "expected_turn": expected_turn }))?;
        self.call(target, EngineRequest::turn(body)).await
    }

    async fn submit_orders(
        &self,
        target: &EngineTarget,
        race: &str,
        turn: u32,
        orders: &serde_json::Value,
    ) -> Result<OrdersVerdict, EngineError> {
        let size = serde_json::to_vec(orders)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        let limit = self.options.max_orders_bytes;
        if size > limit {
            return Err(request_error(RequestError::OrdersTooLarge { size, limit }));
        }
        #[derive(Serialize)]
        struct Submission<'a> {
            turn: u32,
            orders: &'a serde_json::Value,
        }
        let body = json_body(&Submission { turn, orders })?;
        self.call(target, EngineRequest::orders(race, body)).await
    }

    async fn report(
        &self,
        target: &EngineTarget,
        race: &str,
        turn: u32,
    ) -> Result<serde_json::Value, EngineError> {
        let request = EngineRequest::report(race, turn);
        let path = request.path().to_owned();
        let report: serde_json::Value = self.call(target, request).await?;
        // The contract's floor: at least {race, turn, text}.
        let ok = report.get("race").is_some_and(serde_json::Value::is_string)
            && report.get("turn").is_some_and(serde_json::Value::is_u64)
            && report.get("text").is_some_and(serde_json::Value::is_string);
        if ok {
            Ok(report)
        } else {
            Err(EngineError::Malformed(format!(
                "{path}: a report needs race, turn and text"
            )))
        }
    }

    async fn state(&self, target: &EngineTarget) -> Result<EngineState, EngineError> {
        self.call(target, EngineRequest::state()).await
    }
}
