//! The outside world the app is built on: every port as a trait object, chosen once by
//! whoever composes the app (the `galaxy-server` binary, a test, an embedding service).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use galaxy_core::ports::{
    ApplicationStore, ChallengeStore, ChangeBus, Clock, GameStore, GeoCounterStore, GeoLocator,
    HealthEventStore, MailStore, Mailer, NotificationStore, OrdersStore, PushLog, RaceNameStore,
    RuntimeJobStore, RuntimeRecordStore, SecretGenerator, SessionStore, TurnArchiveStore,
    UserStore,
};
use galaxy_geoip::UnknownLocator;
use galaxy_ports::memory::{InMemoryStores, MemoryChangeBus, MemoryPushLog};
use galaxy_ports::system::{OsSecretGenerator, SystemClock};

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

/// Every port the app needs. Build one with [`Adapters::in_memory`] or
/// [`Adapters::postgres`], then replace any field (struct update syntax) to plug in your
/// own adapter.
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
    /// The mail outbox.
    pub mail: Arc<dyn MailStore>,
    /// Notification intents and routes.
    pub notifications: Arc<dyn NotificationStore>,
    /// Per-user country counters.
    pub geo_counters: Arc<dyn GeoCounterStore>,
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
            mail: stores.mail,
            notifications: stores.notifications,
            geo_counters: stores.geo,
            mailer,
            geo: Arc::new(UnknownLocator),
            clock: Arc::new(SystemClock),
            secrets: Arc::new(OsSecretGenerator),
            readiness_checks: Vec::new(),
            changes: Arc::new(MemoryChangeBus::new()),
            push_log: Arc::new(MemoryPushLog::new()),
        }
    }

    /// Every store on one Postgres pool (already migrated: see
    /// [`galaxy_postgres::PgStore::open`]), with a readiness check that pings it. The
    /// change bus is the single-process one: with several replicas, set `changes` to a
    /// [`galaxy_postgres::PgChangeBus`] (see [`Adapters::with_postgres_changes`]).
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
            mail: store.clone(),
            notifications: store.clone(),
            geo_counters: store.clone(),
            mailer,
            geo: Arc::new(UnknownLocator),
            clock: Arc::new(SystemClock),
            secrets: Arc::new(OsSecretGenerator),
            readiness_checks: vec![Arc::new(PostgresPing(store))],
            changes: Arc::new(MemoryChangeBus::new()),
            push_log: Arc::new(MemoryPushLog::new()),
        }
    }
}

impl Adapters {
    /// Replaces the change bus with one on `store`'s database (`LISTEN/NOTIFY`), so
    /// several processes on that database keep their caches coherent. The bus holds
    /// one connection of the pool while it runs.
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

/// Pings Postgres by taking a connection from the pool (which tests it before handing
/// it out).
struct PostgresPing(Arc<galaxy_postgres::PgStore>);

#[async_trait]
impl ReadinessCheck for PostgresPing {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn check(&self) -> Result<(), String> {
        self.0
            .pool()
            .acquire()
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    async fn close(&self) {
        // Waits for connections in use to come back, then closes them all.
        self.0.pool().close().await;
    }
}
