//! The change bus on Postgres `LISTEN/NOTIFY`: every server process on one database
//! hears which sessions, users and games the others changed (SPEC section 12).
//!
//! A note is `<instance>|<kind>|<id>` (about 80 bytes, far below the 8000-byte NOTIFY
//! limit): the sender's instance id (so a process skips its own notes), `s`, `u` or `g`,
//! and the entity id. `NOTIFY` is delivered after the sending transaction commits, to
//! every listening session of the same database, in commit order.
//!
//! The listening connection is the watched one of [`crate::listen`] (heartbeat note
//! `<instance>|p|`): when it is lost, subscribers are told [`ChangeNote::Interrupted`]
//! and, once a new connection listens again, [`ChangeNote::Resumed`] (notes sent in
//! between are lost, so caches start over).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::domain::{GameId, SessionId, UserId};
use galaxy_core::ports::{
    Change, ChangeBus, ChangeEnvelope, ChangeNote, ChangeSubscription, StoreError,
};
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::DropGuard;

use crate::error::db;
use crate::listen::{self, Channel, Hearer};

/// How many notes a slow subscriber may fall behind before it must drop its cache.
const CAPACITY: usize = 4096;

/// Settings of [`PgChangeBus`].
#[derive(Debug, Clone)]
pub struct ChangeBusOptions {
    /// The NOTIFY channel every process of one deployment shares.
    pub channel: String,
    /// How often a process checks its own listening connection with a heartbeat note;
    /// a silent connection is declared lost after three heartbeats.
    pub heartbeat: Duration,
}

impl Default for ChangeBusOptions {
    fn default() -> Self {
        Self {
            channel: "galaxy_changes".to_owned(),
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// A [`ChangeBus`] on one Postgres database. Cheap to clone; the listening task stops
/// when the last clone is dropped or the pool is closed.
#[derive(Debug, Clone)]
pub struct PgChangeBus {
    /// Shared by the clones and the background tasks.
    inner: Arc<Inner>,
    /// Stops the background tasks when the last clone goes.
    _stop: Arc<DropGuard>,
}

#[derive(Debug)]
struct Inner {
    /// This process's id, sent with every note.
    own: uuid::Uuid,
    /// Publishes notes (`pg_notify`) and lends the listener its connection.
    pool: PgPool,
    /// Settings.
    options: ChangeBusOptions,
    /// What the listener heard, for every subscriber.
    notes: broadcast::Sender<ChangeEnvelope>,
}

impl PgChangeBus {
    /// Listens on `options.channel` (the first connection must succeed, so a process
    /// never starts deaf) and starts the listening and heartbeat tasks. The listener
    /// holds one connection of `pool` for as long as it runs.
    pub async fn start(pool: PgPool, options: ChangeBusOptions) -> Result<Self, StoreError> {
        let (notes, _) = broadcast::channel(CAPACITY);
        let inner = Arc::new(Inner {
            own: uuid::Uuid::new_v4(),
            pool,
            options,
            notes,
        });
        let channel = Channel {
            name: inner.options.channel.clone(),
            heartbeat: inner.options.heartbeat,
            heartbeat_payload: format!("{}|p|", inner.own),
        };
        let stop = listen::start(inner.pool.clone(), channel, inner.clone())
            .await
            .map_err(db("change bus"))?;
        Ok(Self {
            inner,
            _stop: Arc::new(stop),
        })
    }
}

#[async_trait]
impl ChangeBus for PgChangeBus {
    async fn publish(&self, change: Change) -> Result<(), StoreError> {
        let (kind, id) = match change {
            Change::Session(id) => ('s', id.as_uuid()),
            Change::User(id) => ('u', id.as_uuid()),
            Change::Game(id) => ('g', id.as_uuid()),
        };
        self.inner
            .notify(&format!("{}|{kind}|{id}", self.inner.own))
            .await
            .map_err(db("change bus"))
    }

    fn subscribe(&self) -> ChangeSubscription {
        ChangeSubscription::new(self.inner.own, self.inner.notes.subscribe())
    }
}

impl Inner {
    async fn notify(&self, payload: &str) -> Result<(), sqlx::Error> {
        listen::notify(&self.pool, &self.options.channel, payload).await
    }

    fn send(&self, origin: Option<uuid::Uuid>, note: ChangeNote) {
        // No subscriber is not an error: nothing is cached then.
        let _ = self.notes.send(ChangeEnvelope { origin, note });
    }
}

impl Hearer for Inner {
    /// Hands a received payload to the subscribers.
    fn heard(&self, payload: &str) {
        match parse(payload) {
            Some((_, None)) => {} // a heartbeat: it only proves the link works
            Some((origin, Some(change))) => self.send(Some(origin), ChangeNote::Changed(change)),
            None => {
                // Someone else's format on our channel: it may have named an entity we
                // cannot tell, so caches start over rather than keep a stale copy.
                tracing::warn!(payload, "unreadable change note; caches start over");
                self.send(None, ChangeNote::Resumed);
            }
        }
    }

    fn interrupted(&self) {
        self.send(None, ChangeNote::Interrupted);
    }

    fn resumed(&self) {
        tracing::info!("change bus listening again; caches start over");
        self.send(None, ChangeNote::Resumed);
    }
}

/// `(origin, change)` of a payload; `change` is `None` for a heartbeat.
fn parse(payload: &str) -> Option<(uuid::Uuid, Option<Change>)> {
    let mut parts = payload.splitn(3, '|');
    let origin = uuid::Uuid::try_parse(parts.next()?).ok()?;
    let kind = parts.next()?;
    let id = parts.next()?;
    if kind == "p" {
        return Some((origin, None));
    }
    let id = uuid::Uuid::try_parse(id).ok()?;
    let change = match kind {
        "s" => Change::Session(SessionId::from_uuid(id)),
        "u" => Change::User(UserId::from_uuid(id)),
        "g" => Change::Game(GameId::from_uuid(id)),
        _ => return None,
    };
    Some((origin, Some(change)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_is_refused() {
        let origin = uuid::Uuid::new_v4();
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            parse(&format!("{origin}|g|{id}")),
            Some((origin, Some(Change::Game(GameId::from_uuid(id)))))
        );
        assert_eq!(parse(&format!("{origin}|p|")), Some((origin, None)));
        assert_eq!(parse(&format!("{origin}|x|{id}")), None);
        assert_eq!(parse("hello"), None);
        assert_eq!(parse(&format!("{origin}|s|nope")), None);
    }
}
