#![doc = include_str!("../README.md")]

mod backup;
mod database;
mod demo;
mod doctor;
mod engine_image;
mod internal_token;
mod mail_in;
mod push_tail;
mod server_image;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use database::{
    connect_to, current_schema, database_url, is_bootstrap_admin, migrate_status, settings,
};
use galaxy_cli::engine_check;
use galaxy_core::ports::{Change, ChangeBus, KeyRegistry, SessionRevoker, StoreError};
use galaxy_core::service::user::UserService;
use galaxy_ports::system::SystemClock;
use galaxy_postgres::{ChangeBusOptions, PgChangeBus, PgStore, known_versions, migrate};

/// Galaxy operator tooling.
#[derive(Debug, Parser)]
#[command(name = "galaxy-cli", version, about, propagate_version = true)]
struct Cli {
    /// Postgres URL of the Galaxy database.
    #[arg(
        long,
        env = "GALAXY_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    database_url: Option<String>,
    /// The server's TOML configuration file (default: $GALAXY_CONFIG_FILE): where
    /// `--database-url`, `--data-dir` and `--runtime` are not given and the environment
    /// does not set them, the file's settings are taken, as the server takes them.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the embedded migrations (forward-only; back up first), or with `status`
    /// show where the schema stands.
    Migrate {
        /// `status`: applied and pending migrations; exit 0 when current, 1 when some are
        /// pending, 2 when the database is newer than this binary, 3 when it cannot tell
        /// (no URL, no connection, bad usage).
        #[command(subcommand)]
        command: Option<MigrateCommand>,
    },
    /// Back up the database (pg_dump) and the data directory, holding every running game
    /// between turns while they are copied.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty database and an empty data directory.
    Restore(backup::RestoreArgs),
    /// Check a configuration and the machine before (or while) running the server: one
    /// line per check with a fix for each failure; exit 1 when any check failed.
    Doctor(doctor::DoctorArgs),
    /// Administer accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The installation's secrets as the servers of one database compare them.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Engine tooling: the reference image, the contract checker (no database).
    #[command(subcommand)]
    Engine(EngineCommand),
    /// Server tooling: the container image (no database).
    #[command(subcommand)]
    Server(ServerCommand),
    /// Push stream tooling (needs the server's gRPC listener, not the database).
    #[command(subcommand)]
    Push(push_tail::PushCommand),
    /// Plays a whole game with bot players against a dev server (in-process without
    /// `--url`); needs no database.
    Demo(demo::DemoArgs),
    /// Hands one RFC 5322 message from standard input to the server (orders by e-mail,
    /// for an MTA pipe: `orders: "|galaxy-cli mail-in"`). Exit 0 stored, 65 never
    /// takeable (too large, not a message), 75 retry later (server unreachable, or a
    /// set-up error: no URL or token, token refused, a bad option; the reason on
    /// standard error).
    MailIn(mail_in::MailInArgs),
    /// Serves the reference engine (what `demo` runs, and `doctor` checks in
    /// galaxy-server's place, when no `galaxy-engine` is found beside this binary).
    #[command(name = galaxy_server::config::REFERENCE_ENGINE_SUBCOMMAND, hide = true)]
    ReferenceEngine,
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Build the server image FROM scratch (needs Docker): the static binary alone, API
    /// on 8080, metrics on 9090, state in /data.
    Image(server_image::ServerImageArgs),
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Show the applied and pending migrations; change nothing.
    Status,
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
    /// Give the admin role to an existing account. Running servers hear of it at once
    /// (the change bus); a database not migrated to exactly this binary's schema is
    /// refused, never migrated.
    Grant {
        /// The account's e-mail address.
        email: String,
    },
    /// Take the admin role from an account (someone who no longer runs the
    /// installation). Running servers hear of it at once; an address still in
    /// GALAXY_BOOTSTRAP_ADMINS would get the role back at its next login, so it is
    /// refused until it is taken out of the setting.
    Revoke {
        /// The account's e-mail address.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Forget the fingerprints of GALAXY_LOGIN_CODE_KEY and GALAXY_ENGINE_SECRET the
    /// first server recorded, after changing them on purpose: every server refuses to
    /// start while it holds another value than the one recorded. Stop every server
    /// first; the next to start records its own.
    Reset,
}

/// Exit status of `migrate status` when it cannot tell where the schema stands (no URL,
/// no connection, the schema unreadable, bad usage): apart from 1, which a script reads
/// as "migrations pending", and 2, "the database is newer".
const EXIT_STATUS_UNKNOWN: u8 = 3;

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

/// Runs the command `cli` names; the exit status, or the error to report (status 1).
/// Commands with exit statuses of their own (`engine check`) return them; the others
/// print their result and return success.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Migrate {
            command: Some(MigrateCommand::Status),
        } => match migrate_status(cli.database_url, cli.config.as_deref()).await {
            Ok(status) => Ok(status),
            Err(error) => {
                eprintln!("galaxy-cli: {}", one_line(&error));
                Ok(ExitCode::from(EXIT_STATUS_UNKNOWN))
            }
        },
        Command::Backup(mut args) => {
            let settings = settings(cli.config.as_deref())?;
            let url = database_url(cli.database_url, &settings)?;
            args.settle(&settings)?;
            done(&backup::backup(&url, args).await?)
        }
        Command::Restore(mut args) => {
            let settings = settings(cli.config.as_deref())?;
            let url = database_url(cli.database_url, &settings)?;
            args.settle(&settings)?;
            done(&backup::restore(&url, args).await?)
        }
        Command::Doctor(args) => Ok(ExitCode::from(
            doctor::run(args, cli.config.as_deref(), cli.database_url.as_deref()).await,
        )),
        Command::Migrate { command: None } => {
            let settings = settings(cli.config.as_deref())?;
            let url = database_url(cli.database_url, &settings)?;
            let pool = connect_to(&url).await?;
            migrate(&pool)
                .await
                .context("cannot migrate the database")?;
            let versions = known_versions();
            done(&format!(
                "schema is current: {} migration(s), latest {}",
                versions.len(),
                versions.last().copied().unwrap_or_default()
            ))
        }
        Command::Secrets(SecretsCommand::Reset) => {
            let settings = settings(cli.config.as_deref())?;
            let pool = current_schema(cli.database_url, &settings).await?;
            let forgotten = PgStore::new(pool)
                .forget_keys()
                .await
                .context("cannot forget the recorded secrets")?;
            done(&format!(
                "forgot {forgotten} recorded secret fingerprint(s); the next server to start \
                 records its own"
            ))
        }
        Command::Admin(command) => {
            let settings = settings(cli.config.as_deref())?;
            let pool = current_schema(cli.database_url, &settings).await?;
            // The running servers keep users in memory: they hear of the grant on the
            // change bus, as of a grant made through one of them.
            let bus = PgChangeBus::start(pool.clone(), ChangeBusOptions::default())
                .await
                .context("cannot reach the servers' change bus")?;
            let users = UserService::new(
                Arc::new(PgStore::new(pool)),
                Arc::new(NoRevocation),
                Arc::new(SystemClock),
            );
            let (user, said) = match command {
                AdminCommand::Grant { email } => {
                    let user = users
                        .grant_admin(&email)
                        .await
                        .with_context(|| format!("cannot make {email} an admin"))?;
                    (user, "is an admin")
                }
                AdminCommand::Revoke { email } => {
                    if is_bootstrap_admin(&settings, &email) {
                        anyhow::bail!(
                            "{email} is in GALAXY_BOOTSTRAP_ADMINS and would be an admin again \
                             at its next login: take it out of the setting first"
                        );
                    }
                    let user = users
                        .revoke_admin(&email)
                        .await
                        .with_context(|| format!("cannot take the admin role from {email}"))?;
                    (user, "is no longer an admin")
                }
            };
            bus.publish(Change::User(user.id))
                .await
                .context("the change is stored, but running servers were not told: restart them")?;
            done(&format!("{} ({}) {said}", user.email, user.id))
        }
        Command::Server(ServerCommand::Image(args)) => done(&server_image::run(args).await?),
        Command::Engine(EngineCommand::Image(args)) => done(&engine_image::run(args).await?),
        Command::Engine(EngineCommand::Check(args)) => {
            Ok(ExitCode::from(engine_check::run_cli(args).await))
        }
        Command::Push(command) => {
            // Prints its events as they come.
            push_tail::run(command, cli.config.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => done(&demo::run(args).await?),
        Command::MailIn(args) => {
            let (status, message) = mail_in::run(args, cli.config.as_deref()).await;
            if let Some(message) = message {
                eprintln!("galaxy-cli mail-in: {message}");
            }
            Ok(ExitCode::from(status))
        }
        Command::ReferenceEngine => {
            demo::serve_engine().await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a command's result; success.
fn done(message: &str) -> anyhow::Result<ExitCode> {
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}

/// The subcommand words of `args` (program name first), as far as they can be read
/// without parsing: the arguments that are neither options nor the value of the global
/// `--database-url` or `--config` (`galaxy-cli --database-url U migrate status` gives `migrate`,
/// `status`). Only for choosing the exit status of a usage error.
fn command_words(args: &[OsString]) -> Vec<String> {
    let mut words = Vec::new();
    let mut args = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--database-url" || arg == "--config" {
            args.next();
        } else if !arg.starts_with('-') {
            words.push(arg.into_owned());
        }
    }
    words
}

/// The exit status of a command line clap refused (after clap printed why): 0 for
/// `--help` and `--version`; for `mail-in` 75 `EX_TEMPFAIL`, so an MTA keeps the mail
/// of a bad option in its pipe (clap's 2 bounces it, or worse, counts as delivered);
/// for `migrate status` 3, so a script never reads a typo as "the database is newer";
/// otherwise clap's own (2, bad usage).
fn usage_status(error: &clap::Error, args: &[OsString]) -> u8 {
    let code = u8::try_from(error.exit_code()).unwrap_or(2);
    if code == 0 {
        return 0;
    }
    let words = command_words(args);
    match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["mail-in", ..] => mail_in::EX_TEMPFAIL,
        ["migrate", "status", ..] => EXIT_STATUS_UNKNOWN,
        _ => code,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version to standard output, usage errors to standard error.
            let _ = error.print();
            return ExitCode::from(usage_status(&error, &args));
        }
    };
    match run(cli).await {
        Ok(status) => status,
        Err(error) => {
            eprintln!("galaxy-cli: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The context and every cause on one line, `what: why: why...`; a cause whose text its
/// error already shows (many errors print their source too) is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_error_is_one_line_with_each_cause_once() {
        let io = std::io::Error::other("connection refused");
        let error = anyhow::Error::new(io)
            .context("the pool: connection refused")
            .context("cannot connect to the database");
        assert_eq!(
            one_line(&error),
            "cannot connect to the database: the pool: connection refused"
        );
        let error = anyhow::anyhow!("bad").context("cannot migrate");
        assert_eq!(one_line(&error), "cannot migrate: bad");
    }

    /// A usage error keeps an MTA's mail (75) under `mail-in` and is no schema status
    /// (3) under `migrate status`; help and version still exit 0, and other commands
    /// keep clap's 2.
    #[test]
    fn usage_errors_exit_with_each_commands_own_status() {
        let status = |line: &[&str]| {
            let args: Vec<OsString> = line.iter().map(OsString::from).collect();
            let Err(error) = Cli::try_parse_from(&args) else {
                panic!("{line:?} parsed");
            };
            usage_status(&error, &args)
        };
        assert_eq!(status(&["galaxy-cli", "mail-in", "--bogus"]), 75);
        assert_eq!(status(&["galaxy-cli", "mail-in", "--timeout", "soon"]), 75);
        assert_eq!(
            status(&["galaxy-cli", "--database-url", "x", "mail-in", "extra"]),
            75
        );
        assert_eq!(status(&["galaxy-cli", "mail-in", "--help"]), 0);
        assert_eq!(status(&["galaxy-cli", "mail-in", "--version"]), 0);
        assert_eq!(status(&["galaxy-cli", "--version"]), 0);
        assert_eq!(status(&["galaxy-cli", "migrate", "status", "--bogus"]), 3);
        // The demo's two flags for a running server go together.
        assert_eq!(
            status(&["galaxy-cli", "demo", "--url", "http://127.0.0.1:8080"]),
            2
        );
        assert_eq!(status(&["galaxy-cli", "demo", "--mail-dir", "/tmp"]), 2);
        assert_eq!(
            status(&[
                "galaxy-cli",
                "--database-url",
                "status",
                "migrate",
                "status",
                "x"
            ]),
            3
        );
        assert_eq!(
            status(&["galaxy-cli", "--config", "status", "mail-in", "--bogus"]),
            75
        );
        assert_eq!(status(&["galaxy-cli", "migrate", "--bogus"]), 2);
        assert_eq!(status(&["galaxy-cli", "admin", "grant"]), 2);
    }

    /// The mail-in timeout reads as the server's durations do.
    #[test]
    fn mail_in_timeout_takes_durations() {
        let parse =
            |timeout: &str| Cli::try_parse_from(["galaxy-cli", "mail-in", "--timeout", timeout]);
        for taken in ["30s", "2m", "1m 30s", "60"] {
            assert!(parse(taken).is_ok(), "{taken}");
        }
        for refused in ["", "soon", "-1s", "0", "0s", "500ms"] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }

    /// A start timeout beyond what an `Instant` can add would panic the checker.
    #[test]
    fn engine_check_start_timeout_is_bounded() {
        let check = |timeout: &str| {
            Cli::try_parse_from([
                "galaxy-cli",
                "engine",
                "check",
                "--url",
                "http://127.0.0.1:1",
                "--start-timeout",
                timeout,
            ])
        };
        for taken in ["1", "60", "3600"] {
            assert!(check(taken).is_ok(), "{taken}");
        }
        for refused in ["0", "3601", "18446744073709551615"] {
            assert!(check(refused).is_err(), "{refused}");
        }
    }

    /// A backup that misread the server's runtime would leave the engines' data behind:
    /// `--runtime` takes the server's names and refuses one it does not know (the default
    /// and the environment's and file's values: `backup`'s own test).
    #[test]
    fn backup_takes_the_servers_runtime_names() {
        for name in ["docker", "process", "none"] {
            let parsed =
                Cli::try_parse_from(["galaxy-cli", "backup", "--out", "b", "--runtime", name]);
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
        let parsed =
            Cli::try_parse_from(["galaxy-cli", "backup", "--out", "b", "--runtime", "dokcer"]);
        let Err(error) = parsed else {
            panic!("an unknown runtime was taken: {parsed:?}");
        };
        let message = error.to_string();
        assert!(
            message.contains("dokcer") && message.contains("docker, process or none"),
            "{message}"
        );
    }
}
