#![doc = include_str!("../README.md")]

mod applications;
mod auth;
pub mod backup;
mod changes;
mod connect;
mod error;
mod games;
mod geo;
mod keys;
mod listen;
mod locks;
mod mail;
mod mail_in;
mod migrate;
mod notification;
mod pbem;
mod play;
mod push;
mod queue;
mod race_names;
mod rows;
mod runtime;
mod users;

pub mod testing;

pub use changes::{ChangeBusOptions, PgChangeBus};
pub use connect::{ConnectOptions, check_url, connect, connect_with};
pub use error::SetupError;
pub use migrate::{SchemaStatus, known_versions, migrate, schema_fingerprint, schema_status};
pub use push::{PgPushLog, PushLogOptions};
/// The connection pool [`connect`] returns (sqlx's), named here so that a caller of
/// [`connect`] and of the [`backup`] helpers needs no sqlx dependency of its own.
pub use sqlx::PgPool;

/// How many rows one statement of a retention purge deletes (or compacts) at most. The
/// sweeper's purges run batch after batch (`PgStore::purge_in_batches`), each its own
/// short transaction taking its rows with `FOR UPDATE SKIP LOCKED`: a first sweep over
/// years of history (after an upgrade, an outage of the sweeper, a shorter retention)
/// is then many small commits, not one statement that writes gigabytes of WAL and holds
/// vacuum back, and the sweepers of two replicas share the rows instead of waiting on
/// each other's locks.
pub const PURGE_BATCH: i64 = 1000;

/// Every store port of galaxy-core on one Postgres pool.
///
/// Cheap to clone (the pool is shared). Build it with [`PgStore::open`] (connect with
/// retry, then migrate), or with [`PgStore::new`] on a pool that [`migrate`] has
/// already brought up to date.
#[derive(Debug, Clone)]
pub struct PgStore {
    /// Shared by every port; each call takes one connection (or one transaction).
    pool: PgPool,
}

impl PgStore {
    /// A store on an already migrated pool.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Connects to `url` (with the bounded retry of [`connect`]), applies the
    /// migrations and returns the store.
    pub async fn open(url: &str, options: &ConnectOptions) -> Result<Self, SetupError> {
        let pool = connect(url, options).await?;
        migrate(&pool).await?;
        Ok(Self::new(pool))
    }

    /// The pool, e.g. for a readiness probe or to close it on shutdown.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the purge `sql` a batch of [`PURGE_BATCH`] at a time until one comes back
    /// short; how many rows it purged in all. `sql` comes from a constant of this crate,
    /// never from input. It purges rows from before `$1`, at most `$2` of them, taken in
    /// the order of one timestamp key from `$3` on (`key >= COALESCE($3, '-infinity')`),
    /// and answers `SELECT count(*), max(key)` of what it purged: each batch starts where
    /// the last one ended instead of at the start of the key's index. Started from the
    /// start every time, a batch walks the index entries of every row the batches before
    /// it deleted whenever those cannot be marked dead yet (a snapshot older than the
    /// sweep is open: a `pg_dump` of `galaxy-cli backup`, a long report), so a first
    /// sweep over a long history costs the square of its batches (measured: 200 000
    /// expired challenges with such a snapshot open, 14.6 s from the start each time,
    /// 1.6 s continuing). Rows with the key of the last one are read again (`>=`, as
    /// keys may tie); deleted ones are gone for the next statement.
    pub(crate) async fn purge_in_batches(
        &self,
        sql: &str,
        before: galaxy_core::domain::Timestamp,
        entity: &'static str,
    ) -> Result<u64, galaxy_core::ports::StoreError> {
        let mut purged: u64 = 0;
        let mut from: Option<galaxy_core::domain::Timestamp> = None;
        loop {
            let (done, last): (i64, Option<galaxy_core::domain::Timestamp>) =
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(before)
                    .bind(PURGE_BATCH)
                    .bind(from)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(error::db(entity))?;
            purged = purged.saturating_add(u64::try_from(done).unwrap_or(0));
            if done < PURGE_BATCH {
                return Ok(purged);
            }
            from = last.or(from);
        }
    }

    /// Whether the database answers, for a readiness probe: a pooled connection makes
    /// one round trip. A pool whose every connection stayed in use for the whole acquire
    /// timeout is [`Ping::Busy`], not an error: its connections are being served, and a
    /// probe that called that "unreachable" would take every replica out of a load
    /// balancer at the same peak. A database that does not answer fails the call (its
    /// `StoreError` says why).
    pub async fn ping(&self) -> Result<Ping, galaxy_core::ports::StoreError> {
        use sqlx::Connection as _;
        match self.pool.acquire().await {
            Ok(mut connection) => {
                connection.ping().await.map_err(error::db("database"))?;
                Ok(Ping::Answered)
            }
            Err(sqlx::Error::PoolTimedOut)
                if self.pool.num_idle() == 0
                    && self.pool.size() >= self.pool.options().get_max_connections() =>
            {
                Ok(Ping::Busy)
            }
            Err(error) => Err(error::db("database")(error)),
        }
    }
}

/// How the database answered [`PgStore::ping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// A connection made a round trip.
    Answered,
    /// Every connection of the pool was in use for the whole acquire timeout: the
    /// database is serving them; nothing was learnt against it.
    Busy,
}
