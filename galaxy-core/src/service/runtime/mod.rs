//! The runtime (SPEC section 3, runtime): engine containers, durable start and stop jobs,
//! the turn scheduler, and the health workers that watch running engines.
//!
//! - [`RuntimeService`]: admin actions (pause, resume, stop, force-next-turn, retry-start,
//!   records and health events) and the players' orders and reports, forwarded to the
//!   engine for the caller's own race only.
//! - [`StartWorker`]: the bounded pool that runs durable start, stop and restart jobs,
//!   each claimed as soon as a slot is free, so jobs never wait on each other. A start job
//!   creates the container (handing the engine its credential, see
//!   [`crate::domain::engine_auth`]), waits for the engine's `/healthz` (failing at once,
//!   with the exit code and the engine's last lines of output, if the engine exits for
//!   good first), checks that the engine refuses a call without its credential (unless
//!   the operator allowed that engine without), and then handles the result exactly as
//!   seed 001 says: bind, initialise, `starting -> running`; binding
//!   not storable -> stop the container first, then `start_failed` (orphan path); engine
//!   registration failed -> `paused` plus an admin notification; any other failure ->
//!   `start_failed`; a duplicate result finds the game no longer `starting` and does
//!   nothing. A restart job (queued by the [`InspectWorker`] when a running game's
//!   container is found `exited` or `dead`, e.g. after `docker kill`, which the restart
//!   policy ignores) starts the same container again, waits for `/healthz` and marks the
//!   record healthy; after `restart_attempts` failed tries it pauses the game and alerts
//!   the admins.
//! - [`TurnScheduler`]: claims due games under a lease and runs one turn each, with the
//!   expected turn number; a faulty engine pauses its game, never the worker.
//! - [`Reconciler`], [`HealthProbe`], [`InspectWorker`], [`EventsListener`]: compare the
//!   container runtime with the records, and turn what they see into stored health events,
//!   admin notifications and (when configured) paused games.
//!
//! Every worker implements [`crate::worker::Worker`], so tests drive it with `tick()`.
//! Every game status change is a compare-and-set: a lost one means another worker (or a
//! replayed job) already did it, and the loser does nothing more.

mod admin;
mod announce;
mod archive;
mod error;
mod events;
mod health;
mod inspect;
mod jobs;
mod lease;
mod mail_wait;
mod mailed;
mod orders;
pub use archive::MAX_CATCH_UP_TURNS;
pub use orders::{MAX_SUBMISSIONS_PER_TURN, MAX_VERDICT_ERRORS};
pub use restart::{CRASH_LOOP_RESTARTS, CRASH_LOOP_WINDOW};
mod pbem;
mod player;
mod ready;
mod reconciler;
mod registry;
mod restart;
mod shared;
mod start;
mod stop;
mod turns;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;

pub use admin::RuntimeService;
pub use error::RuntimeError;
pub use events::EventsListener;
pub use health::HealthProbe;
pub use inspect::InspectWorker;
pub use jobs::StartWorker;
pub use pbem::{MessageTo, MessageView, RaceView, SeatApplicationView};
pub use player::{GameProgress, MyGame, MyGamesFilter, MyGamesRole, OrdersReadBack, StatusReason};
pub use reconciler::{ReconcileReport, Reconciler};
pub use registry::{DEFAULT_REFERENCE_TARGET, EngineRegistry, RegistryError};
pub use turns::TurnScheduler;

use crate::domain::engine_auth::EngineTokenKey;
use crate::domain::game::EngineName;
use crate::domain::health::HealthEvent;
use crate::domain::limit::RateLimit;
use crate::ports::{
    ApplicationStore, Clock, ContainerRuntime, EngineClient, EngineLimits, GameStore,
    HealthEventStore, InboundMailStore, Notifier, OrdersStore, PbemStore, RuntimeJobStore,
    RuntimeRecordStore, SecretGenerator, TurnArchiveStore, UserStore,
};

/// The label every Galaxy container carries (`galaxy.backend=1`).
pub const BACKEND_LABEL: &str = "galaxy.backend";
/// The label naming the installation that owns a container (`galaxy.instance=<name>`):
/// several Galaxy installations (or test runs) may share one Docker daemon, and each
/// reconciler must only ever adopt or remove its own containers.
pub const INSTANCE_LABEL: &str = "galaxy.instance";
/// The label naming a container's game (`galaxy.game_id=<uuid>`).
pub const GAME_LABEL: &str = "galaxy.game_id";
/// An optional label through which a container runtime may tell the reconciler how to
/// reach an engine it did not create in this process (see [`Reconciler`]).
pub const ENDPOINT_LABEL: &str = "galaxy.engine_endpoint";

/// The name of a game's container: `galaxy-game-{game_id}`.
pub fn container_name(game_id: crate::domain::GameId) -> String {
    format!("galaxy-game-{game_id}")
}

/// The ports the runtime needs, wired once in composition.
#[derive(Clone)]
pub struct RuntimePorts {
    /// Games: the runtime moves them through `starting`, `running`, `paused`, ...
    pub games: Arc<dyn GameStore>,
    /// Applications: the approved ones are the races of a game.
    pub applications: Arc<dyn ApplicationStore>,
    /// Users: admins receive the runtime's alerts.
    pub users: Arc<dyn UserStore>,
    /// One runtime record per game.
    pub records: Arc<dyn RuntimeRecordStore>,
    /// Durable start, stop and restart jobs.
    pub jobs: Arc<dyn RuntimeJobStore>,
    /// Stored health events.
    pub health: Arc<dyn HealthEventStore>,
    /// The turn archive: every played turn's standings and reports.
    pub archive: Arc<dyn TurnArchiveStore>,
    /// Every orders submission the engine answered.
    pub orders: Arc<dyn OrdersStore>,
    /// The play-by-email record: who plays each race, missed turns, vacation, seats,
    /// preferences and messages.
    pub pbem: Arc<dyn PbemStore>,
    /// Runs the engine containers.
    pub containers: Arc<dyn ContainerRuntime>,
    /// Talks to the engines (SPEC section 9).
    pub engine: Arc<dyn EngineClient>,
    /// Raises notifications to players and admins.
    pub notifier: Arc<dyn Notifier>,
    /// The only source of time.
    pub clock: Arc<dyn Clock>,
    /// The only source of ids and lease tokens.
    pub ids: Arc<dyn SecretGenerator>,
    /// Inbound mail, when orders by e-mail is on (`None` when off): a scheduled turn
    /// waits up to [`RuntimeConfig::turn_mail_grace`] for the mail received before its
    /// deadline to be processed, so orders mailed just in time reach their turn.
    pub inbound: Option<Arc<dyn InboundMailStore>>,
}

/// How the runtime behaves; built once from configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// The engines the operator registered, by name.
    pub engines: EngineRegistry,
    /// This installation's name, stamped on its containers as [`INSTANCE_LABEL`]; the
    /// reconciler only looks at containers carrying it.
    pub instance: String,
    /// Jobs the [`StartWorker`] runs at once: the pool's bound.
    pub job_pool_size: u32,
    /// How long a claimed job is held. A running job renews it every third of this, so
    /// it need not cover the slowest start; it is how long the job of a server that died
    /// stays claimed before another worker takes it over.
    pub job_lease: TimeDelta,
    /// How long a start waits for the engine's first successful `/healthz` (less when
    /// the engine exits for good first).
    pub healthz_deadline: Duration,
    /// The pause between two `/healthz` polls while starting.
    pub healthz_poll_interval: Duration,
    /// When a start job finds its game still `enrollment_closed` (the lobby queues the job
    /// before its compare-and-set), it is put back for this long...
    pub start_requeue_delay: TimeDelta,
    /// ...until this long after it was queued; then it ends as a no-op, because the
    /// lobby's change never landed.
    pub start_wait_window: TimeDelta,
    /// How long a store failure puts a job back before it is tried again.
    pub job_retry_delay: TimeDelta,
    /// How long a stopping container may take before it is killed.
    pub stop_grace: Duration,
    /// Claims a restart job gets before it gives up and pauses the game (see
    /// [`StartWorker`]); the first claim counts.
    pub restart_attempts: u32,
    /// The pause before a failed restart is tried again, times the attempts so far.
    pub restart_backoff: TimeDelta,
    /// What each engine may consume (memory, CPU, processes), as far as the container
    /// runtime can enforce it.
    pub limits: EngineLimits,
    /// The installation's secret from which each game's engine credential derives (see
    /// [`crate::domain::engine_auth`]). Engines started under one key refuse a server
    /// holding another, so every replica, and every restart, must use the same one.
    pub engine_tokens: EngineTokenKey,
    /// Engines allowed to run although they do not check their credential. The start of
    /// any other engine checks that it refuses a call without `Authorization` (401), and
    /// fails when it does not: an engine anyone on the host could drive is refused unless
    /// the operator accepts that for it. Such engines still get the token and the header.
    pub engines_without_token: BTreeSet<EngineName>,
    /// Extra environment for every engine.
    pub engine_env: BTreeMap<String, String>,
    /// The `settings` of `POST /admin/init`.
    pub engine_settings: serde_json::Value,
    /// Due games one scheduler pass claims, less the games of earlier passes still
    /// waiting for a slot; also the page of owed turn announcements read at a time.
    pub turn_batch: u32,
    /// Turns one scheduler runs at once (due and early ones), across its passes: a turn
    /// runs in the background and holds its slot until it ends.
    pub turn_concurrency: usize,
    /// How long a claimed turn is held; must exceed `engine_call_timeout`.
    pub turn_lease: TimeDelta,
    /// How long a scheduled turn waits, past its deadline, for the inbound mail received
    /// before the deadline to be processed (orders by e-mail on): mailed orders are
    /// judged by when they arrived, and a turn begun before one was processed would
    /// refuse it as too late. Bounded, so a mail that keeps failing cannot hold a turn.
    pub turn_mail_grace: Duration,
    /// A last-resort bound on any engine call made by the runtime, on top of the engine
    /// client's own timeouts, so a hung engine can never wedge a worker.
    pub engine_call_timeout: Duration,
    /// The largest orders body (serialised JSON) forwarded to an engine.
    pub max_orders_bytes: usize,
    /// How many messages one player may send in one game per window.
    pub message_rate: RateLimit,
    /// The largest report (serialised JSON) archived; a larger one fails the turn.
    pub max_report_bytes: usize,
    /// Tries per report when archiving a turn (the first included) before the turn fails
    /// with a health event...
    pub report_attempts: u32,
    /// ...with this pause before the second try, doubling after each.
    pub report_retry_delay: Duration,
    /// Consecutive `/healthz` failures that make a running engine `probe_failed`.
    pub probe_failure_threshold: u32,
    /// Bound on one health probe.
    pub probe_timeout: Duration,
    /// Probes one pass runs at once.
    pub probe_concurrency: usize,
    /// Whether a `probe_failed` engine's game is paused.
    pub pause_on_unhealthy: bool,
    /// The first pause before the events listener reconnects...
    pub events_backoff_min: Duration,
    /// ...doubling up to this.
    pub events_backoff_max: Duration,
}

/// The default memory limit of an engine: 512 MiB, ample for the reference engine (a few
/// MiB) and a bound on a runaway one.
pub const DEFAULT_MEMORY_BYTES: u64 = 512 * 1024 * 1024;
/// The default CPU limit of an engine: one core, so one busy engine cannot starve the
/// host's other games.
pub const DEFAULT_CPUS: f64 = 1.0;
/// The default bound on an engine's processes and threads: room for a threaded engine,
/// none for a fork bomb.
pub const DEFAULT_PIDS: u32 = 256;
/// The default bound on one health probe of an engine (its `GET /healthz`): shorter than
/// other calls, since a probe that hangs holds one of the pass's concurrent probes and
/// says the engine is not answering anyway. `galaxy-cli engine check` holds engines to it.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A key of fresh random bytes, for a configuration nobody gave a key: its engines answer
/// only this process (the server always configures a lasting one).
fn random_token_key() -> EngineTokenKey {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    EngineTokenKey::from_array(bytes)
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            engines: EngineRegistry::default(),
            instance: "galaxy".to_owned(),
            job_pool_size: 4,
            job_lease: TimeDelta::minutes(10),
            healthz_deadline: Duration::from_secs(60),
            healthz_poll_interval: Duration::from_millis(250),
            start_requeue_delay: TimeDelta::seconds(2),
            start_wait_window: TimeDelta::minutes(5),
            job_retry_delay: TimeDelta::seconds(10),
            stop_grace: Duration::from_secs(10),
            restart_attempts: 3,
            restart_backoff: TimeDelta::seconds(5),
            limits: EngineLimits {
                memory_bytes: Some(DEFAULT_MEMORY_BYTES),
                cpus: Some(DEFAULT_CPUS),
                pids: Some(DEFAULT_PIDS),
            },
            engine_tokens: random_token_key(),
            engines_without_token: BTreeSet::new(),
            engine_env: BTreeMap::new(),
            engine_settings: serde_json::Value::Object(serde_json::Map::new()),
            turn_batch: 32,
            turn_concurrency: 8,
            turn_lease: TimeDelta::minutes(5),
            turn_mail_grace: Duration::from_secs(60),
            engine_call_timeout: Duration::from_secs(120),
            max_orders_bytes: 256 * 1024,
            message_rate: RateLimit {
                max: 30,
                window: TimeDelta::hours(1),
            },
            max_report_bytes: 1024 * 1024,
            report_attempts: 4,
            report_retry_delay: Duration::from_millis(250),
            probe_failure_threshold: 3,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            probe_concurrency: 16,
            pause_on_unhealthy: false,
            events_backoff_min: Duration::from_millis(500),
            events_backoff_max: Duration::from_secs(30),
        }
    }
}

/// What one pass of an observing worker ([`HealthProbe`], [`InspectWorker`]) saw.
///
/// Observers report `handled: 0` from `tick()`: a pass is a periodic look, not queue
/// work, and a condition that lasts (a stopped container) would otherwise make
/// `run_every` spin without waiting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservationReport {
    /// Records looked at.
    pub observed: usize,
    /// Health events stored in this pass.
    pub events: Vec<HealthEvent>,
    /// Games paused in this pass.
    pub paused: usize,
}
