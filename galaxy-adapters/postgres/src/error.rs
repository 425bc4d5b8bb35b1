//! Errors at the adapter's edge: sqlx errors become [`StoreError`]s here, and set-up
//! (connecting, migrating) fails with [`SetupError`].

use std::time::Duration;

use galaxy_core::ports::StoreError;

/// Why the adapter could not be set up: connecting or migrating failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The connection URL could not be parsed.
    #[error("invalid Postgres URL: {source}")]
    InvalidUrl {
        /// sqlx's parse error.
        #[source]
        source: sqlx::Error,
    },
    /// Postgres did not answer within the retry budget.
    #[error(
        "could not connect to Postgres at {target} after {attempts} attempt(s) over {:.1}s: \
         {source}",
        elapsed.as_secs_f64()
    )]
    Unreachable {
        /// Host, port and database (never the password).
        target: String,
        /// How many connection attempts were made.
        attempts: u32,
        /// How long was spent trying.
        elapsed: Duration,
        /// The last attempt's error.
        #[source]
        source: sqlx::Error,
    },
    /// Postgres answered but refused the connection for a reason retrying cannot fix
    /// (wrong password, missing database...).
    #[error("Postgres at {target} refused the connection: {source}")]
    Refused {
        /// Host, port and database (never the password).
        target: String,
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database holds migrations this binary does not know: it was migrated by a
    /// newer Galaxy, and running this one could corrupt it.
    #[error(
        "the database schema is newer than this binary: it has migration(s) {} that this \
         binary does not know (it knows versions up to {latest_known}). Run the Galaxy \
         release that migrated it (or a newer one), or restore a backup taken before it.",
        list_versions(unknown)
    )]
    UnknownMigrations {
        /// The applied versions missing from this binary.
        unknown: Vec<i64>,
        /// The newest version this binary knows.
        latest_known: i64,
    },
    /// An applied migration differs from the one embedded in this binary.
    #[error(
        "migration {version} was applied with different SQL than this binary embeds: \
         migrations must never be edited once released"
    )]
    ModifiedMigration {
        /// The migration's version.
        version: i64,
    },
    /// Applying the migrations failed.
    #[error("applying the database migrations failed: {source}")]
    Migration {
        /// sqlx's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query run during set-up failed.
    #[error("database error during set-up: {source}")]
    Database {
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
}

fn list_versions(versions: &[i64]) -> String {
    let names: Vec<String> = versions.iter().map(i64::to_string).collect();
    names.join(", ")
}

/// SQLSTATE codes that mean "the server is going away or cannot serve right now":
/// retrying later may succeed.
fn is_transient_code(code: &str) -> bool {
    // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now;
    // 53300: too many connections; 40001/40P01: serialization failure, deadlock.
    code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        || matches!(code, "40001" | "40P01")
}

/// Whether a sqlx error is transient (connection lost, pool exhausted, server
/// restarting), i.e. the same call may succeed later.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_transient_code(&code)),
        _ => false,
    }
}

/// Maps a sqlx error to the port error: unique violation -> `Duplicate` (keyed by the
/// constraint), transient failures -> `Unavailable`, anything else -> `Internal`.
pub(crate) fn store_error(entity: &'static str, error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && db.is_unique_violation()
    {
        let key = db.constraint().unwrap_or("unique key").to_owned();
        return StoreError::duplicate(entity, key);
    }
    if is_transient(&error) {
        StoreError::unavailable(error)
    } else {
        StoreError::internal(error)
    }
}

/// The `.map_err` form of [`store_error`].
pub(crate) fn db(entity: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| store_error(entity, error)
}

/// A stored value the domain refuses: a corrupt row (or a schema this code does not
/// match). Not retryable.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {entity}.{column} from the database: {detail}")]
pub(crate) struct CorruptRow {
    /// The table's entity.
    pub entity: &'static str,
    /// The column.
    pub column: &'static str,
    /// What was wrong.
    pub detail: String,
}

/// A `StoreError::Internal` for a row the domain cannot read.
pub(crate) fn corrupt(
    entity: &'static str,
    column: &'static str,
    detail: impl ToString,
) -> StoreError {
    StoreError::internal(CorruptRow {
        entity,
        column,
        detail: detail.to_string(),
    })
}

/// Whether a sqlx error is a foreign-key violation (23503).
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_retryable_and_others_not() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(store_error("mail", io).is_retryable());
        assert!(store_error("mail", sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!store_error("mail", sqlx::Error::RowNotFound).is_retryable());
        assert!(matches!(
            store_error("mail", sqlx::Error::ColumnNotFound("x".into())),
            StoreError::Internal { .. }
        ));
    }

    #[test]
    fn unknown_migrations_name_the_versions() {
        let error = SetupError::UnknownMigrations {
            unknown: vec![3, 4],
            latest_known: 2,
        };
        let message = error.to_string();
        assert!(
            message.contains("3, 4") && message.contains("up to 2"),
            "{message}"
        );
    }
}
