//! Ports for the runtime: records, durable jobs, health events, the container runtime
//! and the engine's HTTP contract (SPEC section 9).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use super::{BoxError, StoreError};
use crate::domain::engine_auth::EngineToken;
use crate::domain::health::{ContainerHealth, HealthEvent, HealthEventKind};
use crate::domain::lease::{ClaimRequest, Finish};
use crate::domain::page::{Page, PageRequest};
use crate::domain::runtime::{RuntimeBinding, RuntimeJob, RuntimeRecord, RuntimeStatus};
use crate::domain::{GameId, JobId, LeaseToken, Timestamp};

/// What the scheduler writes back after a turn (or a skipped tick).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUpdate {
    /// The engine's turn after the call.
    pub current_turn: u32,
    /// The next firing (`None` to unschedule, e.g. when finished).
    pub next_turn_at: Option<Timestamp>,
    /// The one-shot skip flag's new value.
    pub skip_next_tick: bool,
}

/// Runtime records (one per game).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RuntimeRecordStore: Send + Sync {
    /// Stores a new record; `Duplicate` when the game already has one.
    async fn insert_record(&self, record: &RuntimeRecord) -> Result<(), StoreError>;
    /// Reads a game's record.
    async fn get_record(&self, game_id: GameId) -> Result<RuntimeRecord, StoreError>;
    /// Lists records, optionally of one status, by creation order.
    async fn list_records(
        &self,
        status: Option<RuntimeStatus>,
        page: &PageRequest,
    ) -> Result<Page<RuntimeRecord>, StoreError>;
    /// Status compare-and-set against the runtime table.
    async fn update_record_status(
        &self,
        game_id: GameId,
        expected: RuntimeStatus,
        to: RuntimeStatus,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError>;
    /// Stores (or clears) the container binding.
    async fn set_binding(
        &self,
        game_id: GameId,
        binding: Option<RuntimeBinding>,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError>;
    /// Stores the health verdict.
    async fn set_healthy(
        &self,
        game_id: GameId,
        healthy: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError>;
    /// Sets the schedule outside a turn (on start, resume, force-next-turn).
    async fn set_schedule(
        &self,
        game_id: GameId,
        next_turn_at: Option<Timestamp>,
        skip_next_tick: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError>;
    /// Claims up to `limit` running games whose `next_turn_at` is due and whose turn
    /// lease is free or lapsed; each gets the claim's lease. Concurrent claimers never
    /// receive the same game.
    async fn claim_due_turns(&self, claim: &ClaimRequest)
    -> Result<Vec<RuntimeRecord>, StoreError>;
    /// Claims one running game's turn now, due or not (force-next-turn); `Conflict`
    /// when another claim holds it.
    async fn claim_turn(
        &self,
        game_id: GameId,
        claim: &ClaimRequest,
    ) -> Result<RuntimeRecord, StoreError>;
    /// Extends the turn lease `token` holds to `until` (a turn that runs long keeps its
    /// game); `Conflict` when `token` does not hold it: freed by the turn's own
    /// completion, or taken over by another claim after it lapsed. Unlike
    /// [`RuntimeRecordStore::claim_turn`] it never takes a free lease.
    async fn renew_turn_lease(
        &self,
        game_id: GameId,
        token: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError>;
    /// Writes a turn's result and frees the lease; `Conflict` when `token` no longer
    /// holds it.
    async fn complete_turn(
        &self,
        game_id: GameId,
        token: LeaseToken,
        update: &TurnUpdate,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError>;
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// It did its work.
    Succeeded,
    /// It failed for good, with the reason.
    Failed(String),
    /// Give it back to the queue, runnable at the given instant (e.g. shutdown).
    Requeue(Timestamp),
}

/// One job to complete in a batch ([`RuntimeJobStore::complete_jobs`]).
pub type JobCompletion = Finish<JobId, JobOutcome>;

/// Durable runtime jobs.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RuntimeJobStore: Send + Sync {
    /// Queues a job; if a job with the same idempotency key exists, returns that one
    /// and queues nothing.
    async fn enqueue_job(&self, job: &RuntimeJob) -> Result<RuntimeJob, StoreError>;
    /// Reads one job.
    async fn get_job(&self, id: JobId) -> Result<RuntimeJob, StoreError>;
    /// Lists jobs, optionally of one game, by creation order.
    async fn list_jobs(
        &self,
        game_id: Option<GameId>,
        page: &PageRequest,
    ) -> Result<Page<RuntimeJob>, StoreError>;
    /// Claims up to `limit` runnable jobs (queued and due, or running with a lapsed
    /// lease), oldest first; each becomes `running` with the claim's lease and one more
    /// attempt. Concurrent claimers never receive the same job.
    async fn claim_jobs(&self, claim: &ClaimRequest) -> Result<Vec<RuntimeJob>, StoreError>;
    /// Extends a claimed job's lease to `until`, while its holder is still working on it:
    /// a start may outlast one lease (an image pull, a slow engine), and without a renewal
    /// any claimer, the holder's own worker included, would take the job over and run it
    /// twice at once. `Conflict` when `token` no longer holds it (the job ended, or its
    /// lease lapsed and another claim took it).
    async fn renew_job_lease(
        &self,
        id: JobId,
        token: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError>;
    /// Ends a claimed job; `Conflict` when `token` no longer holds it.
    async fn complete_job(
        &self,
        id: JobId,
        token: LeaseToken,
        outcome: &JobOutcome,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError>;
    /// Completes a batch of claimed jobs (see [`complete_job`](Self::complete_job)), each
    /// checked against its own token; the results follow
    /// [`BatchFinished`](super::BatchFinished). The default completes one by one (so
    /// existing stores and decorators keep working); a database store should override it
    /// with one statement. A job listed twice completes once; its later entries are
    /// `Conflict`.
    async fn complete_jobs(
        &self,
        completions: &[JobCompletion],
    ) -> super::BatchFinished<RuntimeJob> {
        let mut results = Vec::with_capacity(completions.len());
        for c in completions {
            results.push(self.complete_job(c.id, c.token, &c.outcome, c.at).await);
        }
        Ok(results)
    }
}

/// Stored health events.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait HealthEventStore: Send + Sync {
    /// Appends an event.
    async fn append_health_event(&self, event: &HealthEvent) -> Result<(), StoreError>;
    /// Lists events, optionally of one game, newest first.
    async fn list_health_events(
        &self,
        game_id: Option<GameId>,
        page: &PageRequest,
    ) -> Result<Page<HealthEvent>, StoreError>;
    /// Counts events of a kind, optionally of one game.
    async fn count_health_events(
        &self,
        game_id: Option<GameId>,
        kind: HealthEventKind,
    ) -> Result<u64, StoreError>;
}

/// Why a container runtime call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// No such container or image.
    #[error("{0} not found")]
    NotFound(String),
    /// The runtime (daemon) cannot be reached or refused the call.
    #[error("container runtime unavailable: {source}")]
    Unavailable {
        /// The adapter's error.
        #[source]
        source: BoxError,
    },
    /// The runtime answered with an error.
    #[error("container runtime error: {0}")]
    Failed(String),
}

/// Everything needed to create one game's engine container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// `galaxy-game-{game_id}`.
    pub name: String,
    /// The game.
    pub game_id: GameId,
    /// The engine's image (Docker) or command (process runtime), as registered.
    pub engine: String,
    /// Labels (`galaxy.backend=1`, `galaxy.game_id=...`).
    pub labels: BTreeMap<String, String>,
    /// Extra environment for the engine.
    pub env: BTreeMap<String, String>,
    /// The game's engine credential: the runtime hands it to the engine as
    /// `GALAXY_ENGINE_TOKEN`, after `env`, so no configured variable can replace it. A
    /// field of its own rather than an `env` entry, so it never shows in a log of `env`.
    pub token: EngineToken,
    /// What the engine may consume, as far as the runtime can enforce it.
    pub limits: EngineLimits,
}

/// Resource limits of one engine. Each runtime applies what its platform gives and says
/// which (the Docker runtime all three, through the container's cgroup; the process
/// runtime a memory bound through rlimits); `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EngineLimits {
    /// Memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU time, in cores (0.5 is half of one core).
    pub cpus: Option<f64>,
    /// Processes and threads the engine may have at once.
    pub pids: Option<u32>,
}

/// A created container and how to reach its engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedContainer {
    /// The runtime's id.
    pub container_id: String,
    /// Base URL of the engine once started.
    pub engine_endpoint: String,
}

/// What inspecting a container shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The runtime's id.
    pub container_id: String,
    /// The runtime's state word (`running`, `exited`, ...).
    pub state: String,
    /// How often the runtime restarted it.
    pub restart_count: u64,
    /// The exit code of its last run once that run ended (`exited`, `dead`, or
    /// `restarting` between two runs); `None` while it runs or before it first ran. A
    /// process killed by a signal reports 128 plus the signal, as Docker does.
    pub exit_code: Option<i64>,
    /// The HEALTHCHECK verdict, if the image has one.
    pub health: Option<ContainerHealth>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

impl ContainerInfo {
    /// Whether the container stopped and its runtime will not start it again by itself:
    /// `exited` (a stop, a clean exit, or a crash once the restart policy gave up) or
    /// `dead`. A `restarting` container is not: its restart policy brings it back. A
    /// start waiting for such an engine can give up at once instead of waiting out its
    /// `/healthz` deadline.
    pub fn exited_for_good(&self) -> bool {
        matches!(self.state.as_str(), "exited" | "dead")
    }
}

/// Something the runtime reports about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// The runtime's id.
    pub container_id: String,
    /// The game, from the label.
    pub game_id: Option<GameId>,
    /// The runtime's action word (`die`, `destroy`, `oom`, ...).
    pub action: String,
}

/// Runs engine containers (Docker, child processes, an orchestrator...).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Makes sure the engine image (or binary) is available.
    async fn ensure_image(&self, engine: &str) -> Result<(), ContainerError>;
    /// Creates a container (not started).
    async fn create(&self, spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError>;
    /// Starts a created container.
    async fn start(&self, container_id: &str) -> Result<(), ContainerError>;
    /// Stops a container, waiting at most `grace` before killing it.
    async fn stop(&self, container_id: &str, grace: Duration) -> Result<(), ContainerError>;
    /// Removes a container (and not its data volume).
    async fn remove(&self, container_id: &str) -> Result<(), ContainerError>;
    /// Inspects one container.
    async fn inspect(&self, container_id: &str) -> Result<ContainerInfo, ContainerError>;
    /// The last `lines` lines the container's engine wrote (standard output and error, in
    /// the order written, across its restarts), oldest first. What a failed start puts in
    /// its reason, so an operator sees why the engine exited without reading the
    /// runtime's own logs. Adapters may shorten very long lines.
    async fn logs(&self, container_id: &str, lines: usize) -> Result<Vec<String>, ContainerError>;
    /// Lists containers carrying the label `key=value`.
    async fn list_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerInfo>, ContainerError>;
    /// A stream of container events for Galaxy's containers; ends when the runtime
    /// connection drops (callers reconnect).
    async fn events(
        &self,
    ) -> Result<BoxStream<'static, Result<ContainerEvent, ContainerError>>, ContainerError>;
}

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Nothing listens at the endpoint.
    #[error("engine refused the connection: {0}")]
    Refused(String),
    /// The engine did not answer in time.
    #[error("engine did not answer within {0:?}")]
    Timeout(Duration),
    /// The engine answered with a non-2xx status.
    #[error("engine answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The (truncated) body.
        body: String,
    },
    /// The engine's answer was not what the contract says.
    #[error("engine answered malformed data: {0}")]
    Malformed(String),
    /// The request could not be sent as asked (a bad endpoint URL, orders over the size
    /// limit): the caller's problem, found before any I/O, not an engine fault.
    #[error("invalid engine request: {source}")]
    InvalidRequest {
        /// What is wrong, as the adapter's error.
        #[source]
        source: BoxError,
    },
    /// Any other transport failure.
    #[error("engine transport error: {source}")]
    Transport {
        /// The adapter's error.
        #[source]
        source: BoxError,
    },
}

/// One race at game start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineRace {
    /// The race name.
    pub race_name: String,
    /// The player.
    pub player_id: String,
}

/// `POST /admin/init` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInit {
    /// The game.
    pub game_id: String,
    /// Seed for the engine's randomness.
    pub seed: u64,
    /// Engine-specific settings.
    pub settings: serde_json::Value,
    /// The races.
    pub races: Vec<EngineRace>,
}

/// One race's standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaceStanding {
    /// The race name.
    pub name: String,
    /// Still in the game.
    pub alive: bool,
    /// Score.
    pub score: f64,
}

/// The engine's state (`GET /admin/state`, and the answer to init and turn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// The last completed turn.
    pub turn: u32,
    /// Whether the game is over.
    pub finished: bool,
    /// The winner, when finished with one.
    #[serde(default)]
    pub winner: Option<String>,
    /// Standings.
    #[serde(default, alias = "races")]
    pub standings: Vec<RaceStanding>,
}

/// The engine's answer to submitted orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersVerdict {
    /// Whether the orders were taken.
    pub accepted: bool,
    /// Why not (or warnings).
    #[serde(default)]
    pub errors: Vec<String>,
}

/// One engine as a caller addresses it: where it answers and the credential each call
/// carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineTarget {
    /// Base URL of the engine's HTTP contract, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer <token>`; `None` sends no credential (what the
    /// start job does once, to check that the engine refuses such a call).
    pub token: Option<EngineToken>,
}

impl EngineTarget {
    /// The engine at `endpoint`, called with `token`.
    pub fn new(endpoint: impl Into<String>, token: EngineToken) -> Self {
        Self {
            endpoint: endpoint.into(),
            token: Some(token),
        }
    }

    /// The engine at `endpoint`, called without a credential.
    pub fn anonymous(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            token: None,
        }
    }
}

/// The engine HTTP contract of SPEC section 9: each call addressed to one engine by base
/// URL, with the game's credential.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EngineClient: Send + Sync {
    /// `GET /healthz`: `Ok` once the engine is ready.
    async fn healthz(&self, target: &EngineTarget) -> Result<(), EngineError>;
    /// `POST /admin/init` (idempotent for the same game).
    async fn init(
        &self,
        target: &EngineTarget,
        init: &EngineInit,
    ) -> Result<EngineState, EngineError>;
    /// `POST /admin/turn {expected_turn}`.
    async fn run_turn(
        &self,
        target: &EngineTarget,
        expected_turn: u32,
    ) -> Result<EngineState, EngineError>;
    /// `PUT /orders/{race} {turn, orders}`.
    async fn submit_orders(
        &self,
        target: &EngineTarget,
        race: &str,
        turn: u32,
        orders: &serde_json::Value,
    ) -> Result<OrdersVerdict, EngineError>;
    /// `GET /reports/{race}/{turn}`.
    async fn report(
        &self,
        target: &EngineTarget,
        race: &str,
        turn: u32,
    ) -> Result<serde_json::Value, EngineError>;
    /// `GET /admin/state`.
    async fn state(&self, target: &EngineTarget) -> Result<EngineState, EngineError>;
}
