//! Background loops that watch the app rather than serve it: the readiness probe (database
//! ping for `/readyz`), the queue-depth gauges, and the metrics listener's router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use galaxy_core::domain::mail::MailStatus;
use galaxy_core::ports::MailStore;
use galaxy_core::service::geo::GeoService;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::adapters::ReadinessCheck;
use crate::state::Readiness;

/// How often the readiness checks run.
pub const READINESS_INTERVAL: Duration = Duration::from_secs(5);

/// How often queue depths are read and the recorder's histograms compacted.
pub const METRICS_INTERVAL: Duration = Duration::from_secs(15);

/// The gauge of mails per outbox status.
pub const MAIL_QUEUE_DEPTH_METRIC: &str = "galaxy_mail_queue_depth";

/// The gauge of (user, country) pairs counted in memory and not yet written.
pub const GEO_PENDING_METRIC: &str = "galaxy_geo_pending_pairs";

/// The counter of requests not counted because the pending geo pairs were at their bound.
pub const GEO_DROPPED_METRIC: &str = "galaxy_geo_dropped_total";

/// The metrics listener's router: `GET /metrics` in the Prometheus text format.
pub fn metrics_router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// Runs every check once and records the outcome; returns whether all passed.
pub async fn check_readiness(checks: &[Arc<dyn ReadinessCheck>], readiness: &Readiness) -> bool {
    let mut ok = true;
    for check in checks {
        if let Err(reason) = check.check().await {
            tracing::warn!(check = check.name(), %reason, "readiness check failed");
            ok = false;
        }
    }
    if ok != readiness.store_reachable() {
        tracing::info!(ready = ok, "readiness checks changed");
    }
    readiness.set_store_reachable(ok);
    ok
}

/// Re-runs the readiness checks every [`READINESS_INTERVAL`] until `cancel` fires.
pub async fn readiness_loop(
    checks: Vec<Arc<dyn ReadinessCheck>>,
    readiness: Arc<Readiness>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(READINESS_INTERVAL) => {}
        }
        check_readiness(&checks, &readiness).await;
    }
}

/// The stores the metrics loop reads its gauges from.
pub struct MetricSources {
    /// The outbox (`galaxy_mail_queue_depth{status}`).
    pub mail: Arc<dyn MailStore>,
    /// Inbound mail (`galaxy_mail_in_total{outcome}`), when orders by e-mail is on.
    pub mail_in: Option<Arc<dyn galaxy_core::ports::InboundMailStore>>,
}

/// Refreshes `galaxy_mail_queue_depth{status}`, the inbound mail counts, the geo gauges,
/// the store-backed gauges of the game loop and the process figures, and compacts the
/// recorder's histograms every [`METRICS_INTERVAL`] until `cancel` fires.
pub async fn metrics_loop(
    sources: MetricSources,
    geo: Arc<GeoService>,
    gauges: crate::metering::StoreGauges,
    handle: PrometheusHandle,
    cancel: CancellationToken,
) {
    loop {
        gauges.refresh().await;
        crate::metering::process::record();
        // Precision loss above 2^53 is not a concern for either.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(GEO_PENDING_METRIC).set(geo.pending() as f64);
        metrics::counter!(GEO_DROPPED_METRIC).absolute(geo.dropped());
        crate::metering::decorators::register_alerted_series();
        if let Some(store) = &sources.mail_in {
            crate::mail_in::record_metrics(store.as_ref()).await;
        }
        match sources.mail.mail_queue_depth().await {
            Ok(counts) => {
                // Every status of the queue is set, so one that emptied reads 0 rather
                // than its last non-zero value (sent mail is history, not queue).
                let queued = MailStatus::ALL
                    .into_iter()
                    .filter(|s| *s != MailStatus::Sent);
                for status in queued {
                    let count = counts
                        .iter()
                        .find(|(s, _)| *s == status)
                        .map_or(0, |(_, n)| *n);
                    // Precision loss above 2^53 mails is not a concern.
                    #[allow(clippy::cast_precision_loss)]
                    let depth = count as f64;
                    metrics::gauge!(MAIL_QUEUE_DEPTH_METRIC, "status" => status.as_str())
                        .set(depth);
                }
            }
            Err(error) => tracing::warn!(%error, "reading mail queue depth failed"),
        }
        // Without the exporter's own HTTP listener, histograms are only compacted when
        // someone calls this.
        handle.run_upkeep();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(METRICS_INTERVAL) => {}
        }
    }
}
