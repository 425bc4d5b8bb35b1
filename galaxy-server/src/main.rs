//! The `galaxy-server` binary: parse arguments, load the configuration, start telemetry,
//! build the app, bind, serve until SIGINT/SIGTERM. Everything else is in the library.

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use galaxy_server::config::{ConfigError, Layered, file};
use galaxy_server::{App, AppError, Config, Listeners, telemetry};

/// The Galaxy play-by-email platform server. Every setting is a GALAXY_* environment
/// variable or a key of the configuration file (see docs/operations.md).
#[derive(Debug, Parser)]
#[command(name = "galaxy-server", version)]
struct Cli {
    /// A TOML configuration file (default: $GALAXY_CONFIG_FILE); the environment wins.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// What to run (default: `serve`).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Run against Postgres (GALAXY_DATABASE_URL): connect, migrate, serve. Needs a
    /// build with the `postgres` feature.
    Serve,
    /// Run with no external service: in-memory stores, mail as .eml files under
    /// $GALAXY_DATA_DIR/mail with login codes logged, admin role for admin@localhost.
    Dev,
    /// Check or print the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Serve the reference engine from GALAXY_ENGINE_ADDR, GALAXY_ENGINE_DATA_DIR and
    /// GALAXY_ENGINE_TOKEN until SIGTERM: what the process runtime runs when no
    /// `galaxy-engine` binary is beside this one.
    #[command(name = galaxy_server::config::REFERENCE_ENGINE_SUBCOMMAND, hide = true)]
    ReferenceEngine,
}

#[derive(Debug, Clone, Subcommand)]
enum ConfigCommand {
    /// Validate the environment over the file and print every effective setting and its
    /// source, secrets redacted; exit 0 when valid, 2 otherwise.
    Check {
        /// Check for `galaxy-server dev` (no database needed) rather than `serve`.
        #[arg(long)]
        dev: bool,
    },
    /// Print a configuration file with every setting at its default, commented out.
    Defaults,
}

#[derive(Debug, Clone, Copy)]
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
    let cli = Cli::parse();
    let mode = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Mode::Serve,
        Command::Dev => Mode::Dev,
        Command::Config(ConfigCommand::Defaults) => {
            print!("{}", file::defaults_toml());
            return ExitCode::SUCCESS;
        }
        Command::Config(ConfigCommand::Check { dev }) => {
            let mode = if dev { Mode::Dev } else { Mode::Serve };
            return config_check(cli.config, mode);
        }
        Command::ReferenceEngine => return reference_engine(),
    };
    if matches!(mode, Mode::Serve) && !cfg!(feature = "postgres") {
        eprintln!(
            "galaxy-server: configuration error: `serve` needs the `postgres` feature, which this \
             build of galaxy-server lacks (rebuild with `--features postgres`, or run `galaxy-server dev`)"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let config = match load_config(cli.config, mode) {
        Ok((_, config)) => config,
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
        Err(error) if error.is_configuration() => {
            tracing::error!(%error, "galaxy-server cannot start with this configuration");
            eprintln!("galaxy-server: configuration error: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => {
            tracing::error!(%error, "galaxy-server failed");
            eprintln!("galaxy-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `reference-engine`: the reference engine as the `galaxy-engine` binary runs it, logging
/// to stderr under `GALAXY_ENGINE_LOG` (default `info`).
fn reference_engine() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GALAXY_ENGINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let served = galaxy_engine::Config::from_vars(|k| std::env::var(k).ok())
        .map_err(|e| e.to_string())
        .and_then(|config| {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            let serving = galaxy_engine::serve_config(config, galaxy_engine::shutdown_signal());
            runtime.block_on(serving).map_err(|e| e.to_string())
        });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("reference engine: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `config check`: the same loading as start-up, then the effective settings.
fn config_check(file: Option<PathBuf>, mode: Mode) -> ExitCode {
    match load_config(file, mode) {
        Ok((layered, config)) => {
            print!("{}", file::effective_listing(&layered));
            if matches!(mode, Mode::Dev) {
                // What `dev` changes over the listing (only where the operator chose nothing).
                println!(
                    "# dev: GALAXY_MAIL_INTERVAL in effect {:?}; admin@localhost is an admin; \
                     every store in memory",
                    config.mail_interval
                );
            }
            println!("configuration valid");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("galaxy-server: configuration error: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn load_config(file: Option<PathBuf>, mode: Mode) -> Result<(Layered, Config), ConfigError> {
    let layered = Layered::from_env(file.as_deref())?;
    // Before validation (a typo in a required variable is why it is missing) and before
    // logging starts: a line on the terminal.
    for name in layered.unknown_variables() {
        eprintln!("galaxy-server: {}", file::unknown_warning(name));
    }
    let mut config = layered.config()?;
    // This binary serves the reference engine itself when no galaxy-engine is beside it.
    galaxy_server::config::runtime::use_self_engine(&mut config, &layered);
    match mode {
        Mode::Serve => {
            config.require_database_url()?;
        }
        // A newcomer at a terminal: the login code's mail within a moment, and logs to
        // read rather than to parse (each only when the operator did not choose).
        Mode::Dev => {
            // A production environment run as `dev` by mistake: nothing it does would
            // be kept, and admin@localhost would be an admin. Said before anything starts.
            if layered.is_set("GALAXY_DATABASE_URL") {
                eprintln!(
                    "galaxy-server: dev mode ignores GALAXY_DATABASE_URL: every store is in \
                     memory and lost at exit, and admin@localhost is an admin (use \
                     `galaxy-server serve` for the database)"
                );
            }
            if !layered.is_set("GALAXY_MAIL_INTERVAL") {
                config.mail_interval = DEV_MAIL_INTERVAL;
            }
            if !layered.is_set("GALAXY_LOG_FORMAT")
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
            {
                config.log_format = galaxy_server::config::LogFormat::Pretty;
            }
        }
    }
    Ok((layered, config))
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

/// `first` (the signal that begins the shutdown), then a watch for a second signal: an
/// operator who will not wait out the drain (up to `GALAXY_SHUTDOWN_TIMEOUT`) signals
/// again, and the process exits at once with status 130, after killing the engines it
/// started itself (the process runtime's: each leads a process group of its own, which
/// an exit without destructors would leave running). What was not finished is left as a
/// crash leaves it: leases lapse, owed work is done by the next start or another replica.
async fn then_force_on_second(first: impl Future<Output = ()>) {
    first.await;
    match galaxy_server::shutdown_signal() {
        Ok(second) => {
            tokio::spawn(async move {
                second.await;
                eprintln!("galaxy-server: second signal: exiting without finishing the shutdown");
                kill_child_groups();
                std::process::exit(130);
            });
        }
        Err(error) => {
            tracing::warn!(%error, "no handler for a second signal; only SIGKILL cuts the shutdown short");
        }
    }
}

/// Sends SIGKILL to the process group of every child of this process (from `/proc`; a
/// no-op elsewhere): the process runtime's engines, each the leader of its own group.
fn kill_child_groups() {
    let own = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: the command may hold spaces and parentheses.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if parent == Some(own.as_str()) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// The mail worker's idle poll in dev mode unless `GALAXY_MAIL_INTERVAL` is set.
const DEV_MAIL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

async fn run(mode: Mode, config: Config) -> Result<(), AppError> {
    let telemetry = telemetry::init(&config)?;
    // Installed before start-up, so a signal while waiting for the database stops it too.
    let mut shutdown = Box::pin(then_force_on_second(galaxy_server::shutdown_signal()?));
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
