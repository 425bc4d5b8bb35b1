//! The gateway side of `SubscribePush`: one long-lived subscription that reconnects on
//! every failure and resumes after the last event it handled.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::TimeDelta;
use galaxy_core::domain::push::{GatewayClientId, InvalidGatewayClientId};
use galaxy_core::domain::retry::{RetryPolicy, RetryPolicyError};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::metadata::{AsciiMetadataValue, errors::InvalidMetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::pb;
use crate::server::INTERNAL_TOKEN_HEADER;

/// How long a subscription must last, without any event, for the reconnect delay to
/// start again from the first after it ends.
pub const STABLE_SUBSCRIPTION: Duration = Duration::from_secs(30);

/// Where and as whom a [`PushClient`] subscribes, and how it retries.
#[derive(Debug, Clone)]
pub struct PushClientConfig {
    /// The push listener, e.g. `http://galaxy:9090` (plain HTTP/2; no TLS support is built
    /// in, so keep it on the internal network).
    pub endpoint: String,
    /// This gateway instance's id; unique per instance, since a second subscription with
    /// the same id replaces the first.
    pub gateway_client_id: String,
    /// Sent as `x-internal-token` on every call.
    pub internal_token: SecretString,
    /// Wait before the first reconnect; doubles per failed attempt.
    pub initial_backoff: Duration,
    /// Longest wait between attempts (before jitter).
    pub max_backoff: Duration,
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
    /// How often an idle connection is pinged, so a silently dead server is noticed.
    pub keepalive_interval: Duration,
}

impl PushClientConfig {
    /// A configuration with the default timings: backoff from 500 ms to 30 s, 5 s connect
    /// timeout, 30 s keepalive.
    pub fn new(
        endpoint: impl Into<String>,
        gateway_client_id: impl Into<String>,
        internal_token: SecretString,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            gateway_client_id: gateway_client_id.into(),
            internal_token,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(30),
        }
    }
}

/// A [`PushClientConfig`] was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushClientError {
    /// The endpoint is not a URI.
    #[error("invalid push endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        /// The rejected endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The gateway client id is not acceptable to the server.
    #[error(transparent)]
    InvalidGatewayClientId(#[from] InvalidGatewayClientId),
    /// The token cannot be sent as gRPC metadata (it must be visible ASCII).
    #[error("internal token cannot be sent as metadata: {0}")]
    InvalidToken(#[from] InvalidMetadataValue),
    /// The backoff durations are out of range (both at least 1 ms, max >= initial).
    #[error("invalid push reconnect backoff: {0}")]
    InvalidBackoff(#[from] RetryPolicyError),
}

/// Why a subscription attempt failed or a stream ended; the client then reconnects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Disconnect {
    /// No connection could be made.
    #[error("cannot connect to the push server: {0}")]
    Connect(#[source] tonic::transport::Error),
    /// The server refused the subscription (e.g. `UNAUTHENTICATED`, `INVALID_ARGUMENT`).
    #[error("push subscription refused: {0}")]
    Refused(tonic::Status),
    /// The stream ended with an error: `ABORTED` (replaced), `RESOURCE_EXHAUSTED`
    /// (lagged), `UNAVAILABLE` (server shutdown), or a broken connection.
    #[error("push stream ended: {0}")]
    Ended(tonic::Status),
    /// The server closed the stream without an error.
    #[error("push stream closed by the server")]
    Closed,
}

impl Disconnect {
    /// The gRPC status code, when the server gave one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Refused(status) | Self::Ended(status) => Some(status.code()),
            Self::Connect(_) | Self::Closed => None,
        }
    }

    /// Whether this points at a configuration mistake (wrong token, bad gateway id) that
    /// retrying alone will not fix.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(
            self.code(),
            Some(Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument)
        )
    }
}

/// What a [`PushClient`] does with the stream.
pub trait PushHandler: Send {
    /// Handles one event, a `push.resync` one included. The client waits for it to
    /// return before it records the event's cursor and reads the next one, so an event
    /// whose handling was interrupted (cancellation, crash) is delivered again.
    fn handle(&mut self, event: pb::PushEvent) -> impl Future<Output = ()> + Send;

    /// Told about every failed attempt or ended stream, before the client waits
    /// `retry_in` and tries again. The client logs it too; the default does nothing else.
    fn disconnected(&mut self, reason: &Disconnect, retry_in: Duration) {
        let _ = (reason, retry_in);
    }
}

/// A [`PushHandler`] from an async closure, e.g.
/// `HandlerFn(|event| async move { println!("{}", event.kind) })`.
#[derive(Debug, Clone)]
pub struct HandlerFn<F>(pub F);

impl<F, Fut> PushHandler for HandlerFn<F>
where
    F: FnMut(pb::PushEvent) -> Fut + Send,
    Fut: Future<Output = ()> + Send,
{
    fn handle(&mut self, event: pb::PushEvent) -> impl Future<Output = ()> + Send {
        (self.0)(event)
    }
}

/// The reconnecting `SubscribePush` client (seed 002). See the crate docs.
pub struct PushClient {
    /// Connection settings (timeouts, keepalive) for every attempt.
    endpoint: Endpoint,
    /// Sent with every subscription.
    gateway: GatewayClientId,
    /// The token as metadata, marked sensitive so it is never printed.
    token: AsciiMetadataValue,
    /// Only the delay maths is used (exponential, capped, +-20% jitter); attempts are
    /// unlimited.
    backoff: RetryPolicy,
    /// The cursor of the last handled event, sent on every (re)subscription. In memory
    /// only: a restarted gateway starts live (or from [`PushClient::with_cursor`]).
    cursor: Mutex<Option<String>>,
}

impl PushClient {
    /// Validates the configuration; connects only in [`PushClient::run`].
    pub fn new(config: PushClientConfig) -> Result<Self, PushClientError> {
        let endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|source| PushClientError::InvalidEndpoint {
                endpoint: config.endpoint.clone(),
                source,
            })?
            .connect_timeout(config.connect_timeout)
            .http2_keep_alive_interval(config.keepalive_interval)
            .keep_alive_timeout(config.connect_timeout)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let gateway = GatewayClientId::parse(&config.gateway_client_id)?;
        let mut token = AsciiMetadataValue::try_from(config.internal_token.expose_secret())?;
        token.set_sensitive(true);
        let millis =
            |d: Duration| TimeDelta::milliseconds(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let backoff = RetryPolicy::new(
            millis(config.initial_backoff),
            millis(config.max_backoff),
            u32::MAX,
        )?;
        Ok(Self {
            endpoint,
            gateway,
            token,
            backoff,
            cursor: Mutex::new(None),
        })
    }

    /// Resumes after `cursor` (e.g. one the gateway persisted) instead of starting live.
    pub fn with_cursor(self, cursor: Option<String>) -> Self {
        self.set_cursor(cursor);
        self
    }

    /// The cursor of the last handled event (or the one given to
    /// [`PushClient::with_cursor`]); `None` before any.
    pub fn cursor(&self) -> Option<String> {
        self.cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_cursor(&self, cursor: Option<String>) {
        *self.cursor.lock().unwrap_or_else(PoisonError::into_inner) = cursor;
    }

    /// Subscribes and feeds every event to `handler` until `cancel` is cancelled, the only
    /// way it returns. Every failure (connection refused or lost, stream ended, even
    /// `UNAUTHENTICATED` or `INVALID_ARGUMENT`) is logged, reported to
    /// [`PushHandler::disconnected`], and followed by a new attempt after an exponential,
    /// capped, jittered delay; a subscription that delivered an event or lasted
    /// [`STABLE_SUBSCRIPTION`] resets the delay. Cancellation is
    /// observed while connecting, reading and waiting; an event being handled is finished.
    pub async fn run(&self, handler: &mut impl PushHandler, cancel: &CancellationToken) {
        let mut attempt: u32 = 0;
        while let Some(reason) = self.run_once(handler, cancel, &mut attempt).await {
            attempt = attempt.saturating_add(1);
            let retry_in = reconnect_delay(&self.backoff, attempt, rand::random());
            log_disconnect(&self.gateway, &reason, retry_in);
            handler.disconnected(&reason, retry_in);
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(retry_in) => {}
            }
        }
        tracing::info!(gateway = %self.gateway, "push client stopped");
    }

    /// One subscription, from connecting to the end of its stream; `None` when cancelled.
    async fn run_once(
        &self,
        handler: &mut impl PushHandler,
        cancel: &CancellationToken,
        attempt: &mut u32,
    ) -> Option<Disconnect> {
        let channel: Channel = tokio::select! {
            () = cancel.cancelled() => return None,
            connected = self.endpoint.connect() => match connected {
                Ok(channel) => channel,
                Err(error) => return Some(Disconnect::Connect(error)),
            },
        };
        let cursor = self.cursor();
        let mut request = tonic::Request::new(pb::GatewaySubscribeRequest {
            gateway_client_id: self.gateway.as_str().to_owned(),
            cursor: cursor.clone().unwrap_or_default(),
        });
        request
            .metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, self.token.clone());
        let mut client = pb::push_client::PushClient::new(channel);
        let mut stream = tokio::select! {
            () = cancel.cancelled() => return None,
            response = client.subscribe_push(request) => match response {
                Ok(response) => response.into_inner(),
                Err(status) => return Some(Disconnect::Refused(status)),
            },
        };
        tracing::info!(gateway = %self.gateway, ?cursor, "push client subscribed");
        // The delay starts again from the first only once the subscription proved itself
        // (an event came, or it lasted): one that the server ends at once (a gateway id
        // in use twice, a gateway that always lags) backs off like a refusal.
        let subscribed = tokio::time::Instant::now();
        let ended = loop {
            let message = tokio::select! {
                () = cancel.cancelled() => return None,
                message = stream.message() => message,
            };
            match message {
                Ok(Some(event)) => {
                    *attempt = 0;
                    let cursor = event.cursor.clone();
                    handler.handle(event).await;
                    if !cursor.is_empty() {
                        self.set_cursor(Some(cursor));
                    }
                }
                Ok(None) => break Disconnect::Closed,
                Err(status) => break Disconnect::Ended(status),
            }
        };
        if subscribed.elapsed() >= STABLE_SUBSCRIPTION {
            *attempt = 0;
        }
        Some(ended)
    }
}

impl std::fmt::Debug for PushClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushClient")
            .field("endpoint", self.endpoint.uri())
            .field("gateway", &self.gateway)
            .field("cursor", &self.cursor())
            .finish_non_exhaustive()
    }
}

/// The wait after the `attempt`-th consecutive failure (1-based): `initial * 2^(attempt-1)`
/// capped at the maximum, spread by +-20% with `unit` in `[0, 1)`.
fn reconnect_delay(policy: &RetryPolicy, attempt: u32, unit: f64) -> Duration {
    policy
        .jittered_delay(attempt, unit)
        .to_std()
        .unwrap_or(Duration::ZERO)
}

fn log_disconnect(gateway: &GatewayClientId, reason: &Disconnect, retry_in: Duration) {
    let retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
    if reason.is_misconfiguration() {
        tracing::error!(%gateway, %reason, retry_in_ms, "push subscription refused; check the token and gateway id");
    } else if reason.code() == Some(Code::Aborted) {
        tracing::warn!(%gateway, %reason, retry_in_ms, "push subscription replaced; is another gateway using this id?");
    } else {
        tracing::warn!(%gateway, %reason, retry_in_ms, "push stream lost; reconnecting");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> PushClientConfig {
        PushClientConfig::new("http://127.0.0.1:1", "gw-1", SecretString::from("t"))
    }

    #[test]
    fn delays_double_up_to_the_cap_with_twenty_percent_jitter() {
        let mut config = config();
        config.initial_backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(1000);
        let client = PushClient::new(config).unwrap();
        let ms = |attempt, unit| reconnect_delay(&client.backoff, attempt, unit).as_millis();
        let nominal: Vec<_> = (1..=6).map(|a| ms(a, 0.5)).collect();
        assert_eq!(nominal, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!((ms(1, 0.0), ms(1, 1.0)), (80, 120));
        assert_eq!((ms(50, 0.0), ms(50, 0.999_999)), (800, 1200));
    }

    #[test]
    fn bad_configurations_are_typed_errors() {
        let bad = [
            PushClientConfig {
                endpoint: "not a uri".into(),
                ..config()
            },
            PushClientConfig {
                gateway_client_id: "gw 1".into(),
                ..config()
            },
            PushClientConfig {
                internal_token: SecretString::from("a\nb"),
                ..config()
            },
            PushClientConfig {
                initial_backoff: Duration::ZERO,
                ..config()
            },
            PushClientConfig {
                max_backoff: Duration::from_millis(1),
                ..config()
            },
        ];
        for config in bad {
            assert!(PushClient::new(config).is_err());
        }
    }

    #[test]
    fn the_token_never_prints() {
        let client = PushClient::new(config())
            .unwrap()
            .with_cursor(Some("v1.1.1".into()));
        let debug = format!("{client:?}");
        assert!(debug.contains("gw-1") && debug.contains("v1.1.1"));
        assert!(!debug.contains("\"t\""));
    }
}
