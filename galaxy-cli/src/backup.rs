//! `galaxy-cli backup` and `restore`: a game's state is split between Postgres (lobby,
//! runtime records, turn archive, orders, mail) and its engine's data (the process
//! runtime's directories under `$GALAXY_DATA_DIR/engines`; the data directory also holds
//! the generated login-code and engine secrets). A backup is a directory:
//!
//! - `database.dump`: `pg_dump --format=custom` of the database;
//! - `data/`: a copy of `$GALAXY_DATA_DIR` (engine data, secrets, mail files);
//! - `manifest.json`: when, which schema, which games were held and the hold's token.
//!
//! Consistency per game: before anything is copied every running game is held between
//! turns (its turn lease is taken, waiting for a turn in progress to end), so no turn
//! changes its engine data or its archive while both are copied; the hold is released
//! at the end, and `restore` releases it in the restored copy. Orders submitted during
//! the copy may be in one part and not the other (the engine's copy is what counts).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use galaxy_postgres::{ConnectOptions, backup, connect, schema_status};

/// How long a hold may last before the runtime takes the games back on its own (should
/// the backup die half-way).
const HOLD: Duration = Duration::from_secs(600);

/// How long to wait for turns in progress to end.
const WAIT_FOR_TURNS: Duration = Duration::from_secs(120);

/// Options of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The directory to write (must not exist yet).
    #[arg(long)]
    out: PathBuf,
    /// The server's data directory.
    #[arg(long, env = "GALAXY_DATA_DIR", default_value = "./galaxy-data")]
    data_dir: PathBuf,
}

/// Options of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory.
    #[arg(long)]
    from: PathBuf,
    /// The data directory to restore into (must be empty or absent).
    #[arg(long, env = "GALAXY_DATA_DIR", default_value = "./galaxy-data")]
    data_dir: PathBuf,
}

/// Writes a backup; the message to print.
pub async fn backup(url: &str, args: BackupArgs) -> anyhow::Result<String> {
    if args.out.exists() {
        bail!(
            "{} exists: a backup goes into a new directory",
            args.out.display()
        );
    }
    let pool = connect(url, &ConnectOptions::default())
        .await
        .context("cannot connect to the database")?;
    let schema = schema_status(&pool)
        .await
        .context("cannot read the schema")?;
    let token = uuid::Uuid::now_v7();
    let until =
        chrono::Utc::now() + chrono::TimeDelta::from_std(HOLD).context("the hold's length")?;
    let started = std::time::Instant::now();
    let held = loop {
        let (held, busy) = backup::hold_turns(&pool, token, until)
            .await
            .context("cannot hold the running games between turns")?;
        if busy == 0 {
            break held;
        }
        if started.elapsed() > WAIT_FOR_TURNS {
            backup::release_turns(&pool, token).await.ok();
            bail!("{busy} game(s) stayed in a turn for {WAIT_FOR_TURNS:?}; try again later");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let result = copy_all(url, &args, &held, &schema.applied, token).await;
    let released = backup::release_turns(&pool, token).await;
    pool.close().await;
    result?;
    released.context("cannot release the games held for the backup")?;
    Ok(format!(
        "backup written to {} ({} running game(s) held between turns while copied)",
        args.out.display(),
        held.len()
    ))
}

async fn copy_all(
    url: &str,
    args: &BackupArgs,
    held: &[uuid::Uuid],
    applied: &[i64],
    token: uuid::Uuid,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    if args.data_dir.is_dir() {
        copy_tree(&args.data_dir, &args.out.join("data"))
            .with_context(|| format!("cannot copy {}", args.data_dir.display()))?;
    }
    let dump = args.out.join("database.dump");
    let status = tokio::process::Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&dump)
        .arg(url)
        .status()
        .await
        .context("cannot run pg_dump (install the Postgres client, same major version or newer)")?;
    if !status.success() {
        bail!("pg_dump exited with {status}");
    }
    let manifest = serde_json::json!({
        "format": 1,
        "created_at": chrono::Utc::now().to_rfc3339(),
        "galaxy_version": env!("CARGO_PKG_VERSION"),
        "schema_versions": applied,
        "held_games": held,
        "hold_token": token,
    });
    std::fs::write(
        args.out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(())
}

/// Restores a backup into an empty database and an empty data directory.
pub async fn restore(url: &str, args: RestoreArgs) -> anyhow::Result<String> {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(args.from.join("manifest.json"))
            .with_context(|| format!("{} is not a Galaxy backup", args.from.display()))?,
    )
    .context("the backup's manifest.json is not JSON")?;
    let token: uuid::Uuid = manifest["hold_token"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .context("the manifest has no hold_token")?;
    if args.data_dir.exists() && std::fs::read_dir(&args.data_dir)?.next().is_some() {
        bail!(
            "{} is not empty: restore into a new data directory",
            args.data_dir.display()
        );
    }
    let pool = connect(url, &ConnectOptions::default())
        .await
        .context("cannot connect to the database")?;
    if !backup::is_empty(&pool).await? {
        bail!("the database is not empty: restore into a new database (createdb)");
    }
    let status = tokio::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(url)
        .arg(args.from.join("database.dump"))
        .status()
        .await
        .context("cannot run pg_restore (install the Postgres client)")?;
    if !status.success() {
        bail!("pg_restore exited with {status}");
    }
    let released = backup::release_turns(&pool, token).await?;
    pool.close().await;
    let data = args.from.join("data");
    if data.is_dir() {
        copy_tree(&data, &args.data_dir)
            .with_context(|| format!("cannot copy into {}", args.data_dir.display()))?;
    }
    Ok(format!(
        "restored {} into the database and {} ({released} game(s) released)",
        args.from.display(),
        args.data_dir.display()
    ))
}

/// Copies the directory tree `from` to `to` (files, directories, permissions; symlinks
/// as links).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
