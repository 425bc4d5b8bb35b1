//! The outside world the app is built on: every port as a trait object, chosen once by
//! whoever composes the app (the `galaxy-server` binary, a test, an embedding service).
//!
//! Every port is pluggable. Stores, mailer, geo, clock and secrets are always set (the
//! constructors fill them with built-in adapters). The container runtime and the engine
//! client are optional: left `None`, [`crate::App::build`] picks the built-in one the
//! configuration names (`GALAXY_RUNTIME` = `docker`, `process` or `none`; the HTTP engine
//! client bounded by `GALAXY_MAX_ORDERS_BYTES` and `GALAXY_MAX_REPORT_BYTES`), because
//! only the configuration knows how to build them. Mail templates are a value,
//! [`MailTemplates`], the built-in set unless replaced.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use galaxy_core::ports::{
    ApplicationStore, ChallengeStore, ChangeBus, Clock, ContainerRuntime, EngineClient, GameStore,
    GeoCounterStore, GeoLocator, HealthEventStore, InboundMailStore, KeyRegistry, MailStore,
    Mailer, NotificationStore, OrdersStore, PbemStore, PushLog, RaceNameStore, RuntimeJobStore,
    RuntimeRecordStore, SecretGenerator, SessionStore, TurnArchiveStore, UserStore,
};
use galaxy_core::service::runtime::EngineRegistry;
use galaxy_core::service::templates::MailTemplates;
use galaxy_ports::memory::{InMemoryStores, MemoryChangeBus, MemoryPushLog};
use galaxy_ports::system::{OsSecretGenerator, SystemClock};

use crate::geo::UnknownLocator;

/// A dependency `/readyz` checks periodically (a database ping, say), and that is
/// closed at the end of shutdown.
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// Short name for logs (`postgres`).
    fn name(&self) -> &'static str;
    /// `Err` with a reason when the dependency does not answer.
    async fn check(&self) -> Result<(), String>;
    /// Releases the dependency (closes the pool), once every listener and worker has
    /// stopped. Nothing by default.
    async fn close(&self) {}
}

/// A container runtime the composing program brings (a Kubernetes or Nomad runtime, a
/// decorator of a built-in one, engines as in-process tasks), with the engines it can run.
#[derive(Clone)]
pub struct PluggedRuntime {
    /// Creates, starts, stops and watches the engines.
    pub containers: Arc<dyn ContainerRuntime>,
    /// Engine name -> what this runtime receives as `ContainerSpec::engine` (an image, a
    /// command, a name of its own). `None` reads `GALAXY_ENGINES`, the list the Docker
    /// runtime uses, so a runtime of images needs no list of its own.
    pub engines: Option<EngineRegistry>,
}

impl fmt::Debug for PluggedRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluggedRuntime")
            .field("engines", &self.engines)
            .finish_non_exhaustive()
    }
}

/// Every port the app needs. Build one with [`Adapters::in_memory`] or
/// [`Adapters::postgres`], then replace any field (struct update syntax, or the `with_*`
/// methods) to plug in your own adapter.
#[derive(Clone)]
pub struct Adapters {
    /// Users.
    pub users: Arc<dyn UserStore>,
    /// Login challenges.
    pub challenges: Arc<dyn ChallengeStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Games (must share game rows with `applications`).
    pub games: Arc<dyn GameStore>,
    /// Applications.
    pub applications: Arc<dyn ApplicationStore>,
    /// The Race Name Directory.
    pub race_names: Arc<dyn RaceNameStore>,
    /// Runtime records.
    pub runtime_records: Arc<dyn RuntimeRecordStore>,
    /// Durable runtime jobs.
    pub runtime_jobs: Arc<dyn RuntimeJobStore>,
    /// Engine health events.
    pub health_events: Arc<dyn HealthEventStore>,
    /// The turn archive: every played turn's standings and every race's report, kept
    /// for the life of the game (reports are read from here, never from the engine).
    pub turn_archive: Arc<dyn TurnArchiveStore>,
    /// Every orders submission the engine answered.
    pub orders: Arc<dyn OrdersStore>,
    /// The play-by-email record (race records, seats, preferences, messages).
    pub pbem: Arc<dyn PbemStore>,
    /// The mail outbox.
    pub mail: Arc<dyn MailStore>,
    /// Notification intents and routes.
    pub notifications: Arc<dyn NotificationStore>,
    /// Orders by e-mail: inbound mail, orders addresses and reply budgets.
    pub mail_in: Arc<dyn InboundMailStore>,
    /// Per-user country counters.
    pub geo_counters: Arc<dyn GeoCounterStore>,
    /// Where the servers of one installation compare their secrets at start-up (see
    /// [`KeyRegistry`]): a server holding another login-code key or engine secret than
    /// the one recorded refuses to start. In memory for a process alone; on Postgres,
    /// shared by the replicas.
    pub keys: Arc<dyn KeyRegistry>,
    /// Where the mail worker sends mail.
    pub mailer: Arc<dyn Mailer>,
    /// The country of a client address, when `GALAXY_GEOIP_DB` is unset (with it set,
    /// [`crate::App::build`] opens that database instead).
    pub geo: Arc<dyn GeoLocator>,
    /// The only source of time.
    pub clock: Arc<dyn Clock>,
    /// Ids, codes, tokens and jitter.
    pub secrets: Arc<dyn SecretGenerator>,
    /// What `/readyz` checks besides warm caches (empty for in-memory stores).
    pub readiness_checks: Vec<Arc<dyn ReadinessCheck>>,
    /// How the caches hear what other server processes on the same store changed, and
    /// tell them their own changes. A process alone (dev mode, in-memory stores, or one
    /// replica) needs nothing more than the default, a bus with itself alone; replicas
    /// on one Postgres need [`galaxy_postgres::PgChangeBus`] (the binary wires it, see
    /// [`crate::database`]).
    pub changes: Arc<dyn ChangeBus>,
    /// Runs the engines. `None` (what the constructors set): the built-in runtime
    /// `GALAXY_RUNTIME` names, configured by the `GALAXY_ENGINE_*` and `GALAXY_DOCKER_*`
    /// settings. A plugged runtime owns its engines' lifecycle: one that must stop them
    /// when the server stops adds a [`ReadinessCheck`] whose `close` does it.
    pub runtime: Option<PluggedRuntime>,
    /// Calls the engines' HTTP contract (or whatever a plugged runtime's engines speak).
    /// `None`: the HTTP client, bounded by `GALAXY_MAX_ORDERS_BYTES` and
    /// `GALAXY_MAX_REPORT_BYTES`.
    pub engine_client: Option<Arc<dyn EngineClient>>,
    /// The notification mails' subjects and bodies by kind and locale: the built-in `en`
    /// and `de` set unless replaced (add a locale, reword a mail, or start from
    /// [`MailTemplates::empty`]).
    pub templates: Arc<MailTemplates>,
    /// The push event log the push service appends to and reads its replay ring from. A
    /// process alone needs only the default, in memory; replicas on one Postgres need
    /// [`galaxy_postgres::PgPushLog`], so a gateway's cursor means the same event on each
    /// (see [`Adapters::with_postgres_push_log`]).
    pub push_log: Arc<dyn PushLog>,
}

impl fmt::Debug for Adapters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checks: Vec<_> = self.readiness_checks.iter().map(|c| c.name()).collect();
        f.debug_struct("Adapters")
            .field("readiness_checks", &checks)
            .field("runtime", &self.runtime)
            .field("engine_client", &self.engine_client.is_some())
            .finish_non_exhaustive()
    }
}

impl Adapters {
    /// Every store in memory (state is lost on exit), the system clock, OS randomness,
    /// geo `unknown`, and `mailer`.
    pub fn in_memory(mailer: Arc<dyn Mailer>) -> Self {
        Self::from_stores(InMemoryStores::new(), mailer)
    }

    /// Every store from one [`InMemoryStores`] (so a test can keep a handle on them).
    pub fn from_stores(stores: InMemoryStores, mailer: Arc<dyn Mailer>) -> Self {
        Self {
            users: stores.users.clone(),
            challenges: stores.users.clone(),
            sessions: stores.users,
            games: stores.lobby.clone(),
            applications: stores.lobby.clone(),
            race_names: stores.lobby,
            runtime_records: stores.runtime.clone(),
            runtime_jobs: stores.runtime.clone(),
            health_events: stores.runtime,
            turn_archive: stores.play.clone(),
            orders: stores.play,
            pbem: stores.pbem,
            mail: stores.mail,
            notifications: stores.notifications,
            mail_in: stores.mail_in,
            geo_counters: stores.geo,
            keys: stores.keys,
            mailer,
            geo: Arc::new(UnknownLocator),
            clock: Arc::new(SystemClock),
            secrets: Arc::new(OsSecretGenerator),
            readiness_checks: Vec::new(),
            changes: Arc::new(MemoryChangeBus::new()),
            runtime: None,
            engine_client: None,
            templates: Arc::new(MailTemplates::builtin()),
            push_log: Arc::new(MemoryPushLog::new()),
        }
    }

    /// Every store on one Postgres pool (already migrated: see
    /// [`galaxy_postgres::PgStore::open`]), with a readiness check that pings it. The
    /// change bus is the single-process one: with several replicas, set `changes` to a
    /// [`galaxy_postgres::PgChangeBus`] (see [`Adapters::with_postgres_changes`]).
    #[cfg(feature = "postgres")]
    pub fn postgres(store: galaxy_postgres::PgStore, mailer: Arc<dyn Mailer>) -> Self {
        let store = Arc::new(store);
        Self {
            users: store.clone(),
            challenges: store.clone(),
            sessions: store.clone(),
            games: store.clone(),
            applications: store.clone(),
            race_names: store.clone(),
            runtime_records: store.clone(),
            runtime_jobs: store.clone(),
            health_events: store.clone(),
            turn_archive: store.clone(),
            orders: store.clone(),
            pbem: store.clone(),
            mail: store.clone(),
            notifications: store.clone(),
            mail_in: store.clone(),
            geo_counters: store.clone(),
            keys: store.clone(),
            mailer,
            geo: Arc::new(UnknownLocator),
            clock: Arc::new(SystemClock),
            secrets: Arc::new(OsSecretGenerator),
            readiness_checks: vec![Arc::new(PostgresPing(store))],
            changes: Arc::new(MemoryChangeBus::new()),
            runtime: None,
            engine_client: None,
            templates: Arc::new(MailTemplates::builtin()),
            push_log: Arc::new(MemoryPushLog::new()),
        }
    }
}

impl Adapters {
    /// Runs engines on `containers` instead of the built-in runtime of `GALAXY_RUNTIME`;
    /// `engines` names what it can run (`None`: the `GALAXY_ENGINES` list).
    pub fn with_container_runtime(
        mut self,
        containers: Arc<dyn ContainerRuntime>,
        engines: Option<EngineRegistry>,
    ) -> Self {
        self.runtime = Some(PluggedRuntime {
            containers,
            engines,
        });
        self
    }

    /// Calls engines through `client` instead of the built-in HTTP client.
    pub fn with_engine_client(mut self, client: Arc<dyn EngineClient>) -> Self {
        self.engine_client = Some(client);
        self
    }

    /// Renders notification mails from `templates` instead of the built-in set.
    pub fn with_templates(mut self, templates: MailTemplates) -> Self {
        self.templates = Arc::new(templates);
        self
    }

    /// Adds a dependency `/readyz` checks and shutdown closes (a plugged runtime that
    /// stops its engines in `close`, a pool of your own).
    pub fn with_readiness_check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.readiness_checks.push(check);
        self
    }

    /// Replaces the change bus with one on `store`'s database (`LISTEN/NOTIFY`), so
    /// several processes on that database keep their caches coherent. The bus holds
    /// one connection of the pool while it runs.
    #[cfg(feature = "postgres")]
    pub async fn with_postgres_changes(
        mut self,
        store: &galaxy_postgres::PgStore,
        heartbeat: std::time::Duration,
    ) -> Result<Self, galaxy_core::ports::StoreError> {
        let options = galaxy_postgres::ChangeBusOptions {
            heartbeat,
            ..galaxy_postgres::ChangeBusOptions::default()
        };
        self.changes =
            Arc::new(galaxy_postgres::PgChangeBus::start(store.pool().clone(), options).await?);
        Ok(self)
    }
}

#[cfg(feature = "postgres")]
impl Adapters {
    /// Replaces the push log with the one in `store`'s database, read by every replica on
    /// it (woken by `LISTEN/NOTIFY`, with the same heartbeat as the change bus). The log
    /// holds one connection of the pool for listening while it runs.
    pub async fn with_postgres_push_log(
        mut self,
        store: &galaxy_postgres::PgStore,
        heartbeat: std::time::Duration,
    ) -> Result<Self, galaxy_core::ports::StoreError> {
        let options = galaxy_postgres::PushLogOptions {
            heartbeat,
            ..galaxy_postgres::PushLogOptions::default()
        };
        self.push_log =
            Arc::new(galaxy_postgres::PgPushLog::start(store.pool().clone(), options).await?);
        Ok(self)
    }
}

#[cfg(feature = "postgres")]
/// Pings Postgres by taking a connection from the pool (which tests it before handing
/// it out).
struct PostgresPing(Arc<galaxy_postgres::PgStore>);

#[cfg(feature = "postgres")]
#[async_trait]
impl ReadinessCheck for PostgresPing {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn check(&self) -> Result<(), String> {
        // The pool's figures, refreshed with every readiness check (every few seconds).
        let pool = self.0.pool();
        let (size, idle) = (f64::from(pool.size()), pool.num_idle() as f64);
        let max = f64::from(pool.options().get_max_connections());
        metrics::gauge!(crate::metering::DB_POOL_CONNECTIONS, "state" => "idle").set(idle);
        metrics::gauge!(crate::metering::DB_POOL_CONNECTIONS, "state" => "in_use")
            .set((size - idle).max(0.0));
        metrics::gauge!(crate::metering::DB_POOL_MAX_CONNECTIONS).set(max);
        match self.0.ping().await {
            Ok(galaxy_postgres::Ping::Answered) => Ok(()),
            Ok(galaxy_postgres::Ping::Busy) => {
                tracing::info!("readiness: every database connection is busy; still ready");
                Ok(())
            }
            Err(error) => Err(error.to_string()),
        }
    }

    async fn close(&self) {
        // Waits for connections in use to come back, then closes them all.
        self.0.pool().close().await;
    }
}
