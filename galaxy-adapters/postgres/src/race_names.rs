//! [`RaceNameStore`]: the Race Name Directory on `race_names`, one row per uniqueness
//! key, so the primary key itself refuses two live owners of one name.

use async_trait::async_trait;
use galaxy_core::domain::race_name::{RaceName, RaceNameEntry, RaceNameKey, RaceNameStatus};
use galaxy_core::domain::{ApplicationId, GameId, InvalidTransition, Timestamp, UserId};
use galaxy_core::ports::{RaceNameStore, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::PgStore;
use crate::error::db;
use crate::rows::{RowExt, limit_param};

pub(crate) const RACE_NAME: &str = "race name";

fn entry_from_row(row: &PgRow) -> Result<RaceNameEntry, StoreError> {
    let game_id: Option<Uuid> = row.col(RACE_NAME, "game_id")?;
    let application_id: Option<Uuid> = row.col(RACE_NAME, "application_id")?;
    Ok(RaceNameEntry {
        key: RaceNameKey::from_stored(row.col(RACE_NAME, "key")?),
        name: row.col_parse(RACE_NAME, "name", RaceName::parse)?,
        owner: UserId::from_uuid(row.col(RACE_NAME, "owner")?),
        status: row.col_parse(RACE_NAME, "status", str::parse::<RaceNameStatus>)?,
        game_id: game_id.map(GameId::from_uuid),
        application_id: application_id.map(ApplicationId::from_uuid),
        expires_at: row.col(RACE_NAME, "expires_at")?,
        created_at: row.col(RACE_NAME, "created_at")?,
        updated_at: row.col(RACE_NAME, "updated_at")?,
    })
}

/// Reads and locks the entry for `key` inside a transaction.
async fn lock_entry(
    tx: &mut PgConnection,
    key: &RaceNameKey,
) -> Result<Option<RaceNameEntry>, StoreError> {
    let row = sqlx::query("SELECT * FROM race_names WHERE key = $1 FOR UPDATE")
        .bind(key.as_str())
        .fetch_optional(tx)
        .await
        .map_err(db(RACE_NAME))?;
    row.as_ref().map(entry_from_row).transpose()
}

/// Writes every column of `entry`: a new row when `replace` is false (a concurrent
/// insert of the same key then fails with `Duplicate`), else over the locked row.
async fn write_entry(
    tx: &mut PgConnection,
    entry: &RaceNameEntry,
    replace: bool,
) -> Result<(), StoreError> {
    let sql = if replace {
        "UPDATE race_names SET name = $2, owner = $3, status = $4, game_id = $5, \
         application_id = $6, expires_at = $7, created_at = $8, updated_at = $9 WHERE key = $1"
    } else {
        "INSERT INTO race_names (key, name, owner, status, game_id, application_id, \
         expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    };
    sqlx::query(sql)
        .bind(entry.key.as_str())
        .bind(entry.name.as_str())
        .bind(entry.owner.as_uuid())
        .bind(entry.status.as_str())
        .bind(entry.game_id.map(|g| g.as_uuid()))
        .bind(entry.application_id.map(|a| a.as_uuid()))
        .bind(entry.expires_at)
        .bind(entry.created_at)
        .bind(entry.updated_at)
        .execute(tx)
        .await
        .map_err(db(RACE_NAME))?;
    Ok(())
}

/// The owner's entry for `key`, locked; `NotFound` or `Conflict` (someone else's).
async fn owned_entry(
    tx: &mut PgConnection,
    key: &RaceNameKey,
    owner: UserId,
) -> Result<RaceNameEntry, StoreError> {
    let entry = lock_entry(tx, key)
        .await?
        .ok_or_else(|| StoreError::not_found(RACE_NAME, key.as_str()))?;
    if entry.owner != owner {
        return Err(StoreError::conflict(
            RACE_NAME,
            key.as_str(),
            format!("owned by user {}, not {owner}", entry.owner),
        ));
    }
    Ok(entry)
}

/// Whether a live (pending or approved) application of `owner` in a game not yet over
/// uses the name of `key` (applications store the name as given; its key is derived).
async fn used_by_live_application(
    tx: &mut PgConnection,
    key: &RaceNameKey,
    owner: UserId,
) -> Result<bool, StoreError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT a.race_name FROM applications a JOIN games g ON g.id = a.game_id \
         WHERE a.user_id = $1 AND a.status IN ('pending', 'approved') \
         AND g.status NOT IN ('finished', 'cancelled')",
    )
    .bind(owner.as_uuid())
    .fetch_all(tx)
    .await
    .map_err(db(RACE_NAME))?;
    Ok(names
        .iter()
        .filter_map(|name| RaceName::parse(name).ok())
        .any(|name| name.key() == *key))
}

impl PgStore {
    async fn begin_race_names(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(db(RACE_NAME))
    }

    /// One round of `reserve_race_name`; `Duplicate` when the key is blocked or was
    /// inserted concurrently.
    async fn try_reserve(
        &self,
        entry: &RaceNameEntry,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let mut tx = self.begin_race_names().await?;
        let existing = lock_entry(&mut tx, &entry.key).await?;
        if let Some(existing) = &existing {
            if existing.blocks(entry.owner, now) {
                return Err(StoreError::duplicate(RACE_NAME, entry.name.as_str()));
            }
            if existing.owner == entry.owner && existing.status == RaceNameStatus::Registered {
                return Ok(existing.clone());
            }
        }
        write_entry(&mut tx, entry, existing.is_some()).await?;
        tx.commit().await.map_err(db(RACE_NAME))?;
        Ok(entry.clone())
    }
}

#[async_trait]
impl RaceNameStore for PgStore {
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn reserve_race_name(
        &self,
        entry: &RaceNameEntry,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        // Two first reservations of a new key race to insert; the loser's insert hits
        // the primary key, and its second round finds (and judges) the winner's row,
        // exactly as if the two had run one after the other.
        let mut rounds = 0;
        loop {
            rounds += 1;
            match self.try_reserve(entry, now).await {
                Err(StoreError::Duplicate { .. }) if rounds < 2 => continue,
                Err(StoreError::Duplicate { .. }) => {
                    return Err(StoreError::duplicate(RACE_NAME, entry.name.as_str()));
                }
                other => return other,
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn get_race_name(&self, key: &RaceNameKey) -> Result<Option<RaceNameEntry>, StoreError> {
        let row = sqlx::query("SELECT * FROM race_names WHERE key = $1")
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db(RACE_NAME))?;
        row.as_ref().map(entry_from_row).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn register_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let mut tx = self.begin_race_names().await?;
        let mut entry = owned_entry(&mut tx, key, owner).await?;
        match entry.status {
            RaceNameStatus::Registered => return Ok(entry),
            RaceNameStatus::Released => {
                return Err(StoreError::conflict(
                    RACE_NAME,
                    key.as_str(),
                    "released, not pending",
                ));
            }
            RaceNameStatus::PendingRegistration => {}
        }
        // Refuses an expired claim (`InvalidTransition`) and then changes nothing.
        entry.register(at)?;
        write_entry(&mut tx, &entry, true).await?;
        tx.commit().await.map_err(db(RACE_NAME))?;
        Ok(entry)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn release_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        expected: RaceNameStatus,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        // The table first, as for every compare-and-set: only live entries are released.
        if expected == RaceNameStatus::Released {
            return Err(InvalidTransition::new("race_name", expected, expected, "release").into());
        }
        let mut tx = self.begin_race_names().await?;
        let mut entry = owned_entry(&mut tx, key, owner).await?;
        if entry.status != expected {
            return Err(StoreError::conflict(
                RACE_NAME,
                key.as_str(),
                format!("status is {}, expected {expected}", entry.status),
            ));
        }
        // Under the entry's lock, in a statement of its own (so it sees every application
        // committed while the lock was awaited): an application inserted with the name
        // shares this lock to its commit.
        if expected == RaceNameStatus::Registered
            && used_by_live_application(&mut tx, key, owner).await?
        {
            return Err(StoreError::conflict(
                RACE_NAME,
                key.as_str(),
                "used by a live application in a game not yet over",
            ));
        }
        entry.release(at)?;
        write_entry(&mut tx, &entry, true).await?;
        tx.commit().await.map_err(db(RACE_NAME))?;
        Ok(entry)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn release_claim(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        application: ApplicationId,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let mut tx = self.begin_race_names().await?;
        // Locked: a new application's reserve (which takes the claim over) either lands
        // before this reads the entry, and is kept, or waits and then claims a released name.
        let mut entry = owned_entry(&mut tx, key, owner).await?;
        entry
            .release_claim_of(application, at)
            .map_err(|e| StoreError::conflict(RACE_NAME, key.as_str(), e.to_string()))?;
        write_entry(&mut tx, &entry, true).await?;
        tx.commit().await.map_err(db(RACE_NAME))?;
        Ok(entry)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn release_expired_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let mut tx = self.begin_race_names().await?;
        // Locked: a claim renewed before this reads it is kept; one renewed after waits
        // and then finds the name released.
        let mut entry = owned_entry(&mut tx, key, owner).await?;
        entry
            .release_expired(now)
            .map_err(|e| StoreError::conflict(RACE_NAME, key.as_str(), e.to_string()))?;
        write_entry(&mut tx, &entry, true).await?;
        tx.commit().await.map_err(db(RACE_NAME))?;
        Ok(entry)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn list_race_names(&self, owner: UserId) -> Result<Vec<RaceNameEntry>, StoreError> {
        // Byte order ("C") sorts exactly as Rust's `str` ordering, whatever the
        // database's collation.
        let rows = sqlx::query(
            "SELECT * FROM race_names WHERE owner = $1 AND status <> 'released' \
             ORDER BY name COLLATE \"C\", key COLLATE \"C\"",
        )
        .bind(owner.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db(RACE_NAME))?;
        rows.iter().map(entry_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn expired_pending_race_names(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RaceNameEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM race_names WHERE status = 'pending_registration' \
             AND expires_at <= $1 ORDER BY expires_at, created_at, key COLLATE \"C\" LIMIT $2",
        )
        .bind(now)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db(RACE_NAME))?;
        rows.iter().map(entry_from_row).collect()
    }
}
