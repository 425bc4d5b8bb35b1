//! `galaxy-engine`: the reference engine as a process. Reads `GALAXY_ENGINE_ADDR`,
//! `GALAXY_ENGINE_DATA_DIR` and `GALAXY_ENGINE_TOKEN`, resumes the game in the data
//! directory, serves until SIGTERM or ctrl-c.

use std::process::ExitCode;

use galaxy_engine::{Config, serve_config, shutdown_signal};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let filter =
        EnvFilter::try_from_env("GALAXY_ENGINE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let config = Config::from_vars(|k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    serve_config(config, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}
