//! The data directory: the game's state and every turn's reports, written atomically.
//!
//! Layout: `state.json` (the whole game, pending orders included) and
//! `reports/turn-NNNNN.json` (every race's report of one turn). A turn writes its
//! reports first and the state last, so a crash in between leaves the previous state,
//! and re-running the turn (deterministic) rewrites the same reports.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::game::{Game, Report};

/// The state file layout version this engine reads and writes.
const FORMAT: u32 = 1;

/// Why the data directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file system call failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file does not hold what this engine wrote.
    #[error("{path} is not a valid engine file: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The state was written by an engine with another file format.
    #[error("{path} has format {found}; this engine reads format {FORMAT}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Its format number.
        found: u32,
    },
    /// The state could not be serialized.
    #[error("cannot serialize the state: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The blocking file task did not finish (the runtime is shutting down).
    #[error("file task failed: {0}")]
    Task(String),
}

/// The state file's content.
#[derive(Serialize, Deserialize)]
struct StateFile {
    /// [`FORMAT`] when written.
    format: u32,
    /// The game.
    game: Game,
}

/// Just the format number of a state file.
#[derive(Deserialize)]
struct Header {
    /// The layout version.
    format: u32,
}

/// A game's data directory.
#[derive(Debug, Clone)]
pub struct Store {
    /// The directory (created on open).
    dir: PathBuf,
}

impl Store {
    /// Opens (creating it if needed) a data directory and loads its game, if any. A
    /// state file that cannot be read is an error, never a silent fresh start.
    pub fn open(dir: &Path) -> Result<(Self, Option<Game>), StoreError> {
        let reports = dir.join("reports");
        fs::create_dir_all(&reports).map_err(io_error("create", &reports))?;
        let store = Self {
            dir: dir.to_owned(),
        };
        let path = store.state_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((store, None)),
            Err(e) => return Err(io_error("read", &path)(e)),
        };
        let corrupt = |source| StoreError::Corrupt {
            path: path.clone(),
            source,
        };
        // The format first, so that a newer layout is reported as such, not as garbage.
        let header: Header = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if header.format != FORMAT {
            return Err(StoreError::Format {
                path: path.clone(),
                found: header.format,
            });
        }
        let file: StateFile = serde_json::from_slice(&bytes).map_err(corrupt)?;
        Ok((store, Some(file.game)))
    }

    /// Persists the game (after init, orders or a turn).
    pub async fn save_state(&self, game: &Game) -> Result<(), StoreError> {
        let bytes = state_bytes(game)?;
        let path = self.state_path();
        blocking(move || write_atomic(&path, &bytes)).await
    }

    /// Persists a turn: its reports first, then the state that says it happened.
    pub async fn save_turn(
        &self,
        game: &Game,
        reports: &BTreeMap<String, Report>,
    ) -> Result<(), StoreError> {
        let report_path = self.reports_path(game.turn);
        let report_bytes = serde_json::to_vec(reports).map_err(StoreError::Serialize)?;
        let state = state_bytes(game)?;
        let state_path = self.state_path();
        blocking(move || {
            write_atomic(&report_path, &report_bytes)?;
            write_atomic(&state_path, &state)
        })
        .await
    }

    /// Every race's report of a played turn.
    pub async fn load_reports(&self, turn: u32) -> Result<BTreeMap<String, Report>, StoreError> {
        let path = self.reports_path(turn);
        blocking(move || {
            let bytes = fs::read(&path).map_err(io_error("read", &path))?;
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt { path, source })
        })
        .await
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn reports_path(&self, turn: u32) -> PathBuf {
        self.dir
            .join("reports")
            .join(format!("turn-{turn:05}.json"))
    }
}

fn state_bytes(game: &Game) -> Result<Vec<u8>, StoreError> {
    let file = StateFile {
        format: FORMAT,
        game: game.clone(),
    };
    serde_json::to_vec(&file).map_err(StoreError::Serialize)
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// Write to a temporary file, flush it to disk, rename it over the target: readers and
/// restarts see the old content or the new, never a torn file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("json.tmp");
    let mut file = File::create(&tmp).map_err(io_error("create", &tmp))?;
    file.write_all(bytes).map_err(io_error("write", &tmp))?;
    file.sync_all().map_err(io_error("sync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_error("rename", &tmp))?;
    // Makes the rename itself durable. Best effort: some platforms cannot open a
    // directory for syncing, and the data is already safely in the renamed file.
    if let Some(parent) = path.parent() {
        let _ = File::open(parent).and_then(|dir| dir.sync_all());
    }
    Ok(())
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::{Store, StoreError};
    use crate::game::{Game, Settings};

    fn game() -> Game {
        Game::new(
            "g1".into(),
            5,
            Settings::default(),
            vec![("A".into(), "p".into())],
        )
    }

    #[tokio::test]
    async fn state_round_trips_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (store, loaded) = Store::open(dir.path()).unwrap();
        assert!(loaded.is_none());
        store.save_state(&game()).await.unwrap();
        let (_, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded, Some(game()));
        std::fs::write(dir.path().join("state.json"), b"{ torn").unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
        std::fs::write(
            dir.path().join("state.json"),
            br#"{"format": 99, "game": null}"#,
        )
        .unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Format { found: 99, .. })
        ));
    }
}
