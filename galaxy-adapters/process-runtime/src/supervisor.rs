//! One task per started engine: it owns the child process, restarts it after a crash as
//! the [`RestartPolicy`] allows, stops it on request, and reports each change as an event.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use galaxy_core::domain::GameId;
use galaxy_core::ports::ContainerEvent;
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, oneshot};

use crate::config::RestartPolicy;

/// Where a container's process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Created, never started.
    Created,
    /// A process is alive.
    Running,
    /// Crashed; the supervisor is waiting to start it again.
    Restarting,
    /// No process, and none coming.
    Exited,
}

impl RunState {
    /// Docker's word for the state, as `ContainerInfo::state` carries it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
        }
    }
}

/// Where a container is, and how its last run ended.
#[derive(Debug, Clone, Copy)]
struct Life {
    /// The current state.
    state: RunState,
    /// The exit code of the last run once it ended (Docker's `State.ExitCode`); `None`
    /// while a process runs or before the first one.
    exit_code: Option<i64>,
}

/// What the runtime and the supervisor both see of one container.
#[derive(Debug)]
pub(crate) struct Status {
    /// The state and last exit code, changed together (a std mutex: never held across
    /// an await).
    life: Mutex<Life>,
    /// Restarts after crashes, over the container's life (what Docker's `RestartCount` is).
    restarts: AtomicU64,
    /// The live process's id, 0 when none (for operators and crash tests).
    pid: AtomicU32,
}

impl Status {
    pub(crate) fn new() -> Self {
        Self {
            life: Mutex::new(Life {
                state: RunState::Created,
                exit_code: None,
            }),
            restarts: AtomicU64::new(0),
            pid: AtomicU32::new(0),
        }
    }

    /// The status of a container known from a previous run: no process, none coming.
    pub(crate) fn exited() -> Self {
        let status = Self::new();
        status.set(RunState::Exited);
        status
    }

    fn life(&self) -> std::sync::MutexGuard<'_, Life> {
        self.life.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn state(&self) -> RunState {
        self.life().state
    }

    /// The exit code of the last run, once it ended.
    pub(crate) fn exit_code(&self) -> Option<i64> {
        self.life().exit_code
    }

    /// A new state; a process that runs has no exit code yet.
    pub(crate) fn set(&self, state: RunState) {
        let mut life = self.life();
        life.state = state;
        if state == RunState::Running {
            life.exit_code = None;
        }
    }

    /// A run ended with `exit` and the container is now `state` (`Exited`, or
    /// `Restarting` when the policy starts it again): both change at once, so nobody
    /// sees an engine about to be restarted as exited for good.
    fn ended(&self, exit: Option<&ExitStatus>, state: RunState) {
        let mut life = self.life();
        life.state = state;
        if let Some(exit) = exit {
            life.exit_code = Some(exit_code(exit));
        }
    }

    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::SeqCst)).filter(|&pid| pid != 0)
    }

    fn set_pid(&self, child: &Child) {
        self.pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
    }
}

/// How to launch one engine; kept for restarts.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The container id, for events.
    pub container_id: String,
    /// The game, for events.
    pub game_id: GameId,
    /// The resolved program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment (the child starts from an empty one).
    pub env: Vec<(String, String)>,
    /// Its working directory (the data directory).
    pub dir: PathBuf,
    /// Where stdout and stderr go (appended).
    pub log: PathBuf,
}

/// What a stop or a kill reaches: the engine's process group (the engine leads it, so
/// its children go with it), through the `kill` utility.
async fn signal_group(pid: u32, signal: &str) -> bool {
    let sent = Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    matches!(sent, Ok(status) if status.success())
}

impl Launch {
    /// Starts one process of the engine.
    pub(crate) fn spawn(&self) -> std::io::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let stderr = log.try_clone()?;
        Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            // A process group of its own: the server's terminal signals (ctrl-c) do not
            // reach it past the runtime's graceful stop, and a stop reaches whatever the
            // engine started.
            .process_group(0)
            // Dropping the runtime (or a server crash unwinding it) never leaves an engine
            // running unsupervised.
            .kill_on_drop(true)
            .spawn()
    }
}

/// The runtime's handle on a started engine.
#[derive(Debug)]
pub(crate) struct Supervisor {
    /// Asks for a stop with this grace; dropping it stops with no grace.
    stop: oneshot::Sender<Duration>,
    /// The supervising task, awaited after a stop.
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Takes over `child` (already spawned from `launch`) and supervises it.
    pub(crate) fn start(
        launch: Launch,
        child: Child,
        policy: RestartPolicy,
        status: Arc<Status>,
        events: broadcast::Sender<ContainerEvent>,
    ) -> Self {
        let (stop, stop_rx) = oneshot::channel();
        status.set_pid(&child);
        status.set(RunState::Running);
        let run = Run {
            launch,
            policy,
            status,
            events,
        };
        run.emit("start");
        let task = tokio::spawn(run.supervise(child, stop_rx));
        Self { stop, task }
    }

    /// Stops the engine (SIGTERM, then SIGKILL after `grace`) and waits for the supervisor.
    /// An engine that already ended for good just has its supervisor reaped.
    pub(crate) async fn stop(self, grace: Duration) {
        // An error means the supervisor already returned: nothing left to stop.
        let _ = self.stop.send(grace);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "engine supervisor task failed");
        }
    }
}

/// The supervising task's state.
struct Run {
    launch: Launch,
    policy: RestartPolicy,
    status: Arc<Status>,
    events: broadcast::Sender<ContainerEvent>,
}

impl Run {
    async fn supervise(self, mut child: Child, mut stop: oneshot::Receiver<Duration>) {
        loop {
            let pid = child.id();
            let exit = tokio::select! {
                exit = child.wait() => exit,
                grace = &mut stop => {
                    let exit = terminate(&mut child, grace.unwrap_or(Duration::ZERO)).await;
                    return self.stopped(true, exit.as_ref());
                }
            };
            // What the engine started dies with it, as a container's processes do: a
            // helper left behind would keep the port and the state directory from the
            // engine's next start.
            if let Some(pid) = pid {
                signal_group(pid, "-KILL").await;
            }
            self.status.pid.store(0, Ordering::SeqCst);
            let crashed = !matches!(exit, Ok(status) if status.success());
            self.log_exit(&exit);
            let restart = crashed && self.status.restarts() < u64::from(self.policy.max_restarts);
            let next = if restart {
                RunState::Restarting
            } else {
                RunState::Exited
            };
            self.status.ended(exit.as_ref().ok(), next);
            self.emit("die");
            if !restart {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(self.policy.delay) => {}
                _ = &mut stop => return self.stopped(false, None),
            }
            child = match self.launch.spawn() {
                Ok(child) => child,
                Err(error) => {
                    tracing::error!(
                        container = %self.launch.container_id,
                        %error,
                        "engine could not be restarted"
                    );
                    return self.status.set(RunState::Exited);
                }
            };
            self.status.set_pid(&child);
            self.status.restarts.fetch_add(1, Ordering::SeqCst);
            self.status.set(RunState::Running);
            tracing::warn!(
                container = %self.launch.container_id,
                restarts = self.status.restarts(),
                "engine restarted after a crash"
            );
            self.emit("start");
        }
    }

    /// Records a stop asked through the runtime; `died` when a process was ended by it,
    /// `exit` how it exited (when that could be read).
    fn stopped(&self, died: bool, exit: Option<&ExitStatus>) {
        self.status.pid.store(0, Ordering::SeqCst);
        self.status.ended(exit, RunState::Exited);
        if died {
            self.emit("die");
        }
        self.emit("stop");
    }

    fn log_exit(&self, exit: &std::io::Result<ExitStatus>) {
        match exit {
            Ok(status) if status.success() => {
                tracing::info!(container = %self.launch.container_id, "engine exited");
            }
            Ok(status) => {
                tracing::warn!(container = %self.launch.container_id, %status, "engine died");
            }
            Err(error) => {
                tracing::warn!(container = %self.launch.container_id, %error, "engine lost");
            }
        }
    }

    fn emit(&self, action: &str) {
        // No subscriber is not an error: events are a live feed, not a log.
        let _ = self.events.send(ContainerEvent {
            container_id: self.launch.container_id.clone(),
            game_id: Some(self.launch.game_id),
            action: action.to_owned(),
        });
    }
}

/// Docker's exit code for a process end: its status, or 128 plus the signal that
/// killed it.
fn exit_code(exit: &ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (exit.code(), exit.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => -1,
    }
}

/// SIGTERM to the engine's process group (what `docker stop` sends), then SIGKILL to the
/// group when `grace` runs out, or as soon as the engine exited (the processes it started
/// go with it); how the engine exited, when that can be read.
async fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let pid = child.id();
    if let Some(pid) = pid
        && !grace.is_zero()
    {
        // The workspace forbids unsafe code, so no libc::kill: the `kill` utility does it.
        if !signal_group(pid, "-TERM").await {
            tracing::warn!(pid, "could not send SIGTERM to the engine; killing it");
        } else if let Ok(exit) = tokio::time::timeout(grace, child.wait()).await {
            // The engine is gone; whatever it started that outlived the SIGTERM is not.
            signal_group(pid, "-KILL").await;
            return exit.ok();
        }
    }
    if let Some(pid) = pid {
        signal_group(pid, "-KILL").await;
    }
    if let Err(error) = child.kill().await {
        tracing::warn!(%error, "could not kill the engine");
    }
    child.wait().await.ok()
}
