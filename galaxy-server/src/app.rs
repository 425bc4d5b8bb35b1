//! Composition: from a [`Config`] and a set of [`Adapters`] to a running app.
//!
//! [`App::build`] follows the start order of SPEC section 7 from the point where the
//! adapters exist (configuration, telemetry, the database pool and its migrations come
//! before it, in the binary or the embedding program): the GeoIP database (if any) ->
//! services in dependency order -> every cache warmed -> router -> workers.
//! [`App::serve`](crate::lifecycle) then starts the listeners and workers and, on
//! shutdown, stops them in reverse.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::TimeDelta;
use galaxy_core::domain::auth::CodeKey;
use galaxy_core::domain::retry::RetryPolicy;
use galaxy_core::ports::{GeoLocator, MailStore, SessionRevoker, UserStore};
use galaxy_core::service::auth::{AuthConfig, AuthPorts, AuthService, RateLimit};
use galaxy_core::service::geo::{GeoConfig, GeoFlusher, GeoService};
use galaxy_core::service::lobby::{LobbyConfig, LobbyPorts, LobbyService, LobbySweeper};
use galaxy_core::service::mail::MailAdminService;
use galaxy_core::service::notification::NotificationService;
use galaxy_core::service::push::PushService;
use galaxy_core::service::user::UserService;
use galaxy_core::worker::mail::{MailWorker, MailWorkerConfig};
use galaxy_core::worker::retention::{RetentionConfig, RetentionSweeper};
#[cfg(feature = "geoip")]
use galaxy_geoip::DatabaseReloader;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::adapters::{Adapters, ReadinessCheck};
use crate::cache::coherence::{self, Caches};
use crate::cache::{GameCache, SessionCache, UserCache};
use crate::config::Config;
use crate::delivery::{self, NotificationSources};
pub use crate::error::AppError;
#[cfg(feature = "geoip")]
use crate::geo;
use crate::geo::CountryUpdates;
use crate::http::{self, HttpLimits};
use crate::monitor;
use crate::schedule::ScheduledWorker;
use crate::state::{AppState, Readiness};
use crate::telemetry::{self, Telemetry};

/// Room the orders route leaves beyond `GALAXY_MAX_ORDERS_BYTES` for the request's
/// envelope (`{"turn": ..., "orders": ...}` and JSON escaping of text orders).
const ORDERS_ENVELOPE_BYTES: usize = 64 * 1024;

/// The cancellation tokens of the process: one root, one child per component group, so
/// shutdown can stop the groups one after another (see [`crate::lifecycle`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tokens {
    /// Asks for shutdown (like the shutdown future passed to `serve`); cancels nothing
    /// by itself, so the groups still stop in order.
    pub(crate) stop: CancellationToken,
    /// Cancels everything (the last step of shutdown).
    pub(crate) root: CancellationToken,
    /// Stops accepting HTTP connections and starts the drain.
    pub(crate) http: CancellationToken,
    /// Tells workers to stop after their current item.
    pub(crate) workers: CancellationToken,
    /// Stops the metrics listener and the monitoring loops.
    pub(crate) monitors: CancellationToken,
}

impl Tokens {
    fn new() -> Self {
        let root = CancellationToken::new();
        Self {
            http: root.child_token(),
            workers: root.child_token(),
            monitors: root.child_token(),
            root,
            stop: CancellationToken::new(),
        }
    }
}

/// The whole app, built and not yet serving.
pub struct App {
    /// Timeouts and addresses the lifecycle needs.
    pub(crate) config: Config,
    /// What handlers reach (kept for embedding code and tests).
    pub(crate) state: AppState,
    /// The API, state applied.
    pub(crate) router: Router,
    /// Mail worker, lobby sweeper, geo flusher, notification worker and, with a GeoIP
    /// database, its reloader.
    pub(crate) workers: Vec<ScheduledWorker>,
    /// The runtime's events listener and engine processes, stopped after the workers.
    pub(crate) runtime: crate::runtime::RuntimeTasks,
    /// The outbox, for the queue-depth gauges.
    pub(crate) mail: Arc<dyn MailStore>,
    /// The inbound mail, for its gauges, when orders by e-mail is on.
    pub(crate) mail_in_store: Option<Arc<dyn galaxy_core::ports::InboundMailStore>>,
    /// The stores the loop's gauges read (engines by status, the oldest pending mail).
    pub(crate) store_gauges: crate::metering::StoreGauges,
    /// The one push service: the notification worker publishes to it, the gRPC
    /// listener streams from it.
    pub(crate) push: Arc<PushService>,
    /// Re-run periodically for `/readyz`.
    pub(crate) readiness_checks: Vec<Arc<dyn ReadinessCheck>>,
    /// The Prometheus recorder, when a metrics listener is configured.
    pub(crate) metrics: Option<PrometheusHandle>,
    /// Flushed last on shutdown, when the app owns it.
    pub(crate) telemetry: Option<Telemetry>,
    /// Root and per-group cancellation.
    pub(crate) tokens: Tokens,
    /// Applies the other replicas' cache notes; stops with the root token.
    pub(crate) coherence: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("http_addr", &self.config.http_addr)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

fn delta(variable: &'static str, value: Duration) -> Result<TimeDelta, AppError> {
    TimeDelta::from_std(value).map_err(|e| AppError::Setting {
        variable,
        reason: e.to_string(),
    })
}

fn auth_config(config: &Config, code_key: CodeKey) -> Result<AuthConfig, AppError> {
    Ok(AuthConfig {
        code_digits: config.login_code_digits,
        code_ttl: delta("GALAXY_LOGIN_CODE_TTL", config.login_code_ttl)?,
        max_attempts: config.login_max_attempts,
        session_ttl: delta("GALAXY_SESSION_TTL", config.session_ttl)?,
        per_email: RateLimit {
            max: config.rate_limit_email.count,
            window: delta("GALAXY_RATE_LIMIT_EMAIL", config.rate_limit_email.window)?,
        },
        per_ip: RateLimit {
            max: config.rate_limit_ip.count,
            window: delta("GALAXY_RATE_LIMIT_IP", config.rate_limit_ip.window)?,
        },
        live_per_email: config.login_max_unused_codes,
        code_key: Some(code_key),
        failed_per_email: RateLimit {
            max: config.rate_limit_wrong_codes.count,
            window: delta(
                "GALAXY_RATE_LIMIT_WRONG_CODES",
                config.rate_limit_wrong_codes.window,
            )?,
        },
        bootstrap_admins: config
            .bootstrap_admins
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
    })
}

fn mail_worker_config(config: &Config) -> Result<MailWorkerConfig, AppError> {
    let retry = RetryPolicy::new(
        delta("GALAXY_MAIL_BACKOFF_INITIAL", config.mail_backoff_initial)?,
        delta("GALAXY_MAIL_BACKOFF_MAX", config.mail_backoff_max)?,
        config.mail_max_attempts,
    )
    .map_err(|e| AppError::Setting {
        variable: "GALAXY_MAIL_BACKOFF_MAX",
        reason: e.to_string(),
    })?;
    Ok(MailWorkerConfig {
        batch_size: config.mail_batch,
        retry,
        lease: delivery::mail_lease(config)?,
    })
}

/// The locator: the MaxMind database of `GALAXY_GEOIP_DB` with its reloader when it is
/// set, else the adapters' own.
#[cfg(feature = "geoip")]
async fn geoip(
    config: &Config,
    adapters: &Adapters,
) -> Result<(Arc<dyn GeoLocator>, Option<ScheduledWorker>), AppError> {
    Ok(match &config.geoip_db {
        Some(path) => {
            let database = geo::open_database(path).await?;
            let reloader = ScheduledWorker {
                worker: Arc::new(DatabaseReloader::new(database.clone())),
                interval: config.geoip_reload_interval,
            };
            (database as Arc<dyn GeoLocator>, Some(reloader))
        }
        None => (adapters.geo.clone(), None),
    })
}

/// Without the `geoip` feature there is no database to open: a `GALAXY_GEOIP_DB` (set on
/// a [`Config`] built in code, the environment's is refused earlier) stops start-up.
#[cfg(not(feature = "geoip"))]
async fn geoip(
    config: &Config,
    adapters: &Adapters,
) -> Result<(Arc<dyn GeoLocator>, Option<ScheduledWorker>), AppError> {
    match &config.geoip_db {
        Some(_) => Err(AppError::FeatureDisabled {
            variable: "GALAXY_GEOIP_DB",
            feature: "geoip",
        }),
        None => Ok((adapters.geo.clone(), None)),
    }
}

impl App {
    /// Builds the app on `adapters`: services, warm caches, router, workers. The
    /// database (if any) must already be migrated; nothing listens yet. With
    /// `GALAXY_GEOIP_DB` set, that database is opened (a missing or corrupt file is
    /// [`AppError::GeoIp`]) and replaces `adapters.geo`.
    pub async fn build(config: Config, adapters: Adapters) -> Result<Self, AppError> {
        let clock = adapters.clock.clone();
        let secrets = adapters.secrets.clone();
        let tokens = Tokens::new();
        // What this build starts (the cache-coherence follower, the runtime's tasks) stops
        // again if a later step fails: an embedder that gets the error keeps running, and
        // must not keep a follower of the change bus it has no app for.
        let stop_on_failure = tokens.root.clone().drop_guard();
        // The metrics recorder before anything runs: a gauge set before it exists (the
        // cache bus's "connected", set once as its task starts) goes nowhere.
        let metrics = match config.metrics_addr {
            Some(_) => Some(telemetry::prometheus_handle()?),
            None => None,
        };

        // The login-code secret before anything starts: one too short is refused before
        // it is recorded, and a replica holding another one than the others of this
        // database must not serve (the engine secret is compared where the runtime is
        // built, when it runs engines).
        let login_keys = crate::secrets::agreed_login_keys(
            &config,
            secrets.as_ref(),
            adapters.keys.as_ref(),
            clock.now(),
        )
        .await?;

        // Then the GeoIP database: a bad file stops start-up before anything is warmed.
        let (locator, geoip_reloader) = geoip(&config, &adapters).await?;

        // The push service before the services whose notifications it carries, its ring
        // filled from the log (a gateway may come from another replica with its cursor).
        let push = delivery::push_service(
            &config,
            clock.clone(),
            secrets.clone(),
            adapters.push_log.clone(),
        )?;
        push.catch_up()
            .await
            .map_err(|source| AppError::PushLog { source })?;

        // Caches wrap the stores before any service sees them; each announces its
        // writes to the other replicas on the change bus.
        let bus = adapters.changes.clone();
        let sessions = Arc::new(SessionCache::new(adapters.sessions.clone()).with_bus(bus.clone()));
        let users = Arc::new(UserCache::new(adapters.users.clone()).with_bus(bus.clone()));
        let games = Arc::new(
            GameCache::new(adapters.games.clone(), adapters.applications.clone())
                .with_bus(bus.clone()),
        );
        // Following the other replicas starts before warming: a note arriving meanwhile
        // bumps the cache's epoch, so warming cannot store a row it made stale.
        let coherence = tokio::spawn(coherence::follow(
            Caches::new(&sessions, &users, &games),
            bus.subscribe(),
            config.cache_degraded_ttl,
            tokens.root.child_token(),
        ));

        // Services, in dependency order: auth (users, sessions, mail) -> user (auth as
        // its session revoker) -> notification -> lobby (notifier) -> mail admin.
        let auth = Arc::new(
            AuthService::new(
                AuthPorts {
                    users: users.clone(),
                    challenges: adapters.challenges.clone(),
                    sessions: sessions.clone(),
                    mail: adapters.mail.clone(),
                    clock: clock.clone(),
                    secrets: secrets.clone(),
                },
                auth_config(&config, login_keys.code)?,
            )
            .map_err(|e| AppError::Setting {
                variable: "GALAXY_LOGIN_CODE_DIGITS",
                reason: e.to_string(),
            })?
            .with_templates(adapters.templates.clone()),
        );
        let revoker: Arc<dyn SessionRevoker> = auth.clone();
        let user_service = Arc::new(UserService::new(users.clone(), revoker, clock.clone()));
        let notifications = Arc::new(NotificationService::new(
            adapters.notifications.clone(),
            users.clone(),
            clock.clone(),
            secrets.clone(),
        ));
        // The runtime before the lobby: its registry names the engines a game may use.
        let runtime = crate::runtime::build(
            &config,
            &adapters,
            crate::runtime::SharedPorts {
                games: games.clone(),
                applications: games.clone(),
                users: users.clone(),
                notifier: notifications.clone(),
            },
            tokens.workers.clone(),
        )
        .await?;
        let lobby = LobbyService::new(
            LobbyPorts {
                games: games.clone(),
                applications: games.clone(),
                race_names: adapters.race_names.clone(),
                users: users.clone(),
                jobs: adapters.runtime_jobs.clone(),
                notifier: notifications.clone(),
                clock: clock.clone(),
                ids: secrets.clone(),
            },
            LobbyConfig {
                race_name_ttl: delta("GALAXY_RACE_NAME_TTL", config.race_name_ttl)?,
                min_turn_period: delta("GALAXY_MIN_TURN_PERIOD", config.min_turn_period)?,
                max_hosted_games: config.max_hosted_games,
                engines: runtime.engines.clone(),
                ..LobbyConfig::default()
            },
        );
        let mail_admin = Arc::new(MailAdminService::new(adapters.mail.clone(), clock.clone()));
        let geo = Arc::new(GeoService::new(
            locator,
            adapters.geo_counters.clone(),
            clock.clone(),
            GeoConfig::default(),
        ));
        // Through the user cache, so the next request sees the new country.
        let user_store: Arc<dyn UserStore> = users.clone();
        let countries = Arc::new(CountryUpdates::new(user_store, clock.clone()));

        // Warm every cache; /readyz says ready only after this.
        let readiness = Arc::new(Readiness::default());
        let warmed = (
            sessions.warm(clock.now()).await?,
            users.warm().await?,
            games.warm().await?,
        );
        tracing::info!(
            sessions = warmed.0,
            users = warmed.1,
            games = warmed.2,
            "caches warm"
        );
        monitor::check_readiness(&adapters.readiness_checks, &readiness).await;
        readiness.set_caches_warm();

        let mail_in = crate::mail_in::service(
            &config,
            &adapters,
            crate::mail_in::MailInSources {
                users: users.clone(),
                desk: runtime.service.clone(),
                key: login_keys.orders,
            },
        );
        let state = AppState {
            auth,
            users: user_service,
            lobby: Arc::new(lobby.clone()),
            runtime: runtime.service.clone(),
            mail_admin,
            notifications,
            mail_in: mail_in.clone(),
            geo: geo.clone(),
            countries,
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            internal_token: config.internal_token.clone().map(Arc::new),
            readiness,
            clock: clock.clone(),
        };
        let limits = HttpLimits {
            body_limit: config.http_body_limit,
            orders_body_limit: config
                .runtime
                .max_orders_bytes
                .saturating_add(ORDERS_ENVELOPE_BYTES)
                .max(config.http_body_limit),
            // A message one byte over the bound still reaches the service, which refuses
            // it as `message_too_large` (what `galaxy-cli mail-in` turns into exit 65).
            mail_in_body_limit: config
                .mail_in
                .max_bytes
                .saturating_add(1)
                .max(config.http_body_limit),
            request_timeout: config.http_request_timeout,
            streams_per_user: config.http_streams_per_user,
            streams_total: (config.http_max_connections / 2).max(1),
            stream_mark_every: crate::http::STREAM_MARK_EVERY,
        };
        let router = http::router(state.clone(), limits);
        // The web pages on the same port, clients of the same state (issue 16).
        #[cfg(feature = "web")]
        let router = router.merge(crate::web::router(
            state.clone(),
            Some(push.clone()),
            limits,
            tokens.http.clone(),
        ));

        let notification_worker = delivery::notification_worker(
            &config,
            NotificationSources {
                store: adapters.notifications.clone(),
                users: users.clone(),
                mail: adapters.mail.clone(),
                clock: clock.clone(),
                secrets: secrets.clone(),
                templates: adapters.templates.clone(),
                orders_by_mail: mail_in.clone(),
            },
            push.clone(),
            tokens.workers.clone(),
        );
        let mail_worker = MailWorker::new(
            Arc::new(crate::metering::decorators::MeteredMail(
                adapters.mail.clone(),
            )),
            Arc::new(crate::metering::decorators::MeteredMailer(
                adapters.mailer.clone(),
            )),
            clock,
            secrets,
            mail_worker_config(&config)?,
        )
        .with_cancellation(tokens.workers.clone());
        let mut workers = vec![
            ScheduledWorker {
                worker: Arc::new(mail_worker),
                interval: config.mail_interval,
            },
            ScheduledWorker {
                worker: Arc::new(LobbySweeper::new(lobby)),
                interval: config.sweeper_interval,
            },
            ScheduledWorker {
                worker: Arc::new(
                    RetentionSweeper::new(
                        adapters.challenges.clone(),
                        adapters.mail.clone(),
                        adapters.clock.clone(),
                        RetentionConfig {
                            challenges: delta(
                                "GALAXY_RETAIN_CHALLENGES",
                                config.retain_challenges,
                            )?,
                            sent_mail: delta("GALAXY_RETAIN_SENT_MAIL", config.retain_sent_mail)?,
                            dead_mail: delta("GALAXY_RETAIN_DEAD_MAIL", config.retain_dead_mail)?,
                        },
                    )
                    .with_push_log(
                        adapters.push_log.clone(),
                        delta("GALAXY_PUSH_WINDOW", config.push_window)?,
                        config.push_ring_capacity.get(),
                    )
                    .with_inbound_mail(
                        adapters.mail_in.clone(),
                        delta("GALAXY_RETAIN_INBOUND_MAIL", config.retain_inbound_mail)?,
                    )
                    .with_notifications(
                        adapters.notifications.clone(),
                        delta("GALAXY_RETAIN_NOTIFICATIONS", config.retain_notifications)?,
                    )
                    .with_sessions(
                        sessions.clone(),
                        delta("GALAXY_RETAIN_SESSIONS", config.retain_sessions)?,
                    ),
                ),
                interval: config.sweeper_interval,
            },
            ScheduledWorker {
                worker: Arc::new(GeoFlusher::new(geo)),
                interval: config.geo_flush_interval,
            },
        ];
        workers.push(notification_worker);
        if let Some(service) = &mail_in {
            workers.push(crate::mail_in::worker(
                &config,
                service,
                tokens.workers.clone(),
            ));
        }
        workers.extend(geoip_reloader);
        workers.extend(runtime.workers);
        stop_on_failure.disarm();
        Ok(Self {
            config,
            state,
            router,
            workers,
            runtime: runtime.tasks,
            store_gauges: crate::metering::StoreGauges {
                records: adapters.runtime_records.clone(),
                mail: adapters.mail.clone(),
                clock: adapters.clock.clone(),
            },
            mail: adapters.mail,
            mail_in_store: mail_in.as_ref().map(|_| adapters.mail_in.clone()),
            push,
            readiness_checks: adapters.readiness_checks,
            metrics,
            telemetry: None,
            tokens,
            coherence,
        })
    }

    /// The API router, for in-process use (`tower::ServiceExt::oneshot` in tests, or
    /// nesting under another router). Serving it this way runs no workers.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The handler state (services, readiness).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The configuration the app was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The push service (subscriber counts, the latest cursor, in-process subscriptions).
    pub fn push(&self) -> &Arc<PushService> {
        &self.push
    }

    /// Adds an embedding program's own routes to the API listener. Like any axum
    /// merge, it panics if a route overlaps one of the API's.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.router = self.router.merge(routes);
        self
    }

    /// Hands the process's telemetry to the app, so shutdown flushes it as its last
    /// step.
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// A token that, cancelled, shuts the app down exactly as the shutdown future of
    /// [`App::serve`] would (in order, bounded).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.tokens.stop.clone()
    }
}
