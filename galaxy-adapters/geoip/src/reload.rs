//! Polls the database file and swaps in a changed one, off the request path.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::ports::StoreError;
use galaxy_core::worker::{TickReport, Worker, run_every};
use tokio_util::sync::CancellationToken;

use crate::error::GeoIpError;
use crate::locator::MaxMindLocator;

/// How often [`watch`] looks at the file by default. MaxMind publishes GeoLite2 twice a
/// week, so a minute's delay costs nothing, and one `stat` a minute is free.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// A [`Worker`] whose pass checks the database file and reloads it if it changed.
///
/// The check runs in a background loop rather than on lookups so that no request ever
/// pays for reading and verifying a database (tens of megabytes for a City database):
/// the file is read and verified on tokio's blocking pool and then swapped in at once.
/// A pass that loaded a new database handles 1; a refused file (corrupt, half-written,
/// missing) is logged as a warning and the database in use is kept.
#[derive(Debug)]
pub struct DatabaseReloader {
    /// The locator whose file is watched.
    locator: Arc<MaxMindLocator>,
}

impl DatabaseReloader {
    /// A reloader for `locator`'s file.
    pub fn new(locator: Arc<MaxMindLocator>) -> Self {
        Self { locator }
    }

    /// One check on the blocking pool; see [`MaxMindLocator::reload_if_changed`].
    pub async fn check(&self) -> Result<bool, ReloadFailure> {
        let locator = Arc::clone(&self.locator);
        match tokio::task::spawn_blocking(move || locator.reload_if_changed()).await {
            Ok(Ok(reloaded)) => Ok(reloaded),
            Ok(Err(error)) => Err(ReloadFailure::Refused(error)),
            Err(error) => Err(ReloadFailure::Task(error)),
        }
    }
}

/// Why a [`DatabaseReloader::check`] did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadFailure {
    /// The changed file was refused; the database in use is kept.
    #[error(transparent)]
    Refused(GeoIpError),
    /// The blocking task was cancelled (runtime shutting down) or panicked.
    #[error("GeoIP reload task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

#[async_trait]
impl Worker for DatabaseReloader {
    fn name(&self) -> &'static str {
        "geoip_reloader"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        match self.check().await {
            Ok(reloaded) => Ok(TickReport {
                handled: usize::from(reloaded),
            }),
            // Not a store failure, and nothing to retry before the file changes again:
            // report it here and let the loop carry on with the database in use.
            Err(ReloadFailure::Refused(error)) => {
                tracing::warn!(
                    worker = self.name(),
                    %error,
                    "GeoIP database file refused; keeping the database in use"
                );
                Ok(TickReport::default())
            }
            Err(error @ ReloadFailure::Task(_)) => Err(StoreError::internal(error)),
        }
    }
}

/// Checks `locator`'s file every `interval` until `cancel` fires, reloading it when it
/// changes. Spawn it with the server's task tracker.
pub async fn watch(locator: Arc<MaxMindLocator>, interval: Duration, cancel: CancellationToken) {
    run_every(&DatabaseReloader::new(locator), interval, cancel).await;
}
