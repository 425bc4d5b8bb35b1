//! Composition of the runtime (SPEC section 3, runtime): the container runtime (the one
//! plugged into [`Adapters`], else the built-in one chosen by `GALAXY_RUNTIME` and
//! confined as configured), the engine client (plugged, else HTTP), the engine token key
//! ([`crate::secrets`]), the [`RuntimeService`] the handlers use, and the workers
//! [`crate::lifecycle`] runs: start jobs, the turn scheduler, the reconciler, the health
//! probe, the inspect pass and the events listener.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use galaxy_core::domain::engine_auth::EngineTokenKey;
use galaxy_core::domain::game::EngineName;
use galaxy_core::domain::runtime::RuntimeStatus;
use galaxy_core::ports::{
    ApplicationStore, Clock, ContainerError, ContainerEvent, ContainerInfo, ContainerRuntime,
    ContainerSpec, CreatedContainer, EngineClient, GameStore, Notifier, SecretGenerator,
    StoreError, UserStore,
};
use galaxy_core::service::runtime::{
    EngineRegistry, EventsListener, HealthProbe, InspectWorker, Reconciler, RuntimeConfig,
    RuntimePorts, RuntimeService, StartWorker, TurnScheduler,
};
#[cfg(feature = "docker")]
use galaxy_docker::{Addressing, DockerConfig, DockerRuntime, GameNetworks};
use galaxy_engine_http::{ClientOptions, HttpEngineClient};
use galaxy_process_runtime::{ProcessRuntime, ProcessRuntimeConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapters::Adapters;
use crate::config::runtime::engines_dir;
#[cfg(feature = "docker")]
use crate::config::runtime::{DockerNetwork, EngineSettings};
use crate::config::{Config, RuntimeKind};
use crate::error::AppError;
use crate::metering::decorators::{MeteredContainers, MeteredEngine, MeteredHealthEvents};
use crate::schedule::ScheduledWorker;

/// The stores the runtime shares with the lobby, as the app wraps them (through the
/// caches, so a status the runtime changes is what the next request sees).
pub(crate) struct SharedPorts {
    /// Games, through the game cache.
    pub(crate) games: Arc<dyn GameStore>,
    /// Applications, through the game cache.
    pub(crate) applications: Arc<dyn ApplicationStore>,
    /// Users, through the user cache (admins get the runtime's alerts).
    pub(crate) users: Arc<dyn UserStore>,
    /// Raises the runtime's notifications.
    pub(crate) notifier: Arc<dyn Notifier>,
}

/// What the lifecycle runs besides the scheduled workers, and stops on shutdown.
#[derive(Default)]
pub(crate) struct RuntimeTasks {
    /// Follows the container runtime's events (absent with `GALAXY_RUNTIME=none`).
    events: Option<Arc<EventsListener>>,
    /// The process runtime, whose child engines are stopped after the workers.
    processes: Option<ProcessRuntime>,
    /// Grace of each engine stopped on shutdown.
    stop_grace: Duration,
}

impl RuntimeTasks {
    /// Spawns the events listener (if any) on `tracker`, stopped by `stop`.
    pub(crate) fn spawn(
        &self,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        self.events
            .clone()
            .map(|events| tracker.spawn(async move { events.run(stop).await }))
            .into_iter()
            .collect()
    }

    /// Stops every engine the process runtime started, within `bound`. Runs after the
    /// workers stopped, so no start job launches a new one behind it. The engines' data
    /// directories and saved containers stay: the next server on the same data directory
    /// starts them again ([`resume_engines`]; docs/operations.md, "Process-runtime
    /// engines").
    pub(crate) async fn stop_engines(&self, bound: Duration) -> bool {
        let Some(processes) = &self.processes else {
            return true;
        };
        let grace = self.stop_grace.min(bound);
        let stopped = tokio::time::timeout(bound, processes.shutdown(grace))
            .await
            .is_ok();
        if stopped {
            tracing::info!("engine processes stopped");
        } else {
            tracing::warn!(?bound, "engine processes did not stop in time");
        }
        stopped
    }
}

/// The runtime as composed: the service, its workers and the tasks beside them.
pub(crate) struct RuntimeParts {
    /// Admin actions, orders and reports.
    pub(crate) service: Arc<RuntimeService>,
    /// The engines games may name (the lobby's `engines`).
    pub(crate) engines: BTreeSet<EngineName>,
    /// Start worker, turn scheduler and the health workers.
    pub(crate) workers: Vec<ScheduledWorker>,
    /// The events listener and the process runtime.
    pub(crate) tasks: RuntimeTasks,
}

/// A container runtime that refuses everything: `GALAXY_RUNTIME=none`, and tests that
/// never start a game. A start job fails with a clear reason (`start_failed`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContainers;

impl NoContainers {
    fn refuse<T>() -> Result<T, ContainerError> {
        Err(ContainerError::Failed(
            "no container runtime is configured (GALAXY_RUNTIME=none)".to_owned(),
        ))
    }
}

#[async_trait]
impl ContainerRuntime for NoContainers {
    async fn ensure_image(&self, _engine: &str) -> Result<(), ContainerError> {
        Self::refuse()
    }
    async fn create(&self, _spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError> {
        Self::refuse()
    }
    async fn start(&self, _container_id: &str) -> Result<(), ContainerError> {
        Self::refuse()
    }
    async fn stop(&self, _container_id: &str, _grace: Duration) -> Result<(), ContainerError> {
        Self::refuse()
    }
    async fn remove(&self, _container_id: &str) -> Result<(), ContainerError> {
        Self::refuse()
    }
    async fn inspect(&self, _container_id: &str) -> Result<ContainerInfo, ContainerError> {
        Self::refuse()
    }
    async fn logs(
        &self,
        _container_id: &str,
        _lines: usize,
    ) -> Result<Vec<String>, ContainerError> {
        Self::refuse()
    }
    async fn list_by_label(
        &self,
        _key: &str,
        _value: &str,
    ) -> Result<Vec<ContainerInfo>, ContainerError> {
        Ok(Vec::new())
    }
    async fn events(
        &self,
    ) -> Result<BoxStream<'static, Result<ContainerEvent, ContainerError>>, ContainerError> {
        Self::refuse()
    }
}

/// The Docker runtime's settings from the engine settings.
#[cfg(feature = "docker")]
pub(crate) fn docker_config(engines: &EngineSettings) -> DockerConfig {
    let addressing = match &engines.docker_network {
        DockerNetwork::PerGame => Addressing::GameNetworks(GameNetworks {
            subnets: engines.docker_subnets,
            server_container: engines.docker_server_container.clone(),
        }),
        DockerNetwork::Loopback => Addressing::LoopbackPort,
        DockerNetwork::Shared(name) => Addressing::Network(name.clone()),
    };
    DockerConfig {
        addressing,
        engine_user: engines.user.clone(),
        ..DockerConfig::default()
    }
}

/// The runtime's configuration from the server's, with the engine registry of the
/// chosen runtime and the installation's engine token key.
pub(crate) fn runtime_config(
    config: &Config,
    engines: EngineRegistry,
    engine_tokens: EngineTokenKey,
) -> RuntimeConfig {
    let settings = &config.runtime;
    RuntimeConfig {
        engines,
        instance: settings.instance.clone(),
        job_pool_size: settings.workers,
        // A lease too large for TimeDelta keeps the core's default.
        job_lease: chrono::TimeDelta::from_std(settings.job_lease)
            .unwrap_or(RuntimeConfig::default().job_lease),
        probe_failure_threshold: settings.probe_threshold,
        pause_on_unhealthy: settings.pause_on_unhealthy,
        max_orders_bytes: settings.max_orders_bytes,
        max_report_bytes: settings.max_report_bytes,
        limits: settings.engines.limits,
        engine_tokens,
        engines_without_token: settings.engines.without_token.clone(),
        ..RuntimeConfig::default()
    }
}

/// How long start-up waits for the resumed engines to listen (see [`resume_engines`]).
const ENGINE_RESUME_BOUND: Duration = Duration::from_secs(30);

/// Starts again the process-runtime engines the previous server left running whose games
/// the store still has running on them (same container), so a restart or an upgrade goes
/// on with every game instead of pausing it. Before any worker runs: a turn due at once
/// finds its engine. Engines of games the store does not know or has no longer running
/// (dev mode's stores start empty, a game ended meanwhile) stay `exited` for the
/// reconciler to remove.
///
/// An engine created under another command line or token than the server would give it
/// now (`GALAXY_PROCESS_ENGINES` or the engine secret changed meanwhile; or a saved record
/// altered) is removed instead: its game then pauses as one whose container disappeared,
/// and `recreate-engine` creates it anew from its data, with the current command and
/// token. A record that cannot be read leaves its engine `exited` (logged): the inspect
/// pass restarts it once the store answers, or its game pauses.
async fn resume_engines(
    processes: &ProcessRuntime,
    adapters: &Adapters,
    registry: &EngineRegistry,
    tokens: &EngineTokenKey,
) {
    let mut wanted = Vec::new();
    for saved in processes.resumable() {
        // Checked first, with no store: an engine left `exited` is started again later by
        // a restart job, on its saved command line and token.
        let configured = registry.names().iter().any(|name| {
            registry
                .resolve(name)
                .is_ok_and(|command| command == saved.engine)
        });
        if !configured || saved.token != tokens.token_for(saved.game_id) {
            tracing::warn!(
                game = %saved.game_id,
                container = %saved.container_id,
                "engine not resumed: its command line or token is not one the server gives now; \
                 its game pauses until an admin re-creates the engine"
            );
            if let Err(error) = processes.remove(&saved.container_id).await {
                tracing::warn!(%error, container = %saved.container_id, "stale engine not removed");
            }
            continue;
        }
        let record = match adapters.runtime_records.get_record(saved.game_id).await {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => continue,
            Err(error) => {
                tracing::warn!(%error, game = %saved.game_id, "engine not resumed: its record is unreadable");
                continue;
            }
        };
        let bound = record
            .binding
            .as_ref()
            .is_some_and(|binding| binding.container_id == saved.container_id);
        if record.status == RuntimeStatus::Running && bound {
            wanted.push(saved.container_id);
        }
    }
    processes.resume(&wanted, ENGINE_RESUME_BOUND).await;
}

/// The container runtime the app runs engines on, and what comes with it.
struct ChosenRuntime {
    /// The runtime.
    containers: Arc<dyn ContainerRuntime>,
    /// The engines it can run.
    engines: EngineRegistry,
    /// Whether engines can run at all (not `GALAXY_RUNTIME=none`): without, no engine
    /// secret is kept and no health worker runs.
    runs_engines: bool,
    /// For the log line.
    name: &'static str,
}

/// The plugged runtime of `adapters`, else the built-in one `GALAXY_RUNTIME` names
/// (Docker by default). The process runtime goes into `tasks` too, to be stopped on
/// shutdown.
async fn choose_runtime(
    config: &Config,
    adapters: &Adapters,
    tasks: &mut RuntimeTasks,
) -> Result<ChosenRuntime, AppError> {
    if let Some(plugged) = &adapters.runtime {
        return Ok(ChosenRuntime {
            containers: plugged.containers.clone(),
            engines: plugged
                .engines
                .clone()
                .unwrap_or_else(|| config.runtime.docker_engines.clone()),
            runs_engines: true,
            name: "plugged",
        });
    }
    let explicit = config.runtime.kind.is_some();
    let kind = config.runtime.kind_or(RuntimeKind::Docker);
    let containers: Arc<dyn ContainerRuntime> = match kind {
        RuntimeKind::Process => {
            let dir = engines_dir(&config.data_dir);
            let processes =
                ProcessRuntime::new(ProcessRuntimeConfig::new(&dir)).map_err(|source| {
                    AppError::Io {
                        what: format!("cannot create the engines directory {}", dir.display()),
                        source,
                    }
                })?;
            tasks.processes = Some(processes.clone());
            Arc::new(processes)
        }
        RuntimeKind::Docker => docker(config, explicit).await?,
        RuntimeKind::None => Arc::new(NoContainers),
    };
    Ok(ChosenRuntime {
        containers,
        engines: config.runtime.registry(kind).clone(),
        runs_engines: kind != RuntimeKind::None,
        name: match kind {
            RuntimeKind::Process => "process",
            RuntimeKind::Docker => "docker",
            RuntimeKind::None => "none",
        },
    })
}

/// The Docker runtime, connected.
#[cfg(feature = "docker")]
async fn docker(config: &Config, _explicit: bool) -> Result<Arc<dyn ContainerRuntime>, AppError> {
    let in_container = std::path::Path::new("/.dockerenv").exists();
    if let Some(warning) = addressing_warning(&config.runtime.engines, in_container) {
        tracing::warn!(variable = "GALAXY_DOCKER_NETWORK", "{warning}");
    }
    let runtime = DockerRuntime::connect(docker_config(&config.runtime.engines))
        .await
        .map_err(|e| {
            // DOCKER_HOST unusable, or a socket this user may not open: a restart would
            // fail the same way (exit 2), and "start it" would send the operator astray.
            if e.is_configuration() {
                AppError::Setting {
                    variable: "DOCKER_HOST",
                    reason: format!(
                        "cannot use Docker ({e}); point DOCKER_HOST at a socket this user may \
                         open (for the systemd unit, SupplementaryGroups=docker), or set \
                         GALAXY_RUNTIME=process or none"
                    ),
                }
            } else {
                AppError::Unreachable {
                    variable: "GALAXY_RUNTIME",
                    reason: format!(
                        "cannot reach Docker ({e}); start it, or set GALAXY_RUNTIME=process or none"
                    ),
                }
            }
        })?;
    Ok(Arc::new(runtime))
}

/// Warns about Docker addressing a server inside a container usually cannot use:
/// `loopback` publishes engine ports on the Docker host's 127.0.0.1 (not the
/// container's), and `per-game` networks are reachable only once the server's container
/// is joined to them (`GALAXY_DOCKER_SERVER_CONTAINER`). A warning, not a refusal: a
/// container that shares the host's network, or runs its own daemon, reaches both (the
/// project's own CI runs so), and `/.dockerenv` cannot tell those apart.
#[cfg(feature = "docker")]
fn addressing_warning(engines: &EngineSettings, in_container: bool) -> Option<String> {
    if !in_container {
        return None;
    }
    let reason = match (&engines.docker_network, &engines.docker_server_container) {
        (DockerNetwork::Loopback, _) => {
            "`loopback` publishes engine ports on the Docker host's 127.0.0.1, which this \
             server, running in a container, cannot reach: use `per-game` with \
             GALAXY_DOCKER_SERVER_CONTAINER=<this container's name>, or `network:<name>` \
             with this container on that network"
        }
        (DockerNetwork::PerGame, None) => {
            "`per-game` networks are reached by joining this server's container to each: \
             set GALAXY_DOCKER_SERVER_CONTAINER to its name (deploy/compose.yaml does), or use \
             `network:<name>`"
        }
        _ => return None,
    };
    Some(format!(
        "this server seems to run in a container: {reason} (ignore this if the container \
         shares the Docker host's network)"
    ))
}

/// A build without the `docker` feature has no Docker runtime: asking for it (or leaving
/// `GALAXY_RUNTIME` unset outside dev mode, which means Docker) stops start-up.
#[cfg(not(feature = "docker"))]
async fn docker(_config: &Config, explicit: bool) -> Result<Arc<dyn ContainerRuntime>, AppError> {
    if explicit {
        return Err(AppError::FeatureDisabled {
            variable: "GALAXY_RUNTIME",
            feature: "docker",
        });
    }
    Err(AppError::Setting {
        variable: "GALAXY_RUNTIME",
        reason: "unset, it means `docker`, which needs the `docker` feature this build of \
                 galaxy-server lacks: set GALAXY_RUNTIME=process or none, or plug a runtime \
                 in (Adapters::with_container_runtime)"
            .to_owned(),
    })
}

/// Builds the chosen container runtime, the service and the workers.
pub(crate) async fn build(
    config: &Config,
    adapters: &Adapters,
    shared: SharedPorts,
    cancel: CancellationToken,
) -> Result<RuntimeParts, AppError> {
    let mut tasks = RuntimeTasks::default();
    let chosen = choose_runtime(config, adapters, &mut tasks).await?;
    // Without a runtime no engine ever starts: no secret to keep.
    let engine_tokens = if chosen.runs_engines {
        crate::secrets::agreed_engine_key(
            config,
            adapters.secrets.as_ref(),
            adapters.keys.as_ref(),
            adapters.clock.now(),
        )
        .await?
    } else {
        RuntimeConfig::default().engine_tokens
    };
    if let Some(processes) = &tasks.processes {
        resume_engines(processes, adapters, &chosen.engines, &engine_tokens).await;
    }
    let runtime_config = runtime_config(config, chosen.engines, engine_tokens);
    tasks.stop_grace = runtime_config.stop_grace;
    let engine: Arc<dyn EngineClient> = match &adapters.engine_client {
        Some(client) => client.clone(),
        None => Arc::new(HttpEngineClient::new(ClientOptions {
            max_orders_bytes: runtime_config.max_orders_bytes,
            max_response_bytes: runtime_config.max_report_bytes,
            ..ClientOptions::default()
        })),
    };
    let ports = RuntimePorts {
        games: shared.games,
        applications: shared.applications,
        users: shared.users,
        records: adapters.runtime_records.clone(),
        jobs: adapters.runtime_jobs.clone(),
        health: Arc::new(MeteredHealthEvents(adapters.health_events.clone())),
        archive: adapters.turn_archive.clone(),
        orders: adapters.orders.clone(),
        pbem: adapters.pbem.clone(),
        containers: Arc::new(MeteredContainers(chosen.containers)),
        engine: Arc::new(MeteredEngine(engine)),
        notifier: shared.notifier,
        clock: adapters.clock.clone() as Arc<dyn Clock>,
        ids: adapters.secrets.clone() as Arc<dyn SecretGenerator>,
        // Turns wait for mailed orders only where mail comes in.
        inbound: config
            .mail_in
            .domain
            .is_some()
            .then(|| adapters.mail_in.clone()),
    };
    let (interval, health_interval) = (config.runtime.interval, config.runtime.health_interval);
    let scheduled = |worker: Arc<dyn galaxy_core::worker::Worker>, interval| ScheduledWorker {
        worker,
        interval,
    };
    let start =
        StartWorker::new(ports.clone(), runtime_config.clone()).with_cancellation(cancel.clone());
    let turns = TurnScheduler::new(ports.clone(), runtime_config.clone()).with_cancellation(cancel);
    let mut workers = vec![
        scheduled(Arc::new(start), interval),
        scheduled(Arc::new(turns), interval),
    ];
    if chosen.runs_engines {
        let probe = HealthProbe::new(ports.clone(), runtime_config.clone()).map_err(|e| {
            AppError::Setting {
                variable: "GALAXY_PROBE_FAILURE_THRESHOLD",
                reason: e.to_string(),
            }
        })?;
        workers.extend([
            scheduled(Arc::new(probe), health_interval),
            scheduled(
                Arc::new(InspectWorker::new(ports.clone(), runtime_config.clone())),
                health_interval,
            ),
            scheduled(
                Arc::new(Reconciler::new(ports.clone(), runtime_config.clone())),
                health_interval,
            ),
        ]);
        tasks.events = Some(Arc::new(EventsListener::new(
            ports.clone(),
            runtime_config.clone(),
        )));
    }
    tracing::info!(runtime = chosen.name, engines = ?runtime_config.engines, "runtime composed");
    Ok(RuntimeParts {
        engines: runtime_config.engines.names(),
        service: Arc::new(RuntimeService::new(ports, runtime_config)),
        workers,
        tasks,
    })
}

#[cfg(all(test, feature = "docker"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::Config;

    fn engines(pairs: &[(&str, &str)]) -> EngineSettings {
        let mut builder = Config::builder();
        for (k, v) in pairs {
            builder = builder.set(*k, *v);
        }
        builder.build().unwrap().runtime.engines
    }

    #[test]
    fn a_server_in_a_container_is_warned_of_addressing_it_cannot_use() {
        let loopback = engines(&[("GALAXY_DOCKER_NETWORK", "loopback")]);
        let per_game = engines(&[]);
        let joined = engines(&[("GALAXY_DOCKER_SERVER_CONTAINER", "galaxy-server")]);
        let shared = engines(&[("GALAXY_DOCKER_NETWORK", "network:galaxy")]);
        for settings in [&loopback, &per_game, &joined, &shared] {
            assert!(addressing_warning(settings, false).is_none());
        }
        let warning = addressing_warning(&loopback, true).unwrap();
        assert!(warning.contains("127.0.0.1"), "{warning}");
        let warning = addressing_warning(&per_game, true).unwrap();
        assert!(
            warning.contains("GALAXY_DOCKER_SERVER_CONTAINER"),
            "{warning}"
        );
        assert!(addressing_warning(&joined, true).is_none());
        assert!(addressing_warning(&shared, true).is_none());
    }
}
