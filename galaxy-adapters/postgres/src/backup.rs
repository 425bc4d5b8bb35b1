//! What `galaxy-cli backup` needs of the database beyond `pg_dump`: holding every running
//! game between turns while its engine data is copied, and letting go afterwards (in the
//! live database, and in a restored copy, which carries the hold).
//!
//! The hold is the runtime's own turn lease (`turn_lease_token`/`turn_lease_until` of
//! `runtime_records`): the turn scheduler and force-next-turn never claim a game whose
//! lease is held, and a turn in progress holds it, so a game held here is between turns.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::SetupError;

/// Takes the turn lease of every running game whose lease is free or lapsed, with
/// `token` until `until`; returns the ids of the games now held by `token` (those held
/// before by the same token included) and how many running games another holder (a turn
/// in progress) still has.
pub async fn hold_turns(
    pool: &PgPool,
    token: Uuid,
    until: DateTime<Utc>,
) -> Result<(Vec<Uuid>, u64), SetupError> {
    let database = |source| SetupError::Database { source };
    let held: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE runtime_records SET turn_lease_token = $1, turn_lease_until = $2 \
         WHERE status = 'running' AND (turn_lease_token IS NULL OR turn_lease_token = $1 \
         OR turn_lease_until < now()) RETURNING game_id",
    )
    .bind(token)
    .bind(until)
    .fetch_all(pool)
    .await
    .map_err(database)?;
    let busy: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM runtime_records WHERE status = 'running' \
         AND turn_lease_token IS DISTINCT FROM $1",
    )
    .bind(token)
    .fetch_one(pool)
    .await
    .map_err(database)?;
    Ok((held, u64::try_from(busy).unwrap_or_default()))
}

/// Extends every turn lease `token` holds to `until`; returns how many it still holds.
/// Fewer than [`hold_turns`] took means a hold lapsed (the backup was slower than the
/// hold) and the runtime took the game back: a turn may have run during the copy.
pub async fn renew_hold(
    pool: &PgPool,
    token: Uuid,
    until: DateTime<Utc>,
) -> Result<u64, SetupError> {
    sqlx::query("UPDATE runtime_records SET turn_lease_until = $2 WHERE turn_lease_token = $1")
        .bind(token)
        .bind(until)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        .map_err(|source| SetupError::Database { source })
}

/// Frees every turn lease `token` holds; returns how many.
pub async fn release_turns(pool: &PgPool, token: Uuid) -> Result<u64, SetupError> {
    sqlx::query(
        "UPDATE runtime_records SET turn_lease_token = NULL, turn_lease_until = NULL \
         WHERE turn_lease_token = $1",
    )
    .bind(token)
    .execute(pool)
    .await
    .map(|done| done.rows_affected())
    .map_err(|source| SetupError::Database { source })
}

/// Gives a restored database's push log a new epoch (random, as the first migration
/// draws it) and returns it. The restored log goes on from the backup's sequence, which
/// the live log had passed: events appended after the restore would reuse sequence
/// numbers that gateways already handled from the lost timeline, and a gateway's cursor
/// would silently skip them. Under a new epoch, every cursor issued before is from
/// another log, and its gateway gets a resync.
pub async fn rotate_push_epoch(pool: &PgPool) -> Result<u64, SetupError> {
    let epoch: i64 = sqlx::query_scalar(
        "UPDATE push_log SET epoch = \
         floor(random() * 9007199254740991)::bigint * 1024 + floor(random() * 1024)::bigint \
         RETURNING epoch",
    )
    .fetch_one(pool)
    .await
    .map_err(|source| SetupError::Database { source })?;
    Ok(epoch.cast_unsigned())
}

/// The server's major version (`15` for 15.4): `pg_dump` refuses a server newer than
/// itself, which a backup checks before it holds the games and copies their data.
pub async fn server_major(pool: &PgPool) -> Result<u32, SetupError> {
    let major: i32 =
        sqlx::query_scalar("SELECT current_setting('server_version_num')::int / 10000")
            .fetch_one(pool)
            .await
            .map_err(|source| SetupError::Database { source })?;
    Ok(u32::try_from(major).unwrap_or_default())
}

/// Whether the database has no table of its own yet (where a restore may go).
pub async fn is_empty(pool: &PgPool) -> Result<bool, SetupError> {
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(pool)
    .await
    .map_err(|source| SetupError::Database { source })?;
    Ok(tables == 0)
}

/// The games whose engine data a backup must take along under the Docker runtime (where
/// it lives in each game's data volume, not in the data directory): every game that is
/// starting, running or paused and has a runtime record, also when its container is gone
/// (the record `removed`, the game paused until its engine is re-created from that
/// volume).
pub async fn engine_games(pool: &PgPool) -> Result<Vec<Uuid>, SetupError> {
    sqlx::query_scalar(
        "SELECT r.game_id FROM runtime_records r JOIN games g ON g.id = r.game_id \
         WHERE g.status IN ('starting', 'running', 'paused') ORDER BY r.game_id",
    )
    .fetch_all(pool)
    .await
    .map_err(|source| SetupError::Database { source })
}
