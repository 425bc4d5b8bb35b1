//! The session cache: bearer-token checks at memory speed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use galaxy_core::domain::auth::{SecretHash, Session};
use galaxy_core::domain::{SessionId, Timestamp, UserId};
use galaxy_core::ports::{Change, ChangeBus, SessionStore, StoreError};

use super::{Shared, WarmError, announce, solo_bus};

/// How many inserts pass between two sweeps of ended sessions out of memory.
const PRUNE_EVERY: u64 = 1024;

/// A [`SessionStore`] decorator that answers `find_session_by_token` and `get_session`
/// from memory (see the [module docs](super) for the rules).
pub struct SessionCache {
    /// The store every write goes to first.
    inner: Arc<dyn SessionStore>,
    /// Sessions by id, and ids by token hash.
    cached: Shared<Sessions>,
    /// Inserts since start, to prune ended sessions now and then: a revoked or expired
    /// session would otherwise stay in memory for the life of the process.
    inserts: AtomicU64,
    /// Where revocations are announced to the other processes.
    bus: Arc<dyn ChangeBus>,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<SessionId, Session>,
    /// Keyed by the hash's bytes: `SecretHash` compares in constant time and is not
    /// `Hash`; a hash-map probe on the hash of a hash leaks nothing useful.
    by_token: HashMap<[u8; 32], SessionId>,
}

impl Sessions {
    fn put(&mut self, session: Session) {
        self.by_token
            .insert(*session.token_hash.as_bytes(), session.id);
        self.by_id.insert(session.id, session);
    }

    fn remove(&mut self, id: SessionId) {
        if let Some(session) = self.by_id.remove(&id) {
            self.by_token.remove(session.token_hash.as_bytes());
        }
    }
}

impl SessionCache {
    /// An empty cache in front of `inner`.
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self {
            inner,
            cached: Shared::default(),
            inserts: AtomicU64::new(0),
            bus: solo_bus(),
        }
    }

    /// Announces its writes on `bus` (the default is a bus with this process alone).
    pub fn with_bus(mut self, bus: Arc<dyn ChangeBus>) -> Self {
        self.bus = bus;
        self
    }

    /// Drops what another process changed: a session, or every session of a user.
    pub fn forget(&self, change: Change) {
        match change {
            Change::Session(id) => self.cached.write(|c| c.remove(id)),
            Change::User(user_id) => self.cached.write(|c| {
                let ids: Vec<SessionId> = c
                    .by_id
                    .values()
                    .filter(|s| s.user_id == user_id)
                    .map(|s| s.id)
                    .collect();
                for id in ids {
                    c.remove(id);
                }
            }),
            Change::Game(_) => {}
        }
    }

    /// Drops every session held in memory.
    pub fn forget_all(&self) {
        self.cached.write(|c| *c = Sessions::default());
    }

    /// Loads every session active at `now`; returns how many.
    pub async fn warm(&self, now: Timestamp) -> Result<usize, WarmError> {
        let epoch = self.cached.epoch();
        let sessions = self
            .inner
            .all_active_sessions(now)
            .await
            .map_err(|source| WarmError {
                cache: "session",
                source,
            })?;
        let count = sessions.len();
        self.cached.fill(epoch, |cached| {
            for session in sessions {
                cached.put(session);
            }
        });
        Ok(count)
    }

    /// How many sessions are held in memory.
    pub fn len(&self) -> usize {
        self.cached.read(|c| c.by_id.len())
    }

    /// Whether no session is held in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SessionStore for SessionCache {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.inner.insert_session(session).await?;
        let prune = (self.inserts.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(PRUNE_EVERY);
        self.cached.write(|cached| {
            if prune {
                // Ended sessions can go: a later lookup misses and asks the store.
                cached
                    .by_id
                    .retain(|_, s| s.is_usable_at(session.created_at));
                let by_id = &cached.by_id;
                cached.by_token.retain(|_, id| by_id.contains_key(id));
            }
            cached.put(session.clone());
        });
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Session, StoreError> {
        if let Some(session) = self.cached.read(|c| c.by_id.get(&id).cloned()) {
            return Ok(session);
        }
        let epoch = self.cached.epoch();
        let session = self.inner.get_session(id).await?;
        self.cached.fill(epoch, |c| c.put(session.clone()));
        Ok(session)
    }

    async fn find_session_by_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<Session>, StoreError> {
        let hit = self.cached.read(|c| {
            c.by_token
                .get(hash.as_bytes())
                .and_then(|id| c.by_id.get(id))
                .cloned()
        });
        if hit.is_some() {
            return Ok(hit);
        }
        // Unknown tokens reach the store: with one process they are almost always
        // garbage, but the store is the authority (see the module docs on replicas).
        let epoch = self.cached.epoch();
        let found = self.inner.find_session_by_token(hash).await?;
        if let Some(session) = &found {
            self.cached.fill(epoch, |c| c.put(session.clone()));
        }
        Ok(found)
    }

    async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.list_active_sessions(user_id, now).await
    }

    async fn all_active_sessions(&self, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        self.inner.all_active_sessions(now).await
    }

    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> Result<Session, StoreError> {
        match self.inner.revoke_session(id, at).await {
            Ok(session) => {
                self.cached.write(|c| c.put(session.clone()));
                announce(&self.bus, Change::Session(id)).await;
                Ok(session)
            }
            Err(error) => {
                // The store disagrees with what may be cached (a conflict means it is
                // no longer active there): forget it and let the next read ask.
                self.cached.write(|c| c.remove(id));
                Err(error)
            }
        }
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        let revoked = self.inner.revoke_user_sessions(user_id, at).await?;
        self.cached.write(|c| {
            for id in &revoked {
                if let Some(session) = c.by_id.get_mut(id) {
                    // Mirrors the store; a session it revoked was active there.
                    let _ = session.revoke(at);
                }
            }
            // Anything else of this user still marked active here was revoked by the
            // store too (or ended): drop it rather than trust it.
            let stale: Vec<SessionId> = c
                .by_id
                .values()
                .filter(|s| s.user_id == user_id && s.revoked_at.is_none())
                .map(|s| s.id)
                .collect();
            for id in stale {
                c.remove(id);
            }
        });
        announce(&self.bus, Change::User(user_id)).await;
        Ok(revoked)
    }

    async fn purge_sessions(&self, before: Timestamp) -> Result<u64, StoreError> {
        let purged = self.inner.purge_sessions(before).await?;
        // Ended sessions are never usable again, so no replica needs telling: each drops
        // its own copies when it next prunes; this one at once.
        self.cached.write(|c| {
            let ended: Vec<SessionId> = c
                .by_id
                .values()
                .filter(|s| s.ended_before(before))
                .map(|s| s.id)
                .collect();
            for id in ended {
                c.remove(id);
            }
        });
        Ok(purged)
    }
}
