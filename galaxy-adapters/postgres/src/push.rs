//! The push event log on Postgres (`push_events`, `push_log`; migration 0006): every
//! replica appends the events it publishes and reads everyone's in `seq` order.
//!
//! **Gaps.** An identity column hands out numbers in call order but transactions commit in
//! any order, so a reader could see `seq` 8 committed while 7 is still in flight, move its
//! cursor past 7 and never read it. Appends therefore take one transaction-scoped advisory
//! lock before drawing their number and hold it until they commit (Postgres releases it
//! only after the commit is visible): numbers are drawn and committed in the same order,
//! and a reader that sees `seq` n will never later find an event below n. The cost is
//! that appends queue behind each other, one short transaction each (push events are a
//! few per turn and player, far from that bound); readers never wait. `seq` may still skip
//! numbers (a rolled-back append), which readers do not mind.
//!
//! **Duplicates.** Under the same lock an append first looks for its `event_id`, and the
//! column is unique besides: a notification route published twice is one event.
//!
//! **Wake-ups.** The appending transaction sends `pg_notify('galaxy_push', seq)` (the
//! number only: events can exceed NOTIFY's 8000 bytes), delivered on commit; every replica
//! listens on the watched connection of [`crate::listen`] and, on a note or when its
//! connection is back after a loss, wakes its follower, which reads the rows after the
//! last sequence it has.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::domain::push::{LoggedPushEvent, NewPushEvent};
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{Appended, PushLog, PushLogPage, PushLogWatch, StoreError};
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use tokio_util::sync::DropGuard;

use crate::error::{corrupt, db};
use crate::listen::{self, Channel, Hearer};
use crate::locks::{self, Bucket};

const ENTITY: &str = "push event";

/// Settings of [`PgPushLog`].
#[derive(Debug, Clone)]
pub struct PushLogOptions {
    /// The NOTIFY channel every process of one deployment shares.
    pub channel: String,
    /// How often a process checks its listening connection with a heartbeat note; a
    /// silent connection is declared lost after three heartbeats.
    pub heartbeat: Duration,
}

impl Default for PushLogOptions {
    fn default() -> Self {
        Self {
            channel: "galaxy_push".to_owned(),
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// A [`PushLog`] on one Postgres database, shared by every replica on it. Cheap to clone;
/// the listening task stops when the last clone is dropped or the pool is closed.
#[derive(Debug, Clone)]
pub struct PgPushLog {
    /// Shared by the clones and the listening task.
    inner: Arc<Inner>,
    /// Stops the listening tasks when the last clone goes.
    _stop: Arc<DropGuard>,
}

#[derive(Debug)]
struct Inner {
    /// Appends, reads and purges.
    pool: PgPool,
    /// The database's log epoch, read once at start (it never changes).
    epoch: u64,
    /// The NOTIFY channel.
    channel: String,
    /// Bumped on every note and when listening resumes, to wake the followers.
    wake: watch::Sender<u64>,
}

impl PgPushLog {
    /// Reads the log's epoch and listens on `options.channel` (the first connection must
    /// succeed, so a replica never starts deaf). The listener holds one connection of
    /// `pool` for as long as it runs.
    pub async fn start(pool: PgPool, options: PushLogOptions) -> Result<Self, StoreError> {
        let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM push_log")
            .fetch_one(&pool)
            .await
            .map_err(db(ENTITY))?;
        let inner = Arc::new(Inner {
            pool: pool.clone(),
            // The stored bits are the epoch; its sign means nothing.
            epoch: epoch.cast_unsigned(),
            channel: options.channel.clone(),
            wake: watch::Sender::new(0),
        });
        let channel = Channel {
            name: options.channel,
            heartbeat: options.heartbeat,
            heartbeat_payload: format!("p|{}", uuid::Uuid::new_v4()),
        };
        let stop = listen::start(pool, channel, inner.clone())
            .await
            .map_err(db(ENTITY))?;
        Ok(Self {
            inner,
            _stop: Arc::new(stop),
        })
    }
}

impl Inner {
    fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Hearer for Inner {
    fn heard(&self, payload: &str) {
        // An event's sequence; anything else is a heartbeat.
        if payload.parse::<u64>().is_ok() {
            self.wake();
        }
    }

    fn interrupted(&self) {
        tracing::warn!("push log not heard until listening again; the follower polls");
    }

    fn resumed(&self) {
        // Notes sent meanwhile were lost: the follower reads what it missed.
        self.wake();
    }
}

fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| corrupt(ENTITY, what, format!("{value} is out of range")))
}

fn to_u64(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(ENTITY, what, format!("{value} is negative")))
}

#[async_trait]
impl PushLog for PgPushLog {
    fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    async fn append(&self, event: &NewPushEvent) -> Result<Appended, StoreError> {
        let pool = &self.inner.pool;
        let mut tx = pool.begin().await.map_err(db(ENTITY))?;
        locks::lock(&mut tx, ENTITY, vec![locks::key(Bucket::PushAppend, "")]).await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM push_events WHERE event_id = $1")
                .bind(event.event_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(ENTITY))?;
        if let Some(sequence) = existing {
            tx.rollback().await.map_err(db(ENTITY))?;
            return Ok(Appended {
                sequence: to_u64(sequence, "seq")?,
                duplicate: true,
            });
        }
        let users: Vec<uuid::Uuid> = event.user_ids.iter().map(UserId::as_uuid).collect();
        // Times never go back along the log, whatever the publishers' clocks say.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO push_events (event_id, user_ids, kind, payload, occurred_at) \
             SELECT $1, $2, $3, $4, GREATEST($5, \
                 (SELECT occurred_at FROM push_events ORDER BY seq DESC LIMIT 1)) \
             ON CONFLICT (event_id) DO NOTHING RETURNING seq",
        )
        .bind(event.event_id)
        .bind(&users)
        .bind(&event.kind)
        .bind(&event.payload)
        .bind(event.occurred_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(ENTITY))?;
        let Some(sequence) = inserted else {
            // Only a writer that skipped the lock can get here; its row wins.
            tx.rollback().await.map_err(db(ENTITY))?;
            let sequence: i64 =
                sqlx::query_scalar("SELECT seq FROM push_events WHERE event_id = $1")
                    .bind(event.event_id)
                    .fetch_one(pool)
                    .await
                    .map_err(db(ENTITY))?;
            return Ok(Appended {
                sequence: to_u64(sequence, "seq")?,
                duplicate: true,
            });
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.inner.channel)
            .bind(sequence.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(ENTITY))?;
        tx.commit().await.map_err(db(ENTITY))?;
        Ok(Appended {
            sequence: to_u64(sequence, "seq")?,
            duplicate: false,
        })
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<PushLogPage, StoreError> {
        // One statement, one snapshot: the purge mark and the events agree.
        let rows = sqlx::query(
            "SELECT l.purged_through, e.seq, e.event_id, e.user_ids, e.kind, e.payload, \
                    e.occurred_at \
             FROM push_log l LEFT JOIN LATERAL ( \
                 SELECT * FROM push_events WHERE seq > $1 ORDER BY seq LIMIT $2 \
             ) e ON true \
             ORDER BY e.seq",
        )
        .bind(to_i64(after, "seq")?)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(db(ENTITY))?;
        let mut purged_through = 0;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let read = |e: sqlx::Error| corrupt(ENTITY, "row", e);
            purged_through = to_u64(row.try_get("purged_through").map_err(read)?, "mark")?;
            let Some(sequence) = row.try_get::<Option<i64>, _>("seq").map_err(read)? else {
                continue;
            };
            let users: Vec<uuid::Uuid> = row.try_get("user_ids").map_err(read)?;
            let occurred_at: Timestamp = row.try_get("occurred_at").map_err(read)?;
            events.push(LoggedPushEvent {
                sequence: to_u64(sequence, "seq")?,
                event: NewPushEvent {
                    event_id: row.try_get("event_id").map_err(read)?,
                    user_ids: users.into_iter().map(UserId::from_uuid).collect(),
                    kind: row.try_get("kind").map_err(read)?,
                    payload: row.try_get("payload").map_err(read)?,
                    occurred_at,
                },
            });
        }
        Ok(PushLogPage {
            events,
            purged_through,
        })
    }

    fn watch(&self) -> PushLogWatch {
        PushLogWatch::new(self.inner.wake.subscribe())
    }

    async fn purge(&self, before: Timestamp, keep: usize) -> Result<u64, StoreError> {
        // Times never go back along the log, so both conditions select a prefix.
        let purged: i64 = sqlx::query_scalar(
            "WITH doomed AS ( \
                 SELECT seq FROM push_events WHERE occurred_at < $1 \
                 UNION \
                 (SELECT seq FROM push_events ORDER BY seq DESC OFFSET $2) \
             ), deleted AS ( \
                 DELETE FROM push_events WHERE seq IN (SELECT seq FROM doomed) RETURNING seq \
             ), mark AS ( \
                 UPDATE push_log \
                 SET purged_through = GREATEST(purged_through, (SELECT max(seq) FROM deleted)) \
                 WHERE EXISTS (SELECT 1 FROM deleted) \
             ) \
             SELECT count(*) FROM deleted",
        )
        .bind(before)
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .fetch_one(&self.inner.pool)
        .await
        .map_err(db(ENTITY))?;
        to_u64(purged, "count")
    }
}
