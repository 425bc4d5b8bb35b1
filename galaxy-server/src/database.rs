//! Plain `galaxy-server`: everything stored in Postgres.
//!
//! Connects to `GALAXY_DATABASE_URL` with a bounded retry (a database that starts a
//! little after the server is waited for; one that never answers ends start-up with a
//! clear error), applies the migrations before any listener binds, then builds the app
//! on the Postgres stores.
//!
//! The module comes with the `postgres` feature; [`adapters`] and [`build`], which send
//! mail through galaxy-smtp, also need `smtp`.

#[cfg(feature = "smtp")]
use std::sync::Arc;

use galaxy_postgres::{ConnectOptions, PgStore};
#[cfg(feature = "smtp")]
use galaxy_smtp::FileMailer;
use secrecy::ExposeSecret as _;

#[cfg(feature = "smtp")]
use crate::adapters::Adapters;
#[cfg(feature = "smtp")]
use crate::app::App;
use crate::config::{Config, ConfigError};
use crate::error::AppError;

/// Connects, migrates and returns the store.
pub async fn open(config: &Config) -> Result<PgStore, AppError> {
    let url = config.require_database_url().map_err(setting)?;
    let mut options = ConnectOptions::default();
    options.max_connections = config.database_max_connections;
    options.connect_attempts = config.database_connect_attempts;
    options.application_name = "galaxy-server".to_owned();
    tracing::info!("connecting to Postgres and applying migrations");
    let store = PgStore::open(url.expose_secret(), &options).await?;
    tracing::info!("database ready");
    Ok(store)
}

/// The Postgres adapters. Mail is sent through `GALAXY_SMTP_URL`, or without it written
/// to files under `$GALAXY_DATA_DIR/mail` (codes are not logged outside dev mode).
#[cfg(feature = "smtp")]
pub fn adapters(config: &Config, store: PgStore) -> Result<Adapters, AppError> {
    let dir = crate::dev::mail_dir(config);
    if config.smtp_url.is_none() {
        tracing::warn!(mail_dir = %dir.display(), "GALAXY_SMTP_URL is unset: mail is written as .eml files, not sent");
    }
    let mailer = FileMailer::new(dir, config.mail_from.clone());
    crate::delivery::with_smtp(config, Adapters::postgres(store, Arc::new(mailer)))
}

/// Connects, migrates and builds the app, with the caches coherent across every
/// replica on the same database (see [`crate::cache`]) and one push log for all of them.
#[cfg(feature = "smtp")]
pub async fn build(config: Config) -> Result<App, AppError> {
    let store = open(&config).await?;
    let adapters = adapters(&config, store.clone())?
        .with_postgres_changes(&store, config.cache_bus_heartbeat)
        .await
        .map_err(|source| AppError::ChangeBus { source })?
        .with_postgres_push_log(&store, config.cache_bus_heartbeat)
        .await
        .map_err(|source| AppError::ChangeBus { source })?;
    App::build(config, adapters).await
}

fn setting(error: ConfigError) -> AppError {
    match error {
        ConfigError::Missing { variable, why } => AppError::Setting {
            variable,
            reason: why.to_owned(),
        },
        other => AppError::Setting {
            variable: "GALAXY_DATABASE_URL",
            reason: other.to_string(),
        },
    }
}
