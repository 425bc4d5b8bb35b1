#![doc = include_str!("../README.md")]

mod command;
mod config;
mod resume;
mod saved;
mod supervisor;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use galaxy_core::ports::{
    ContainerError, ContainerEvent, ContainerInfo, ContainerRuntime, ContainerSpec,
    CreatedContainer, EngineLimits,
};
use tokio::sync::broadcast;

pub use command::{CommandLine, CommandLineError};
pub use config::{ProcessRuntimeConfig, RestartPolicy};
pub use resume::{SAVED_CONTAINERS_DIR, SavedContainer};
use supervisor::{Launch, RunState, Status, Supervisor};

/// The name of the engine's log file inside its data directory.
pub const LOG_FILE: &str = "engine.log";

/// How many events a slow subscriber may fall behind before it is told it missed some.
const EVENT_BUFFER: usize = 256;

/// How much of the end of an engine's log file [`ContainerRuntime::logs`] reads at most,
/// so a huge log costs no more than a small one.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// The `ContainerRuntime` port with engines as local child processes; cheap to clone
/// (clones share the engines).
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ProcessRuntimeConfig,
    /// `prlimit`, found on `PATH` at construction when rlimits are on.
    prlimit: Option<PathBuf>,
    /// Every created engine by container id (a std mutex: never held across an await).
    engines: Mutex<HashMap<String, Engine>>,
    /// Feeds every `events()` stream.
    events: broadcast::Sender<ContainerEvent>,
}

/// One created engine ("container").
#[derive(Debug)]
struct Engine {
    spec: ContainerSpec,
    command: CommandLine,
    /// Its loopback port, fixed at create so the endpoint holds across restarts.
    port: u16,
    data_dir: PathBuf,
    status: Arc<Status>,
    /// Present from `start` until `stop` or `remove` takes it.
    supervisor: Option<Supervisor>,
    /// What is saved of it (see `saved`): its `running` is what the platform last asked.
    saved: saved::Saved,
}

impl ProcessRuntime {
    /// A runtime whose engines keep their data under `config.data_root` (created if
    /// missing). The containers a previous runtime on the same data root created and did
    /// not remove are known again (`exited` until started): see [`ProcessRuntime::resume`].
    pub fn new(config: ProcessRuntimeConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.data_root)?;
        let mut engines = HashMap::new();
        for saved in saved::read_all(&config.data_root) {
            let Some(spec) = saved.spec() else {
                continue;
            };
            let command = match CommandLine::parse(&saved.engine) {
                Ok(command) => command,
                Err(error) => {
                    tracing::warn!(%error, container = %saved.name, "saved container skipped: its command line does not parse");
                    continue;
                }
            };
            let engine = Engine {
                command,
                port: saved.port,
                data_dir: config.data_root.join(&saved.name),
                status: Arc::new(Status::exited()),
                supervisor: None,
                spec,
                saved,
            };
            engines.insert(engine.spec.name.clone(), engine);
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let prlimit = config.rlimits.then(find_prlimit).flatten();
        if config.rlimits && prlimit.is_none() {
            tracing::warn!(
                "prlimit (util-linux) is not on PATH: engines run without a memory bound"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                prlimit,
                engines: Mutex::new(engines),
                events,
            }),
        })
    }

    /// The data directory a container of this name uses.
    pub fn data_dir(&self, container_name: &str) -> PathBuf {
        self.inner.config.data_root.join(container_name)
    }

    /// The process id of a container's live engine (`None` when it has none or is
    /// unknown), for operators and crash tests.
    pub fn pid(&self, container_id: &str) -> Option<u32> {
        self.engines().get(container_id)?.status.pid()
    }

    /// Stops every running engine (each with `grace`), e.g. on server shutdown. What the
    /// platform last asked of each is kept: the next runtime's [`ProcessRuntime::resume`]
    /// starts them again.
    pub async fn shutdown(&self, grace: Duration) {
        let supervisors: Vec<Supervisor> = self
            .engines()
            .values_mut()
            .filter_map(|engine| engine.supervisor.take())
            .collect();
        futures::future::join_all(supervisors.into_iter().map(|s| s.stop(grace))).await;
    }

    fn engines(&self) -> MutexGuard<'_, HashMap<String, Engine>> {
        self.inner
            .engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn info(id: &str, engine: &Engine) -> ContainerInfo {
        ContainerInfo {
            container_id: id.to_owned(),
            state: engine.status.state().as_str().to_owned(),
            restart_count: engine.status.restarts(),
            exit_code: engine.status.exit_code(),
            health: None,
            labels: engine.spec.labels.clone(),
        }
    }

    fn launch(&self, id: &str, engine: &Engine) -> Result<Launch, ContainerError> {
        let program = resolve_program(&engine.command)?;
        let config = &self.inner.config;
        let mut env: Vec<(String, String)> = config
            .inherited_env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
            .collect();
        env.extend(engine.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        // Last, so a spec cannot redirect the engine away from its port or directory.
        env.push((
            "GALAXY_ENGINE_ADDR".into(),
            loopback(engine.port).to_string(),
        ));
        env.push((
            "GALAXY_ENGINE_DATA_DIR".into(),
            engine.data_dir.display().to_string(),
        ));
        env.push((
            "GALAXY_ENGINE_TOKEN".into(),
            engine.spec.token.expose().to_owned(),
        ));
        let (program, args) = match &self.inner.prlimit {
            Some(prlimit) => {
                let mut args = rlimit_args(&engine.spec.limits);
                args.push("--".into());
                args.push(program.display().to_string());
                args.extend(engine.command.args().iter().cloned());
                (prlimit.clone(), args)
            }
            None => (program, engine.command.args().to_vec()),
        };
        Ok(Launch {
            container_id: id.to_owned(),
            game_id: engine.spec.game_id,
            program,
            args,
            env,
            dir: engine.data_dir.clone(),
            log: engine.data_dir.join(LOG_FILE),
        })
    }

    /// Spawns the engine and puts it under a new supervisor (unless it is alive); returns
    /// the supervisor it replaces.
    fn spawn_supervised(&self, container_id: &str) -> Result<Option<Supervisor>, ContainerError> {
        let mut engines = self.engines();
        let engine = engines
            .get_mut(container_id)
            .ok_or_else(|| not_found(container_id))?;
        let alive = matches!(
            engine.status.state(),
            RunState::Running | RunState::Restarting
        );
        if engine.supervisor.is_some() && alive {
            return Ok(None);
        }
        let launch = self.launch(container_id, engine)?;
        let child = launch.spawn().map_err(|e| {
            failed(format!(
                "cannot start {container_id} ({}): {e}",
                launch.program.display()
            ))
        })?;
        self.save_running(engine, true);
        Ok(engine.supervisor.replace(Supervisor::start(
            launch,
            child,
            self.inner.config.restart,
            Arc::clone(&engine.status),
            self.inner.events.clone(),
        )))
    }

    /// A free loopback port that no engine of this runtime holds.
    fn free_port(engines: &HashMap<String, Engine>) -> Result<u16, ContainerError> {
        for _ in 0..32 {
            let port = TcpListener::bind(loopback(0))
                .and_then(|listener| listener.local_addr())
                .map_err(|e| failed(format!("no free loopback port: {e}")))?
                .port();
            if !engines.values().any(|engine| engine.port == port) {
                return Ok(port);
            }
        }
        Err(failed("no free loopback port after 32 tries"))
    }
}

#[async_trait]
impl ContainerRuntime for ProcessRuntime {
    /// Checks that the command line parses and its program is an executable file.
    async fn ensure_image(&self, engine: &str) -> Result<(), ContainerError> {
        let command = CommandLine::parse(engine).map_err(|e| failed(e.to_string()))?;
        resolve_program(&command).map(drop)
    }

    /// Records the spec, picks the loopback port and makes `<data_root>/<name>`. Creating
    /// a name that exists returns the existing container when it is the same game and
    /// engine (a retried create), and is an error otherwise.
    async fn create(&self, spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError> {
        let command = CommandLine::parse(&spec.engine).map_err(|e| failed(e.to_string()))?;
        let data_dir = self.data_dir(valid_name(&spec.name)?);
        private_dir(&data_dir).map_err(|e| {
            failed(format!(
                "cannot create the data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        if spec.limits.cpus.is_some() || spec.limits.pids.is_some() {
            tracing::debug!(container = %spec.name, "the process runtime bounds no CPU and no process count (no cgroup without root)");
        }
        let mut engines = self.engines();
        if let Some(existing) = engines.get(&spec.name) {
            return if existing.spec.game_id == spec.game_id && existing.spec.engine == spec.engine {
                Ok(created(&spec.name, existing.port))
            } else {
                Err(failed(format!(
                    "container name {} is already in use by another game or engine",
                    spec.name
                )))
            };
        }
        let port = Self::free_port(&engines)?;
        let saved = saved::Saved::new(spec, port);
        saved::write(&self.inner.config.data_root, &saved)
            .map_err(|e| failed(format!("cannot save container {}: {e}", spec.name)))?;
        let engine = Engine {
            spec: spec.clone(),
            command,
            port,
            data_dir,
            status: Arc::new(Status::new()),
            supervisor: None,
            saved,
        };
        engines.insert(spec.name.clone(), engine);
        Ok(created(&spec.name, port))
    }

    /// Spawns the engine under a supervisor; a no-op while it is running or restarting.
    async fn start(&self, container_id: &str) -> Result<(), ContainerError> {
        // A previous supervisor ended on its own (crash past the policy, or exit 0):
        // reap it.
        if let Some(previous) = self.spawn_supervised(container_id)? {
            previous.stop(Duration::ZERO).await;
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`; a no-op when not running.
    async fn stop(&self, container_id: &str, grace: Duration) -> Result<(), ContainerError> {
        let supervisor = {
            let mut engines = self.engines();
            let engine = engines
                .get_mut(container_id)
                .ok_or_else(|| not_found(container_id))?;
            self.save_running(engine, false);
            engine.supervisor.take()
        };
        if let Some(supervisor) = supervisor {
            supervisor.stop(grace).await;
        }
        Ok(())
    }

    /// Kills the engine if it still runs and forgets the container; its data directory
    /// stays (data-volume semantics), so a container created again under the same name
    /// resumes the game.
    async fn remove(&self, container_id: &str) -> Result<(), ContainerError> {
        let engine = {
            let mut engines = self.engines();
            let engine = engines
                .remove(container_id)
                .ok_or_else(|| not_found(container_id))?;
            // Under the lock: a create of the same name right after writes its own file.
            if let Err(error) = saved::delete(&self.inner.config.data_root, container_id) {
                // Left behind, it would bring the container back at the next start, where
                // the reconciler removes it again (its game's record no longer names it).
                tracing::warn!(%error, container = %container_id, "saved container not deleted");
            }
            engine
        };
        if let Some(supervisor) = engine.supervisor {
            supervisor.stop(Duration::ZERO).await;
        }
        let _ = self.inner.events.send(ContainerEvent {
            container_id: container_id.to_owned(),
            game_id: Some(engine.spec.game_id),
            action: "destroy".to_owned(),
        });
        Ok(())
    }

    async fn inspect(&self, container_id: &str) -> Result<ContainerInfo, ContainerError> {
        let engines = self.engines();
        let engine = engines
            .get(container_id)
            .ok_or_else(|| not_found(container_id))?;
        Ok(Self::info(container_id, engine))
    }

    /// The last `lines` lines of the engine's log file ([`LOG_FILE`] in its data
    /// directory, where its standard output and error go, across its runs), read from at
    /// most the file's last 64 KiB.
    async fn logs(&self, container_id: &str, lines: usize) -> Result<Vec<String>, ContainerError> {
        let path = self
            .engines()
            .get(container_id)
            .ok_or_else(|| not_found(container_id))?
            .data_dir
            .join(LOG_FILE);
        tail_lines(&path, lines)
            .await
            .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))
    }

    async fn list_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerInfo>, ContainerError> {
        let engines = self.engines();
        let mut found: Vec<ContainerInfo> = engines
            .iter()
            .filter(|(_, engine)| engine.spec.labels.get(key).map(String::as_str) == Some(value))
            .map(|(id, engine)| Self::info(id, engine))
            .collect();
        found.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(found)
    }

    /// The supervisor's `start`, `die`, `stop` and `destroy` events from now on. A
    /// subscriber that falls more than 256 events behind gets one `Err` saying how many it
    /// missed, then the stream goes on.
    async fn events(
        &self,
    ) -> Result<BoxStream<'static, Result<ContainerEvent, ContainerError>>, ContainerError> {
        let receiver = self.inner.events.subscribe();
        let events = stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(event) => Some((Ok(event), receiver)),
                Err(broadcast::error::RecvError::Lagged(missed)) => Some((
                    Err(failed(format!("missed {missed} container events"))),
                    receiver,
                )),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok(events.boxed())
    }
}

/// The last `lines` lines of the file at `path` (none when it does not exist), read
/// from at most its last [`LOG_TAIL_BYTES`].
async fn tail_lines(path: &Path, lines: usize) -> std::io::Result<Vec<String>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let start = file.metadata().await?.len().saturating_sub(LOG_TAIL_BYTES);
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut bytes = Vec::new();
    file.take(LOG_TAIL_BYTES).read_to_end(&mut bytes).await?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        // The read began mid-line.
        all.remove(0);
    }
    let from = all.len().saturating_sub(lines);
    Ok(all[from..].iter().map(|line| (*line).to_owned()).collect())
}

/// `prlimit`'s options for `limits`: the memory bound as `RLIMIT_DATA` (the engine's
/// writable private memory: heap and anonymous mappings, which is what "memory" means for
/// an engine, where `RLIMIT_AS` would also count address space reserved and never used),
/// and no core dumps. CPU and process counts have no per-process rlimit that fits
/// (`RLIMIT_CPU` ends a long-lived engine, `RLIMIT_NPROC` counts every process of the
/// user).
fn rlimit_args(limits: &EngineLimits) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(bytes) = limits.memory_bytes {
        args.push(format!("--data={bytes}"));
    }
    args.push("--core=0".to_owned());
    args
}

/// `prlimit` on `PATH`, if any.
fn find_prlimit() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prlimit"))
        .find(|candidate| check_executable(candidate).is_ok())
}

/// Makes `dir` (and its parents) and keeps it to the server's user (mode 700): a game's
/// state is no other local user's to read.
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn created(name: &str, port: u16) -> CreatedContainer {
    CreatedContainer {
        container_id: name.to_owned(),
        engine_endpoint: format!("http://{}", loopback(port)),
    }
}

/// The program file of `command`, checked to be an executable file. A relative path is
/// made absolute from the server's working directory here, because the engine is
/// spawned in its data directory, where the path as written would name nothing (exit
/// status 127).
fn resolve_program(command: &CommandLine) -> Result<PathBuf, ContainerError> {
    let path_var = std::env::var("PATH").ok();
    let cwd = std::env::current_dir()
        .map_err(|e| failed(format!("cannot read the working directory: {e}")))?;
    let program = command
        .resolve_program(path_var.as_deref(), &cwd)
        .ok_or_else(|| {
            ContainerError::NotFound(format!(
                "engine program {:?} (in PATH, from the command line {command})",
                command.program()
            ))
        })?;
    check_executable(&program)?;
    Ok(program)
}

fn check_executable(program: &Path) -> Result<(), ContainerError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(program)
        .map_err(|_| ContainerError::NotFound(format!("engine program {}", program.display())))?;
    if !metadata.is_file() {
        return Err(failed(format!(
            "engine program {} is not a file",
            program.display()
        )));
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(failed(format!(
            "engine program {} is not executable (chmod +x it)",
            program.display()
        )));
    }
    Ok(())
}

/// A container name usable as one directory name, not hidden (a leading dot is kept for
/// the runtime's own directories, such as the saved containers').
pub(crate) fn valid_name(name: &str) -> Result<&str, ContainerError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(failed(format!(
            "invalid container name {name:?}: use letters, digits, '-', '_' and '.'"
        )))
    }
}

fn not_found(container_id: &str) -> ContainerError {
    ContainerError::NotFound(format!("container {container_id}"))
}

fn failed(reason: impl Into<String>) -> ContainerError {
    ContainerError::Failed(reason.into())
}
