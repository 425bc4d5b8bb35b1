//! Configuration: every setting from a `GALAXY_*` environment variable into one typed
//! struct, validated once at start. A bad value is reported with the variable's name and
//! what was expected; secrets are wrapped so they never print.
//!
//! docs/operations.md lists every variable; [`SETTINGS`] is the same list in code, and a
//! test checks the two agree.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use galaxy_core::domain::user::Email;
use secrecy::SecretString;

use crate::http::client_ip::TrustedProxies;

mod builder;
mod error;
pub mod features;
pub mod file;
pub mod mail_in;
pub mod runtime;
mod settings;
#[cfg(test)]
mod tests;
mod vars;

pub use builder::ConfigBuilder;
pub use error::ConfigError;
pub use file::{CONFIG_FILE_VARIABLE, Layered, Source};
pub use mail_in::MailInSettings;
pub use runtime::{REFERENCE_ENGINE_SUBCOMMAND, RuntimeKind, RuntimeSettings};
pub use settings::{DURATION_RANGES, LIST_SEPARATORS, SECRET_SETTINGS, SETTINGS, Setting};
use vars::Vars;

/// The smallest `GALAXY_DATABASE_MAX_CONNECTIONS`: each replica holds two pool
/// connections for as long as it runs (the cache-note and push-event listeners), so a
/// pool of one or two leaves nothing for the migrations, workers and requests and
/// start-up stalls on a pool timeout; four leave at least two for the work.
pub const MIN_DATABASE_CONNECTIONS: u32 = 4;

/// How traces leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtelExporter {
    /// Not exported.
    None,
    /// Printed to stdout.
    Stdout,
    /// Sent to an OTLP collector.
    Otlp,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// How OTLP traces travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// gRPC (`grpc`, the default; port 4317).
    Grpc,
    /// Protobuf over HTTP (`http/protobuf`; port 4318, path `/v1/traces`).
    HttpProtobuf,
}

/// `count` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Allowed events.
    pub count: u32,
    /// Per this window.
    pub window: Duration,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP API listener.
    pub http_addr: SocketAddr,
    /// gRPC push listener.
    pub grpc_addr: SocketAddr,
    /// Metrics listener, if any.
    pub metrics_addr: Option<SocketAddr>,
    /// Postgres URL, if any.
    pub database_url: Option<SecretString>,
    /// Pool size.
    pub database_max_connections: u32,
    /// Start-up connection attempts.
    pub database_connect_attempts: u32,
    /// Local state directory.
    pub data_dir: PathBuf,
    /// The gateway's token, if internal routes are enabled.
    pub internal_token: Option<SecretString>,
    /// `GALAXY_LOGIN_CODE_KEY`: the secret login codes are hashed under (HMAC key);
    /// unset, one generated into the data directory.
    pub login_code_key: Option<SecretString>,
    /// E-mails that get the admin role.
    pub bootstrap_admins: Vec<Email>,
    /// SMTP relay, if any.
    pub smtp_url: Option<SecretString>,
    /// Mail sender.
    pub mail_from: String,
    /// GeoIP database, if any.
    pub geoip_db: Option<PathBuf>,
    /// How often the GeoIP database file is checked for a new version.
    pub geoip_reload_interval: Duration,
    /// How often the per-user country counters are written.
    pub geo_flush_interval: Duration,
    /// Bound of the geo counters' drain on shutdown.
    pub geo_shutdown_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Log filter.
    pub log_filter: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Trace export.
    pub otel_exporter: OtelExporter,
    /// OTLP endpoint; `None` = the standard `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, else
    /// the protocol's default.
    pub otel_endpoint: Option<String>,
    /// OTLP transport, from the standard `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`.
    pub otel_protocol: OtlpProtocol,
    /// The standard `OTEL_SERVICE_NAME`, if set (else traces report `galaxy-server`).
    pub otel_service_name: Option<String>,
    /// Overall shutdown bound.
    pub shutdown_timeout: Duration,
    /// HTTP drain bound.
    pub http_shutdown_timeout: Duration,
    /// `GALAXY_HTTP_DRAIN_DELAY`: how long `/readyz` says 503 before the listener closes.
    pub http_drain_delay: Duration,
    /// Worker drain bound.
    pub worker_shutdown_timeout: Duration,
    /// Largest request body.
    pub http_body_limit: usize,
    /// `GALAXY_HTTP_MAX_CONNECTIONS`: open HTTP connections at most.
    pub http_max_connections: usize,
    /// `GALAXY_HTTP_STREAMS_PER_USER`: live-update event streams one user may hold open
    /// on a replica at once (a tab each), so that one account cannot hold the
    /// connections everyone shares.
    pub http_streams_per_user: usize,
    /// Longest request.
    pub http_request_timeout: Duration,
    /// Login code digits.
    pub login_code_digits: usize,
    /// Login code lifetime.
    pub login_code_ttl: Duration,
    /// Wrong codes before locking.
    pub login_max_attempts: u32,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// `GALAXY_CACHE_BUS_HEARTBEAT`: how often the change bus checks its own listener.
    pub cache_bus_heartbeat: Duration,
    /// `GALAXY_CACHE_DEGRADED_TTL`: the longest a cache entry lives while the change bus
    /// is interrupted.
    pub cache_degraded_ttl: Duration,
    /// Codes per e-mail.
    pub rate_limit_email: RateLimit,
    /// Codes per IP.
    pub rate_limit_ip: RateLimit,
    /// Wrong codes per e-mail, over all its codes.
    pub rate_limit_wrong_codes: RateLimit,
    /// Unused codes one e-mail may hold at once.
    pub login_max_unused_codes: u32,
    /// Mail worker idle poll.
    pub mail_interval: Duration,
    /// Mails per pass.
    pub mail_batch: u32,
    /// Mail attempt budget.
    pub mail_max_attempts: u32,
    /// First mail retry delay.
    pub mail_backoff_initial: Duration,
    /// Longest mail retry delay.
    pub mail_backoff_max: Duration,
    /// Sweeper period.
    pub sweeper_interval: Duration,
    /// Race name reservation.
    pub race_name_ttl: Duration,
    /// `GALAXY_MIN_TURN_PERIOD`: the shortest gap between two turns a host may schedule.
    pub min_turn_period: Duration,
    /// `GALAXY_MAX_HOSTED_GAMES`: unfinished games one user may host.
    pub max_hosted_games: u32,
    /// `GALAXY_RETAIN_CHALLENGES`: how long an expired login challenge is kept.
    pub retain_challenges: Duration,
    /// `GALAXY_RETAIN_SENT_MAIL`: how long a sent mail is kept.
    pub retain_sent_mail: Duration,
    /// `GALAXY_RETAIN_DEAD_MAIL`: how long a dead mail is kept.
    pub retain_dead_mail: Duration,
    /// `GALAXY_RETAIN_INBOUND_MAIL`: how long a handled inbound mail is kept.
    pub retain_inbound_mail: Duration,
    /// `GALAXY_RETAIN_NOTIFICATIONS`: how long a delivered notification is kept.
    pub retain_notifications: Duration,
    /// `GALAXY_RETAIN_SESSIONS`: how long an ended session is kept.
    pub retain_sessions: Duration,
    /// The container runtime, its engine registries and its workers.
    pub runtime: RuntimeSettings,
    /// Deadline of one SMTP send; also sizes the mail worker's lease.
    pub smtp_timeout: Duration,
    /// Pooled SMTP connections.
    pub smtp_pool_size: u32,
    /// Notification worker idle poll.
    pub notification_interval: Duration,
    /// Push events kept for replay.
    pub push_ring_capacity: NonZeroUsize,
    /// Oldest push event kept for replay.
    pub push_window: Duration,
    /// Live push events queued per gateway.
    pub push_subscriber_buffer: NonZeroUsize,
    /// Bound of the "flush push events" shutdown step.
    pub push_shutdown_timeout: Duration,
    /// How often the push log is read without a wake-up (a lost note costs at most this).
    pub push_poll_interval: Duration,
    /// Orders by e-mail: its domain, bounds and SMTP listener.
    pub mail_in: MailInSettings,
}

/// Whether `GALAXY_MAIL_FROM` can head a mail: checked with the mailers' own parser, so
/// a bad sender stops start-up naming its variable instead of failing every mail (a
/// build without the mailers sends none and takes any text).
#[cfg(feature = "smtp")]
fn usable_sender(from: &str) -> bool {
    galaxy_smtp::check_sender(from).is_ok()
}

/// Without the mailers no mail is sent: any sender does.
#[cfg(not(feature = "smtp"))]
fn usable_sender(_from: &str) -> bool {
    true
}

/// The standard `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (else `OTEL_EXPORTER_OTLP_PROTOCOL`):
/// `grpc` (default) or `http/protobuf`; `http/json` is refused rather than sent as
/// protobuf.
fn otlp_protocol(v: &Vars<'_>) -> Result<OtlpProtocol, ConfigError> {
    for variable in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(value) = v.raw(variable) {
            return match value {
                "grpc" => Ok(OtlpProtocol::Grpc),
                "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
                other => Err(ConfigError::Invalid {
                    variable,
                    value: other.to_owned(),
                    expected: "grpc or http/protobuf (http/json is not supported)".to_owned(),
                }),
            };
        }
    }
    Ok(OtlpProtocol::Grpc)
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads the configuration from a map of variables.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let v = Vars(vars);
        features::check(&v)?;
        let addr = "an address such as 127.0.0.1:8080";
        let internal_token = v.secret("GALAXY_INTERNAL_TOKEN");
        if let Some(token) = v.raw("GALAXY_INTERNAL_TOKEN")
            && token.chars().count() < 16
        {
            return Err(ConfigError::Invalid {
                variable: "GALAXY_INTERNAL_TOKEN",
                value: "<redacted>".to_owned(),
                expected: "at least 16 characters".to_owned(),
            });
        }
        let login_code_key = v.secret("GALAXY_LOGIN_CODE_KEY");
        if let Some(key) = v.raw("GALAXY_LOGIN_CODE_KEY")
            && key.len() < 32
        {
            return Err(ConfigError::Invalid {
                variable: "GALAXY_LOGIN_CODE_KEY",
                value: "<redacted>".to_owned(),
                expected: "at least 32 bytes of secret (e.g. `openssl rand -hex 32`)".to_owned(),
            });
        }
        let bootstrap_admins = match v.raw("GALAXY_BOOTSTRAP_ADMINS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(|e| {
                    Email::parse(e).map_err(|err| ConfigError::Invalid {
                        variable: "GALAXY_BOOTSTRAP_ADMINS",
                        value: e.to_owned(),
                        expected: format!("comma-separated e-mail addresses ({err})"),
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let config = Self {
            http_addr: v.parsed("GALAXY_HTTP_ADDR", addr)?,
            grpc_addr: v.parsed("GALAXY_GRPC_ADDR", addr)?,
            metrics_addr: v.optional_addr("GALAXY_METRICS_ADDR")?,
            database_url: v.secret("GALAXY_DATABASE_URL"),
            database_max_connections: v.parse_with(
                "GALAXY_DATABASE_MAX_CONNECTIONS",
                &format!(
                    "a number from {MIN_DATABASE_CONNECTIONS} to 1000 (two connections are \
                     held by the cache and push listeners for as long as the server runs; \
                     the rest must be able to migrate and serve)"
                ),
                |s| {
                    s.parse()
                        .ok()
                        .filter(|n| (MIN_DATABASE_CONNECTIONS..=1000).contains(n))
                },
            )?,
            database_connect_attempts: v.parse_with(
                "GALAXY_DATABASE_CONNECT_ATTEMPTS",
                "a number from 1 to 100",
                |s| s.parse().ok().filter(|n| (1..=100).contains(n)),
            )?,
            data_dir: PathBuf::from(v.raw("GALAXY_DATA_DIR").unwrap_or("./galaxy-data")),
            internal_token,
            login_code_key,
            bootstrap_admins,
            smtp_url: v.secret("GALAXY_SMTP_URL"),
            mail_from: v.parse_with(
                "GALAXY_MAIL_FROM",
                "a mailbox such as Galaxy <galaxy@example.org>",
                |s| usable_sender(s).then(|| s.to_owned()),
            )?,
            geoip_db: v.raw("GALAXY_GEOIP_DB").map(PathBuf::from),
            geoip_reload_interval: v.duration("GALAXY_GEOIP_RELOAD_INTERVAL")?,
            geo_flush_interval: v.duration("GALAXY_GEO_FLUSH_INTERVAL")?,
            geo_shutdown_timeout: v.duration("GALAXY_GEO_SHUTDOWN_TIMEOUT")?,
            trusted_proxies: v.trusted_proxies("GALAXY_TRUSTED_PROXIES")?,
            log_filter: v.parse_with(
                "GALAXY_LOG",
                "a tracing filter such as info or info,galaxy_core=debug",
                |s| {
                    tracing_subscriber::EnvFilter::try_new(s)
                        .ok()
                        .map(|_| s.to_owned())
                },
            )?,
            log_format: v.parse_with("GALAXY_LOG_FORMAT", "json or pretty", |s| match s {
                "json" => Some(LogFormat::Json),
                "pretty" => Some(LogFormat::Pretty),
                _ => None,
            })?,
            otel_exporter: match v.raw("GALAXY_OTEL_EXPORTER") {
                // The standard variable chooses when Galaxy's own is unset.
                None if v.raw("OTEL_TRACES_EXPORTER") == Some("otlp") => OtelExporter::Otlp,
                None if v.raw("OTEL_TRACES_EXPORTER") == Some("console") => OtelExporter::Stdout,
                _ => v.parse_with(
                    "GALAXY_OTEL_EXPORTER",
                    "none, stdout or otlp",
                    |s| match s {
                        "none" => Some(OtelExporter::None),
                        "stdout" => Some(OtelExporter::Stdout),
                        "otlp" => Some(OtelExporter::Otlp),
                        _ => None,
                    },
                )?,
            },
            otel_endpoint: v.raw("GALAXY_OTEL_ENDPOINT").map(str::to_owned),
            otel_protocol: otlp_protocol(&v)?,
            otel_service_name: v.raw("OTEL_SERVICE_NAME").map(str::to_owned),
            shutdown_timeout: v.duration("GALAXY_SHUTDOWN_TIMEOUT")?,
            http_shutdown_timeout: v.duration("GALAXY_HTTP_SHUTDOWN_TIMEOUT")?,
            http_drain_delay: v.duration("GALAXY_HTTP_DRAIN_DELAY")?,
            worker_shutdown_timeout: v.duration("GALAXY_WORKER_SHUTDOWN_TIMEOUT")?,
            http_body_limit: v.parse_with(
                "GALAXY_HTTP_BODY_LIMIT",
                "a byte count from 1024 to 16777216",
                |s| {
                    s.parse()
                        .ok()
                        .filter(|n| (1024..=16 * 1024 * 1024).contains(n))
                },
            )?,
            http_request_timeout: v.duration("GALAXY_HTTP_REQUEST_TIMEOUT")?,
            http_max_connections: v.parse_with(
                "GALAXY_HTTP_MAX_CONNECTIONS",
                "a number from 1 to 1000000",
                |s| s.parse().ok().filter(|n| (1..=1_000_000).contains(n)),
            )?,
            http_streams_per_user: v.parse_with(
                "GALAXY_HTTP_STREAMS_PER_USER",
                "a number from 1 to 1000",
                |s| s.parse().ok().filter(|n| (1..=1000).contains(n)),
            )?,
            login_code_digits: v.parse_with(
                "GALAXY_LOGIN_CODE_DIGITS",
                "a number from 6 to 10",
                |s| s.parse().ok().filter(|n| (6..=10).contains(n)),
            )?,
            login_code_ttl: v.duration("GALAXY_LOGIN_CODE_TTL")?,
            login_max_attempts: v.parse_with(
                "GALAXY_LOGIN_MAX_ATTEMPTS",
                "a number from 1 to 100",
                |s| s.parse().ok().filter(|n| (1..=100).contains(n)),
            )?,
            session_ttl: v.duration("GALAXY_SESSION_TTL")?,
            cache_bus_heartbeat: v.duration("GALAXY_CACHE_BUS_HEARTBEAT")?,
            cache_degraded_ttl: v.duration("GALAXY_CACHE_DEGRADED_TTL")?,
            rate_limit_email: v.rate_limit("GALAXY_RATE_LIMIT_EMAIL")?,
            rate_limit_ip: v.rate_limit("GALAXY_RATE_LIMIT_IP")?,
            rate_limit_wrong_codes: v.rate_limit("GALAXY_RATE_LIMIT_WRONG_CODES")?,
            login_max_unused_codes: v.parse_with(
                "GALAXY_LOGIN_MAX_UNUSED_CODES",
                "a number from 1 to 100",
                |s| s.parse().ok().filter(|n| (1..=100).contains(n)),
            )?,
            mail_interval: v.duration("GALAXY_MAIL_INTERVAL")?,
            mail_batch: v.parse_with("GALAXY_MAIL_BATCH", "a number from 1 to 1000", |s| {
                s.parse().ok().filter(|n| (1..=1000).contains(n))
            })?,
            mail_max_attempts: v.parse_with(
                "GALAXY_MAIL_MAX_ATTEMPTS",
                "a number from 1 to 100",
                |s| s.parse().ok().filter(|n| (1..=100).contains(n)),
            )?,
            mail_backoff_initial: v.duration("GALAXY_MAIL_BACKOFF_INITIAL")?,
            mail_backoff_max: v.duration("GALAXY_MAIL_BACKOFF_MAX")?,
            sweeper_interval: v.duration("GALAXY_SWEEPER_INTERVAL")?,
            race_name_ttl: v.duration("GALAXY_RACE_NAME_TTL")?,
            min_turn_period: v.duration("GALAXY_MIN_TURN_PERIOD")?,
            retain_challenges: v.duration("GALAXY_RETAIN_CHALLENGES")?,
            max_hosted_games: v.parse_with(
                "GALAXY_MAX_HOSTED_GAMES",
                "a number from 1 to 10000",
                |s| s.parse().ok().filter(|n| (1..=10_000).contains(n)),
            )?,
            retain_sent_mail: v.duration("GALAXY_RETAIN_SENT_MAIL")?,
            retain_dead_mail: v.duration("GALAXY_RETAIN_DEAD_MAIL")?,
            retain_inbound_mail: v.duration("GALAXY_RETAIN_INBOUND_MAIL")?,
            retain_notifications: v.duration("GALAXY_RETAIN_NOTIFICATIONS")?,
            retain_sessions: v.duration("GALAXY_RETAIN_SESSIONS")?,
            runtime: runtime::read(&v)?,
            smtp_timeout: v.duration("GALAXY_SMTP_TIMEOUT")?,
            smtp_pool_size: v.parse_with(
                "GALAXY_SMTP_POOL_SIZE",
                "a number from 1 to 100",
                |s| s.parse().ok().filter(|n| (1..=100).contains(n)),
            )?,
            notification_interval: v.duration("GALAXY_NOTIFICATION_INTERVAL")?,
            push_ring_capacity: v.parsed("GALAXY_PUSH_RING_CAPACITY", "a positive number")?,
            push_window: v.duration("GALAXY_PUSH_WINDOW")?,
            push_subscriber_buffer: v
                .parsed("GALAXY_PUSH_SUBSCRIBER_BUFFER", "a positive number")?,
            push_shutdown_timeout: v.duration("GALAXY_PUSH_SHUTDOWN_TIMEOUT")?,
            push_poll_interval: v.duration("GALAXY_PUSH_POLL_INTERVAL")?,
            mail_in: mail_in::read(&v)?,
        };
        #[cfg(feature = "postgres")]
        if let Some(url) = v.raw("GALAXY_DATABASE_URL") {
            // As for the SMTP URL: a configuration error (exit 2, which systemd does not
            // restart), never quoting the URL.
            galaxy_postgres::check_url(url).map_err(|e| ConfigError::Invalid {
                variable: "GALAXY_DATABASE_URL",
                value: "<redacted>".to_owned(),
                expected: format!("a postgres:// URL: {e}"),
            })?;
        }
        #[cfg(feature = "smtp")]
        if let Some(url) = v.raw("GALAXY_SMTP_URL") {
            // Parsed again where the mailer is built; checked here so a bad URL is a
            // configuration error (exit 2) that never quotes the URL (it may hold a password).
            galaxy_smtp::SmtpUrl::parse(url).map_err(|e| ConfigError::Invalid {
                variable: "GALAXY_SMTP_URL",
                value: "<redacted>".to_owned(),
                expected: format!("an smtp:// or smtps:// URL: {e}"),
            })?;
        }
        if config.mail_backoff_max < config.mail_backoff_initial {
            return Err(ConfigError::Invalid {
                variable: "GALAXY_MAIL_BACKOFF_MAX",
                value: humantime::format_duration(config.mail_backoff_max).to_string(),
                expected: "at least GALAXY_MAIL_BACKOFF_INITIAL".to_owned(),
            });
        }
        // The drain delay is the first step of the shutdown and counts against its
        // budget: as long as the budget, it would leave no time to finish requests,
        // workers, the geo counters or the pool, and every later step would be cut.
        if !config.http_drain_delay.is_zero() && config.http_drain_delay >= config.shutdown_timeout
        {
            return Err(ConfigError::Invalid {
                variable: "GALAXY_HTTP_DRAIN_DELAY",
                value: humantime::format_duration(config.http_drain_delay).to_string(),
                expected: format!(
                    "less than GALAXY_SHUTDOWN_TIMEOUT ({}), which it counts against: raise \
                     that too",
                    humantime::format_duration(config.shutdown_timeout)
                ),
            });
        }
        // The login limits count stored challenges: the retention must keep every one
        // their windows look back over.
        let longest_window = [
            config.rate_limit_email.window,
            config.rate_limit_ip.window,
            config.rate_limit_wrong_codes.window,
        ]
        .into_iter()
        .max()
        .unwrap_or_default();
        if config.retain_challenges < longest_window {
            return Err(ConfigError::Invalid {
                variable: "GALAXY_RETAIN_CHALLENGES",
                value: humantime::format_duration(config.retain_challenges).to_string(),
                expected: format!(
                    "at least the longest login-limit window ({})",
                    humantime::format_duration(longest_window)
                ),
            });
        }
        Ok(config)
    }

    /// A builder that starts from every default: set what differs by variable name, with
    /// the same validation and messages as the environment. For embedders and tests that
    /// configure a server in code.
    ///
    /// ```
    /// let config = galaxy_server::Config::builder()
    ///     .set("GALAXY_RUNTIME", "none")
    ///     .set("GALAXY_MAIL_INTERVAL", "50ms")
    ///     .build()?;
    /// assert_eq!(config.mail_interval, std::time::Duration::from_millis(50));
    /// # Ok::<(), galaxy_server::config::ConfigError>(())
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The database URL, or an error saying that plain `galaxy-server` needs it.
    pub fn require_database_url(&self) -> Result<&SecretString, ConfigError> {
        self.database_url.as_ref().ok_or(ConfigError::Missing {
            variable: "GALAXY_DATABASE_URL",
            why: "galaxy-server stores everything in Postgres (use `galaxy-server dev` to run without one)",
        })
    }
}
