//! Test support: a fresh, migrated database for every test case, cloned from a template.
//!
//! The template (`galaxy_tpl_<schema fingerprint>`) is migrated once per schema, by
//! whichever test process gets there first; the others wait on a Postgres advisory lock
//! held only while the template is built, then clone it (`CREATE DATABASE ... TEMPLATE`,
//! a file copy, milliseconds). Tests never share a database and never wait on each other
//! once the template exists, so nextest may run them all in parallel.
//!
//! ```no_run
//! # async fn example() -> Result<(), galaxy_postgres::testing::TestDbError> {
//! use galaxy_postgres::testing::TestDatabases;
//! let databases = TestDatabases::from_env().await?;
//! let store = databases.store().await?; // its own empty, migrated database
//! // ... use the store ...
//! databases.cleanup().await?;
//! # Ok(()) }
//! ```

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Connection as _};

use crate::connect::{connect_with, parse_url};
use crate::{ConnectOptions, PgStore, SetupError, migrate, schema_fingerprint};

/// The variable naming the Postgres the tests use.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// Why a test database could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestDbError {
    /// `DATABASE_URL` is not set.
    #[error(
        "DATABASE_URL is not set: run the tests with scripts/test.sh (it starts a throwaway \
         Postgres from the machine's binaries) or set DATABASE_URL to a Postgres role that \
         may create databases, e.g. postgres://galaxy@127.0.0.1:5432/postgres"
    )]
    NoDatabaseUrl,
    /// Connecting or migrating failed.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A statement creating or dropping a database failed.
    #[error("test database set-up failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// Makes fresh test databases on one Postgres server and drops them on
/// [`cleanup`](Self::cleanup).
#[derive(Debug)]
pub struct TestDatabases {
    /// Where to connect for `CREATE DATABASE` (the URL's own database).
    admin: PgConnectOptions,
    /// The migrated template every test database is cloned from.
    template: String,
    /// Databases made by this value, dropped by `cleanup`.
    created: Mutex<Vec<String>>,
}

impl TestDatabases {
    /// Uses the server of `DATABASE_URL`; fails with a message saying how to get one
    /// when it is unset.
    pub async fn from_env() -> Result<Self, TestDbError> {
        let url = std::env::var(DATABASE_URL).map_err(|_| TestDbError::NoDatabaseUrl)?;
        Self::new(&url).await
    }

    /// Uses the server of `url`, whose role must be allowed to create databases; builds
    /// the template for this schema if no process has yet.
    pub async fn new(url: &str) -> Result<Self, TestDbError> {
        let admin = parse_url(url)?;
        let template = format!("galaxy_tpl_{}", schema_fingerprint());
        let databases = Self {
            admin,
            template,
            created: Mutex::new(Vec::new()),
        };
        databases.ensure_template().await?;
        Ok(databases)
    }

    /// A store on a fresh database with the full schema and no rows.
    pub async fn store(&self) -> Result<PgStore, TestDbError> {
        let options = self.migrated_database().await?;
        Ok(PgStore::new(self.pool(options).await?))
    }

    /// Connect options of a fresh database with the full schema and no rows.
    pub async fn migrated_database(&self) -> Result<PgConnectOptions, TestDbError> {
        let template = self.template.clone();
        self.create(&template).await
    }

    /// Connect options of a fresh database without any schema (to test migrating).
    pub async fn empty_database(&self) -> Result<PgConnectOptions, TestDbError> {
        self.create("template0").await
    }

    /// A small pool on a test database.
    pub async fn pool(&self, options: PgConnectOptions) -> Result<PgPool, TestDbError> {
        let settings = ConnectOptions {
            max_connections: 12,
            acquire_timeout: Duration::from_secs(30),
            connect_attempts: 3,
            application_name: "galaxy-test".to_owned(),
            ..ConnectOptions::default()
        };
        Ok(connect_with(options, &settings).await?)
    }

    /// Drops every database this value created (a failed test leaves its databases
    /// behind for inspection; the throwaway cluster of scripts/test.sh goes with them).
    pub async fn cleanup(&self) -> Result<(), TestDbError> {
        let names =
            std::mem::take(&mut *self.created.lock().unwrap_or_else(PoisonError::into_inner));
        let mut admin = PgConnection::connect_with(&self.admin).await?;
        for name in names {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut admin)
                .await?;
        }
        admin.close().await?;
        Ok(())
    }

    /// Clones `template` into a new uniquely named database.
    async fn create(&self, template: &str) -> Result<PgConnectOptions, TestDbError> {
        let name = format!("galaxy_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect_with(&self.admin).await?;
        // Both names are generated from [a-z0-9_] only, so quoting them is enough.
        let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name.clone());
        Ok(self.admin.clone().database(&name))
    }

    /// Builds the template once per schema, guarded against concurrent test processes.
    async fn ensure_template(&self) -> Result<(), TestDbError> {
        let mut admin = PgConnection::connect_with(&self.admin).await?;
        if self.template_ready(&mut admin).await? {
            admin.close().await?;
            return Ok(());
        }
        let key = lock_key(&self.template);
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut admin)
            .await?;
        let built = self.build_template(&mut admin).await;
        // Released even when building failed; closing the session would release it too.
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut admin)
            .await;
        built?;
        unlocked?;
        admin.close().await?;
        Ok(())
    }

    /// Whether the template exists and is complete (marked as a template last).
    async fn template_ready(&self, admin: &mut PgConnection) -> Result<bool, TestDbError> {
        let ready: Option<bool> =
            sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
                .bind(&self.template)
                .fetch_optional(admin)
                .await?;
        Ok(ready == Some(true))
    }

    /// Under the advisory lock: (re)creates and migrates the template unless another
    /// process finished it meanwhile.
    async fn build_template(&self, admin: &mut PgConnection) -> Result<(), TestDbError> {
        if self.template_ready(admin).await? {
            return Ok(());
        }
        let name = &self.template;
        // A half-built template of a crashed run is never marked; start it over.
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{name}\" TEMPLATE template0"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *admin)
                .await?;
        }
        let pool = self.pool(self.admin.clone().database(name)).await?;
        let migrated = migrate(&pool).await;
        pool.close().await;
        migrated?;
        let sql = format!("ALTER DATABASE \"{name}\" WITH IS_TEMPLATE true");
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *admin)
            .await?;
        Ok(())
    }
}

/// The advisory lock key guarding the build of one template.
fn lock_key(template: &str) -> i64 {
    let digest = Sha256::digest(template.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A leased queue of the schema, filled in bulk: tests and benchmarks that need thousands
/// of claimable items at once seed them in one statement instead of enqueueing each
/// through its store (which would take most of their time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedQueue {
    /// Runtime jobs (`runtime_jobs`): start jobs of distinct games, queued.
    Jobs,
    /// Notification routes (`notification_routes`): push routes of one new intent.
    Routes,
    /// The outbox (`mail_deliveries`): short pending mails to distinct addresses.
    Mail,
}

impl SeedQueue {
    /// Every queue.
    pub const ALL: [SeedQueue; 3] = [Self::Jobs, Self::Routes, Self::Mail];

    /// The queue's table.
    pub fn table(self) -> &'static str {
        match self {
            Self::Jobs => "runtime_jobs",
            Self::Routes => "notification_routes",
            Self::Mail => "mail_deliveries",
        }
    }

    /// Queues `items` new items, due (and created) at `now`, in one statement (item rows
    /// and their ready rows). Every call uses fresh idempotency keys, so a queue may be
    /// seeded again.
    pub async fn seed(
        self,
        pool: &PgPool,
        items: u64,
        now: galaxy_core::domain::Timestamp,
    ) -> sqlx::Result<()> {
        let sql = match self {
            Self::Jobs => {
                "WITH items AS (INSERT INTO runtime_jobs (id, game_id, kind, idempotency_key, \
                 status, attempts, run_after, created_at, updated_at) SELECT gen_random_uuid(), \
                 gen_random_uuid(), 'start', 'seed-' || $1 || '-' || g, 'queued', 0, $2, $2, $2 \
                 FROM generate_series(1, $3) g RETURNING id) \
                 INSERT INTO runtime_jobs_ready (id, due, created_at) SELECT id, $2, $2 FROM items"
            }
            Self::Routes => {
                "WITH intent AS (INSERT INTO notification_intents (id, kind, idempotency_key, \
                 recipients, payload, created_at) VALUES (gen_random_uuid(), 'turn_completed', \
                 'seed-' || $1, '{}', '{}', $2) RETURNING id) \
                 , items AS (INSERT INTO notification_routes (id, intent_id, user_id, channel, \
                 status, attempts, next_attempt_at, created_at, updated_at) SELECT \
                 gen_random_uuid(), intent.id, gen_random_uuid(), 'push', 'pending', 0, $2, $2, \
                 $2 FROM intent, generate_series(1, $3) g RETURNING id) \
                 INSERT INTO notification_routes_ready (id, due, created_at) \
                 SELECT id, $2, $2 FROM items"
            }
            Self::Mail => {
                "WITH items AS (INSERT INTO mail_deliveries (id, idempotency_key, to_email, \
                 kind, locale, subject, text_body, status, attempts, next_attempt_at, created_at, \
                 updated_at) SELECT gen_random_uuid(), 'seed-' || $1 || '-' || g, \
                 'player' || g || '@example.org', 'turn_completed', 'en', 'Turn report ' || g, \
                 'Your turn report is ready.', 'pending', 0, $2, $2, $2 \
                 FROM generate_series(1, $3) g RETURNING id) \
                 INSERT INTO mail_deliveries_ready (id, due, created_at) \
                 SELECT id, $2, $2 FROM items"
            }
        };
        let count = i64::try_from(items).unwrap_or(i64::MAX);
        sqlx::query(sql)
            .bind(uuid::Uuid::new_v4().simple().to_string())
            .bind(now)
            .bind(count)
            .execute(pool)
            .await?;
        Ok(())
    }
}
