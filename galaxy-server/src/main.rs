//! The `galaxy-server` binary: parse arguments, load the configuration, start telemetry,
//! build the app, bind, serve until SIGINT/SIGTERM. Everything else is in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use galaxy_server::config::ConfigError;
use galaxy_server::{App, AppError, Config, Listeners, telemetry};

/// The Galaxy play-by-email platform server. Every setting is a GALAXY_* environment
/// variable (see docs/operations.md).
#[derive(Debug, Parser)]
#[command(name = "galaxy-server", version)]
struct Cli {
    /// What to run (default: `serve`).
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Mode {
    /// Run against Postgres (GALAXY_DATABASE_URL): connect, migrate, serve. Needs a
    /// build with the `postgres` feature.
    Serve,
    /// Run with no external service: in-memory stores, mail as .eml files under
    /// $GALAXY_DATA_DIR/mail with login codes logged, admin role for admin@localhost.
    Dev,
}

/// Exit status for a configuration error (like a usage error).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let mode = Cli::parse().mode.unwrap_or(Mode::Serve);
    if matches!(mode, Mode::Serve) && !cfg!(feature = "postgres") {
        eprintln!(
            "galaxy-server: configuration error: `serve` needs the `postgres` feature, which this \
             build of galaxy-server lacks (rebuild with `--features postgres`, or run `galaxy-server dev`)"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let config = match load_config(mode) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("galaxy-server: configuration error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("galaxy-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(mode, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "galaxy-server failed");
            eprintln!("galaxy-server: {error}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(mode: Mode) -> Result<Config, ConfigError> {
    let mut config = Config::from_env()?;
    match mode {
        Mode::Serve => {
            config.require_database_url()?;
        }
        // A newcomer at a terminal: the login code's mail within a moment, and logs to
        // read rather than to parse (each only when the operator did not choose).
        Mode::Dev => {
            if std::env::var_os("GALAXY_MAIL_INTERVAL").is_none() {
                config.mail_interval = DEV_MAIL_INTERVAL;
            }
            if std::env::var_os("GALAXY_LOG_FORMAT").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
            {
                config.log_format = galaxy_server::config::LogFormat::Pretty;
            }
        }
    }
    Ok(config)
}

/// `serve`: everything in Postgres (the `postgres` feature).
#[cfg(feature = "postgres")]
async fn serve(config: Config) -> Result<App, AppError> {
    galaxy_server::database::build(config).await
}

/// A build without the `postgres` feature cannot `serve` (`main` refuses it before
/// anything starts; this keeps the error typed should it be reached).
#[cfg(not(feature = "postgres"))]
async fn serve(_config: Config) -> Result<App, AppError> {
    Err(AppError::FeatureDisabled {
        variable: "GALAXY_DATABASE_URL",
        feature: "postgres",
    })
}

/// The mail worker's idle poll in dev mode unless `GALAXY_MAIL_INTERVAL` is set.
const DEV_MAIL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

async fn run(mode: Mode, config: Config) -> Result<(), AppError> {
    let telemetry = telemetry::init(&config)?;
    // Installed before start-up, so a signal while waiting for the database stops it too.
    let mut shutdown = Box::pin(galaxy_server::shutdown_signal()?);
    let build = async {
        match mode {
            Mode::Dev => galaxy_server::dev::build(config.clone()).await,
            Mode::Serve => serve(config.clone()).await,
        }
    };
    let app: App = tokio::select! {
        app = build => app?,
        () = &mut shutdown => {
            eprintln!("galaxy-server: stopped during start-up");
            return Ok(());
        }
    };
    let listeners = Listeners::bind(&config).await?;
    let report = app
        .with_telemetry(telemetry)
        .serve(listeners, shutdown)
        .await?;
    if report.is_clean() {
        eprintln!("galaxy-server: stopped cleanly");
    } else {
        eprintln!("galaxy-server: stopped; some steps ran out of time: {report:?}");
    }
    Ok(())
}
