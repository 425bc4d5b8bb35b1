//! `galaxy-cli backup` and `restore`: a game's state is split between Postgres (lobby,
//! runtime records, turn archive, orders, mail) and its engine's data (the process
//! runtime's directories under `$GALAXY_DATA_DIR/engines`; the data directory also holds
//! the generated login-code and engine secrets). A backup is a directory:
//!
//! - `database.dump`: `pg_dump --format=custom` of the database;
//! - `data/`: a copy of `$GALAXY_DATA_DIR` (engine data, secrets, mail files);
//! - `volumes/<container name>.tar`: under the Docker runtime (`GALAXY_RUNTIME=docker`),
//!   the engine data volume of each starting, running or paused game as a tar archive
//!   (see `galaxy_docker`'s `export_engine_data`: through the engine's container, or
//!   from the volume alone when the container vanished); `restore` fills fresh volumes of
//!   the same names from them, so an engine created again (`recreate-engine`) resumes its
//!   state;
//! - `manifest.json`: when, which schema, which games were held and the hold's token, and
//!   the volumes with the image each was written by.
//!
//! Consistency per game: before anything is copied every running game is held between
//! turns (its turn lease is taken, waiting for a turn in progress to end), so no turn
//! changes its engine data or its archive while both are copied; the hold is renewed
//! while the copy runs (a backup that lost it fails), released at the end, and `restore`
//! releases it in the restored copy. Orders submitted during the copy may be in one part
//! and not the other (the engine's copy is what counts).
//!
//! A backup holds every user's e-mail address, mail and orders tokens: its directory is
//! created readable by its owner only (0700), and the database password reaches
//! `pg_dump` and `pg_restore` in their environment, never on their command line (which
//! every local user can read).

mod args;
mod database_url;
mod files;
mod volumes;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use galaxy_core::domain::GameId;
use galaxy_core::service::runtime::container_name;
use galaxy_docker::{DockerConfig, DockerRuntime, EngineDataExport, volume_name};
use galaxy_postgres::{backup, connect, schema_status};

use args::Runtime;
pub use args::{BackupArgs, RestoreArgs};
use database_url::without_password;
pub(crate) use files::probe_writable;
use files::{copy_tree, create_private_dir, resolved};
use volumes::BackupVolumes;

/// How long a hold lasts past its latest renewal before the runtime takes the games back
/// on its own (should the backup die half-way). Renewed every third of it while copying.
const HOLD: Duration = Duration::from_secs(600);

/// How long to wait for turns in progress to end.
const WAIT_FOR_TURNS: Duration = Duration::from_secs(120);

/// Deletes the process runtime's saved containers from a copy of a data directory: they
/// name the live machine's engine processes and ports, and a server started on a restored
/// copy would start engines on them (beside the live ones, if the copy is a scratch run on
/// the same host). Without them the restored games' engines are missing, and come back
/// by `recreate-engine` from their restored data, as docs/operations.md describes.
fn forget_saved_engines(data: &Path) -> anyhow::Result<()> {
    let saved = galaxy_server::config::runtime::engines_dir(data)
        .join(galaxy_process_runtime::SAVED_CONTAINERS_DIR);
    match std::fs::remove_dir_all(&saved) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot delete {}", saved.display()))
        }
        _ => Ok(()),
    }
}

/// Writes a backup; the message to print.
pub async fn backup(url: &str, args: BackupArgs) -> anyhow::Result<String> {
    if args.out.exists() {
        bail!(
            "{} exists: a backup goes into a new directory",
            args.out.display()
        );
    }
    // Its secrets and the process runtime's engine data are part of every backup: one
    // without them would restore games whose engines cannot authenticate.
    if !args.data_dir.is_dir() {
        bail!(
            "the data directory {} does not exist: give the server's (--data-dir or \
             GALAXY_DATA_DIR; for the compose deployment, the host path of its /data volume)",
            args.data_dir.display()
        );
    }
    // A backup inside what it copies would copy itself until the disk is full.
    let (data, out) = (resolved(&args.data_dir)?, resolved(&args.out)?);
    if out.starts_with(&data) {
        bail!(
            "{} is inside the data directory {}: write the backup elsewhere",
            args.out.display(),
            args.data_dir.display()
        );
    }
    // The client first: one missing, or too old for the server, is found before the
    // games are held and their data copied.
    let client = client_major("pg_dump").await?;
    let pool = connect(url, &crate::database::connect_options())
        .await
        .context("cannot connect to the database")?;
    let server = backup::server_major(&pool)
        .await
        .context("cannot read the server's version")?;
    if client < server {
        bail!(
            "pg_dump {client} cannot dump a Postgres {server} server: install the Postgres \
             client {server} or newer"
        );
    }
    let schema = schema_status(&pool)
        .await
        .context("cannot read the schema")?;
    let token = uuid::Uuid::now_v7();
    let started = std::time::Instant::now();
    let held = loop {
        let (held, busy) = backup::hold_turns(&pool, token, hold_until()?)
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
    let volumes = if args.runtime == Runtime::Docker {
        match backup::engine_games(&pool).await {
            Ok(engines) => Ok(engines),
            Err(error) => Err(anyhow::Error::new(error).context("cannot list the engines")),
        }
    } else {
        Ok(Vec::new())
    };
    let control = CopyControl::default();
    let result = match volumes {
        Ok(engines) => {
            let copy = copy_all(
                url,
                &args,
                &held,
                &engines,
                &schema.applied,
                token,
                &control,
            );
            keep_holding(&pool, token, held.len(), copy).await
        }
        Err(error) => Err(error),
    };
    // The manifest last, once the hold is known to have held: a directory with one is a
    // whole backup, which `restore` takes.
    let result = result.and_then(|(notes, manifest)| {
        let path = args.out.join("manifest.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(notes)
    });
    let released = backup::release_turns(&pool, token).await;
    pool.close().await;
    if result.is_err() && control.created.load(Ordering::SeqCst) {
        // Made by this run: a partial backup, which holds secrets, is not left behind,
        // and the same --out may be used again. A data copy still running (its backup
        // given up while it copied) stops at its next entry and is waited for first.
        control.stop.store(true, Ordering::SeqCst);
        let _copy_ended = control.copying.lock().await;
        match std::fs::remove_dir_all(&args.out) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => eprintln!(
                "galaxy-cli: the partial backup {} was not removed: {error}",
                args.out.display()
            ),
        }
    }
    let notes = result?;
    released.context("cannot release the games held for the backup")?;
    let mut message = format!(
        "backup written to {} ({} running game(s) held between turns while copied)",
        args.out.display(),
        held.len()
    );
    for note in notes {
        message.push('\n');
        message.push_str(&note);
    }
    Ok(message)
}

/// The major version of the Postgres client `program`, from `<program> --version`
/// (`pg_dump (PostgreSQL) 15.4 (Debian 15.4-1.pgdg120+1)`): asked before any work, so a
/// client that is missing is found before anything is held, copied or restored.
async fn client_major(program: &str) -> anyhow::Result<u32> {
    let out = tokio::process::Command::new(program)
        .arg("--version")
        .output()
        .await
        .with_context(|| {
            format!("cannot run {program} (install the Postgres client, the server's major version or newer)")
        })?;
    if !out.status.success() {
        bail!("{program} --version exited with {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    major_version(&text)
        .with_context(|| format!("cannot read a version from {program}: {:?}", text.trim()))
}

/// The major version in a Postgres program's `--version` line (`16` of
/// `pg_dump (PostgreSQL) 16beta1`).
fn major_version(line: &str) -> Option<u32> {
    let number = line
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let digits: String = number.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// When a hold taken or renewed now ends.
fn hold_until() -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    Ok(chrono::Utc::now() + chrono::TimeDelta::from_std(HOLD).context("the hold's length")?)
}

/// Runs `copy` while renewing the hold of `token` on the `held` games every third of
/// [`HOLD`], then checks the hold once more: a game no longer held was taken back by the
/// runtime (a renewal came too late) and may have played a turn during the copy, so the
/// backup is refused rather than kept with its parts from different turns.
async fn keep_holding<T>(
    pool: &galaxy_postgres::PgPool,
    token: uuid::Uuid,
    held: usize,
    copy: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let renew = async {
        loop {
            tokio::time::sleep(HOLD / 3).await;
            match backup::renew_hold(pool, token, hold_until()?).await {
                Ok(still) if usize::try_from(still).is_ok_and(|n| n < held) => {
                    return anyhow::Ok(());
                }
                Ok(_) => {}
                // A renewal that failed is tried again; the final check decides.
                Err(error) => eprintln!("galaxy-cli: the hold was not renewed: {error}"),
            }
        }
    };
    let result = tokio::select! {
        result = copy => result?,
        lapsed = renew => {
            lapsed?;
            bail!("the hold on the running games lapsed during the copy; back up again");
        }
    };
    let still = backup::renew_hold(pool, token, hold_until()?)
        .await
        .context("cannot check the hold after the copy")?;
    if usize::try_from(still).is_ok_and(|n| n < held) {
        bail!(
            "the hold on {} of {held} running game(s) lapsed during the copy (a turn may \
             have run meanwhile); back up again",
            held - usize::try_from(still).unwrap_or(held)
        );
    }
    Ok(result)
}

/// Writes the engine data of each game into `out/volumes/` (from its container, or from
/// its volume alone when the container vanished); returns the manifest's entries and a
/// note for each game whose data could not be copied (no container and no volume, or a
/// volume too old to name its image), which the backup's output lists.
async fn copy_volumes(
    out: &Path,
    games: &[uuid::Uuid],
) -> anyhow::Result<(Vec<serde_json::Value>, Vec<String>)> {
    if games.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let docker = DockerRuntime::connect(DockerConfig::default())
        .await
        .context("cannot reach Docker for the engines' volumes")?;
    let dir = out.join("volumes");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (mut entries, mut notes) = (Vec::new(), Vec::new());
    for game in games {
        let name = container_name(GameId::from_uuid(*game));
        let data = match docker
            .export_engine_data(&name)
            .await
            .with_context(|| format!("cannot copy the engine data of {name}"))?
        {
            EngineDataExport::Copied(data) => data,
            EngineDataExport::Absent => {
                notes.push(format!(
                    "game {game}: neither its engine container {name} nor its data volume \
                     {} exists; no engine data copied",
                    volume_name(&name)
                ));
                continue;
            }
            EngineDataExport::UnknownImage { volume } => {
                notes.push(format!(
                    "game {game}: no engine data copied: its container is gone and its \
                     volume {volume} names no image; re-create its engine \
                     (POST /api/v1/admin/games/{game}/recreate-engine) and back up again"
                ));
                continue;
            }
        };
        let file = dir.join(format!("{name}.tar"));
        tokio::fs::write(&file, &data.archive)
            .await
            .with_context(|| format!("cannot write {}", file.display()))?;
        entries.push(serde_json::json!({"game_id": game, "container": name, "image": data.image}));
    }
    Ok((entries, notes))
}

/// What a backup that gives up needs of its copy: whether this run created the backup
/// directory (only then is it removed), a flag that stops the data copy at its next
/// entry, and a lock the copy holds while it runs, so the removal waits for it.
#[derive(Default)]
struct CopyControl {
    /// Set once this run created `--out`.
    created: AtomicBool,
    /// Set to stop the data copy.
    stop: Arc<AtomicBool>,
    /// Held by the data copy while it runs.
    copying: Arc<tokio::sync::Mutex<()>>,
}

async fn copy_all(
    url: &str,
    args: &BackupArgs,
    held: &[uuid::Uuid],
    engines: &[uuid::Uuid],
    applied: &[i64],
    token: uuid::Uuid,
    control: &CopyControl,
) -> anyhow::Result<(Vec<String>, serde_json::Value)> {
    create_private_dir(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    control.created.store(true, Ordering::SeqCst);
    let (volumes, notes) = copy_volumes(&args.out, engines).await?;
    let (from, to) = (args.data_dir.clone(), args.out.join("data"));
    let (stop, copying) = (Arc::clone(&control.stop), Arc::clone(&control.copying));
    // Off the runtime's thread: the hold is renewed meanwhile.
    tokio::task::spawn_blocking(move || {
        let _running = copying.blocking_lock_owned();
        copy_tree(&from, &to, &stop)
    })
    .await
    .context("the data directory's copy stopped")?
    .with_context(|| format!("cannot copy {}", args.data_dir.display()))?;
    forget_saved_engines(&args.out.join("data"))?;
    let dump = args.out.join("database.dump");
    let (url, password) = without_password(url)?;
    let mut command = tokio::process::Command::new("pg_dump");
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let status = command
        // A backup given up (its hold lapsed) stops its dump too.
        .kill_on_drop(true)
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
        "volumes": volumes,
    });
    Ok((notes, manifest))
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
    let data_dir_used = args.data_dir.exists()
        && std::fs::read_dir(&args.data_dir)
            .with_context(|| format!("cannot read the data directory {}", args.data_dir.display()))?
            .next()
            .is_some();
    if data_dir_used {
        bail!(
            "{} is not empty: restore into a new data directory",
            args.data_dir.display()
        );
    }
    // The data directory is made (and written to once) before the database is touched:
    // found unwritable only after pg_restore, the restored database would have to be
    // dropped by hand (a fresh host's /var/lib/galaxy, which the `galaxy` user cannot
    // create, was that case).
    std::fs::create_dir_all(&args.data_dir)
        .and_then(|()| probe_writable(&args.data_dir))
        .with_context(|| {
            format!(
                "cannot write into the data directory {} (as the server's user, make it \
                 first: install -d -o galaxy -g galaxy -m 0750 DIR)",
                args.data_dir.display()
            )
        })?;
    client_major("pg_restore").await?;
    let volumes = BackupVolumes::read(&manifest).await?;
    let pool = connect(url, &crate::database::connect_options())
        .await
        .context("cannot connect to the database")?;
    if !backup::is_empty(&pool).await? {
        bail!("the database is not empty: restore into a new database (createdb)");
    }
    let (plain_url, password) = without_password(url)?;
    let mut command = tokio::process::Command::new("pg_restore");
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let status = command
        // One transaction: a restore that fails midway leaves the database empty, so it
        // can simply be run again.
        .args([
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
        ])
        .arg(plain_url)
        .arg(args.from.join("database.dump"))
        .status()
        .await
        .context("cannot run pg_restore (install the Postgres client)")?;
    if !status.success() {
        bail!("pg_restore exited with {status}");
    }
    // The database is restored now: a failure after it says how to start over (a second
    // run refuses a database that is not empty).
    let start_over = "the database is restored already: drop and create it again \
                      (dropdb, createdb), empty the data directory, remove the engine \
                      volumes this restore filled (docker volume rm), then restore again";
    let released = backup::release_turns(&pool, token)
        .await
        .context(start_over)?;
    // Gateways' push cursors from the live log (which went on past the backup) must not
    // be taken for positions in the restored one.
    backup::rotate_push_epoch(&pool).await.context(start_over)?;
    pool.close().await;
    let data = args.from.join("data");
    if data.is_dir() {
        copy_tree(&data, &args.data_dir, &AtomicBool::new(false))
            .with_context(|| format!("cannot copy into {}", args.data_dir.display()))
            .context(start_over)?;
        forget_saved_engines(&args.data_dir).context(start_over)?;
    }
    let volumes = volumes.fill(&args.from).await.context(start_over)?;
    Ok(format!(
        "restored {} into the database and {} ({released} game(s) released, {volumes} \
         engine volume(s) filled, a new push epoch: gateways resync)",
        args.from.display(),
        args.data_dir.display()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn client_versions_are_read_from_their_version_line() {
        for (line, major) in [
            (
                "pg_dump (PostgreSQL) 15.4 (Debian 15.4-1.pgdg120+1)\n",
                Some(15),
            ),
            ("pg_restore (PostgreSQL) 9.6.24", Some(9)),
            ("pg_dump (PostgreSQL) 16beta1", Some(16)),
            ("pg_dump 15.4", None),
            ("", None),
        ] {
            assert_eq!(major_version(line), major, "{line:?}");
        }
    }
}
