//! The runtime's settings (`GALAXY_RUNTIME`, the engine registries, the worker pool, the
//! health workers, and how engines are confined: [`engines`]), read by
//! [`super::Config::from_vars`].

pub mod engines;

use std::path::{Path, PathBuf};
use std::time::Duration;

use galaxy_core::service::runtime::EngineRegistry;

pub use self::engines::{DockerNetwork, EngineSettings};
use super::{Config, ConfigError, Layered, Vars};

/// Which container runtime runs the engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Engines as local child processes (`galaxy-process-runtime`).
    Process,
    /// Engines as Docker containers (`galaxy-docker`).
    Docker,
    /// No runtime: games can be created and enrolled but never start.
    None,
}

/// The runtime part of the configuration.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// `GALAXY_RUNTIME`; `None` means the mode's default (process in dev, Docker
    /// otherwise), decided where the mode is known.
    pub kind: Option<RuntimeKind>,
    /// Engine name -> image, for the Docker runtime.
    pub docker_engines: EngineRegistry,
    /// Engine name -> command line, for the process runtime.
    pub process_engines: EngineRegistry,
    /// Start/stop jobs run at once (the job pool's bound).
    pub workers: u32,
    /// This installation's name, the `galaxy.instance` label of its containers.
    pub instance: String,
    /// Whether a game whose engine fails its probes is paused.
    pub pause_on_unhealthy: bool,
    /// Consecutive failed probes that make an engine `probe_failed`.
    pub probe_threshold: u32,
    /// Idle poll of the job worker and the turn scheduler.
    pub interval: Duration,
    /// Period of the health probe, the inspect pass and the reconciler.
    pub health_interval: Duration,
    /// How long a claimed start/stop job is held before another worker (or a restarted
    /// server) may take it over, unless its worker renews it (a running job does, every
    /// third of this).
    pub job_lease: Duration,
    /// Largest `orders` value (serialised JSON) a player may submit.
    pub max_orders_bytes: usize,
    /// Largest report the platform fetches from an engine and archives.
    pub max_report_bytes: usize,
    /// Limits, user, credential secret and networking of the engines.
    pub engines: EngineSettings,
}

impl RuntimeSettings {
    /// The runtime to use in a mode whose default is `default`.
    pub fn kind_or(&self, default: RuntimeKind) -> RuntimeKind {
        self.kind.unwrap_or(default)
    }

    /// The registry of the chosen runtime (empty of meaning for `none`, where the
    /// Docker list still names what games may ask for).
    pub fn registry(&self, kind: RuntimeKind) -> &EngineRegistry {
        match kind {
            RuntimeKind::Process => &self.process_engines,
            RuntimeKind::Docker | RuntimeKind::None => &self.docker_engines,
        }
    }
}

/// The hidden subcommand under which `galaxy-server` (and `galaxy-cli`) serve the
/// reference engine themselves, from `GALAXY_ENGINE_ADDR`, `GALAXY_ENGINE_DATA_DIR` and
/// `GALAXY_ENGINE_TOKEN` as the `galaxy-engine` binary does: their process runtime's
/// default when no `galaxy-engine` was built ([`self_engine_command`];
/// `cargo run -p galaxy-server -- dev` on a fresh clone builds only the server).
pub const REFERENCE_ENGINE_SUBCOMMAND: &str = "reference-engine";

/// The reference engine's default command line for the process runtime: the
/// `galaxy-engine` binary next to the running executable, else `galaxy-engine` (looked up
/// on `PATH` when an engine starts). The `galaxy-server` and `galaxy-cli` binaries, which
/// can serve the reference engine themselves, default to [`self_engine_command`] instead.
pub fn default_engine_command() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| beside(&exe))
        .unwrap_or_else(|| "galaxy-engine".to_owned())
}

/// The reference engine's command line for a binary that has the
/// [`REFERENCE_ENGINE_SUBCOMMAND`] (`galaxy-server`, `galaxy-cli`): `galaxy-engine` beside
/// it, else the binary itself with the subcommand, so `cargo run -p galaxy-server -- dev`
/// plays games on a fresh clone where no `galaxy-engine` was built. Only such a binary may
/// use it: any other program would start itself once per game.
pub fn self_engine_command() -> String {
    match std::env::current_exe() {
        Ok(exe) => self_engine_command_for(&exe),
        Err(_) => "galaxy-engine".to_owned(),
    }
}

/// Makes `config`'s reference engine [`self_engine_command`] unless the operator set
/// `GALAXY_PROCESS_ENGINES`: what `galaxy-server` runs, and what `galaxy-cli doctor`
/// checks in its place.
pub fn use_self_engine(config: &mut Config, layered: &Layered) {
    if layered.is_set("GALAXY_PROCESS_ENGINES") {
        return;
    }
    if let Ok(registry) = EngineRegistry::parse(&format!("reference={}", self_engine_command())) {
        config.runtime.process_engines = registry;
    }
}

/// [`self_engine_command`] for the executable at `exe`.
fn self_engine_command_for(exe: &Path) -> String {
    beside(exe).unwrap_or_else(|| format!("{} {REFERENCE_ENGINE_SUBCOMMAND}", quote(exe)))
}

/// `galaxy-engine` in the directory of `exe`, if it is a file there.
fn beside(exe: &Path) -> Option<String> {
    let path = exe.parent()?.join("galaxy-engine");
    path.is_file().then(|| quote(&path))
}

/// A path as one word of an engine's command line (quoted when it holds spaces), as
/// `GALAXY_PROCESS_ENGINES` entries take it.
pub fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    }
}

fn registry(
    v: &Vars<'_>,
    variable: &'static str,
    default: impl FnOnce() -> String,
) -> Result<EngineRegistry, ConfigError> {
    let list = v.raw(variable).map_or_else(default, str::to_owned);
    EngineRegistry::parse(&list).map_err(|error| ConfigError::Invalid {
        variable,
        value: list.chars().take(200).collect(),
        expected: format!("name=target entries separated by `;` ({error})"),
    })
}

/// Reads every runtime setting.
pub(super) fn read(v: &Vars<'_>) -> Result<RuntimeSettings, ConfigError> {
    let kind = v
        .raw("GALAXY_RUNTIME")
        .map(|value| match value {
            "process" => Ok(RuntimeKind::Process),
            "docker" => Ok(RuntimeKind::Docker),
            "none" => Ok(RuntimeKind::None),
            other => Err(ConfigError::Invalid {
                variable: "GALAXY_RUNTIME",
                value: other.to_owned(),
                expected: "process, docker or none".to_owned(),
            }),
        })
        .transpose()?;
    let docker_default = Vars::default_of("GALAXY_ENGINES");
    let docker_engines = registry(v, "GALAXY_ENGINES", || docker_default.to_owned())?;
    let process_engines = registry(v, "GALAXY_PROCESS_ENGINES", || {
        format!("reference={}", default_engine_command())
    })?;
    let mut registered = docker_engines.names();
    registered.extend(process_engines.names());
    let engines = engines::read(v, &registered)?;
    Ok(RuntimeSettings {
        kind,
        docker_engines,
        process_engines,
        engines,
        workers: v.parse_with("GALAXY_RUNTIME_WORKERS", "a number from 1 to 256", |s| {
            s.parse().ok().filter(|n| (1..=256).contains(n))
        })?,
        instance: v.parse_with(
            "GALAXY_INSTANCE",
            "1 to 63 of a-z, 0-9, '_', '.' or '-'",
            |s| {
                let ok = (1..=63).contains(&s.len())
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
                ok.then(|| s.to_owned())
            },
        )?,
        pause_on_unhealthy: v.parse_with("GALAXY_PAUSE_ON_UNHEALTHY", "true or false", |s| {
            s.parse().ok()
        })?,
        probe_threshold: v.parse_with(
            "GALAXY_PROBE_FAILURE_THRESHOLD",
            "a number from 1 to 100",
            |s| s.parse().ok().filter(|n| (1..=100).contains(n)),
        )?,
        interval: v.duration("GALAXY_RUNTIME_INTERVAL")?,
        health_interval: v.duration("GALAXY_HEALTH_INTERVAL")?,
        job_lease: v.duration("GALAXY_RUNTIME_JOB_LEASE")?,
        max_orders_bytes: v.parse_with(
            "GALAXY_MAX_ORDERS_BYTES",
            "a byte count from 1024 to 8388608",
            |s| {
                s.parse()
                    .ok()
                    .filter(|n| (1024..=8 * 1024 * 1024).contains(n))
            },
        )?,
        max_report_bytes: v.parse_with(
            "GALAXY_MAX_REPORT_BYTES",
            "a byte count from 4096 to 67108864",
            |s| {
                s.parse()
                    .ok()
                    .filter(|n| (4096..=64 * 1024 * 1024).contains(n))
            },
        )?,
    })
}

/// Where the process runtime keeps each game's data: `$GALAXY_DATA_DIR/engines`.
pub fn engines_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("engines")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use galaxy_core::domain::game::EngineName;

    use super::*;
    use crate::config::Config;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(&vars)
    }

    #[test]
    fn a_binary_with_the_subcommand_runs_galaxy_engine_beside_else_itself() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("galaxy-server");
        std::fs::write(&exe, b"").unwrap();
        let alone = self_engine_command_for(&exe);
        assert_eq!(alone, format!("{} reference-engine", exe.display()));
        let engine = dir.path().join("galaxy-engine");
        std::fs::write(&engine, b"").unwrap();
        assert_eq!(self_engine_command_for(&exe), engine.display().to_string());
        let spaced = tempfile::Builder::new().prefix("a b").tempdir().unwrap();
        let exe = spaced.path().join("galaxy-server");
        let quoted = format!("\"{}\" reference-engine", exe.display());
        assert_eq!(self_engine_command_for(&exe), quoted);
    }

    #[test]
    fn defaults_leave_the_kind_to_the_mode_and_register_the_reference_engine() {
        let runtime = config(&[]).unwrap().runtime;
        assert_eq!(runtime.kind, None);
        assert_eq!(runtime.kind_or(RuntimeKind::Docker), RuntimeKind::Docker);
        let reference = EngineName::reference();
        let image = runtime.docker_engines.resolve(&reference).unwrap();
        assert_eq!(image, "galaxy-engine:0.2");
        let command = runtime.process_engines.resolve(&reference).unwrap();
        assert_eq!(command, default_engine_command());
        assert_eq!((runtime.workers, runtime.probe_threshold), (4, 3));
        assert!(!runtime.pause_on_unhealthy);
    }

    #[test]
    fn registries_and_kinds_parse() {
        let runtime = config(&[
            ("GALAXY_RUNTIME", "process"),
            (
                "GALAXY_PROCESS_ENGINES",
                "reference=/opt/engine --quiet; classic=/bin/pbem",
            ),
            ("GALAXY_PAUSE_ON_UNHEALTHY", "true"),
        ])
        .unwrap()
        .runtime;
        assert_eq!(runtime.kind, Some(RuntimeKind::Process));
        assert!(runtime.pause_on_unhealthy);
        let names = runtime.registry(RuntimeKind::Process).names();
        assert_eq!(names.len(), 2);
        assert_eq!(runtime.registry(RuntimeKind::Docker).names().len(), 1);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (variable, value) in [
            ("GALAXY_RUNTIME", "kubernetes"),
            ("GALAXY_ENGINES", "reference"),
            ("GALAXY_ENGINES", "reference=a; reference=b"),
            ("GALAXY_ENGINES", "Bad Name!=image"),
            ("GALAXY_PROCESS_ENGINES", "reference="),
            ("GALAXY_RUNTIME_WORKERS", "0"),
            ("GALAXY_PROBE_FAILURE_THRESHOLD", "none"),
            ("GALAXY_PAUSE_ON_UNHEALTHY", "maybe"),
            ("GALAXY_RUNTIME_INTERVAL", "0s"),
            ("GALAXY_HEALTH_INTERVAL", "soon"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err().to_string();
            assert!(error.contains(variable), "{variable}={value}: {error}");
        }
    }
}
