//! The change bus: how several server processes on one database keep their in-memory
//! caches coherent. A process announces every entity it changed; the others drop their
//! copy, so the next read goes to the store (SPEC section 12).
//!
//! The bus carries *which* entity changed, never its new state: a note is small, can be
//! lost without harm once the receiver knows it may have missed notes (see
//! [`ChangeNote::Resumed`]), and the store stays the only authority.

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::StoreError;
use crate::domain::{GameId, SessionId, UserId};

/// An entity whose cached copies other processes must drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// A session (revoked, created).
    Session(SessionId),
    /// A user (status, profile, roles), and with it every session of that user: a
    /// permanent block revokes them all in one write, announced as one note.
    User(UserId),
    /// A game (status, settings, counters).
    Game(GameId),
}

/// What a subscriber hears from the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeNote {
    /// Another process changed this entity.
    Changed(Change),
    /// The bus lost its link to the other processes: notes may be missing from now on,
    /// so cached entries can only be trusted for a short while.
    Interrupted,
    /// The link is back (or this subscriber fell behind): notes may have been missed,
    /// so everything cached before now must be dropped.
    Resumed,
}

/// A note as the bus carries it: who sent it, so a process ignores its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeEnvelope {
    /// The sending process's instance id (`None` for notes about the link itself,
    /// which every subscriber of the process must hear).
    pub origin: Option<uuid::Uuid>,
    /// The note.
    pub note: ChangeNote,
}

/// One subscriber's stream of notes from *other* processes.
///
/// Built by bus implementations over a broadcast channel of [`ChangeEnvelope`]s; it
/// filters out the process's own notes and turns falling behind into
/// [`ChangeNote::Resumed`], so a slow subscriber drops its cache rather than keeping
/// entries whose notes it never saw.
#[derive(Debug)]
pub struct ChangeSubscription {
    /// This process's instance id.
    own: uuid::Uuid,
    /// The bus's notes.
    notes: broadcast::Receiver<ChangeEnvelope>,
}

impl ChangeSubscription {
    /// A subscription of the process `own` on `notes`.
    pub fn new(own: uuid::Uuid, notes: broadcast::Receiver<ChangeEnvelope>) -> Self {
        Self { own, notes }
    }

    /// The next note from another process, or about the link; `None` once the bus is
    /// gone.
    pub async fn next(&mut self) -> Option<ChangeNote> {
        loop {
            match self.notes.recv().await {
                Ok(envelope) if envelope.origin == Some(self.own) => {}
                Ok(envelope) => return Some(envelope.note),
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(ChangeNote::Resumed),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Announces changes to the other processes sharing the store, and hears theirs.
///
/// Why a port: the core's caches must not know Postgres. The Postgres adapter uses
/// `LISTEN/NOTIFY`; the in-memory one connects the "processes" of one test, or is a
/// single process's no-op bus in dev mode.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ChangeBus: Send + Sync {
    /// Announces that this process changed `change`'s entity (after the store
    /// acknowledged the write). An error means the others may not hear it.
    async fn publish(&self, change: Change) -> Result<(), StoreError>;

    /// A stream of the notes of every *other* process (and of the link's state), from
    /// now on.
    fn subscribe(&self) -> ChangeSubscription;
}
