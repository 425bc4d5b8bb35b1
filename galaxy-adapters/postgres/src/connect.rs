//! Connecting to Postgres: a pool whose sizes are configurable, reached with a bounded
//! retry so a server that starts a little after Galaxy (compose, systemd) is waited for,
//! and one that never answers ends in a clear error instead of a hang or a panic.

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::error::{SetupError, is_transient};

/// Pool sizes, timeouts and the start-up retry budget.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Most connections the pool opens (default 10).
    pub max_connections: u32,
    /// Connections kept open even when idle (default 0).
    pub min_connections: u32,
    /// How long a store call waits for a free connection before it fails with a
    /// retryable `StoreError::Unavailable` (default 5 s).
    pub acquire_timeout: Duration,
    /// Idle connections are closed after this long (default 10 min; `None`: never).
    pub idle_timeout: Option<Duration>,
    /// Connection attempts at start-up before giving up (default 10; at least 1).
    pub connect_attempts: u32,
    /// Wait after the first failed attempt; doubles after each (default 250 ms).
    pub initial_backoff: Duration,
    /// Longest wait between two attempts (default 5 s).
    pub max_backoff: Duration,
    /// Reported to the server as `application_name` (default `galaxy`).
    pub application_name: String,
    /// A pooled connection idle for longer than this is pinged (one round trip) before a
    /// store call gets it, and replaced if the ping fails (default 1 s). One used more
    /// recently is handed out as it is: the pool pings every connection when it comes
    /// back from a call, so it was alive that recently, and a ping before every call
    /// would double the round trips of the short ones (measured: 110 us against 220 us
    /// per `SELECT 1` on a 2-core machine). Should the server have died within that
    /// window, the call fails with a retryable `StoreError::Unavailable` and the broken
    /// connection is closed. `Duration::ZERO` pings before every call.
    pub ping_idle_after: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            connect_attempts: 10,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            application_name: "galaxy".to_owned(),
            ping_idle_after: Duration::from_secs(1),
        }
    }
}

impl ConnectOptions {
    /// The sqlx pool options these settings stand for.
    fn pool_options(&self) -> PgPoolOptions {
        let ping_idle_after = self.ping_idle_after;
        PgPoolOptions::new()
            .max_connections(self.max_connections.max(1))
            .min_connections(self.min_connections.min(self.max_connections))
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            // A connection that died with its server while it sat idle is found out
            // before it is handed to a store call, so the pool recovers on its own after
            // a restart; one that came back from a call (and its ping) moments ago is
            // trusted (`ping_idle_after`).
            .test_before_acquire(false)
            .before_acquire(move |connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= ping_idle_after {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
    }
}

/// Where a connection goes, for messages: host, port and database, never credentials.
pub(crate) fn describe(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or("(default database)");
    match options.get_socket() {
        Some(socket) => format!("{}/{database}", socket.display()),
        None => format!("{}:{}/{database}", options.get_host(), options.get_port()),
    }
}

/// Checks that `url` is a Postgres URL [`connect`] can use, without connecting: for a
/// configuration check that must fail before start-up, not in a restart loop.
///
/// Errors: [`SetupError::InvalidUrl`], whose message never quotes the URL (it may hold
/// a password).
pub fn check_url(url: &str) -> Result<(), SetupError> {
    parse_url(url).map(drop)
}

/// Parses a `postgres://` URL into sqlx connect options.
pub(crate) fn parse_url(url: &str) -> Result<PgConnectOptions, SetupError> {
    url.parse::<PgConnectOptions>()
        .map_err(|source| SetupError::InvalidUrl { source })
}

/// Opens a pool on `url`, retrying transient failures (refused connection, server
/// starting up) with exponential backoff up to `options.connect_attempts` times.
///
/// Errors: [`SetupError::InvalidUrl`] at once for a malformed URL,
/// [`SetupError::Refused`] at once when the server answers with a permanent refusal
/// (bad password, unknown database), [`SetupError::Unreachable`] when the budget is
/// spent. Run [`migrate`](crate::migrate) on the pool before anything else uses it.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<PgPool, SetupError> {
    let connect_options = parse_url(url)?.application_name(&options.application_name);
    connect_with(connect_options, options).await
}

/// [`connect`] with already parsed sqlx options.
pub async fn connect_with(
    connect_options: PgConnectOptions,
    options: &ConnectOptions,
) -> Result<PgPool, SetupError> {
    let target = describe(&connect_options);
    let attempts = options.connect_attempts.max(1);
    let started = Instant::now();
    let mut backoff = options.initial_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // One plain connection per attempt: the pool's own connect would retry
        // internally until its acquire timeout and blur the attempt count.
        let probe = tokio::time::timeout(
            options.acquire_timeout,
            PgConnection::connect_with(&connect_options),
        )
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        let error = match probe {
            Ok(connection) => {
                // Closing the probe politely is best effort; the pool opens its own.
                let _ = connection.close().await;
                match options
                    .pool_options()
                    .connect_with(connect_options.clone())
                    .await
                {
                    Ok(pool) => return Ok(pool),
                    Err(error) => error,
                }
            }
            Err(error) => error,
        };
        if !is_transient(&error) || is_set_up_failure(&error) {
            return Err(SetupError::Refused {
                target,
                source: error,
            });
        }
        if attempt >= attempts {
            return Err(SetupError::Unreachable {
                target,
                attempts: attempt,
                elapsed: started.elapsed(),
                source: error,
            });
        }
        tracing::warn!(
            %target, attempt, max_attempts = attempts, %error, retry_in = ?backoff,
            "Postgres is not reachable yet"
        );
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(options.max_backoff);
    }
}

/// Whether a failed connect says the set-up is wrong rather than the server not up yet:
/// a TLS failure (a server without TLS where the URL requires it; a certificate the
/// URL's CA does not vouch for, which rustls reports as invalid data on the socket).
/// Retrying would only delay saying so.
fn is_set_up_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_never_show_the_password() {
        let options = parse_url("postgres://galaxy:s3cret@db.example:6543/galaxy");
        let text = options.map(|o| describe(&o)).unwrap_or_default();
        assert_eq!(text, "db.example:6543/galaxy");
    }

    #[test]
    fn malformed_urls_are_refused_at_once() {
        assert!(matches!(
            parse_url("postgres://galaxy@127.0.0.1:notaport/galaxy"),
            Err(SetupError::InvalidUrl { .. })
        ));
    }

    #[tokio::test]
    async fn an_unreachable_server_ends_in_a_clear_error_after_the_budget() {
        // Port 1 on loopback refuses connections at once.
        let options = ConnectOptions {
            connect_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            acquire_timeout: Duration::from_secs(2),
            ..ConnectOptions::default()
        };
        let result = connect("postgres://galaxy@127.0.0.1:1/galaxy", &options).await;
        match result {
            Err(SetupError::Unreachable {
                attempts, target, ..
            }) => {
                assert_eq!((attempts, target.as_str()), (3, "127.0.0.1:1/galaxy"));
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}
