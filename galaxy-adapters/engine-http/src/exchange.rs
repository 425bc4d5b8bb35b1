//! One HTTP exchange with an engine: send, bound the time and the body, and turn every
//! failure into an `EngineError` here, at the adapter's edge.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::EngineError;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::ClientOptions;
use crate::request::EngineAnswer;

/// Idle pooled connections are dropped after this long (engines restart; a stale
/// connection is better closed early).
const POOL_IDLE: Duration = Duration::from_secs(30);

/// The pooled HTTP/1 client and the bounds applied to every answer.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    /// hyper-util's pooled client; plain TCP (engines are reached on a private network
    /// or loopback).
    client: Client<HttpConnector, Full<Bytes>>,
    /// Bound of a 2xx body.
    max_response_bytes: usize,
    /// How much of a non-2xx body is kept.
    max_error_body_bytes: usize,
    /// Reported when the connect step times out.
    connect_timeout: Duration,
}

impl Transport {
    pub(crate) fn new(options: &ClientOptions) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(options.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(4)
            .build(connector);
        Self {
            client,
            max_response_bytes: options.max_response_bytes,
            max_error_body_bytes: options.max_error_body_bytes,
            connect_timeout: options.connect_timeout,
        }
    }

    /// Sends one request, with `Authorization: Bearer <token>` when a token is given, and
    /// returns the answer whatever its status (the body bounded as [`EngineAnswer`] says),
    /// all within `timeout`.
    pub(crate) async fn round_trip(
        &self,
        method: Method,
        uri: Uri,
        token: Option<&EngineToken>,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<EngineAnswer, EngineError> {
        let target = format!("{method} {}", uri.path());
        let body = body.map(Bytes::from);
        let authorization = token.map(bearer).transpose()?;
        let attempts = async {
            let mut retried = false;
            loop {
                let request = build(&method, &uri, authorization.as_ref(), body.clone())?;
                match self.send(request).await {
                    // A pooled connection the engine closed (it restarted, or dropped an
                    // idle connection) fails before any answer. Every route of the
                    // contract is idempotent, so one retry on a fresh connection is safe.
                    Err(Attempt::Stale(_)) if !retried => retried = true,
                    Err(Attempt::Stale(e) | Attempt::Failed(e)) => return Err(e),
                    Ok(answer) => return Ok(answer),
                }
            }
        };
        let outcome = tokio::time::timeout(timeout, attempts)
            .await
            .unwrap_or(Err(EngineError::Timeout(timeout)));
        match &outcome {
            Err(e) => tracing::debug!(%target, error = %e, "engine call failed"),
            Ok(answer) if !answer.is_success() => {
                tracing::debug!(%target, status = answer.status, "engine refused the call");
            }
            Ok(_) => {}
        }
        outcome
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<EngineAnswer, Attempt> {
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(e) if is_stale(&e) => return Err(Attempt::Stale(self.classify(e))),
            Err(e) => return Err(Attempt::Failed(self.classify(e))),
        };
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        if !parts.status.is_success() {
            let (body, truncated) = prefix(body, self.max_error_body_bytes).await;
            return Ok(EngineAnswer {
                status,
                headers: parts.headers,
                body,
                truncated,
            });
        }
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let limit = self.max_response_bytes;
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit).into());
        }
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(EngineAnswer {
                status,
                headers: parts.headers,
                body: collected.to_bytes(),
                truncated: false,
            }),
            Err(e) if e.is::<LengthLimitError>() => Err(too_large(limit).into()),
            Err(source) => Err(EngineError::Transport { source }.into()),
        }
    }

    /// Refused and timed-out connections get their own variants; the rest is transport.
    fn classify(&self, error: hyper_util::client::legacy::Error) -> EngineError {
        let mut cause: Option<&(dyn StdError + 'static)> = error.source();
        while let Some(current) = cause {
            if let Some(io) = current.downcast_ref::<io::Error>() {
                match io.kind() {
                    io::ErrorKind::ConnectionRefused => {
                        return EngineError::Refused(io.to_string());
                    }
                    io::ErrorKind::TimedOut if error.is_connect() => {
                        return EngineError::Timeout(self.connect_timeout);
                    }
                    _ => {}
                }
            }
            cause = current.source();
        }
        EngineError::Transport {
            source: Box::new(WithCauses(error)),
        }
    }
}

/// The HTTP client's error told with its causes: alone it says only its kind ("client
/// error (SendRequest)"), and the cause an operator needs ("connection closed before
/// message completed", "No route to host") is in its sources, which a pause reason or a
/// health event (one line of text) never shows. The causes are in the text, so this error
/// has no source of its own.
#[derive(Debug)]
struct WithCauses(hyper_util::client::legacy::Error);

impl std::fmt::Display for WithCauses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(current) = cause {
            write!(f, ": {current}")?;
            cause = current.source();
        }
        Ok(())
    }
}

impl StdError for WithCauses {}

/// How one attempt failed: on a connection that turned out to be closed, or otherwise.
enum Attempt {
    /// Nothing was answered on a reused connection; worth one retry.
    Stale(EngineError),
    /// Final.
    Failed(EngineError),
}

impl From<EngineError> for Attempt {
    fn from(e: EngineError) -> Self {
        Self::Failed(e)
    }
}

/// The connection closed before any answer arrived (not a connect failure).
fn is_stale(error: &hyper_util::client::legacy::Error) -> bool {
    if error.is_connect() {
        return false;
    }
    let mut cause: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(current) = cause {
        if let Some(hyper_error) = current.downcast_ref::<hyper::Error>() {
            return hyper_error.is_incomplete_message() || hyper_error.is_canceled();
        }
        cause = current.source();
    }
    false
}

/// The `Authorization` value of a token, marked sensitive so hyper never logs it. A token
/// that is not a valid header value (the platform's never are: 64 hex characters) is
/// refused before anything is sent.
fn bearer(token: &EngineToken) -> Result<HeaderValue, EngineError> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
        EngineError::InvalidRequest {
            source: "the engine token is not a valid HTTP header value".into(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn build(
    method: &Method,
    uri: &Uri,
    authorization: Option<&HeaderValue>,
    body: Option<Bytes>,
) -> Result<Request<Full<Bytes>>, EngineError> {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .header(ACCEPT, "application/json");
    if let Some(authorization) = authorization {
        request = request.header(AUTHORIZATION, authorization.clone());
    }
    match body {
        Some(body) => request
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body)),
        None => request.body(Full::default()),
    }
    .map_err(|e| EngineError::Transport {
        source: Box::new(e),
    })
}

fn too_large(limit: usize) -> EngineError {
    EngineError::Malformed(format!("response body larger than {limit} bytes"))
}

/// The first `limit` bytes of a body, the rest left unread (an error body is for a log
/// line, not worth waiting for or holding in full), and whether it was cut.
async fn prefix(mut body: Incoming, limit: usize) -> (Bytes, bool) {
    let mut kept: Vec<u8> = Vec::new();
    while kept.len() < limit {
        let Some(Ok(frame)) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            let room = limit - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    let truncated = kept.len() >= limit;
    (Bytes::from(kept), truncated)
}
