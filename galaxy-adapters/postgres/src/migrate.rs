//! The schema migrations (this crate's `migrations/`, kept inside the crate so that they
//! are published with it), embedded in the binary and applied by [`migrate`] before
//! anything else uses the pool.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};

use crate::error::SetupError;

/// Every migration of the schema, embedded at build time.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Brings the database's schema up to date with this binary.
///
/// Safe to call on every start and from several processes at once (sqlx holds an
/// advisory lock while it migrates); applying an up-to-date schema changes nothing.
/// Refuses with [`SetupError::UnknownMigrations`], naming the versions, when the
/// database has migrations this binary does not know (a newer Galaxy migrated it), and
/// with [`SetupError::ModifiedMigration`] when an applied migration's SQL differs from
/// the embedded one.
pub async fn migrate(pool: &PgPool) -> Result<(), SetupError> {
    let latest_known = latest_known_version();
    let unknown: Vec<i64> = applied_versions(pool)
        .await?
        .into_iter()
        .filter(|version| !MIGRATOR.version_exists(*version))
        .collect();
    if !unknown.is_empty() {
        return Err(SetupError::UnknownMigrations {
            unknown,
            latest_known,
        });
    }
    MIGRATOR.run(pool).await.map_err(|error| match error {
        // Another process applied a newer migration between the check and the run.
        MigrateError::VersionMissing(version) => SetupError::UnknownMigrations {
            unknown: vec![version],
            latest_known,
        },
        MigrateError::VersionMismatch(version) => SetupError::ModifiedMigration { version },
        source => SetupError::Migration { source },
    })?;
    tracing::info!(
        schema_version = latest_known,
        "database schema is up to date"
    );
    Ok(())
}

/// The versions of the migrations this binary embeds, oldest first.
pub fn known_versions() -> Vec<i64> {
    MIGRATOR.iter().map(|m| m.version).collect()
}

/// Where a database's schema stands against this binary's migrations
/// (`galaxy-cli migrate status`, `galaxy-cli doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Versions recorded as applied, oldest first.
    pub applied: Vec<i64>,
    /// Versions this binary embeds and the database lacks: `migrate` (or starting the
    /// server) applies them.
    pub pending: Vec<i64>,
    /// Versions applied that this binary does not know: a newer Galaxy migrated the
    /// database, and this binary refuses to run on it.
    pub unknown: Vec<i64>,
    /// The newest version this binary embeds.
    pub latest_known: i64,
}

impl SchemaStatus {
    /// Whether the schema is exactly this binary's.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

/// Compares the database's applied migrations with this binary's; changes nothing.
pub async fn schema_status(pool: &PgPool) -> Result<SchemaStatus, SetupError> {
    let applied = applied_versions(pool).await?;
    let pending = MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    let unknown = applied
        .iter()
        .copied()
        .filter(|v| !MIGRATOR.version_exists(*v))
        .collect();
    Ok(SchemaStatus {
        applied,
        pending,
        unknown,
        latest_known: latest_known_version(),
    })
}

/// The newest migration version this binary embeds.
fn latest_known_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The versions recorded as applied in the database (none on a fresh database).
async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>, SetupError> {
    let database = |source| SetupError::Database { source };
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .map_err(database)?;
    if table.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .map_err(database)
}

/// A short hex digest of every embedded migration (version and checksum): two binaries
/// with the same fingerprint build the same schema. Test support names its template
/// database after it.
pub fn schema_fingerprint() -> String {
    let mut hasher = Sha256::new();
    for migration in MIGRATOR.iter() {
        hasher.update(migration.version.to_be_bytes());
        hasher.update(&*migration.checksum);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_and_fingerprinted() {
        assert_eq!(known_versions().first(), Some(&1));
        assert_eq!(schema_fingerprint().len(), 16);
        assert_eq!(schema_fingerprint(), schema_fingerprint());
    }
}
