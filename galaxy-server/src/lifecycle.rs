//! Serving and stopping: [`App::serve`] runs the listeners and workers until a shutdown
//! signal, then stops them in the reverse of the start order (SPEC section 7):
//!
//! 1. `/readyz` starts answering 503 (load balancers stop sending traffic);
//! 2. the HTTP listener stops accepting, and in-flight requests finish (bounded by
//!    `GALAXY_HTTP_SHUTDOWN_TIMEOUT`);
//! 3. workers finish the item in hand (bounded by `GALAXY_WORKER_SHUTDOWN_TIMEOUT`); mail
//!    claimed but not yet attempted goes back to `pending` for the next process; then the
//!    process runtime's engines are stopped (same bound);
//!    then push events are flushed: connected gateways get what is queued for them (the
//!    notification worker's last publications included), then the push listener stops
//!    accepting and every stream ends with `UNAVAILABLE` (bounded by
//!    `GALAXY_PUSH_SHUTDOWN_TIMEOUT`);
//! 4. the geo counters still in memory are written (bounded by
//!    `GALAXY_GEO_SHUTDOWN_TIMEOUT`), after HTTP so that no request counts behind it;
//! 5. the metrics listener and monitoring loops stop;
//! 6. the database pool is closed;
//! 7. telemetry is flushed (queued spans exported).
//!
//! Every step is bounded by the smaller of its own timeout and what remains of
//! `GALAXY_SHUTDOWN_TIMEOUT`; a step that runs out of time has its tasks aborted and the
//! next step starts. Nothing here binds a socket: listeners come in bound, so tests can
//! bind port 0 and the binary can bind before it logs "listening".

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::config::Config;
use crate::delivery;
use crate::error::AppError;
use crate::monitor;

/// The bound sockets the app serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The HTTP API.
    http: TcpListener,
    /// `GET /metrics`, if wanted.
    metrics: Option<TcpListener>,
    /// gRPC `SubscribePush`, if wanted (served only with `GALAXY_INTERNAL_TOKEN` set).
    grpc: Option<TcpListener>,
    /// The inbound SMTP listener of orders by e-mail, if wanted (served only with
    /// `GALAXY_MAIL_DOMAIN` set).
    smtp_in: Option<TcpListener>,
}

impl Listeners {
    /// Serves the API on `http`, without a metrics listener.
    pub fn new(http: TcpListener) -> Self {
        Self {
            http,
            metrics: None,
            grpc: None,
            smtp_in: None,
        }
    }

    /// Also serves inbound SMTP (orders by e-mail) on `smtp` (when the app has
    /// `GALAXY_MAIL_DOMAIN`).
    #[cfg(feature = "smtp-in")]
    pub fn with_smtp_in(mut self, smtp: TcpListener) -> Self {
        self.smtp_in = Some(smtp);
        self
    }

    /// The address of the inbound SMTP listener, if any.
    pub fn smtp_in_addr(&self) -> Option<SocketAddr> {
        self.smtp_in.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Also serves gRPC push on `grpc` (when the app has an internal token).
    #[cfg(feature = "grpc-push")]
    pub fn with_grpc(mut self, grpc: TcpListener) -> Self {
        self.grpc = Some(grpc);
        self
    }

    /// The address of the gRPC push listener, if any.
    #[cfg(feature = "grpc-push")]
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Also serves `GET /metrics` on `metrics`.
    pub fn with_metrics(mut self, metrics: TcpListener) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Takes std listeners (switched to non-blocking mode here).
    pub fn from_std(
        http: std::net::TcpListener,
        metrics: Option<std::net::TcpListener>,
    ) -> Result<Self, AppError> {
        let convert = |listener: std::net::TcpListener| {
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        };
        let io = |source| AppError::Io {
            what: "adopting a std listener".to_owned(),
            source,
        };
        Ok(Self {
            http: convert(http).map_err(io)?,
            metrics: metrics.map(convert).transpose().map_err(io)?,
            grpc: None,
            smtp_in: None,
        })
    }

    /// Binds `GALAXY_HTTP_ADDR` and, if set, `GALAXY_METRICS_ADDR`.
    pub async fn bind(config: &Config) -> Result<Self, AppError> {
        let bind = |variable: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| AppError::Io {
                    what: format!("cannot listen on {variable}={addr}"),
                    source,
                })
        };
        let http = bind("GALAXY_HTTP_ADDR", config.http_addr).await?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some(bind("GALAXY_METRICS_ADDR", addr).await?),
            None => None,
        };
        // No token, no push listener: every call would be refused. No `grpc-push`
        // feature, no push listener either.
        let grpc = match config.internal_token {
            Some(_) if !cfg!(feature = "grpc-push") => None,
            Some(_) => Some(bind("GALAXY_GRPC_ADDR", config.grpc_addr).await?),
            None => None,
        };
        let smtp_in = match config.mail_in.smtp_addr {
            Some(_) if !cfg!(feature = "smtp-in") => None,
            Some(addr) => Some(bind("GALAXY_INBOUND_SMTP_ADDR", addr).await?),
            None => None,
        };
        Ok(Self {
            http,
            metrics,
            grpc,
            smtp_in,
        })
    }

    /// The address the API listens on (useful after binding port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    /// The address of the metrics listener, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// How each shutdown step went: `true` means it finished within its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// In-flight HTTP requests completed.
    pub http_drained: bool,
    /// Workers finished their current item and stopped.
    pub workers_stopped: bool,
    /// Queued push events reached their gateways and the push listener stopped.
    pub push_flushed: bool,
    /// Every geo counter and queued country was written.
    pub geo_drained: bool,
    /// The metrics listener and monitoring loops stopped.
    pub monitors_stopped: bool,
    /// The database pool (and any other closable dependency) closed.
    pub dependencies_closed: bool,
    /// Telemetry was flushed.
    pub telemetry_flushed: bool,
}

impl ShutdownReport {
    /// Whether every step finished in time.
    pub fn is_clean(&self) -> bool {
        self.http_drained
            && self.workers_stopped
            && self.push_flushed
            && self.geo_drained
            && self.monitors_stopped
            && self.dependencies_closed
            && self.telemetry_flushed
    }
}

/// A group of tasks stopped together.
struct Group {
    /// For logs.
    name: &'static str,
    /// The tasks, awaited (or aborted) on stop.
    handles: Vec<JoinHandle<()>>,
}

impl Group {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            handles: Vec::new(),
        }
    }

    /// Waits for every task for at most `bound`, then aborts the stragglers. Returns
    /// whether all finished by themselves.
    async fn stop(mut self, bound: Duration) -> bool {
        let started = Instant::now();
        let all = async {
            for handle in &mut self.handles {
                let _ = handle.await;
            }
        };
        let finished = tokio::time::timeout(bound, all).await.is_ok();
        if finished {
            tracing::info!(group = self.name, elapsed = ?started.elapsed(), "stopped");
        } else {
            tracing::warn!(group = self.name, ?bound, "did not stop in time; aborting");
            for handle in &self.handles {
                handle.abort();
            }
        }
        finished
    }
}

/// Connections the metrics listener keeps open at once (scrapers are few).
const METRICS_MAX_CONNECTIONS: usize = 64;

/// Serves one router on one listener until `stop` fires, then drains its connections.
fn spawn_listener(
    tracker: &TaskTracker,
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
    name: &'static str,
    max_connections: usize,
) -> JoinHandle<()> {
    tracker.spawn(crate::listener::serve(
        listener,
        router,
        stop,
        name,
        max_connections,
    ))
}

impl App {
    /// Starts the inbound SMTP listener on `listener`, stopped with the HTTP group.
    #[cfg(feature = "smtp-in")]
    fn spawn_smtp_in(
        &self,
        tracker: &TaskTracker,
        listener: Option<TcpListener>,
        tokens: &crate::app::Tokens,
    ) -> Result<Option<JoinHandle<()>>, AppError> {
        let (Some(listener), Some(service)) = (listener, self.state.mail_in.clone()) else {
            return Ok(None);
        };
        let settings = &self.config.mail_in;
        let tls =
            match (&settings.smtp_tls_cert, &settings.smtp_tls_key) {
                (Some(cert), Some(key)) => Some(galaxy_smtp_in::load_tls(cert, key).map_err(
                    |e| AppError::Setting {
                        variable: "GALAXY_INBOUND_SMTP_TLS_CERT",
                        reason: e.to_string(),
                    },
                )?),
                _ => None,
            };
        let config = galaxy_smtp_in::SmtpInConfig {
            hostname: service.config().domain.clone(),
            max_message_bytes: settings.max_bytes,
            max_connections: settings.smtp_max_connections,
            client_connections: settings.smtp_client_connections,
            rate_count: settings.smtp_rate_limit.count,
            rate_window: settings.smtp_rate_limit.window,
            timeout: settings.smtp_timeout,
            session_limit: settings.smtp_session_limit,
            tls,
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, starttls = config.tls.is_some(), "inbound SMTP listening");
        }
        Ok(Some(tracker.spawn(galaxy_smtp_in::serve(
            listener,
            service,
            config,
            tokens.http.clone(),
        ))))
    }

    /// Without the `smtp-in` feature there is no listener to start.
    #[cfg(not(feature = "smtp-in"))]
    fn spawn_smtp_in(
        &self,
        _tracker: &TaskTracker,
        _listener: Option<TcpListener>,
        _tokens: &crate::app::Tokens,
    ) -> Result<Option<JoinHandle<()>>, AppError> {
        Ok(None)
    }

    /// Serves on `listeners` and runs the workers until `shutdown` completes (or
    /// [`App::shutdown_token`] is cancelled), then stops everything in order (see the
    /// [module docs](self)). Fails only if the metrics recorder cannot be installed.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<ShutdownReport, AppError> {
        let tokens = self.tokens.clone();
        let tracker = TaskTracker::new();
        let (mut http, mut workers, mut monitors) = (
            Group::new("http"),
            Group::new("workers"),
            Group::new("monitors"),
        );

        // First, before anything serves: its certificate is read here, and one that
        // cannot be read must stop the start before `/readyz` has said ready.
        let http_addr = listeners.http_addr();
        if let Some(handle) = self.spawn_smtp_in(&tracker, listeners.smtp_in, &tokens)? {
            http.handles.push(handle);
        }
        if let Some(addr) = http_addr {
            tracing::info!(%addr, "HTTP API listening");
        }
        http.handles.push(spawn_listener(
            &tracker,
            listeners.http,
            self.router.clone(),
            tokens.http.clone(),
            "http",
            self.config.http_max_connections,
        ));
        if let Some(listener) = listeners.metrics {
            let handle = match &self.metrics {
                Some(handle) => handle.clone(),
                None => crate::telemetry::prometheus_handle()?,
            };
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "metrics listening");
            }
            monitors.handles.push(spawn_listener(
                &tracker,
                listener,
                monitor::metrics_router(handle.clone()),
                tokens.monitors.clone(),
                "metrics",
                METRICS_MAX_CONNECTIONS,
            ));
            let (mail, geo) = (self.mail.clone(), self.state.geo.clone());
            let stop = tokens.monitors.clone();
            let mail_in = self.mail_in_store.clone();
            monitors.handles.push(tracker.spawn(monitor::metrics_loop(
                monitor::MetricSources { mail, mail_in },
                geo,
                self.store_gauges.clone(),
                handle,
                stop,
            )));
            monitors
                .handles
                .push(tracker.spawn(delivery::push_metrics_loop(
                    self.push.clone(),
                    tokens.monitors.clone(),
                )));
        }
        if !self.readiness_checks.is_empty() {
            monitors.handles.push(tracker.spawn(monitor::readiness_loop(
                self.readiness_checks.clone(),
                self.state.readiness.clone(),
                tokens.monitors.clone(),
            )));
        }
        let countries = self.state.countries.clone();
        let stop = tokens.workers.clone();
        workers
            .handles
            .push(tracker.spawn(async move { countries.run(stop).await }));
        for scheduled in &self.workers {
            let worker = scheduled.worker.clone();
            let (interval, stop) = (scheduled.interval, tokens.workers.clone());
            workers.handles.push(tracker.spawn(async move {
                galaxy_core::worker::run_every(worker.as_ref(), interval, stop).await;
            }));
        }
        let events = self.runtime.spawn(&tracker, tokens.workers.clone());
        workers.handles.extend(events);

        // Other replicas' push events, until the very end: gateways get them during the
        // flush too.
        tracker.spawn(
            self.push
                .clone()
                .follow(self.config.push_poll_interval, tokens.root.child_token()),
        );
        let push = delivery::spawn_push_listener(
            &tracker,
            listeners.grpc,
            &self.push,
            self.config.internal_token.as_ref(),
            &tokens.root,
        );

        tokio::select! {
            () = shutdown => tracing::info!("shutdown requested"),
            () = tokens.stop.cancelled() => tracing::info!("shutdown requested"),
        }
        Ok(self
            .stop(tokens, tracker, http, workers, push, monitors)
            .await)
    }

    /// The shutdown sequence proper.
    async fn stop(
        mut self,
        tokens: crate::app::Tokens,
        tracker: TaskTracker,
        http: Group,
        workers: Group,
        push: Option<delivery::PushListener>,
        monitors: Group,
    ) -> ShutdownReport {
        let config = &self.config;
        let deadline = Instant::now() + config.shutdown_timeout;
        let remaining = || deadline.saturating_duration_since(Instant::now());

        self.state.readiness.set_draining();
        // The listener keeps serving while load balancers notice the 503 and turn away.
        tokio::time::sleep(config.http_drain_delay.min(remaining())).await;
        tokens.http.cancel();
        let http_drained = http
            .stop(config.http_shutdown_timeout.min(remaining()))
            .await;
        tokens.workers.cancel();
        let workers_stopped = workers
            .stop(config.worker_shutdown_timeout.min(remaining()))
            .await;
        // The process runtime's engines after the workers, so no start launches one behind.
        let engines_stopped = self
            .runtime
            .stop_engines(config.worker_shutdown_timeout.min(remaining()))
            .await;
        let workers_stopped = workers_stopped && engines_stopped;
        let push_flushed = match push {
            Some(push) => {
                push.flush_and_stop(config.push_shutdown_timeout.min(remaining()))
                    .await
            }
            None => true,
        };
        let geo_drained = self
            .drain_geo(config.geo_shutdown_timeout.min(remaining()))
            .await;
        tokens.monitors.cancel();
        let monitors_stopped = monitors.stop(remaining()).await;
        tokens.root.cancel();
        // Cancelled with the root: the caches no longer need the other replicas' notes.
        let _ = tokio::time::timeout(remaining(), &mut self.coherence).await;
        tracker.close();
        // Aborted tasks end at their next await point; give them what time is left.
        let _ = tokio::time::timeout(remaining(), tracker.wait()).await;
        let close_all = async {
            for dependency in &self.readiness_checks {
                dependency.close().await;
            }
        };
        let dependencies_closed = tokio::time::timeout(remaining(), close_all).await.is_ok();
        if !dependencies_closed {
            tracing::warn!("closing the database pool did not finish in time");
        }
        tracing::info!("stopped; flushing telemetry");
        let telemetry_flushed = match self.telemetry {
            Some(telemetry) => telemetry.shutdown(remaining()).await,
            None => true,
        };
        ShutdownReport {
            http_drained,
            workers_stopped,
            push_flushed,
            geo_drained,
            monitors_stopped,
            dependencies_closed,
            telemetry_flushed,
        }
    }
}

impl App {
    /// Writes the countries still queued and the geo counters still in memory, within
    /// `bound`. Runs after HTTP has drained and the flusher has stopped, so nothing is
    /// counted behind it and no flush runs beside it.
    async fn drain_geo(&self, bound: Duration) -> bool {
        let (geo, countries) = (&self.state.geo, &self.state.countries);
        let drain = async {
            countries.write_queued().await;
            geo.drain().await
        };
        match tokio::time::timeout(bound, drain).await {
            Ok(Ok(written)) => {
                tracing::info!(written, "geo counters drained");
                true
            }
            // The service logged the error and what is left.
            Ok(Err(_)) => false,
            Err(_) => {
                tracing::warn!(
                    ?bound,
                    pending = geo.pending(),
                    "geo drain did not finish in time"
                );
                false
            }
        }
    }
}

/// Completes on SIGTERM or SIGINT (ctrl-c). The handlers are installed when this is
/// called, not when the future is first polled, so a signal arriving while the app is
/// still starting is not lost (nor does it kill the process with the default action).
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, AppError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|source| AppError::Io {
                what: format!("cannot install the {name} handler"),
                source,
            })
        };
        let mut term = install(SignalKind::terminate(), "SIGTERM")?;
        let mut int = install(SignalKind::interrupt(), "SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("ctrl-c received");
            }
        })
    }
}
