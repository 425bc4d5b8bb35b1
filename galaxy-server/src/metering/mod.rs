//! What the server measures, in one place: the catalogue of every metric it exports
//! ([`METRICS`]: name, type, HELP text, labels), the decorators that meter the game loop
//! at its ports (engine calls and turns, container operations, mail sends, health
//! events), and the gauges read on a timer (engines by status, mail queue age, process
//! figures, build info).
//!
//! Conventions, checked by tests: every name starts with `galaxy_` (the standard
//! `process_*` names excepted, which dashboards expect as they are), counters end in
//! `_total`, durations are histograms in `_seconds`, sizes in `_bytes`; every label has
//! a bounded set of values (enum names, route templates, fixed words), never an id.

pub mod decorators;
pub mod process;

use std::sync::Arc;
use std::time::Duration;

use galaxy_core::domain::mail::MailStatus;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::runtime::RuntimeStatus;
use galaxy_core::ports::{Clock, MailStore, RuntimeRecordStore};

/// A metric's type, as Prometheus shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    /// The full name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Its labels (each with a bounded set of values).
    pub labels: &'static [&'static str],
}

const fn spec(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    labels: &'static [&'static str],
) -> MetricSpec {
    MetricSpec {
        name,
        kind,
        help,
        labels,
    }
}

use Kind::{Counter, Gauge, Histogram};

/// HTTP requests served.
pub const HTTP_REQUESTS: &str = "galaxy_http_requests_total";
/// HTTP request latency.
pub const HTTP_REQUEST_DURATION: &str = "galaxy_http_request_duration_seconds";
/// Engine HTTP calls.
pub const ENGINE_REQUESTS: &str = "galaxy_engine_requests_total";
/// Engine HTTP call latency.
pub const ENGINE_REQUEST_DURATION: &str = "galaxy_engine_request_duration_seconds";
/// Turns run.
pub const TURNS: &str = "galaxy_turns_total";
/// Turn duration.
pub const TURN_DURATION: &str = "galaxy_turn_duration_seconds";
/// Health events recorded.
pub const HEALTH_EVENTS: &str = "galaxy_engine_health_events_total";
/// Container runtime operations.
pub const CONTAINER_OPERATIONS: &str = "galaxy_container_operations_total";
/// Container runtime operation latency.
pub const CONTAINER_OPERATION_DURATION: &str = "galaxy_container_operation_duration_seconds";
/// Engines by runtime status.
pub const ENGINES: &str = "galaxy_engines";
/// Running engines whose health is bad.
pub const ENGINES_UNHEALTHY: &str = "galaxy_engines_unhealthy";
/// Mail sends.
pub const MAIL_SENDS: &str = "galaxy_mail_sends_total";
/// Mails the outbox gave up on.
pub const MAIL_DEAD_LETTERS: &str = "galaxy_mail_dead_letters_total";
/// Mail send latency.
pub const MAIL_SEND_DURATION: &str = "galaxy_mail_send_duration_seconds";
/// Notification routes finished, by channel and outcome.
pub const NOTIFICATION_ROUTES: &str = "galaxy_notification_routes_total";
/// Age of the oldest pending mail.
pub const MAIL_OLDEST_PENDING_AGE: &str = "galaxy_mail_oldest_pending_age_seconds";
/// Database pool connections.
pub const DB_POOL_CONNECTIONS: &str = "galaxy_db_pool_connections";
/// Database pool size limit.
pub const DB_POOL_MAX_CONNECTIONS: &str = "galaxy_db_pool_max_connections";
/// Live-update event streams open on the web pages.
pub const HTTP_STREAMS: &str = "galaxy_http_streams";
/// Live-update event streams refused at a bound.
pub const HTTP_STREAMS_REFUSED: &str = "galaxy_http_streams_refused_total";
/// Build information.
pub const BUILD_INFO: &str = "galaxy_build_info";

/// Every metric the server exports. A test checks that every name used with a `metrics`
/// macro in the server's source is here, and that the deploy/ dashboard and alert rules
/// use only these.
pub const METRICS: &[MetricSpec] = &[
    spec(
        HTTP_REQUESTS,
        Counter,
        "HTTP requests served, by method, route template and status.",
        &["method", "route", "status"],
    ),
    spec(
        HTTP_REQUEST_DURATION,
        Histogram,
        "HTTP request latency in seconds, by method and route template.",
        &["method", "route"],
    ),
    spec(
        crate::listener::CONNECTIONS_METRIC,
        Gauge,
        "Open connections per listener.",
        &["listener"],
    ),
    spec(
        crate::listener::CONNECTIONS_CAPPED_METRIC,
        Counter,
        "Connections refused because a listener was at its connection cap.",
        &["listener"],
    ),
    spec(
        HTTP_STREAMS,
        Gauge,
        "Live-update event streams open on the web pages (requests without a timeout).",
        &[],
    ),
    spec(
        HTTP_STREAMS_REFUSED,
        Counter,
        "Live-update event streams refused with 429, by the bound reached (per_user, total).",
        &["bound"],
    ),
    spec(
        ENGINE_REQUESTS,
        Counter,
        "Calls to engines' HTTP contract, by operation and outcome (ok, refused, unavailable).",
        &["operation", "outcome"],
    ),
    spec(
        ENGINE_REQUEST_DURATION,
        Histogram,
        "Latency of calls to engines in seconds, by operation.",
        &["operation"],
    ),
    spec(
        TURNS,
        Counter,
        "Turns the engines were asked to run, by outcome (ok, failed).",
        &["outcome"],
    ),
    spec(
        TURN_DURATION,
        Histogram,
        "Time an engine took to run a turn, in seconds.",
        &[],
    ),
    spec(
        HEALTH_EVENTS,
        Counter,
        "Engine health events recorded, by kind (probe_failed, probe_recovered, inspect_unhealthy, container_disappeared, turn_failed).",
        &["kind"],
    ),
    spec(
        CONTAINER_OPERATIONS,
        Counter,
        "Container runtime operations (the work of start, stop and restart jobs), by operation and outcome.",
        &["operation", "outcome"],
    ),
    spec(
        CONTAINER_OPERATION_DURATION,
        Histogram,
        "Latency of container runtime operations in seconds, by operation.",
        &["operation"],
    ),
    spec(
        ENGINES,
        Gauge,
        "Engines by runtime status (removed ones are not counted).",
        &["status"],
    ),
    spec(
        ENGINES_UNHEALTHY,
        Gauge,
        "Running engines whose last health observation was a failure.",
        &[],
    ),
    spec(
        MAIL_SENDS,
        Counter,
        "Mails handed to the mailer (SMTP relay or files), by outcome (ok, transient, permanent).",
        &["outcome"],
    ),
    spec(
        MAIL_DEAD_LETTERS,
        Counter,
        "Mails this process gave up on (dead letters): refused for good by the relay, or out of attempts.",
        &[],
    ),
    spec(
        MAIL_SEND_DURATION,
        Histogram,
        "Time one mail send took, in seconds.",
        &[],
    ),
    spec(
        crate::monitor::MAIL_QUEUE_DEPTH_METRIC,
        Gauge,
        "Mails the outbox still has in hand, by status: pending, sending, retrying and dead (dead letters); sent mail is counted by `galaxy_mail_sends_total`.",
        &["status"],
    ),
    spec(
        MAIL_OLDEST_PENDING_AGE,
        Gauge,
        "Age in seconds of the oldest mail waiting for its first attempt (0 when none waits).",
        &[],
    ),
    spec(
        NOTIFICATION_ROUTES,
        Counter,
        "Notification routes (push events and notification mails) finished, by channel (push, email) and outcome (delivered, retry, dead_letter); counted by the replica that finished each.",
        &["channel", "outcome"],
    ),
    spec(
        crate::mail_in::MAIL_IN_METRIC,
        Counter,
        "Inbound messages (orders by e-mail) processed, by outcome (answered, answered_silently, refused, dropped); counted by the replica that finished each (sum them across replicas), so deleting old mails never lowers it.",
        &["outcome"],
    ),
    spec(
        crate::mail_in::MAIL_IN_WAITING_METRIC,
        Gauge,
        "Inbound messages stored and not yet processed.",
        &[],
    ),
    spec(
        crate::monitor::GEO_PENDING_METRIC,
        Gauge,
        "(user, country) pairs counted in memory and not yet written.",
        &[],
    ),
    spec(
        crate::monitor::GEO_DROPPED_METRIC,
        Counter,
        "Requests not counted by country because the pending pairs were at their bound.",
        &[],
    ),
    spec(
        crate::delivery::PUSH_SUBSCRIBERS_METRIC,
        Gauge,
        "Push subscribers connected to this process: gateway streams and the live-update streams of open game pages.",
        &[],
    ),
    spec(
        crate::delivery::PUSH_QUEUED_METRIC,
        Gauge,
        "Push events queued for subscribers and not yet taken.",
        &[],
    ),
    spec(
        crate::delivery::PUSH_LAGGED_METRIC,
        Counter,
        "Times a push subscriber fell behind its buffer and was disconnected (push lag); it resumes from its cursor when it reconnects (a replay, or a resync once the ring has moved past it).",
        &[],
    ),
    spec(
        crate::cache::GAME_TRANSITIONS_METRIC,
        Counter,
        "Game status transitions, by the status entered.",
        &["to"],
    ),
    spec(
        crate::cache::PUBLISH_FAILURES_METRIC,
        Counter,
        "Failed tries to announce a cache change to other replicas (each note is tried again until sent, for up to ten minutes).",
        &[],
    ),
    spec(
        crate::cache::coherence::BUS_CONNECTED_METRIC,
        Gauge,
        "1 when the cache change bus is connected, 0 while it reconnects.",
        &[],
    ),
    spec(
        DB_POOL_CONNECTIONS,
        Gauge,
        "Postgres pool connections, by state (idle, in_use).",
        &["state"],
    ),
    spec(
        DB_POOL_MAX_CONNECTIONS,
        Gauge,
        "The Postgres pool's size limit (GALAXY_DATABASE_MAX_CONNECTIONS).",
        &[],
    ),
    spec(
        BUILD_INFO,
        Gauge,
        "Always 1; the labels say which build runs.",
        &["version", "features"],
    ),
    spec(
        process::CPU_SECONDS,
        Counter,
        "CPU time the process used, user and system, in seconds.",
        &[],
    ),
    spec(
        process::RESIDENT_MEMORY,
        Gauge,
        "Resident memory of the process in bytes.",
        &[],
    ),
    spec(
        process::VIRTUAL_MEMORY,
        Gauge,
        "Virtual memory of the process in bytes.",
        &[],
    ),
    spec(
        process::OPEN_FDS,
        Gauge,
        "Open file descriptors of the process.",
        &[],
    ),
    spec(
        process::MAX_FDS,
        Gauge,
        "The process's limit of open file descriptors.",
        &[],
    ),
    spec(process::THREADS, Gauge, "Threads of the process.", &[]),
    spec(
        process::START_TIME,
        Gauge,
        "When the process started, in seconds since the Unix epoch.",
        &[],
    ),
];

/// Histogram buckets (seconds) for request and call latencies: 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram buckets (seconds) for turns and container operations: 10 ms to 10 min.
pub const SLOW_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Registers every metric's HELP text with the installed recorder and sets the build
/// info; called once when the Prometheus recorder is installed.
pub fn describe() {
    for m in METRICS {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "features" => enabled_features(),
    )
    .set(1.0);
}

/// This build's Cargo features, comma-separated.
fn enabled_features() -> String {
    let on: Vec<&str> = crate::config::features::FEATURES
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    on.join(",")
}

/// The most records counted per status on each refresh, so that a huge history cannot
/// make the refresh unbounded (the gauge then reads this bound).
const MAX_COUNTED: usize = 10_000;

/// Refreshes the gauges read from the stores: engines by status, unhealthy engines, the
/// oldest pending mail's age. Failures are logged and leave the gauges as they were.
pub async fn refresh_store_gauges(
    records: &dyn RuntimeRecordStore,
    mail: &dyn MailStore,
    clock: &dyn Clock,
) {
    for status in RuntimeStatus::ALL {
        if status == RuntimeStatus::Removed {
            continue;
        }
        let mut count = 0usize;
        let mut unhealthy = 0usize;
        let mut page = PageRequest::first(200).ok();
        while let Some(request) = page.take() {
            match records.list_records(Some(status), &request).await {
                Ok(found) => {
                    count += found.items.len();
                    unhealthy += found.items.iter().filter(|r| !r.healthy).count();
                    if count < MAX_COUNTED {
                        page = found
                            .next_after
                            .and_then(|after| PageRequest::after(200, after).ok());
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "counting engines for metrics failed");
                    return;
                }
            }
        }
        // Counts far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(ENGINES, "status" => status.as_str()).set(count as f64);
        if status == RuntimeStatus::Running {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(ENGINES_UNHEALTHY).set(unhealthy as f64);
        }
    }
    let oldest = match PageRequest::first(1) {
        Ok(first) => mail.list_mail(Some(MailStatus::Pending), &first).await,
        Err(_) => return,
    };
    match oldest {
        Ok(page) => {
            let age = page.items.first().map_or(Duration::ZERO, |m| {
                (clock.now() - m.created_at).to_std().unwrap_or_default()
            });
            metrics::gauge!(MAIL_OLDEST_PENDING_AGE).set(age.as_secs_f64());
        }
        Err(error) => tracing::warn!(%error, "reading the oldest pending mail failed"),
    }
}

/// The store-backed gauges' inputs, shared by the metrics loop.
#[derive(Clone)]
pub struct StoreGauges {
    /// Runtime records (engines by status).
    pub records: Arc<dyn RuntimeRecordStore>,
    /// The outbox (oldest pending mail).
    pub mail: Arc<dyn MailStore>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

impl StoreGauges {
    /// See [`refresh_store_gauges`].
    pub async fn refresh(&self) {
        refresh_store_gauges(
            self.records.as_ref(),
            self.mail.as_ref(),
            self.clock.as_ref(),
        )
        .await;
    }
}

/// Runs `work` on a current-thread runtime with a recorder of its own (so tests running
/// at once do not count into each other) and returns what it recorded, in the Prometheus
/// text format.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn recorded(work: impl std::future::Future<Output = ()>) -> String {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(work));
    handle.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        let mut seen = std::collections::BTreeSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(
                m.name.starts_with("galaxy_") || m.name.starts_with("process_"),
                "{}: no galaxy_ prefix",
                m.name
            );
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                m.name
            );
            if m.kind == Kind::Histogram {
                assert!(
                    m.name.ends_with("_seconds") || m.name.ends_with("_bytes"),
                    "{}: a histogram names its unit",
                    m.name
                );
            }
            assert!(m.help.ends_with('.') && m.help.len() > 20, "{}", m.name);
            for label in m.labels {
                assert!(
                    !label.ends_with("id") && !["email", "user", "game", "path"].contains(label),
                    "{}: label {label} is unbounded",
                    m.name
                );
            }
        }
    }
}
