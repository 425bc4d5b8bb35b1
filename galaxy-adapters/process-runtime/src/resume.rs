//! Engines outliving their server: which containers a previous runtime on the same data
//! root had running ([`ProcessRuntime::resumable`]), starting them again
//! ([`ProcessRuntime::resume`]), and saving what the platform last asked of each (see
//! `saved.rs` for the files).

use std::time::Duration;

use galaxy_core::domain::GameId;

use crate::{Engine, ProcessRuntime, loopback, saved};

/// The directory under the data root where each container the runtime created is saved
/// (spec, port, whether the platform wants it running), so the next runtime on the same
/// data root knows it again ([`ProcessRuntime::resume`]). It describes this machine's
/// processes, not game data: a backup leaves it out, so that a restored copy (a scratch
/// server beside the live one, a new machine) never starts engines on the live one's
/// ports.
pub const SAVED_CONTAINERS_DIR: &str = ".containers";

/// A container a previous runtime on the same data root had running
/// ([`ProcessRuntime::resumable`]), with what the caller checks before resuming it: an
/// engine created under another command line or token than the server would give it now
/// (`GALAXY_PROCESS_ENGINES` or the engine secret changed) should be created anew, not
/// resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedContainer {
    /// The container's id (its name).
    pub container_id: String,
    /// Its game.
    pub game_id: GameId,
    /// The command line it was created with.
    pub engine: String,
    /// The token it was created with (redacted in `Debug`).
    pub token: galaxy_core::domain::engine_auth::EngineToken,
}

impl ProcessRuntime {
    /// The containers a previous runtime on this data root had running when it went away
    /// (a server restart, an upgrade, a crash), with their games, for
    /// [`ProcessRuntime::resume`]. An engine the platform stopped is not among them.
    pub fn resumable(&self) -> Vec<SavedContainer> {
        let mut found: Vec<SavedContainer> = self
            .engines()
            .iter()
            .filter(|(_, engine)| engine.saved.running && engine.supervisor.is_none())
            .map(|(id, engine)| SavedContainer {
                container_id: id.clone(),
                game_id: engine.spec.game_id,
                engine: engine.spec.engine.clone(),
                token: engine.spec.token.clone(),
            })
            .collect();
        found.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        found
    }

    /// Starts the engines of `containers` (of [`ProcessRuntime::resumable`]: the caller
    /// keeps those its store still has running) and waits up to `bound` in all for them to
    /// listen on its port, so a turn due at once finds it. Same port, data directory and
    /// token as before, so its runtime record still holds and its game goes on instead
    /// of pausing. Returns the containers started; one that cannot be started is logged
    /// and left `exited`, for the platform's inspect pass to restart (or to pause its
    /// game), and a container not named stays `exited` for the reconciler.
    pub async fn resume(&self, containers: &[String], bound: Duration) -> Vec<String> {
        let mut resumed = Vec::new();
        for id in containers {
            let Some(port) = self.engines().get(id).map(|engine| engine.port) else {
                continue;
            };
            match self.spawn_supervised(id) {
                Ok(_) => resumed.push((id.clone(), port)),
                Err(error) => tracing::warn!(%error, container = %id, "engine not resumed"),
            }
        }
        let deadline = tokio::time::Instant::now() + bound;
        for (id, port) in &resumed {
            while tokio::net::TcpStream::connect(loopback(*port))
                .await
                .is_err()
            {
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(container = %id, "a resumed engine does not listen yet");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if !resumed.is_empty() {
            tracing::info!(
                engines = resumed.len(),
                "engines of the previous run resumed"
            );
        }
        resumed.into_iter().map(|(id, _)| id).collect()
    }

    /// Saves whether the platform wants `engine` running (see [`ProcessRuntime::resume`]),
    /// under the caller's lock on the engines, so the file follows the map in the order
    /// the calls came. A failure is logged, not returned: the start or stop itself
    /// happened, and what is lost is only the next runtime's knowledge of it (an engine
    /// not resumed: its game pauses, as without the record; an engine resumed although
    /// stopped: the reconciler stops and removes one whose game ended).
    pub(crate) fn save_running(&self, engine: &mut Engine, running: bool) {
        if engine.saved.running == running {
            return;
        }
        let mut saved = engine.saved.clone();
        saved.running = running;
        match saved::write(&self.inner.config.data_root, &saved) {
            Ok(()) => engine.saved = saved,
            Err(error) => {
                tracing::warn!(%error, container = %saved.name, running, "container state not saved");
            }
        }
    }
}
