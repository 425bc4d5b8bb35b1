//! `galaxy-cli doctor`: checks a configuration and the machine it would run on, before
//! `galaxy-server` starts (or while it runs): one line per check, with a fix for each
//! failure, and an exit status for scripts (0 = nothing failed, 1 = something failed).
//!
//! Checks: the configuration (the environment over the file, validated exactly as the
//! server does); the database (reachable, schema against this binary's migrations); the
//! container runtime (Docker reachable with its API version and every engine image
//! present, or every process engine executable); the SMTP relay (greeting, EHLO, TLS,
//! AUTH); the GeoIP database (readable, its age); the data directory (writable, free
//! space).

use std::path::Path;
use std::time::{Duration, SystemTime};

use clap::Args;
use galaxy_docker::{DockerConfig, DockerRuntime};
use galaxy_postgres::{connect, schema_status};
use galaxy_server::Config;
use galaxy_server::config::{Layered, RuntimeKind};
use secrecy::{ExposeSecret as _, SecretString};

/// Options of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check for `galaxy-server dev` (no database; the process runtime by default).
    #[arg(long)]
    dev: bool,
    /// The server's data directory, over GALAXY_DATA_DIR of the environment and the
    /// configuration file: for a server whose unit sets it in its own environment (the
    /// systemd unit's `Environment=`), which this shell does not have.
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Works, but worth a look.
    Warn,
    /// Will not work.
    Fail,
    /// Not applicable to this configuration.
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Line {
    /// The verdict.
    pub verdict: Verdict,
    /// What was checked (`database`, `docker`...).
    pub check: &'static str,
    /// What was found.
    pub detail: String,
    /// What to do, for a warning or a failure.
    pub fix: Option<String>,
}

impl Line {
    fn new(verdict: Verdict, check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            verdict,
            check,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The printed line.
    pub fn render(&self) -> String {
        let tag = match self.verdict {
            Verdict::Ok => "OK  ",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        let mut line = format!("{tag} {:<9} {}", self.check, self.detail);
        if let Some(fix) = &self.fix {
            line.push_str(" -- fix: ");
            line.push_str(fix);
        }
        line
    }
}

/// How old a GeoIP database may be before a warning (MaxMind updates weekly).
const GEOIP_MAX_AGE: Duration = Duration::from_secs(45 * 86_400);

/// Free space under which the data directory is a failure, and a warning.
const DISK_FAIL_BYTES: u64 = 256 * 1024 * 1024;
const DISK_WARN_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Runs every check and prints one line each; the exit status.
/// `file` is galaxy-cli's `--config` (else `GALAXY_CONFIG_FILE` names one);
/// `database_url` its `--database-url`, which stands for the server's as it does for
/// every other command.
pub async fn run(args: DoctorArgs, file: Option<&Path>, database_url: Option<&str>) -> u8 {
    let lines = check_all(file, args.dev, args.data_dir.as_deref(), database_url).await;
    for line in &lines {
        println!("{}", line.render());
    }
    let failed = lines.iter().filter(|l| l.verdict == Verdict::Fail).count();
    let warned = lines.iter().filter(|l| l.verdict == Verdict::Warn).count();
    println!(
        "{failed} failed, {warned} warning(s), {} check(s)",
        lines.len()
    );
    u8::from(failed > 0)
}

/// Every check, in order; later checks are skipped when the configuration is invalid.
/// `data_dir` and `database_url`, when given, stand for the server's data directory and
/// database URL (an empty URL is unset, as the server reads it).
pub async fn check_all(
    file: Option<&Path>,
    dev: bool,
    data_dir: Option<&Path>,
    database_url: Option<&str>,
) -> Vec<Line> {
    let config = match Layered::from_env(file).and_then(|l| Ok((l.config()?, l))) {
        Ok((mut config, layered)) => {
            if let Some(dir) = data_dir {
                config.data_dir = dir.to_owned();
            }
            if let Some(url) = database_url.filter(|url| !url.trim().is_empty()) {
                config.database_url = Some(SecretString::from(url.to_owned()));
            }
            // The engine galaxy-server would run (itself when no galaxy-engine is beside
            // it); this binary serves the same reference engine under the same subcommand.
            galaxy_server::config::runtime::use_self_engine(&mut config, &layered);
            let source = layered
                .file()
                .map(|f| format!(" (environment over {})", f.display()))
                .unwrap_or_else(|| " (environment)".to_owned());
            if !dev && config.database_url.is_none() {
                return vec![
                    Line::new(Verdict::Fail, "config", "GALAXY_DATABASE_URL is not set").fix(
                        "set it to the Postgres URL, or check with --dev for galaxy-server dev",
                    ),
                ];
            }
            let mut lines = vec![Line::new(Verdict::Ok, "config", format!("valid{source}"))];
            // The server only warns of these, at start-up; so does the doctor.
            lines.extend(layered.unknown_variables().into_iter().map(|name| {
                Line::new(
                    Verdict::Warn,
                    "config",
                    format!("{name} is not a setting and is ignored"),
                )
                .fix("correct its name (galaxy-server config defaults lists every setting)")
            }));
            lines.extend(check_config(&config, dev).await);
            return lines;
        }
        Err(error) => error,
    };
    vec![
        Line::new(Verdict::Fail, "config", config.to_string())
            .fix("correct the setting (galaxy-server config check shows every effective value)"),
    ]
}

async fn check_config(config: &Config, dev: bool) -> Vec<Line> {
    let mut lines = Vec::new();
    lines.push(check_database(config, dev).await);
    let kind = config.runtime.kind.unwrap_or(if dev {
        RuntimeKind::Process
    } else {
        RuntimeKind::Docker
    });
    lines.extend(check_runtime(config, kind).await);
    lines.push(check_smtp(config, dev).await);
    lines.push(check_geoip(config));
    lines.push(check_disk(&config.data_dir));
    lines
}

async fn check_database(config: &Config, dev: bool) -> Line {
    let Some(url) = &config.database_url else {
        let why = if dev {
            "dev mode keeps everything in memory"
        } else {
            "GALAXY_DATABASE_URL is unset"
        };
        return Line::new(Verdict::Skip, "database", why);
    };
    // The other commands' options (at most two seconds for a host that does not
    // answer, named galaxy-cli in `pg_stat_activity`), tried once.
    let mut options = crate::database::connect_options();
    options.max_connections = 1;
    options.connect_attempts = 1;
    let pool = match connect(url.expose_secret(), &options).await {
        Ok(pool) => pool,
        Err(error) => {
            return Line::new(Verdict::Fail, "database", format!("unreachable: {error}"))
                .fix("start Postgres or correct GALAXY_DATABASE_URL (host, port, user, password, database)");
        }
    };
    let line = match schema_status(&pool).await {
        Ok(status) if !status.unknown.is_empty() => Line::new(
            Verdict::Fail,
            "database",
            format!(
                "schema has migrations {:?} this binary does not know (it knows up to {})",
                status.unknown, status.latest_known
            ),
        )
        .fix("a newer Galaxy migrated this database: run that version (migrations are forward-only)"),
        Ok(status) if !status.pending.is_empty() => Line::new(
            Verdict::Warn,
            "database",
            format!(
                "reachable; {} of {} migration(s) applied, pending {:?}",
                status.applied.len(),
                status.applied.len() + status.pending.len(),
                status.pending
            ),
        )
        .fix("back up (galaxy-cli backup), then galaxy-cli migrate (the server also migrates at start)"),
        Ok(status) => Line::new(
            Verdict::Ok,
            "database",
            format!("reachable; schema current (version {})", status.latest_known),
        ),
        Err(error) => Line::new(Verdict::Fail, "database", format!("cannot read the schema: {error}"))
            .fix("grant the user read access to _sqlx_migrations"),
    };
    pool.close().await;
    line
}

async fn check_runtime(config: &Config, kind: RuntimeKind) -> Vec<Line> {
    match kind {
        RuntimeKind::None => vec![Line::new(
            Verdict::Skip,
            "runtime",
            "GALAXY_RUNTIME=none: no engine runs",
        )],
        RuntimeKind::Docker => check_docker(config).await,
        RuntimeKind::Process => config
            .runtime
            .process_engines
            .names()
            .into_iter()
            .map(|name| {
                let target = config
                    .runtime
                    .process_engines
                    .resolve(&name)
                    .unwrap_or_default()
                    .to_owned();
                check_executable(name.as_str(), &target)
            })
            .collect(),
    }
}

async fn check_docker(config: &Config) -> Vec<Line> {
    let docker = match DockerRuntime::connect(DockerConfig::default()).await {
        Ok(docker) => docker,
        Err(error) => {
            return vec![Line::new(Verdict::Fail, "docker", error.to_string()).fix(
                "start dockerd, mount its socket, or set DOCKER_HOST (unix:// or tcp://); \
                     or GALAXY_RUNTIME=process",
            )];
        }
    };
    let version = match docker.client().version().await {
        Ok(v) => format!(
            "reachable; Docker {} (API {})",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default()
        ),
        Err(error) => {
            return vec![
                Line::new(Verdict::Fail, "docker", format!("version: {error}"))
                    .fix("check the daemon's log"),
            ];
        }
    };
    let mut lines = vec![Line::new(Verdict::Ok, "docker", version)];
    let registry = &config.runtime.docker_engines;
    for name in registry.names() {
        let image = registry.resolve(&name).unwrap_or_default().to_owned();
        let line = match docker.client().inspect_image(&image).await {
            Ok(_) => Line::new(
                Verdict::Ok,
                "engine",
                format!("{}: image {image} present", name.as_str()),
            ),
            Err(error) => Line::new(
                Verdict::Fail,
                "engine",
                format!("{}: image {image} missing ({error})", name.as_str()),
            )
            .fix(format!(
                "galaxy-cli engine image --tag {image} (the reference engine), or docker pull/load it"
            )),
        };
        lines.push(line);
    }
    lines
}

/// A process engine's launch target: a path (must be an executable file) or a bare
/// name (found on `PATH`).
fn check_executable(name: &str, target: &str) -> Line {
    // Read as the process runtime reads it (quotes for paths with spaces).
    let command = match galaxy_process_runtime::CommandLine::parse(target) {
        Ok(command) => command,
        Err(error) => {
            return Line::new(Verdict::Fail, "engine", format!("{name}: {error}"))
                .fix("fix its command line in GALAXY_PROCESS_ENGINES");
        }
    };
    let program = command.program();
    let path_var = std::env::var("PATH").ok();
    let cwd = std::env::current_dir().unwrap_or_default();
    let path = command.resolve_program(path_var.as_deref(), &cwd);
    let executable = path.as_ref().is_some_and(|p| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    match path {
        Some(path) if executable => Line::new(
            Verdict::Ok,
            "engine",
            format!("{name}: {} is executable", path.display()),
        ),
        _ => Line::new(
            Verdict::Fail,
            "engine",
            format!("{name}: {program} is not an executable file"),
        )
        .fix("build it (cargo build --release -p galaxy-engine) and name it in GALAXY_PROCESS_ENGINES"),
    }
}

async fn check_smtp(config: &Config, dev: bool) -> Line {
    let mailer = match galaxy_server::delivery::smtp_mailer(config) {
        Ok(Some(mailer)) => mailer,
        Ok(None) if dev => {
            return Line::new(Verdict::Skip, "smtp", "dev mode writes mail as .eml files");
        }
        Ok(None) => {
            return Line::new(
                Verdict::Warn,
                "smtp",
                "GALAXY_SMTP_URL is unset: mail is written as .eml files, nobody receives it",
            )
            .fix("set GALAXY_SMTP_URL to your relay (smtp://user:pass@relay:587?tls=required)");
        }
        Err(error) => {
            return Line::new(Verdict::Fail, "smtp", error.to_string())
                .fix("correct GALAXY_SMTP_URL: smtp://user:pass@relay:587?tls=required (see docs/operations.md)");
        }
    };
    let sender = galaxy_server::delivery::private_sender(&config.mail_from);
    match (mailer.test_connection().await, sender) {
        (Ok(()), Some(why)) => Line::new(Verdict::Warn, "smtp", format!("relay answered, but {why}"))
            .fix("GALAXY_MAIL_FROM=\"Galaxy <turns@your-domain.example>\""),
        (Ok(()), None) => Line::new(
            Verdict::Ok,
            "smtp",
            "relay answered (EHLO, TLS and AUTH as configured)",
        ),
        (Err(error), _) => Line::new(Verdict::Fail, "smtp", format!("relay: {error}")).fix(
            "check the relay's host and port, its TLS mode (?tls=) and the credentials in GALAXY_SMTP_URL",
        ),
    }
}

fn check_geoip(config: &Config) -> Line {
    let Some(path) = &config.geoip_db else {
        return Line::new(
            Verdict::Skip,
            "geoip",
            "GALAXY_GEOIP_DB is unset: every country is unknown",
        );
    };
    if let Err(error) = galaxy_geoip::MaxMindLocator::open(path.clone()) {
        return Line::new(Verdict::Fail, "geoip", error.to_string())
            .fix("download a GeoLite2-Country.mmdb and point GALAXY_GEOIP_DB at it");
    }
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let days = age.as_secs() / 86_400;
    if age > GEOIP_MAX_AGE {
        Line::new(
            Verdict::Warn,
            "geoip",
            format!("{} readable but {days} days old", path.display()),
        )
        .fix("refresh it (geoipupdate); the server reloads it when the file changes")
    } else {
        Line::new(
            Verdict::Ok,
            "geoip",
            format!("{} readable, {days} days old", path.display()),
        )
    }
}

/// Free bytes of the file system holding `dir`, from `df -Pk` (no libc call needed).
fn free_bytes(dir: &Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn check_disk(dir: &Path) -> Line {
    // Not created here: made by whoever runs the doctor (root, often), it would be theirs,
    // and the server's user could not write it.
    if dir.exists() && !dir.is_dir() {
        return Line::new(
            Verdict::Fail,
            "data dir",
            format!("{} is not a directory", dir.display()),
        )
        .fix("set GALAXY_DATA_DIR to a directory");
    }
    if !dir.is_dir() {
        return Line::new(
            Verdict::Warn,
            "data dir",
            format!("{} does not exist yet", dir.display()),
        )
        .fix("the server creates it at its first start if it may write its parent; or create it, owned by the server's user");
    }
    if let Err(error) = crate::backup::probe_writable(dir) {
        return Line::new(
            Verdict::Fail,
            "data dir",
            format!("{} is not writable: {error}", dir.display()),
        )
        .fix("chown it to the server's user");
    }
    let Some(free) = free_bytes(dir) else {
        return Line::new(
            Verdict::Warn,
            "data dir",
            format!("{} writable; free space unknown (no df)", dir.display()),
        );
    };
    let text = format!(
        "{} writable, {} MiB free",
        dir.display(),
        free / (1024 * 1024)
    );
    if free < DISK_FAIL_BYTES {
        Line::new(Verdict::Fail, "data dir", text).fix("free space: mail and engine data live here")
    } else if free < DISK_WARN_BYTES {
        Line::new(Verdict::Warn, "data dir", text).fix("free space soon")
    } else {
        Line::new(Verdict::Ok, "data dir", text)
    }
}
