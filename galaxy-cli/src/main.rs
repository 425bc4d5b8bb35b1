#![doc = include_str!("../README.md")]

mod demo;
mod engine_image;
mod push_tail;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use galaxy_cli::engine_check;
use galaxy_core::ports::{SessionRevoker, StoreError};
use galaxy_core::service::user::UserService;
use galaxy_ports::system::SystemClock;
use galaxy_postgres::{ConnectOptions, PgStore, connect, known_versions, migrate};

/// Galaxy operator tooling.
#[derive(Debug, Parser)]
#[command(name = "galaxy-cli", version, about)]
struct Cli {
    /// Postgres URL of the Galaxy database.
    #[arg(
        long,
        env = "GALAXY_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the embedded migrations.
    Migrate,
    /// Administer accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Engine tooling: the reference image, the contract checker (no database).
    #[command(subcommand)]
    Engine(EngineCommand),
    /// Push stream tooling (needs the server's gRPC listener, not the database).
    #[command(subcommand)]
    Push(push_tail::PushCommand),
    /// Plays a whole game with bot players against a dev server (in-process without
    /// `--url`); needs no database.
    Demo(demo::DemoArgs),
    /// Serves the reference engine (what `demo` runs when no `galaxy-engine` is found).
    #[command(name = demo::ENGINE_SUBCOMMAND, hide = true)]
    DemoEngine,
}

#[derive(Debug, Subcommand)]
enum EngineCommand {
    /// Build the reference engine image FROM scratch (needs Docker): the static binary
    /// alone, listening on 8080, state in /data.
    Image(engine_image::ImageArgs),
    /// Check an engine against the engine contract (docs/engine-contract.md): one line
    /// per rule, exit 1 when a MUST fails, 2 for bad usage, 3 when the engine cannot be
    /// checked at all.
    Check(engine_check::CheckArgs),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Give the admin role to an existing account.
    Grant {
        /// The account's e-mail address.
        email: String,
    },
}

/// Granting a role revokes nothing; the user service only needs a revoker for blocks.
struct NoRevocation;

#[async_trait::async_trait]
impl SessionRevoker for NoRevocation {
    async fn revoke_all(
        &self,
        _user_id: galaxy_core::domain::UserId,
    ) -> Result<Vec<galaxy_core::domain::SessionId>, StoreError> {
        Ok(Vec::new())
    }
}

async fn run(cli: Cli) -> Result<String, String> {
    if let Command::Engine(EngineCommand::Image(args)) = cli.command {
        // Docker, not the database.
        return engine_image::run(args).await;
    }
    if let Command::Push(command) = cli.command {
        return push_tail::run(command).await;
    }
    if let Command::Demo(args) = cli.command {
        return demo::run(args).await;
    }
    if let Command::DemoEngine = cli.command {
        return demo::serve_engine().await;
    }
    let url = cli
        .database_url
        .ok_or("GALAXY_DATABASE_URL (or --database-url) must be set")?;
    let options = ConnectOptions::default();
    match cli.command {
        Command::Engine(EngineCommand::Image(args)) => engine_image::run(args).await,
        // Handled in main: it has exit statuses of its own.
        Command::Engine(EngineCommand::Check(_)) => Err("unreachable".to_owned()),
        Command::Push(command) => push_tail::run(command).await,
        Command::Demo(args) => demo::run(args).await,
        Command::DemoEngine => demo::serve_engine().await,
        Command::Migrate => {
            let pool = connect(&url, &options).await.map_err(|e| e.to_string())?;
            migrate(&pool).await.map_err(|e| e.to_string())?;
            let versions = known_versions();
            Ok(format!(
                "schema is current: {} migration(s), latest {}",
                versions.len(),
                versions.last().copied().unwrap_or_default()
            ))
        }
        Command::Admin(AdminCommand::Grant { email }) => {
            let store = Arc::new(
                PgStore::open(&url, &options)
                    .await
                    .map_err(|e| e.to_string())?,
            );
            let users = UserService::new(store, Arc::new(NoRevocation), Arc::new(SystemClock));
            let user = users.grant_admin(&email).await.map_err(|e| e.to_string())?;
            Ok(format!("{} ({}) is an admin", user.email, user.id))
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Engine(EngineCommand::Check(args)) = cli.command {
        return ExitCode::from(engine_check::run_cli(args).await);
    }
    match run(cli).await {
        Ok(message) => {
            // `push tail` has printed its output already.
            if !message.is_empty() {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("galaxy-cli: {message}");
            ExitCode::FAILURE
        }
    }
}
