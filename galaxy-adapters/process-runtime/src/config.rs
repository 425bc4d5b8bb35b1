//! The process runtime's settings.

use std::path::PathBuf;
use std::time::Duration;

/// What the supervisor does when an engine process dies on its own.
///
/// Like Docker's `on-failure` policy: an exit with a non-zero status or by a signal is a
/// crash and is restarted, up to `max_restarts` times over the container's life; an exit
/// with status 0 is a normal end and is not. A stop asked through the runtime is never
/// restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// How many restarts a container gets in its life (0: never restart).
    pub max_restarts: u32,
    /// The pause before each restart, so a crash loop does not spin.
    pub delay: Duration,
}

impl RestartPolicy {
    /// Never restart a crashed engine.
    pub const NEVER: Self = Self {
        max_restarts: 0,
        delay: Duration::ZERO,
    };
}

impl Default for RestartPolicy {
    /// Five restarts, one second apart (the Docker runtime's default count).
    fn default() -> Self {
        Self {
            max_restarts: 5,
            delay: Duration::from_secs(1),
        }
    }
}

/// Settings of a [`ProcessRuntime`](crate::ProcessRuntime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRuntimeConfig {
    /// Under which each game's data directory is made: `<data_root>/<container name>`.
    pub data_root: PathBuf,
    /// Crash handling.
    pub restart: RestartPolicy,
    /// Names of the server's environment variables an engine inherits. Nothing else of the
    /// server's environment (database URL, secrets) reaches an engine, as in a container.
    pub inherited_env: Vec<String>,
    /// Launch each engine through `prlimit` (util-linux), which sets its resource limits
    /// and then becomes the engine: a memory bound (`RLIMIT_DATA`, from the spec's
    /// memory limit) and no core dumps (a dump would hold the engine's token). The
    /// workspace forbids unsafe code, so the limits cannot be set between `fork` and
    /// `exec` in-process. Without `prlimit` on `PATH` engines run unbounded, with a
    /// warning.
    pub rlimits: bool,
}

impl ProcessRuntimeConfig {
    /// The defaults with data directories under `data_root`: [`RestartPolicy::default`],
    /// `PATH`, `HOME`, `LANG`, `TZ` and `GALAXY_ENGINE_LOG` inherited, rlimits applied.
    pub fn new(data_root: impl Into<PathBuf>) -> Self {
        Self {
            data_root: data_root.into(),
            restart: RestartPolicy::default(),
            inherited_env: ["PATH", "HOME", "LANG", "TZ", "GALAXY_ENGINE_LOG"]
                .map(String::from)
                .to_vec(),
            rlimits: true,
        }
    }
}
