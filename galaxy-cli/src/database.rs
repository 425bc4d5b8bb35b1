//! How the commands reach the database: the settings they read it from, how they
//! connect, and the schema check that keeps writing commands off a database this binary
//! does not match.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use galaxy_postgres::{ConnectOptions, SchemaStatus, connect, schema_status};
use galaxy_server::config::Layered;

/// A pool on the database of `url` (or the settings'), refused unless its schema is
/// exactly this binary's: commands that write never migrate behind the operator's back
/// (upgrades are backed up first, docs/operations.md).
pub(crate) async fn current_schema(
    url: Option<String>,
    settings: &Layered,
) -> anyhow::Result<galaxy_postgres::PgPool> {
    let url = database_url(url, settings)?;
    let pool = connect_to(&url).await?;
    let status = read_schema(&pool).await?;
    if !status.unknown.is_empty() {
        anyhow::bail!(
            "the database was migrated by a newer Galaxy (versions {:?}): use its galaxy-cli",
            status.unknown
        );
    }
    if !status.pending.is_empty() {
        anyhow::bail!(
            "the database lacks migrations {:?} of this galaxy-cli: upgrade it first \
             (galaxy-cli migrate, after a backup) or use the servers' own galaxy-cli",
            status.pending
        );
    }
    Ok(pool)
}

/// `migrate status`: prints the applied and pending migrations; 0 when the schema is
/// current, 1 when migrations are pending, 2 when the database is newer than this
/// binary. An error is a status it could not read (the caller's exit 3).
pub(crate) async fn migrate_status(
    url: Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let url = database_url(url, &settings(file)?)?;
    let pool = connect_to(&url).await?;
    let status = read_schema(&pool).await?;
    println!("applied: {:?}", status.applied);
    println!("pending: {:?}", status.pending);
    if !status.unknown.is_empty() {
        println!(
            "unknown: {:?} (a newer Galaxy migrated this database; this binary knows up to {})",
            status.unknown, status.latest_known
        );
        return Ok(ExitCode::from(2));
    }
    if status.pending.is_empty() {
        println!("schema is current (version {})", status.latest_known);
        Ok(ExitCode::SUCCESS)
    } else {
        println!("run `galaxy-cli migrate` (after a backup) to apply the pending ones");
        Ok(ExitCode::from(1))
    }
}

/// The server's settings as it reads them: the environment over the configuration file
/// (`--config`, else `GALAXY_CONFIG_FILE`), unvalidated.
pub(crate) fn settings(file: Option<&Path>) -> anyhow::Result<Layered> {
    Layered::from_env(file).context("cannot read the configuration")
}

/// The database URL, for the commands that need one: `--database-url` or
/// `GALAXY_DATABASE_URL`, else the configuration file's.
pub(crate) fn database_url(url: Option<String>, settings: &Layered) -> anyhow::Result<String> {
    // Empty is unset, as the server reads it.
    url.filter(|url| !url.trim().is_empty())
        .or_else(|| settings.value("GALAXY_DATABASE_URL").map(str::to_owned))
        .context("GALAXY_DATABASE_URL (or --database-url, or database_url in the --config file) must be set")
}

/// Whether `email` is among the bootstrap admins of the configuration this command
/// reads (the environment over the file), compared as the server compares addresses.
pub(crate) fn is_bootstrap_admin(settings: &Layered, email: &str) -> bool {
    let Ok(email) = galaxy_core::domain::user::Email::parse(email) else {
        return false;
    };
    settings
        .value("GALAXY_BOOTSTRAP_ADMINS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|listed| galaxy_core::domain::user::Email::parse(listed).ok())
        .any(|listed| listed == email)
}

/// How the commands connect: three attempts (a database that is restarting), not the
/// server's ten over half a minute, each waiting at most two seconds for a host that does
/// not answer, so an operator who mistyped a host is told within about seven seconds.
pub(crate) fn connect_options() -> ConnectOptions {
    let mut options = ConnectOptions::default();
    options.connect_attempts = 3;
    options.acquire_timeout = std::time::Duration::from_secs(2);
    "galaxy-cli".clone_into(&mut options.application_name);
    options
}

/// A pool on the Galaxy database at `url`.
pub(crate) async fn connect_to(url: &str) -> anyhow::Result<galaxy_postgres::PgPool> {
    connect(url, &connect_options())
        .await
        .context("cannot connect to the database")
}

/// The database's migrations against this binary's.
pub(crate) async fn read_schema(pool: &galaxy_postgres::PgPool) -> anyhow::Result<SchemaStatus> {
    schema_status(pool)
        .await
        .context("cannot read the schema's migrations")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The database URL: the option (or `GALAXY_DATABASE_URL`, which clap reads into
    /// it), else the configuration file's; none at all is an error naming all three.
    #[test]
    fn the_database_url_comes_from_the_configuration_file_last() {
        use std::collections::HashMap;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("galaxy.toml");
        std::fs::write(&file, "database_url = \"postgres://file/db\"\n").unwrap();
        let none = HashMap::new();
        let from_file = Layered::load(Some(&file), &none).unwrap();
        assert_eq!(
            database_url(None, &from_file).unwrap(),
            "postgres://file/db"
        );
        let flag = Some("postgres://flag/db".to_owned());
        assert_eq!(
            database_url(flag, &from_file).unwrap(),
            "postgres://flag/db"
        );
        let missing = database_url(None, &Layered::load(None, &none).unwrap()).unwrap_err();
        assert!(missing.to_string().contains("--config"), "{missing}");
    }
}
