//! The change bus on Postgres `LISTEN/NOTIFY`: every server process on one database
//! hears which sessions, users and games the others changed (SPEC section 12).
//!
//! A note is `<instance>|<kind>|<id>` (about 80 bytes, far below the 8000-byte NOTIFY
//! limit): the sender's instance id (so a process skips its own notes), `s`, `u` or `g`,
//! and the entity id. `NOTIFY` is delivered after the sending transaction commits, to
//! every listening session of the same database, in commit order.
//!
//! The listening connection is watched: each process sends itself a heartbeat note
//! (`<instance>|p|`) every `heartbeat`; a listener that heard nothing for three
//! heartbeats, or whose connection broke, is dropped. Subscribers are then told
//! [`ChangeNote::Interrupted`] and, once a new connection listens again,
//! [`ChangeNote::Resumed`] (notes sent in between are lost, so caches start over).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::domain::{GameId, SessionId, UserId};
use galaxy_core::ports::{
    Change, ChangeBus, ChangeEnvelope, ChangeNote, ChangeSubscription, StoreError,
};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::error::db;

/// How many notes a slow subscriber may fall behind before it must drop its cache.
const CAPACITY: usize = 4096;

/// The first pause before reconnecting a lost listener (doubled up to the heartbeat).
const FIRST_RETRY: Duration = Duration::from_millis(100);

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
        let listener = inner.listen().await.map_err(db("change bus"))?;
        let stop = CancellationToken::new();
        tokio::spawn(listen(inner.clone(), listener, stop.clone()));
        tokio::spawn(heartbeat(inner.clone(), stop.clone()));
        Ok(Self {
            inner,
            _stop: Arc::new(stop.drop_guard()),
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
    /// A new listening connection.
    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        // Reconnecting is ours to do, so the gap is seen and announced.
        listener.eager_reconnect(false);
        listener.listen(&self.options.channel).await?;
        Ok(listener)
    }

    async fn notify(&self, payload: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.options.channel)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map(drop)
    }

    fn send(&self, origin: Option<uuid::Uuid>, note: ChangeNote) {
        // No subscriber is not an error: nothing is cached then.
        let _ = self.notes.send(ChangeEnvelope { origin, note });
    }

    /// Hands a received payload to the subscribers.
    fn deliver(&self, payload: &str) {
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

/// Receives notes until stopped, replacing a lost or silent connection.
async fn listen(inner: Arc<Inner>, first: PgListener, stop: CancellationToken) {
    let silence = inner.options.heartbeat.saturating_mul(3);
    let mut listener = Some(first);
    let mut retry = FIRST_RETRY;
    loop {
        let mut current = match listener.take() {
            Some(current) => current,
            None => match inner.listen().await {
                Ok(current) => {
                    tracing::info!("change bus listening again; caches start over");
                    inner.send(None, ChangeNote::Resumed);
                    retry = FIRST_RETRY;
                    current
                }
                Err(error) => {
                    if inner.pool.is_closed() {
                        return;
                    }
                    tracing::warn!(%error, "change bus cannot listen yet");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(retry) => {}
                    }
                    retry = retry.saturating_mul(2).min(inner.options.heartbeat);
                    continue;
                }
            },
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                received = tokio::time::timeout(silence, current.try_recv()) => match received {
                    Ok(Ok(Some(notification))) => inner.deliver(notification.payload()),
                    Ok(Ok(None)) => {
                        tracing::warn!("change bus connection lost");
                        break;
                    }
                    Ok(Err(error)) => {
                        if inner.pool.is_closed() {
                            return;
                        }
                        tracing::warn!(%error, "change bus connection failed");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(?silence, "change bus heard no heartbeat; reconnecting");
                        break;
                    }
                },
            }
        }
        // Notes sent from now until a new connection listens are lost.
        inner.send(None, ChangeNote::Interrupted);
        drop(current);
    }
}

/// Sends this process's heartbeat note until stopped.
async fn heartbeat(inner: Arc<Inner>, stop: CancellationToken) {
    let payload = format!("{}|p|", inner.own);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(inner.options.heartbeat) => {}
        }
        if inner.pool.is_closed() {
            return;
        }
        if let Err(error) = inner.notify(&payload).await {
            tracing::debug!(%error, "change bus heartbeat not sent");
        }
    }
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
