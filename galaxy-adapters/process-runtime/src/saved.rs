//! What of a container outlives the server: one JSON file per container under
//! `<data_root>/.containers/` (mode 600: it holds the engine's token), written at create,
//! rewritten when the platform starts or stops the engine, deleted at remove. A new
//! [`ProcessRuntime`](crate::ProcessRuntime) reads them back, so a restarted server knows
//! its engines again, as a Docker daemon does its containers, and
//! [`ProcessRuntime::resume`](crate::ProcessRuntime::resume) starts those the platform
//! had running (Docker's `unless-stopped`): a restart or an upgrade no longer pauses every
//! game. The files sit beside the engines' data directories, not in them; an engine
//! runs as the server's user, though, and could reach them as it could the server's other
//! files: the server checks a saved command line and token against its configuration
//! before it resumes one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use galaxy_core::domain::GameId;
use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::{ContainerSpec, EngineLimits};
use serde::{Deserialize, Serialize};

/// The directory of the saved containers, under the data root. A container name never
/// starts with a dot (`valid_name`), so no engine's data directory can be this one.
const DIR: &str = crate::SAVED_CONTAINERS_DIR;

/// One saved container: its spec, its port and whether the platform wants it running.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Saved {
    /// The container's name (its id).
    pub(crate) name: String,
    /// The game, as its id text.
    pub(crate) game_id: String,
    /// The engine's command line.
    pub(crate) engine: String,
    /// Labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// The engine's own environment.
    pub(crate) env: BTreeMap<String, String>,
    /// The engine's credential.
    pub(crate) token: String,
    /// Memory bound in bytes.
    pub(crate) memory_bytes: Option<u64>,
    /// CPU bound (not applied by this runtime; kept for the spec).
    pub(crate) cpus: Option<f64>,
    /// Process bound (not applied by this runtime; kept for the spec).
    pub(crate) pids: Option<u32>,
    /// The loopback port, fixed at create.
    pub(crate) port: u16,
    /// Started by the platform and not stopped since: started again by `resume`.
    pub(crate) running: bool,
}

/// Everything but the token, which never prints.
impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("name", &self.name)
            .field("game_id", &self.game_id)
            .field("engine", &self.engine)
            .field("port", &self.port)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Saved {
    /// The record of a container created from `spec` on `port`, not yet started.
    pub(crate) fn new(spec: &ContainerSpec, port: u16) -> Self {
        Self {
            name: spec.name.clone(),
            game_id: spec.game_id.to_string(),
            engine: spec.engine.clone(),
            labels: spec.labels.clone(),
            env: spec.env.clone(),
            token: spec.token.expose().to_owned(),
            memory_bytes: spec.limits.memory_bytes,
            cpus: spec.limits.cpus,
            pids: spec.limits.pids,
            port,
            running: false,
        }
    }

    /// The spec it was created from; `None` when its game id does not parse.
    pub(crate) fn spec(&self) -> Option<ContainerSpec> {
        Some(ContainerSpec {
            name: self.name.clone(),
            game_id: GameId::parse(&self.game_id).ok()?,
            engine: self.engine.clone(),
            labels: self.labels.clone(),
            env: self.env.clone(),
            token: EngineToken::new(self.token.clone()),
            limits: EngineLimits {
                memory_bytes: self.memory_bytes,
                cpus: self.cpus,
                pids: self.pids,
            },
        })
    }
}

/// Where the saved containers of `data_root` live.
pub(crate) fn dir(data_root: &Path) -> PathBuf {
    data_root.join(DIR)
}

/// Writes `saved` whole: to a temporary file (mode 600), synced, then renamed over the
/// old one, so a crash leaves the old record or the new one, never half of one.
pub(crate) fn write(data_root: &Path, saved: &Saved) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = dir(data_root);
    crate::private_dir(&dir)?;
    let json = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
    let path = dir.join(format!("{}.json", saved.name));
    let temporary = dir.join(format!("{}.json.tmp", saved.name));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(&json)?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)
}

/// Deletes the record of container `name` (none is fine).
pub(crate) fn delete(data_root: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir(data_root).join(format!("{name}.json"))) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Every saved container of `data_root`, by name. A file that cannot be read is logged
/// and skipped: one bad record must not keep the server from starting.
pub(crate) fn read_all(data_root: &Path) -> Vec<Saved> {
    let dir = dir(data_root);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "saved engines not readable");
            return Vec::new();
        }
    };
    let mut all = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let read = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<Saved>(&bytes).map_err(|e| e.to_string()));
        match read {
            Ok(saved) if saved.spec().is_some() && crate::valid_name(&saved.name).is_ok() => {
                all.push(saved);
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "saved engine skipped: bad name or game id")
            }
            Err(error) => tracing::warn!(%error, path = %path.display(), "saved engine skipped"),
        }
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}
