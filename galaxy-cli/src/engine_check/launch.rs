//! An engine launched by the checker (`--launch`), on the platform's own process runtime:
//! the same command-line rules, environment (`GALAXY_ENGINE_ADDR`,
//! `GALAXY_ENGINE_DATA_DIR`, `GALAXY_ENGINE_TOKEN`), process group and limits as a game
//! gets, so the checker can also kill it, restart it on its data directory, and stop it.

use std::collections::BTreeMap;
use std::time::Duration;

use galaxy_core::domain::GameId;
use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::{
    ContainerError, ContainerRuntime, ContainerSpec, EngineLimits, EngineTarget,
};
use galaxy_core::service::runtime::{
    DEFAULT_CPUS, DEFAULT_MEMORY_BYTES, DEFAULT_PIDS, DEFAULT_PROBE_TIMEOUT,
};
use galaxy_engine_http::{EngineRequest, HttpEngineClient};
use galaxy_process_runtime::{ProcessRuntime, ProcessRuntimeConfig, RestartPolicy};
use tempfile::TempDir;

/// Why a launched engine could not be started, killed, restarted or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The temporary directory for the engines' data.
    #[error("cannot make a temporary data directory: {0}")]
    DataDir(#[source] std::io::Error),
    /// The process runtime refused (the command, the program, a spawn).
    #[error(transparent)]
    Runtime(#[from] ContainerError),
    /// The engine exited before it answered `/healthz`.
    #[error("the engine exited (status {code}){output}")]
    Exited {
        /// Its exit status, `?` when unknown.
        code: String,
        /// `; its last output:` and its last lines, or nothing.
        output: String,
    },
    /// `/healthz` did not answer 2xx in time.
    #[error("/healthz did not answer 2xx within {timeout:?}{output}")]
    NotReady {
        /// The `--start-timeout`.
        timeout: Duration,
        /// `; its last output:` and its last lines, or nothing.
        output: String,
    },
    /// The engine to kill is not running.
    #[error("the engine is not running")]
    NotRunning,
    /// `kill` could not be run or failed.
    #[error("cannot kill the engine's process group -{pid}: {reason}")]
    Kill {
        /// The engine's process (group leader).
        pid: u32,
        /// What went wrong.
        reason: String,
    },
    /// The killed engine did not exit.
    #[error("the killed engine was still running after 10 s")]
    StillRunning,
}

/// How long a stop waits after SIGTERM before SIGKILL (the platform's default grace).
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// One engine process of the checker (a "container" of the process runtime).
#[derive(Debug, Clone)]
pub struct Instance {
    /// The runtime's id of it.
    container: String,
    /// Its base URL (fixed across restarts).
    pub endpoint: String,
}

/// The launched engines: the one checked, and fresh ones for the determinism rule.
pub struct Launched {
    /// Runs the engines; dropping it kills them.
    runtime: ProcessRuntime,
    /// The command line, as an operator registers it.
    command: String,
    /// The game's credential, given to every instance.
    token: EngineToken,
    /// How long an engine may take to answer `/healthz`.
    start_timeout: Duration,
    /// Calls `/healthz` while waiting.
    client: HttpEngineClient,
    /// The data directories; removed when the check ends (declared last: dropped after
    /// the runtime has killed the engines).
    _root: TempDir,
}

impl Launched {
    /// A runtime for `command` whose engines get `token`; nothing runs yet.
    pub async fn new(
        command: &str,
        token: EngineToken,
        start_timeout: Duration,
        client: HttpEngineClient,
    ) -> Result<Self, LaunchError> {
        let root = tempfile::Builder::new()
            .prefix("galaxy-engine-check-")
            .tempdir()
            .map_err(LaunchError::DataDir)?;
        let config = ProcessRuntimeConfig {
            // The checker restarts the engine itself, when it means to.
            restart: RestartPolicy::NEVER,
            ..ProcessRuntimeConfig::new(root.path())
        };
        let runtime = ProcessRuntime::new(config).map_err(LaunchError::DataDir)?;
        // A relative program path (`./target/debug/my-engine`) is taken from this
        // directory by the runtime itself, although the engine runs in its data directory.
        let command = command.to_owned();
        runtime.ensure_image(&command).await?;
        Ok(Self {
            runtime,
            command,
            token,
            start_timeout,
            client,
            _root: root,
        })
    }

    /// Starts an engine named `name` on a data directory of its own and waits until its
    /// `/healthz` answers.
    pub async fn start(&self, name: &str) -> Result<Instance, LaunchError> {
        let game_id = GameId::from_uuid(uuid::Uuid::now_v7());
        let spec = ContainerSpec {
            name: name.to_owned(),
            game_id,
            engine: self.command.clone(),
            labels: BTreeMap::new(),
            env: BTreeMap::new(),
            token: self.token.clone(),
            limits: EngineLimits {
                memory_bytes: Some(DEFAULT_MEMORY_BYTES),
                cpus: Some(DEFAULT_CPUS),
                pids: Some(DEFAULT_PIDS),
            },
        };
        let created = self.runtime.create(&spec).await?;
        let instance = Instance {
            container: created.container_id,
            endpoint: created.engine_endpoint,
        };
        self.runtime.start(&instance.container).await?;
        self.wait_ready(&instance).await?;
        Ok(instance)
    }

    /// The target of `instance`, with the token.
    pub fn target(&self, instance: &Instance) -> EngineTarget {
        EngineTarget::new(instance.endpoint.clone(), self.token.clone())
    }

    /// Polls `/healthz` until it answers 2xx; fails with the engine's last output when it
    /// exits or the timeout passes. Each poll is bounded as the platform bounds its own
    /// ([`DEFAULT_PROBE_TIMEOUT`]): a poll answered later does not count.
    async fn wait_ready(&self, instance: &Instance) -> Result<(), LaunchError> {
        let deadline = tokio::time::Instant::now() + self.start_timeout;
        let target = self.target(instance);
        loop {
            let poll = self.client.send(&target, EngineRequest::healthz());
            if let Ok(Ok(answer)) = tokio::time::timeout(DEFAULT_PROBE_TIMEOUT, poll).await
                && answer.is_success()
            {
                return Ok(());
            }
            let info = self.runtime.inspect(&instance.container).await?;
            if info.exited_for_good() {
                let code = info
                    .exit_code
                    .map_or_else(|| "?".to_owned(), |c| c.to_string());
                return Err(LaunchError::Exited {
                    code,
                    output: self.log_tail(instance).await,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LaunchError::NotReady {
                    timeout: self.start_timeout,
                    output: self.log_tail(instance).await,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The engine's last lines of output, for an error.
    async fn log_tail(&self, instance: &Instance) -> String {
        match self.runtime.logs(&instance.container, 15).await {
            Ok(lines) if !lines.is_empty() => format!("; its last output:\n{}", lines.join("\n")),
            _ => String::new(),
        }
    }

    /// Kills the engine (SIGKILL to its process group, a crash) and starts it again on
    /// the same data directory and port, waiting until `/healthz` answers.
    pub async fn crash_and_restart(&self, instance: &Instance) -> Result<(), LaunchError> {
        let pid = self
            .runtime
            .pid(&instance.container)
            .ok_or(LaunchError::NotRunning)?;
        let killed = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status()
            .await
            .map_err(|e| LaunchError::Kill {
                pid,
                reason: format!("cannot run kill: {e}"),
            })?;
        if !killed.success() {
            return Err(LaunchError::Kill {
                pid,
                reason: format!("kill -KILL exited with {killed}"),
            });
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let info = self.runtime.inspect(&instance.container).await?;
            if info.exited_for_good() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LaunchError::StillRunning);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.runtime.start(&instance.container).await?;
        self.wait_ready(instance).await
    }

    /// Stops the engine as the platform does (SIGTERM, SIGKILL after [`STOP_GRACE`]);
    /// its exit status (128 + the signal when a signal ended it).
    pub async fn stop(&self, instance: &Instance) -> Result<Option<i64>, LaunchError> {
        self.runtime.stop(&instance.container, STOP_GRACE).await?;
        let info = self.runtime.inspect(&instance.container).await?;
        Ok(info.exit_code)
    }

    /// Stops every engine still running, with no grace.
    pub async fn shutdown(&self) {
        self.runtime.shutdown(Duration::ZERO).await;
    }
}
