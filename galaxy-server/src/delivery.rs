//! Delivery wiring: the SMTP mailer chosen from `GALAXY_SMTP_URL`, the one push service
//! (the `PushPublisher` of the notification worker and the source of the gRPC
//! `SubscribePush` streams), the notification worker, and the push listener's part of
//! start-up and shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "smtp")]
use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::ports::{
    Clock, MailStore, NotificationStore, PushLog, SecretGenerator, UserStore,
};
use galaxy_core::service::push::{PushConfig, PushService};
use galaxy_core::worker::notification::{
    NotificationWorker, NotificationWorkerConfig, NotificationWorkerPorts,
};
#[cfg(feature = "grpc-push")]
use galaxy_push_grpc::PushGrpcServer;
#[cfg(feature = "smtp")]
use galaxy_smtp::{SmtpMailer, SmtpMailerConfig, SmtpUrl};
#[cfg(feature = "smtp")]
use secrecy::ExposeSecret as _;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[cfg(feature = "smtp")]
use crate::adapters::{Adapters, ReadinessCheck};
use crate::config::Config;
use crate::error::AppError;
use crate::schedule::ScheduledWorker;

/// Gauge: gateways subscribed to push events.
pub const PUSH_SUBSCRIBERS_METRIC: &str = "galaxy_push_subscribers";
/// Gauge: push events queued for subscribers and not yet taken by their streams.
pub const PUSH_QUEUED_METRIC: &str = "galaxy_push_queued_events";
/// Counter: subscriptions dropped because their gateway did not keep up.
pub const PUSH_LAGGED_METRIC: &str = "galaxy_push_lagged_total";

/// How often the shutdown flush looks at what is still queued.
const PUSH_POLL: Duration = Duration::from_millis(20);
/// How often the push gauges are refreshed.
const PUSH_METRICS_INTERVAL: Duration = Duration::from_secs(15);

fn setting(variable: &'static str, reason: impl ToString) -> AppError {
    AppError::Setting {
        variable,
        reason: reason.to_string(),
    }
}

/// `adapters` with mail sent through `GALAXY_SMTP_URL` when it is set (the pooled
/// mailer is closed with QUIT at the end of shutdown, after the mail worker stopped);
/// unchanged otherwise. Only the redacted URL is logged.
#[cfg(feature = "smtp")]
pub fn with_smtp(config: &Config, mut adapters: Adapters) -> Result<Adapters, AppError> {
    let Some(mailer) = smtp_mailer(config)? else {
        return Ok(adapters);
    };
    let mailer = Arc::new(mailer);
    adapters.mailer = mailer.clone();
    adapters.readiness_checks.push(Arc::new(SmtpClose(mailer)));
    Ok(adapters)
}

/// The SMTP mailer `GALAXY_SMTP_URL` names (with `GALAXY_SMTP_TIMEOUT` and
/// `GALAXY_SMTP_POOL_SIZE`), `None` when it is unset; no connection is made yet. Only
/// the redacted URL is logged.
#[cfg(feature = "smtp")]
pub fn smtp_mailer(config: &Config) -> Result<Option<SmtpMailer>, AppError> {
    let Some(url) = &config.smtp_url else {
        return Ok(None);
    };
    let url = SmtpUrl::parse(url.expose_secret()).map_err(|e| setting("GALAXY_SMTP_URL", e))?;
    let redacted = url.redacted();
    let mut smtp = SmtpMailerConfig::new(url, config.mail_from.clone());
    smtp.timeout = config.smtp_timeout;
    smtp.pool_max_size = config.smtp_pool_size;
    let mailer = SmtpMailer::new(smtp).map_err(|e| setting("GALAXY_SMTP_URL", e))?;
    tracing::info!(url = %redacted, timeout = ?config.smtp_timeout, "mail is sent through SMTP");
    if let Some(warning) = private_sender(&config.mail_from) {
        tracing::warn!("{warning}");
    }
    Ok(Some(mailer))
}

/// Why mail from `mail_from` (`GALAXY_MAIL_FROM`) would not be taken for real when it
/// leaves through a relay, or `None`: a sender whose domain is not a public one
/// (`localhost`, the default; a name without a dot; `.local`, `.localhost`, `.internal`)
/// cannot pass SPF, DKIM or DMARC, so receivers refuse it or file it as spam, login codes
/// included. A warning, not an error: a test relay takes anything.
#[cfg(feature = "smtp")]
pub fn private_sender(mail_from: &str) -> Option<String> {
    // An unreadable sender is refused at start-up already (`GALAXY_MAIL_FROM`).
    let domain = galaxy_smtp::sender_domain(mail_from).ok()?;
    let domain = domain.to_ascii_lowercase();
    let private = !domain.contains('.')
        || [".local", ".localhost", ".internal"]
            .iter()
            .any(|suffix| domain.ends_with(suffix));
    private.then(|| {
        format!(
            "GALAXY_MAIL_FROM {mail_from:?} is not of a public domain, so receivers refuse \
             its mail or file it as spam (no SPF, DKIM or DMARC can pass), login codes \
             included: set an address of a domain this relay sends for"
        )
    })
}

/// Closes the SMTP pool at the end of shutdown. Readiness does not depend on the relay:
/// the outbox keeps mail while it is down.
#[cfg(feature = "smtp")]
struct SmtpClose(Arc<SmtpMailer>);

#[cfg(feature = "smtp")]
#[async_trait]
impl ReadinessCheck for SmtpClose {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn check(&self) -> Result<(), String> {
        Ok(())
    }

    async fn close(&self) {
        self.0.shutdown().await;
    }
}

/// The mail worker's claim lease: longer than a whole batch of sends that each run to
/// the SMTP deadline, so a stalling relay cannot let a claim expire mid-batch and another
/// pass send the same mail again (the worker also starts no send past half the lease:
/// `MailWorkerConfig::lease`). Never below the worker's default of two minutes.
pub fn mail_lease(config: &Config) -> Result<TimeDelta, AppError> {
    let batch = config.mail_batch.saturating_add(1);
    let worst = config.smtp_timeout.saturating_mul(batch);
    let lease = TimeDelta::from_std(worst.max(Duration::from_secs(120)))
        .map_err(|e| setting("GALAXY_SMTP_TIMEOUT", e))?;
    Ok(lease)
}

/// The push service on `log`, sized by the `GALAXY_PUSH_*` settings.
pub(crate) fn push_service(
    config: &Config,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn SecretGenerator>,
    log: Arc<dyn PushLog>,
) -> Result<Arc<PushService>, AppError> {
    let push = PushConfig {
        ring_capacity: config.push_ring_capacity,
        freshness_window: TimeDelta::from_std(config.push_window)
            .map_err(|e| setting("GALAXY_PUSH_WINDOW", e))?,
        subscriber_buffer: config.push_subscriber_buffer,
    };
    Ok(Arc::new(PushService::new(clock, secrets, push, log)))
}

/// The stores and services the notification worker dispatches between.
pub(crate) struct NotificationSources {
    /// Intents and routes.
    pub(crate) store: Arc<dyn NotificationStore>,
    /// Recipients.
    pub(crate) users: Arc<dyn UserStore>,
    /// The outbox e-mail routes go into.
    pub(crate) mail: Arc<dyn MailStore>,
    /// Time.
    pub(crate) clock: Arc<dyn Clock>,
    /// Ids and jitter.
    pub(crate) secrets: Arc<dyn SecretGenerator>,
    /// The mails' templates ([`crate::Adapters::templates`]).
    pub(crate) templates: Arc<galaxy_core::service::templates::MailTemplates>,
    /// Orders by e-mail, when on: the game mails carry the orders address.
    pub(crate) orders_by_mail: Option<Arc<galaxy_core::service::mail_in::MailInService>>,
}

/// The notification worker, publishing push routes to `push`, run every
/// `GALAXY_NOTIFICATION_INTERVAL` when idle and stopped by `cancel`.
pub(crate) fn notification_worker(
    config: &Config,
    sources: NotificationSources,
    push: Arc<PushService>,
    cancel: CancellationToken,
) -> ScheduledWorker {
    let ports = NotificationWorkerPorts {
        store: Arc::new(crate::metering::decorators::MeteredNotifications(
            sources.store,
        )),
        users: sources.users,
        mail: sources.mail,
        push,
        clock: sources.clock,
        secrets: sources.secrets,
    };
    let mut worker = NotificationWorker::new(ports, NotificationWorkerConfig::default())
        .with_templates(sources.templates)
        .with_cancellation(cancel);
    if let Some(service) = sources.orders_by_mail {
        worker = worker.with_orders_by_mail(service);
    }
    ScheduledWorker {
        worker: Arc::new(worker),
        interval: config.notification_interval,
    }
}

/// The running push listener.
pub(crate) struct PushListener {
    /// The events' source, to see what is still queued.
    push: Arc<PushService>,
    /// Stops accepting and ends every stream with `UNAVAILABLE`.
    stop: CancellationToken,
    /// The tonic server.
    handle: JoinHandle<()>,
}

/// Serves `SubscribePush` on `listener` when there is one and an internal token to check
/// (without a token every call would be refused, so no listener runs; that is logged).
#[cfg(feature = "grpc-push")]
pub(crate) fn spawn_push_listener(
    tracker: &TaskTracker,
    listener: Option<TcpListener>,
    push: &Arc<PushService>,
    token: Option<&SecretString>,
    root: &CancellationToken,
) -> Option<PushListener> {
    let Some(token) = token else {
        tracing::info!("GALAXY_INTERNAL_TOKEN is unset: no push gRPC listener");
        return None;
    };
    let listener = listener?;
    let stop = root.child_token();
    // The streams end on `stop` itself, not only once the serve task has run its
    // shutdown: a task aborted at the end of the flush's bound would leave them open.
    let server = PushGrpcServer::new(push.clone(), token.clone()).with_shutdown(stop.clone());
    let until = stop.clone();
    let handle = tracker.spawn(async move {
        if let Err(error) = server.serve(listener, until.cancelled_owned()).await {
            tracing::error!(%error, "push gRPC listener failed");
        }
    });
    Some(PushListener {
        push: push.clone(),
        stop,
        handle,
    })
}

/// A build without the `grpc-push` feature has no push listener (in-process subscribers
/// of [`crate::App::push`] still get every event).
#[cfg(not(feature = "grpc-push"))]
pub(crate) fn spawn_push_listener(
    _tracker: &TaskTracker,
    _listener: Option<TcpListener>,
    _push: &Arc<PushService>,
    token: Option<&SecretString>,
    _root: &CancellationToken,
) -> Option<PushListener> {
    if token.is_some() {
        tracing::info!("this build lacks the `grpc-push` feature: no push gRPC listener");
    }
    None
}

impl PushListener {
    /// Shutdown's "flush push events" step: waits (within `bound`) until the streams have
    /// taken every queued event, then stops accepting, ends every stream with
    /// `UNAVAILABLE` and waits for the server to return; aborts it when time runs out.
    /// Returns whether everything finished in time.
    pub(crate) async fn flush_and_stop(self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while self.push.queued() > 0 && Instant::now() < deadline {
            tokio::time::sleep(PUSH_POLL).await;
        }
        let flushed = self.push.queued() == 0;
        self.stop.cancel();
        // The streams end on `stop` itself, even if the serve task is aborted below.
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut handle = self.handle;
        let stopped = tokio::time::timeout(remaining, &mut handle).await.is_ok();
        if !stopped {
            handle.abort();
        }
        if flushed && stopped {
            tracing::info!("push events flushed; push listener stopped");
        } else {
            tracing::warn!(
                ?bound,
                queued = self.push.queued(),
                "push flush did not finish in time; streams aborted"
            );
        }
        flushed && stopped
    }
}

/// Refreshes the push gauges until `cancel` fires.
pub(crate) async fn push_metrics_loop(push: Arc<PushService>, cancel: CancellationToken) {
    loop {
        // Precision loss above 2^53 is not a concern for either.
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!(PUSH_SUBSCRIBERS_METRIC).set(push.subscriber_count() as f64);
            metrics::gauge!(PUSH_QUEUED_METRIC).set(push.queued() as f64);
        }
        metrics::counter!(PUSH_LAGGED_METRIC).absolute(push.lagged_total());
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(PUSH_METRICS_INTERVAL) => {}
        }
    }
}

#[cfg(all(test, feature = "smtp"))]
mod tests {
    use super::private_sender;

    #[test]
    fn a_sender_without_a_public_domain_is_named() {
        for private in [
            "Galaxy <galaxy@localhost>",
            "Galaxy <galaxy@Localhost>",
            "galaxy@mailhost",
            "Galaxy <galaxy@box.local>",
            "galaxy@GALAXY.LOCALHOST",
            "x@corp.internal",
        ] {
            let warning = private_sender(private);
            assert!(
                warning.as_deref().is_some_and(|w| w.contains(private)),
                "{private}: {warning:?}"
            );
        }
        for public in ["Galaxy <galaxy@example.org>", "turns@pbem.games.example"] {
            assert_eq!(private_sender(public), None, "{public}");
        }
    }
}
