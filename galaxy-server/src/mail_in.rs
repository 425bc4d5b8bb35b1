//! Wiring of orders by e-mail: the service (when `GALAXY_MAIL_DOMAIN` is set), its
//! worker, and the inbound-mail gauge.

use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::mail_in::InboundOutcome;
use galaxy_core::ports::{ApplicationStore, InboundMailStore, OrdersDesk, UserStore};
use galaxy_core::service::mail_in::{MailInConfig, MailInPorts, MailInService, MailInWorker};
use tokio_util::sync::CancellationToken;

use crate::adapters::Adapters;
use crate::config::Config;
use crate::schedule::ScheduledWorker;

/// `galaxy_mail_in_total{outcome}`: processed inbound messages by how they ended
/// (`answered`, `answered_silently`, `refused`, `dropped`), read from the store, so every
/// replica reports the same.
pub const MAIL_IN_METRIC: &str = "galaxy_mail_in_total";
/// `galaxy_mail_in_waiting`: stored inbound messages not processed yet.
pub const MAIL_IN_WAITING_METRIC: &str = "galaxy_mail_in_waiting";

/// What the service is built on besides the adapters.
pub(crate) struct MailInSources {
    /// Players (through the user cache).
    pub users: Arc<dyn UserStore>,
    /// Who plays where (through the game cache).
    pub applications: Arc<dyn ApplicationStore>,
    /// The runtime, where the orders go.
    pub desk: Arc<dyn OrdersDesk>,
}

/// The service, when orders by e-mail is on.
pub(crate) fn service(
    config: &Config,
    adapters: &Adapters,
    sources: MailInSources,
) -> Option<Arc<MailInService>> {
    let domain = config.mail_in.domain.clone()?;
    let mut settings = MailInConfig::new(domain);
    settings.max_message_bytes = config.mail_in.max_bytes;
    settings.replies = RateLimit {
        max: config.mail_in.replies_per_hour,
        window: TimeDelta::hours(1),
    };
    Some(Arc::new(MailInService::new(
        MailInPorts {
            store: adapters.mail_in.clone(),
            users: sources.users,
            applications: sources.applications,
            mail: adapters.mail.clone(),
            desk: sources.desk,
            clock: adapters.clock.clone(),
            secrets: adapters.secrets.clone(),
        },
        settings,
    )))
}

/// The mail-in worker, run every `GALAXY_INBOUND_INTERVAL` when idle.
pub(crate) fn worker(
    config: &Config,
    service: &MailInService,
    cancel: CancellationToken,
) -> ScheduledWorker {
    ScheduledWorker {
        worker: Arc::new(MailInWorker::new(service).with_cancellation(cancel)),
        interval: config.mail_in.interval,
    }
}

/// Sets `galaxy_mail_in_total{outcome}` from the store's counts (drops are counted
/// here, as the issue asks: every outcome is one label).
pub(crate) async fn record_metrics(store: &dyn InboundMailStore) {
    match store.count_inbound().await {
        Ok(counts) => {
            let count = |outcome: Option<InboundOutcome>| {
                counts
                    .iter()
                    .find(|(o, _)| *o == outcome)
                    .map_or(0, |(_, n)| *n)
            };
            // Precision loss above 2^53 messages is not a concern.
            #[allow(clippy::cast_precision_loss)]
            let waiting = count(None) as f64;
            metrics::gauge!(MAIL_IN_WAITING_METRIC).set(waiting);
            for outcome in InboundOutcome::ALL {
                metrics::counter!(MAIL_IN_METRIC, "outcome" => outcome.as_str())
                    .absolute(count(Some(outcome)));
            }
        }
        Err(error) => tracing::warn!(%error, "inbound mail counts unavailable"),
    }
}
