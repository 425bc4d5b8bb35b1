//! One watched `LISTEN` connection: how the adapters that hear other processes through
//! Postgres `NOTIFY` (the change bus, the push log) receive notes, notice that they may
//! have missed some, and get back to listening.
//!
//! The connection is watched: the process sends itself a heartbeat note on the channel
//! every `heartbeat`; a listener that heard nothing for three heartbeats, or whose
//! connection broke, is dropped. Its [`Hearer`] is then told
//! [`interrupted`](Hearer::interrupted) and, once a new connection listens again,
//! [`resumed`](Hearer::resumed): notes sent in between are lost, and what the hearer does
//! about that (caches start over, the push follower reads the log) is its business.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The first pause before reconnecting a lost listener (doubled up to the heartbeat).
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// What the listener hands its notes and its gaps to.
pub(crate) trait Hearer: Send + Sync + 'static {
    /// A note on the channel, heartbeats included (they only prove the link works).
    fn heard(&self, payload: &str);
    /// The link is lost: notes may be missing from now on.
    fn interrupted(&self);
    /// A new connection listens again: notes sent since the loss were missed.
    fn resumed(&self);
}

/// Where and how to listen.
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    /// The `NOTIFY` channel.
    pub(crate) name: String,
    /// How often the process sends itself `heartbeat_payload`; silence for three of these
    /// counts as a lost connection.
    pub(crate) heartbeat: Duration,
    /// The heartbeat note (the hearer must recognise and ignore it).
    pub(crate) heartbeat_payload: String,
}

/// Listens on `channel` (the first connection must succeed, so a process never starts
/// deaf) and starts the listening and heartbeat tasks, which stop when the returned guard
/// is dropped or the pool is closed. The listener holds one connection of `pool`.
pub(crate) async fn start<H: Hearer>(
    pool: PgPool,
    channel: Channel,
    hearer: Arc<H>,
) -> Result<DropGuard, sqlx::Error> {
    let first = listen(&pool, &channel.name).await?;
    let stop = CancellationToken::new();
    let link = Link {
        pool,
        channel,
        hearer,
    };
    let link = Arc::new(link);
    tokio::spawn(receive(link.clone(), first, stop.clone()));
    tokio::spawn(heartbeat(link, stop.clone()));
    Ok(stop.drop_guard())
}

/// Sends `payload` on `channel` (delivered after the current transaction commits, to
/// every listening session of the database, in commit order).
pub(crate) async fn notify(pool: &PgPool, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await
        .map(drop)
}

/// What the two tasks share.
struct Link<H> {
    /// Lends the listener its connection and sends heartbeats.
    pool: PgPool,
    /// Where and how.
    channel: Channel,
    /// Where notes and gaps go.
    hearer: Arc<H>,
}

/// A new listening connection.
async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnecting is ours to do, so the gap is seen and announced.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

/// Receives notes until stopped, replacing a lost or silent connection.
async fn receive<H: Hearer>(link: Arc<Link<H>>, first: PgListener, stop: CancellationToken) {
    let channel = &link.channel.name;
    let silence = link.channel.heartbeat.saturating_mul(3);
    let mut listener = Some(first);
    let mut retry = FIRST_RETRY;
    loop {
        let mut current = match listener.take() {
            Some(current) => current,
            None => match listen(&link.pool, channel).await {
                Ok(current) => {
                    tracing::info!(channel, "listening again");
                    link.hearer.resumed();
                    retry = FIRST_RETRY;
                    current
                }
                Err(error) => {
                    if link.pool.is_closed() {
                        return;
                    }
                    tracing::warn!(channel, %error, "cannot listen yet");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(retry) => {}
                    }
                    retry = retry.saturating_mul(2).min(link.channel.heartbeat);
                    continue;
                }
            },
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                received = tokio::time::timeout(silence, current.try_recv()) => match received {
                    Ok(Ok(Some(notification))) => link.hearer.heard(notification.payload()),
                    Ok(Ok(None)) => {
                        tracing::warn!(channel, "listening connection lost");
                        break;
                    }
                    Ok(Err(error)) => {
                        if link.pool.is_closed() {
                            return;
                        }
                        tracing::warn!(channel, %error, "listening connection failed");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(channel, ?silence, "no heartbeat heard; reconnecting");
                        break;
                    }
                },
            }
        }
        // Notes sent from now until a new connection listens are lost.
        link.hearer.interrupted();
        drop(current);
    }
}

/// Sends this process's heartbeat note until stopped.
async fn heartbeat<H: Hearer>(link: Arc<Link<H>>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(link.channel.heartbeat) => {}
        }
        if link.pool.is_closed() {
            return;
        }
        let sent = notify(
            &link.pool,
            &link.channel.name,
            &link.channel.heartbeat_payload,
        )
        .await;
        if let Err(error) = sent {
            tracing::debug!(channel = link.channel.name, %error, "heartbeat not sent");
        }
    }
}
