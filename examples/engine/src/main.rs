//! `galaxy-engine`: the reference engine as a process. Reads `GALAXY_ENGINE_ADDR`,
//! `GALAXY_ENGINE_DATA_DIR` and `GALAXY_ENGINE_TOKEN`, resumes the game in the data
//! directory, serves until SIGTERM or ctrl-c.

use std::process::ExitCode;

use galaxy_engine::{Config, Engine, serve};
use tokio::net::TcpListener;
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
    // The state is loaded before the port opens: a health check that passes means a
    // resumed game, and a corrupt data directory stops the engine instead of resetting it.
    if config.token.is_none() {
        tracing::warn!("GALAXY_ENGINE_TOKEN is not set: every caller may play every race");
    }
    let engine = Engine::open(&config.data_dir)
        .map_err(|e| e.to_string())?
        .with_token(config.token);
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    tracing::info!(addr = %config.addr, data_dir = %config.data_dir.display(), "engine listening");
    serve(listener, engine, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("engine stopped");
    Ok(())
}

/// Completes on ctrl-c or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
