//! Ports for users, login challenges and sessions.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::auth::{ChallengeStatus, LoginChallenge, SecretHash, Session};
use crate::domain::page::{Page, PageRequest};
use crate::domain::user::{DisplayName, Email, Entitlements, Locale, Role, User, UserStatus};
use crate::domain::{ChallengeId, SessionId, Timestamp, UserId};

/// The fields a user may change about themselves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileChange {
    /// New display name.
    pub display_name: Option<DisplayName>,
    /// New locale.
    pub locale: Option<Locale>,
    /// New mail preference.
    pub email_notifications: Option<bool>,
}

/// Users.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user; `Duplicate` when the e-mail is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// Reads one user; `NotFound` when absent.
    async fn get_user(&self, id: UserId) -> Result<User, StoreError>;
    /// Looks a user up by normalised e-mail.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// Lists users by creation order.
    async fn list_users(&self, page: &PageRequest) -> Result<Page<User>, StoreError>;
    /// Applies a profile change and returns the updated user.
    async fn update_profile(&self, id: UserId, change: &ProfileChange) -> Result<User, StoreError>;
    /// Compare-and-set of the block status: `Conflict` when the stored status is not
    /// `expected`.
    async fn update_user_status(
        &self,
        id: UserId,
        expected: UserStatus,
        to: UserStatus,
    ) -> Result<User, StoreError>;
    /// Replaces the roles (sorted, always including `player`).
    async fn set_roles(&self, id: UserId, roles: &[Role]) -> Result<User, StoreError>;
    /// Replaces the entitlements.
    async fn set_entitlements(
        &self,
        id: UserId,
        entitlements: Entitlements,
    ) -> Result<User, StoreError>;
    /// Records activity (and the country geo found, if any).
    async fn touch_user(
        &self,
        id: UserId,
        at: Timestamp,
        country: Option<String>,
    ) -> Result<(), StoreError>;
}

/// Which rate-limit bucket to count login challenges in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeScope {
    /// Challenges issued to one e-mail.
    Email(Email),
    /// Challenges requested from one client IP.
    ClientIp(String),
}

/// Login challenges.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Stores a new challenge.
    async fn insert_challenge(&self, challenge: &LoginChallenge) -> Result<(), StoreError>;
    /// Reads one challenge.
    async fn get_challenge(&self, id: ChallengeId) -> Result<LoginChallenge, StoreError>;
    /// Writes a checked challenge back if nobody else changed it since it was read: the
    /// stored status and failed-attempt count must still be `expected_status` and
    /// `expected_failed_attempts`, else `Conflict` (so concurrent wrong guesses cannot
    /// exceed the attempt budget).
    async fn update_challenge(
        &self,
        challenge: &LoginChallenge,
        expected_status: ChallengeStatus,
        expected_failed_attempts: u32,
    ) -> Result<(), StoreError>;
    /// Issue times of the challenges in `scope` issued at or after `since`, oldest first
    /// (for rate limits and their Retry-After).
    async fn challenge_issue_times(
        &self,
        scope: &ChallengeScope,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError>;
    /// Deletes challenges that expired before `before`; returns how many.
    async fn purge_challenges(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// Sessions.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    /// Reads one session.
    async fn get_session(&self, id: SessionId) -> Result<Session, StoreError>;
    /// Finds the session whose token hashes to `hash`.
    async fn find_session_by_token(&self, hash: &SecretHash)
    -> Result<Option<Session>, StoreError>;
    /// A user's sessions that are active and unexpired at `now`, newest first.
    async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError>;
    /// Every session active and unexpired at `now` (for warming the session cache).
    async fn all_active_sessions(&self, now: Timestamp) -> Result<Vec<Session>, StoreError>;
    /// Revokes one active session; `Conflict` when it is not active.
    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> Result<Session, StoreError>;
    /// Revokes every active session of a user; returns the revoked ids.
    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError>;
}

/// The narrow port through which the user service revokes sessions on a permanent
/// block, without depending on the auth service (which implements it).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SessionRevoker: Send + Sync {
    /// Revokes every session of `user_id` (and drops them from any cache).
    async fn revoke_all(&self, user_id: UserId) -> Result<Vec<SessionId>, StoreError>;
}
