//! Ports for users, login challenges and sessions.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::auth::{ChallengeStatus, LoginChallenge, RateLimitScope, SecretHash, Session};
use crate::domain::limit::{RateLimit, bucket_frees_at};
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
    /// Stores a new user and returns it as stored; `Duplicate` when the e-mail is taken.
    /// Its display name is the first of [`DisplayName::candidates`] whose look-alike key
    /// no other user holds (chosen under the same exclusion as renames), so a default name
    /// never impersonates an existing user's.
    async fn insert_user(&self, user: &User) -> Result<User, StoreError>;
    /// Reads one user; `NotFound` when absent.
    async fn get_user(&self, id: UserId) -> Result<User, StoreError>;
    /// Looks a user up by normalised e-mail.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// Lists users by creation order.
    async fn list_users(&self, page: &PageRequest) -> Result<Page<User>, StoreError>;
    /// The users whose e-mail address or display name contains `text`, ignoring case
    /// (`text` is matched literally: `%` and `_` are not wildcards), by creation order and
    /// paged like [`UserStore::list_users`]: how an admin finds one account among
    /// thousands. `text` is never empty (the service lists everyone instead).
    async fn search_users(&self, text: &str, page: &PageRequest) -> Result<Page<User>, StoreError>;
    /// Every user holding the [`Role::Admin`] role, whatever their status, in creation
    /// order (the runtime's alerts go to the active ones).
    ///
    /// The default walks every page of [`UserStore::list_users`], so a store written
    /// before this method keeps working; a store that can select admins directly (an
    /// index, a role table) should override it, since alerts call it on every incident.
    async fn list_admins(&self) -> Result<Vec<User>, StoreError> {
        const PAGE: u32 = 200;
        let mut admins = Vec::new();
        let mut page = PageRequest::first(PAGE).map_err(StoreError::internal)?;
        loop {
            let got = self.list_users(&page).await?;
            admins.extend(got.items.into_iter().filter(|u| u.has_role(Role::Admin)));
            match got.next_after {
                Some(after) => {
                    page = PageRequest::after(PAGE, after).map_err(StoreError::internal)?
                }
                None => return Ok(admins),
            }
        }
    }
    /// Applies a profile change and returns the updated user. A new display name whose
    /// look-alike key ([`DisplayName::key`](crate::domain::user::DisplayName::key)) is
    /// another user's is refused with `Duplicate`, atomically (two concurrent renames to
    /// look-alikes never both pass).
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

/// The limits a new login challenge must fit under, checked by
/// [`ChallengeStore::issue_challenge`] in the same atomic step as the insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueLimits {
    /// Challenges issued to one e-mail address per window.
    pub per_email: RateLimit,
    /// Challenges requested from one client (the challenge's `client_ip`) per window;
    /// `None` when the client is unknown, so that unknown clients do not share one
    /// bucket that a single caller could fill for everyone.
    pub per_client: Option<RateLimit>,
    /// Challenges of one address that may be live at once (issued, not yet expired,
    /// consumed or locked): each one is a code an attacker could guess at.
    pub live_per_email: u32,
}

impl IssueLimits {
    /// The limit a challenge of `email`/`client` issued at `now` would pass, given what
    /// the store holds: the issue times of the address's challenges, the expiry times of
    /// its challenges still in status `issued`, and the issue times of the client's
    /// challenges (supersets are fine: whatever no longer counts at `now` is ignored).
    /// When several limits are full, the one that frees last. Stores call this with
    /// what they read inside their atomic step.
    pub fn reached(
        &self,
        now: Timestamp,
        email_issued: &[Timestamp],
        email_unused_expiries: &[Timestamp],
        client_issued: &[Timestamp],
    ) -> Option<LimitReached> {
        let once = |times: &[Timestamp]| times.iter().map(|at| (*at, 1)).collect::<Vec<_>>();
        let live = email_unused_expiries
            .iter()
            .filter(|expires| **expires > now)
            .map(|expires| (*expires, 1));
        let full = [
            self.per_email
                .full_until(now, once(email_issued))
                .map(|at| (at, RateLimitScope::Email)),
            bucket_frees_at(self.live_per_email, live).map(|at| (at, RateLimitScope::LiveCodes)),
            self.per_client
                .and_then(|limit| limit.full_until(now, once(client_issued)))
                .map(|at| (at, RateLimitScope::ClientIp)),
        ];
        full.into_iter()
            .flatten()
            .max_by_key(|(frees_at, _)| *frees_at)
            .map(|(frees_at, scope)| LimitReached { scope, frees_at })
    }
}

/// The refusal of a code check when the wrong codes of an address, given as the issue
/// time and wrong-code count of each of its challenges, have used up `limit` at `now`.
/// Stores call this with what they read inside their atomic step.
pub fn failed_codes_reached(
    limit: &RateLimit,
    now: Timestamp,
    failures: impl IntoIterator<Item = (Timestamp, u32)>,
) -> Option<LimitReached> {
    limit
        .full_until(now, failures)
        .map(|frees_at| LimitReached {
            scope: RateLimitScope::FailedCodes,
            frees_at,
        })
}

/// A limit is full; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitReached {
    /// The full bucket. When several are full, the one that frees last, so that
    /// `frees_at` is when a retry can succeed.
    pub scope: RateLimitScope,
    /// When the bucket has room again (at the latest: a live challenge may also free
    /// its place earlier by being used).
    pub frees_at: Timestamp,
}

/// Whether a write guarded by a limit happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Admission {
    /// Within every limit: written.
    Admitted,
    /// A limit is full: nothing was written.
    Refused(LimitReached),
}

/// Login challenges.
///
/// The limits are counted from the stored challenges themselves (no counters to keep in
/// step), and every write that a limit guards counts and writes in one atomic step:
/// concurrent callers, on any number of replicas, can never together pass a limit that
/// each of them checked.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Stores a new challenge if, counted at its `issued_at`, its address and client
    /// are within `limits`: fewer than `per_email.max` challenges of the address issued
    /// within the window, fewer than `live_per_email` of them live, and fewer than
    /// `per_client.max` of the client within its window. Otherwise stores nothing and
    /// answers [`Admission::Refused`]. `Duplicate` when the id is taken.
    async fn issue_challenge(
        &self,
        challenge: &LoginChallenge,
        limits: &IssueLimits,
    ) -> Result<Admission, StoreError>;
    /// Reads one challenge.
    async fn get_challenge(&self, id: ChallengeId) -> Result<LoginChallenge, StoreError>;
    /// Writes a checked challenge back if nobody else changed it since it was read, and
    /// while its address is within its budget of wrong codes.
    ///
    /// The stored status and failed-attempt count must still be `expected_status` and
    /// `expected_failed_attempts`, else `Conflict` (so concurrent wrong guesses cannot
    /// exceed the challenge's attempt budget). And the wrong codes of all challenges of
    /// the address issued within `failed_codes.window` before `now` must total fewer
    /// than `failed_codes.max`, counted in the same atomic step, else nothing is written
    /// and the answer is [`Admission::Refused`] with scope `FailedCodes` (so concurrent
    /// guesses spread over many challenges cannot exceed the address's budget either).
    async fn update_challenge(
        &self,
        challenge: &LoginChallenge,
        expected_status: ChallengeStatus,
        expected_failed_attempts: u32,
        failed_codes: &RateLimit,
        now: Timestamp,
    ) -> Result<Admission, StoreError>;
    /// Issue times of the challenges in `scope` issued at or after `since`, oldest first
    /// (to inspect a rate-limit bucket; the limits themselves are checked by
    /// `issue_challenge` and `update_challenge`).
    async fn challenge_issue_times(
        &self,
        scope: &ChallengeScope,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError>;
    /// Deletes a challenge whose code never reached anyone (its mail could not be
    /// queued), if it is still `Issued`, so that it counts against no limit; returns
    /// whether it was deleted. A challenge already checked (consumed, locked, expired)
    /// stays.
    async fn withdraw_challenge(&self, id: ChallengeId) -> Result<bool, StoreError>;
    /// Deletes challenges that expired before `before`; returns how many. The limits
    /// count stored challenges, so `before` must lie at least the longest limit window
    /// in the past, or purging would empty full buckets early.
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
    /// Deletes the sessions that had ended (expired, or were revoked) before `before`
    /// ([`Session::ended_before`]); returns how many. Every login makes one, so without
    /// this the table (and the cache warmed from it) would grow for ever.
    async fn purge_sessions(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// The narrow port through which the user service revokes sessions on a permanent
/// block, without depending on the auth service (which implements it).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SessionRevoker: Send + Sync {
    /// Revokes every session of `user_id` (and drops them from any cache).
    async fn revoke_all(&self, user_id: UserId) -> Result<Vec<SessionId>, StoreError>;
}
