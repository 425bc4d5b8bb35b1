//! The in-memory store of users, login challenges and sessions.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::paging::{Order, paginate};
use galaxy_core::domain::auth::{
    ChallengeStatus, LoginChallenge, SecretHash, Session, SessionStatus,
};
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::user::{Email, Entitlements, Role, User, UserStatus};
use galaxy_core::domain::{ChallengeId, SessionId, Timestamp, UserId};
use galaxy_core::ports::{
    Admission, ChallengeScope, ChallengeStore, IssueLimits, LimitReached, ProfileChange,
    SessionStore, StoreError, UserStore, failed_codes_reached,
};

/// Users, login challenges and sessions in one process, behind one mutex.
///
/// Every method takes the lock once and finishes its work under it, so each call is as
/// atomic as a database transaction; no lock is ever held across an `.await`.
#[derive(Debug, Default)]
pub struct MemoryUserStore {
    /// Everything, so a compare-and-set reads and writes under one lock.
    state: Mutex<UserState>,
}

#[derive(Debug, Default)]
struct UserState {
    /// Accounts by id.
    users: HashMap<UserId, User>,
    /// The unique index on the normalised e-mail.
    by_email: HashMap<Email, UserId>,
    /// Login challenges by id (purged once expired).
    challenges: HashMap<ChallengeId, LoginChallenge>,
    /// Sessions by id, in every status (revocation keeps the row).
    sessions: HashMap<SessionId, Session>,
}

impl MemoryUserStore {
    /// A fresh, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state; a panic in another holder does not leave it half-written (every
    /// method validates before it mutates), so a poisoned lock is simply taken over.
    fn state(&self) -> MutexGuard<'_, UserState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl UserState {
    /// The limit a new `challenge` would pass, the one freeing last when several would.
    fn issue_limit_reached(
        &self,
        challenge: &LoginChallenge,
        limits: &IssueLimits,
    ) -> Option<LimitReached> {
        let of_email = || {
            self.challenges
                .values()
                .filter(|c| c.email == challenge.email)
        };
        let email_issued: Vec<Timestamp> = of_email().map(|c| c.issued_at).collect();
        let unused: Vec<Timestamp> = of_email()
            .filter(|c| c.status == ChallengeStatus::Issued)
            .map(|c| c.expires_at)
            .collect();
        let client_issued: Vec<Timestamp> = self
            .challenges
            .values()
            .filter(|c| c.client_ip == challenge.client_ip)
            .map(|c| c.issued_at)
            .collect();
        limits.reached(challenge.issued_at, &email_issued, &unused, &client_issued)
    }

    /// The refusal when the wrong codes of `email`'s challenges have used up `limit`.
    fn failed_codes_reached(
        &self,
        email: &Email,
        limit: &RateLimit,
        now: Timestamp,
    ) -> Option<LimitReached> {
        let failures = self
            .challenges
            .values()
            .filter(|c| c.email == *email)
            .map(|c| (c.issued_at, c.failed_attempts));
        failed_codes_reached(limit, now, failures)
    }

    fn user_mut(&mut self, id: UserId) -> Result<&mut User, StoreError> {
        self.users
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("user", id))
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn insert_user(&self, user: &User) -> Result<User, StoreError> {
        let mut state = self.state();
        if state.by_email.contains_key(&user.email) {
            return Err(StoreError::duplicate(
                "user",
                format!("email {}", user.email),
            ));
        }
        if state.users.contains_key(&user.id) {
            return Err(StoreError::duplicate("user", format!("id {}", user.id)));
        }
        let candidates = user.display_name.candidates(user.id);
        let free = candidates.iter().find(|name| {
            let key = name.key();
            !state.users.values().any(|u| u.display_name.key() == key)
        });
        let mut stored = user.clone();
        if let Some(name) = free.or(candidates.last()) {
            stored.display_name = name.clone();
        }
        state.by_email.insert(user.email.clone(), user.id);
        state.users.insert(user.id, stored.clone());
        Ok(stored)
    }

    async fn get_user(&self, id: UserId) -> Result<User, StoreError> {
        self.state()
            .users
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("user", id))
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let state = self.state();
        Ok(state
            .by_email
            .get(email)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn list_users(&self, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let state = self.state();
        paginate(
            state.users.values(),
            |u| (u.created_at, u.id.as_uuid()),
            Order::Ascending,
            page,
        )
    }

    async fn search_users(&self, text: &str, page: &PageRequest) -> Result<Page<User>, StoreError> {
        let needle = text.to_lowercase();
        let state = self.state();
        paginate(
            state.users.values().filter(|u| {
                u.email.as_str().to_lowercase().contains(&needle)
                    || u.display_name.as_str().to_lowercase().contains(&needle)
            }),
            |u| (u.created_at, u.id.as_uuid()),
            Order::Ascending,
            page,
        )
    }

    async fn list_admins(&self) -> Result<Vec<User>, StoreError> {
        let mut admins: Vec<User> = self
            .state()
            .users
            .values()
            .filter(|u| u.has_role(Role::Admin))
            .cloned()
            .collect();
        admins.sort_by_key(|u| (u.created_at, u.id.as_uuid()));
        Ok(admins)
    }

    async fn update_profile(&self, id: UserId, change: &ProfileChange) -> Result<User, StoreError> {
        let mut state = self.state();
        state.user_mut(id)?;
        if let Some(name) = &change.display_name {
            let key = name.key();
            // A name that looks like the user's own (unchanged, or re-cased) is theirs
            // whoever else shares its key.
            let own = state.user_mut(id)?.display_name.key() == key;
            let taken = !own
                && state
                    .users
                    .values()
                    .any(|u| u.id != id && u.display_name.key() == key);
            if taken {
                return Err(StoreError::duplicate("display name", name.as_str()));
            }
        }
        let user = state.user_mut(id)?;
        if let Some(name) = &change.display_name {
            user.display_name = name.clone();
        }
        if let Some(locale) = &change.locale {
            user.locale = locale.clone();
        }
        if let Some(wanted) = change.email_notifications {
            user.email_notifications = wanted;
        }
        Ok(user.clone())
    }

    async fn update_user_status(
        &self,
        id: UserId,
        expected: UserStatus,
        to: UserStatus,
    ) -> Result<User, StoreError> {
        let mut state = self.state();
        let user = state.user_mut(id)?;
        if user.status != expected {
            return Err(StoreError::conflict(
                "user",
                id,
                format!(
                    "status is {}, expected {}",
                    user.status.as_str(),
                    expected.as_str()
                ),
            ));
        }
        user.status = to;
        Ok(user.clone())
    }

    async fn set_roles(&self, id: UserId, roles: &[Role]) -> Result<User, StoreError> {
        let mut state = self.state();
        let user = state.user_mut(id)?;
        let mut roles = roles.to_vec();
        roles.push(Role::Player);
        roles.sort();
        roles.dedup();
        user.roles = roles;
        Ok(user.clone())
    }

    async fn set_entitlements(
        &self,
        id: UserId,
        entitlements: Entitlements,
    ) -> Result<User, StoreError> {
        let mut state = self.state();
        let user = state.user_mut(id)?;
        user.entitlements = entitlements;
        Ok(user.clone())
    }

    async fn touch_user(
        &self,
        id: UserId,
        at: Timestamp,
        country: Option<String>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let user = state.user_mut(id)?;
        // Touches are recorded off the request path and may land out of order.
        user.last_seen_at = user.last_seen_at.max(at);
        if let Some(country) = country {
            user.country = country;
        }
        Ok(())
    }
}

#[async_trait]
impl ChallengeStore for MemoryUserStore {
    async fn issue_challenge(
        &self,
        challenge: &LoginChallenge,
        limits: &IssueLimits,
    ) -> Result<Admission, StoreError> {
        let mut state = self.state();
        if state.challenges.contains_key(&challenge.id) {
            return Err(StoreError::duplicate(
                "login challenge",
                format!("id {}", challenge.id),
            ));
        }
        if let Some(full) = state.issue_limit_reached(challenge, limits) {
            return Ok(Admission::Refused(full));
        }
        state.challenges.insert(challenge.id, challenge.clone());
        Ok(Admission::Admitted)
    }

    async fn get_challenge(&self, id: ChallengeId) -> Result<LoginChallenge, StoreError> {
        self.state()
            .challenges
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("login challenge", id))
    }

    async fn update_challenge(
        &self,
        challenge: &LoginChallenge,
        expected_status: ChallengeStatus,
        expected_failed_attempts: u32,
        failed_codes: &RateLimit,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let mut state = self.state();
        let email = match state.challenges.get(&challenge.id) {
            Some(stored) => stored.email.clone(),
            None => return Err(StoreError::not_found("login challenge", challenge.id)),
        };
        // The budget is checked before the compare-and-set, as Postgres does, so both
        // answer the same when a stale write meets a spent budget.
        if let Some(full) = state.failed_codes_reached(&email, failed_codes, now) {
            return Ok(Admission::Refused(full));
        }
        let stored = state
            .challenges
            .get_mut(&challenge.id)
            .ok_or_else(|| StoreError::not_found("login challenge", challenge.id))?;
        if stored.status != expected_status || stored.failed_attempts != expected_failed_attempts {
            return Err(StoreError::conflict(
                "login challenge",
                challenge.id,
                format!(
                    "stored {} with {} failed attempts, expected {} with {}",
                    stored.status,
                    stored.failed_attempts,
                    expected_status,
                    expected_failed_attempts
                ),
            ));
        }
        *stored = challenge.clone();
        Ok(Admission::Admitted)
    }

    async fn challenge_issue_times(
        &self,
        scope: &ChallengeScope,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let state = self.state();
        let mut times: Vec<Timestamp> = state
            .challenges
            .values()
            .filter(|c| c.issued_at >= since)
            .filter(|c| match scope {
                ChallengeScope::Email(email) => c.email == *email,
                ChallengeScope::ClientIp(ip) => c.client_ip == *ip,
            })
            .map(|c| c.issued_at)
            .collect();
        times.sort();
        Ok(times)
    }

    async fn withdraw_challenge(&self, id: ChallengeId) -> Result<bool, StoreError> {
        let mut state = self.state();
        let issued = state
            .challenges
            .get(&id)
            .is_some_and(|c| c.status == ChallengeStatus::Issued);
        if issued {
            state.challenges.remove(&id);
        }
        Ok(issued)
    }

    async fn purge_challenges(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut state = self.state();
        let count = state.challenges.len();
        state.challenges.retain(|_, c| c.expires_at >= before);
        Ok(u64::try_from(count - state.challenges.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl SessionStore for MemoryUserStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.sessions.contains_key(&session.id) {
            return Err(StoreError::duplicate(
                "session",
                format!("id {}", session.id),
            ));
        }
        if state
            .sessions
            .values()
            .any(|s| s.token_hash == session.token_hash)
        {
            return Err(StoreError::duplicate("session", "token hash"));
        }
        state.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> Result<Session, StoreError> {
        self.state()
            .sessions
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("session", id))
    }

    async fn find_session_by_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<Session>, StoreError> {
        Ok(self
            .state()
            .sessions
            .values()
            .find(|s| s.token_hash == *hash)
            .cloned())
    }

    async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let state = self.state();
        let mut sessions: Vec<Session> = state
            .sessions
            .values()
            .filter(|s| s.user_id == user_id && s.is_usable_at(now))
            .cloned()
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(sessions)
    }

    async fn all_active_sessions(&self, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        let state = self.state();
        let mut sessions: Vec<Session> = state
            .sessions
            .values()
            .filter(|s| s.is_usable_at(now))
            .cloned()
            .collect();
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> Result<Session, StoreError> {
        let mut state = self.state();
        let session = state
            .sessions
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("session", id))?;
        if session.status != SessionStatus::Active {
            return Err(StoreError::conflict(
                "session",
                id,
                format!("status is {}, expected active", session.status.as_str()),
            ));
        }
        session.status = SessionStatus::Revoked;
        session.revoked_at = Some(at);
        Ok(session.clone())
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut state = self.state();
        let mut revoked: Vec<(Timestamp, SessionId)> = Vec::new();
        for session in state.sessions.values_mut() {
            if session.user_id == user_id && session.status == SessionStatus::Active {
                session.status = SessionStatus::Revoked;
                session.revoked_at = Some(at);
                revoked.push((session.created_at, session.id));
            }
        }
        revoked.sort();
        Ok(revoked.into_iter().map(|(_, id)| id).collect())
    }

    async fn purge_sessions(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut state = self.state();
        let was = state.sessions.len();
        state.sessions.retain(|_, s| !s.ended_before(before));
        Ok(u64::try_from(was - state.sessions.len()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_poisoned_lock_is_taken_over() {
        let store = Arc::new(MemoryUserStore::default());
        let holder = Arc::clone(&store);
        let crashed = std::thread::spawn(move || {
            let _guard = holder.state.lock();
            panic!("a holder of the lock panics (expected in this test)");
        })
        .join();
        assert!(crashed.is_err() && store.state.is_poisoned());
        let unknown = UserId::from_uuid(uuid::Uuid::nil());
        let read = store.get_user(unknown).await;
        assert!(matches!(read, Err(StoreError::NotFound { .. })), "{read:?}");
    }
}
