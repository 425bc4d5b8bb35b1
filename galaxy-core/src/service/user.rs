//! Accounts: a user's own profile, and the admin's view (list, block, unblock, grant).
//!
//! A permanent block revokes every session of the user through the narrow
//! [`SessionRevoker`] port, which the auth service implements; this service never holds
//! the auth service itself.

use std::sync::Arc;

use crate::domain::page::{Page, PageRequest};
use crate::domain::user::{
    Block, DisplayName, Email, EmailError, Locale, ProfileError, Role, User,
};
use crate::domain::{InvalidTransition, Timestamp, UserId};
use crate::ports::{Clock, ProfileChange, SessionRevoker, StoreError, UserStore};
use crate::service::{Actor, ErrorKind, ServiceError, store_error_kind};

/// Why a user call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// The call needs the admin role (403).
    #[error("this action needs the admin role")]
    NotAdmin,
    /// An admin tried to block their own account, which would lock them out (403).
    #[error("an admin cannot block their own account")]
    SelfBlock,
    /// The user id is not a UUID (400).
    #[error("user id is not a UUID")]
    MalformedUserId,
    /// The e-mail address is not valid (422).
    #[error("invalid email: {0}")]
    InvalidEmail(#[from] EmailError),
    /// A profile field is invalid (422); nothing was changed.
    #[error("invalid {field}: {source}")]
    InvalidField {
        /// The field, as the API names it (`display_name`, `locale`).
        field: &'static str,
        /// What is wrong with it.
        source: ProfileError,
    },
    /// A temporary block must end in the future (422).
    #[error("block end {} is not in the future", .until.to_rfc3339())]
    BlockEndsInPast {
        /// The requested end.
        until: Timestamp,
    },
    /// No such user (404).
    #[error("user not found")]
    NotFound,
    /// An admin's search text is longer than [`MAX_SEARCH_BYTES`] or holds a control
    /// character (422).
    #[error("the search text q is at most {MAX_SEARCH_BYTES} bytes, without control characters")]
    SearchTooLong,
    /// The user's status does not allow the change (409), e.g. unblocking an active user.
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// The user was blocked permanently but revoking their sessions failed (503). The
    /// block holds, and a blocked user's tokens are refused anyway; the sessions stay
    /// stored until they expire or are revoked.
    #[error("user {user_id} is blocked, but revoking their sessions failed: {source}")]
    SessionsNotRevoked {
        /// The blocked user.
        user_id: UserId,
        /// Why revoking failed.
        source: StoreError,
    },
    /// A store failed, or the user changed concurrently (409).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError for UserError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotAdmin | Self::SelfBlock => ErrorKind::Forbidden,
            Self::MalformedUserId => ErrorKind::InvalidRequest,
            Self::InvalidEmail(_)
            | Self::InvalidField { .. }
            | Self::BlockEndsInPast { .. }
            | Self::SearchTooLong => ErrorKind::Validation,
            Self::NotFound => ErrorKind::NotFound,
            Self::InvalidTransition(_) => ErrorKind::Conflict,
            Self::SessionsNotRevoked { .. } => ErrorKind::Unavailable,
            Self::Store(error) => store_error_kind(error),
        }
    }
}

/// The longest text an admin's user search takes (an e-mail address is at most 254).
pub const MAX_SEARCH_BYTES: usize = 256;

/// The profile fields a user asked to change; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileUpdate {
    /// New display name (1 to 64 printable characters).
    pub display_name: Option<String>,
    /// New locale (`en`, `pt-BR`, ...).
    pub locale: Option<String>,
    /// Whether to receive notification mail.
    pub email_notifications: Option<bool>,
}

/// Profiles and account administration.
#[derive(Clone)]
pub struct UserService {
    /// Users.
    users: Arc<dyn UserStore>,
    /// Revokes sessions on a permanent block (the auth service, wired in composition).
    revoker: Arc<dyn SessionRevoker>,
    /// The only source of time (is a block's end in the future?).
    clock: Arc<dyn Clock>,
}

impl UserService {
    /// Builds the service.
    pub fn new(
        users: Arc<dyn UserStore>,
        revoker: Arc<dyn SessionRevoker>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            users,
            revoker,
            clock,
        }
    }

    /// The caller's own account.
    pub async fn me(&self, actor: &Actor) -> Result<User, UserError> {
        self.read(actor.user_id).await
    }

    /// Changes the caller's profile. Every field is validated before anything is
    /// written, so an invalid field changes nothing.
    pub async fn update_profile(
        &self,
        actor: &Actor,
        update: ProfileUpdate,
    ) -> Result<User, UserError> {
        let change = ProfileChange {
            display_name: update
                .display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()
                .map_err(|source| UserError::InvalidField {
                    field: "display_name",
                    source,
                })?,
            locale: update
                .locale
                .as_deref()
                .map(Locale::parse)
                .transpose()
                .map_err(|source| UserError::InvalidField {
                    field: "locale",
                    source,
                })?,
            email_notifications: update.email_notifications,
        };
        if change == ProfileChange::default() {
            return self.me(actor).await;
        }
        match self.users.update_profile(actor.user_id, &change).await {
            Ok(user) => Ok(user),
            Err(StoreError::NotFound { .. }) => Err(UserError::NotFound),
            Err(StoreError::Duplicate { key, .. }) => Err(UserError::InvalidField {
                field: "display_name",
                source: ProfileError::LooksLikeAnother(key),
            }),
            Err(error) => Err(error.into()),
        }
    }

    /// Lists users by creation order (admin).
    pub async fn list_users(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<User>, UserError> {
        require_admin(actor)?;
        Ok(self.users.list_users(page).await?)
    }

    /// The users whose e-mail address or display name contains `text` (case ignored,
    /// matched literally), by creation order (admin); an empty or blank `text` lists
    /// everyone, as [`UserService::list_users`].
    pub async fn search_users(
        &self,
        actor: &Actor,
        text: &str,
        page: &PageRequest,
    ) -> Result<Page<User>, UserError> {
        require_admin(actor)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(self.users.list_users(page).await?);
        }
        if text.len() > MAX_SEARCH_BYTES || text.chars().any(char::is_control) {
            return Err(UserError::SearchTooLong);
        }
        Ok(self.users.search_users(text, page).await?)
    }

    /// Reads any user (admin).
    pub async fn get_user(&self, actor: &Actor, user_id: &str) -> Result<User, UserError> {
        require_admin(actor)?;
        self.read(parse_user_id(user_id)?).await
    }

    /// One user, for trusted internal callers (the gateway through the internal API,
    /// which authenticates with the internal token instead of a user session).
    pub async fn get_user_trusted(&self, user_id: &str) -> Result<User, UserError> {
        self.read(parse_user_id(user_id)?).await
    }

    /// Blocks a user until an instant or permanently (admin). A permanent block revokes
    /// every session of the user. Refused for the caller's own account and, with a
    /// conflict, for a user already blocked permanently or changed concurrently.
    pub async fn block(
        &self,
        actor: &Actor,
        user_id: &str,
        block: Block,
    ) -> Result<User, UserError> {
        require_admin(actor)?;
        let id = parse_user_id(user_id)?;
        if let Block::Until(until) = block
            && until <= self.clock.now()
        {
            return Err(UserError::BlockEndsInPast { until });
        }
        if id == actor.user_id {
            return Err(UserError::SelfBlock);
        }
        let mut user = self.read(id).await?;
        let from = user.status;
        user.block(block)?;
        let user = self.users.update_user_status(id, from, user.status).await?;
        tracing::info!(user_id = %id, by = %actor.user_id, status = user.status.as_str(), "user blocked");
        if block == Block::Permanent {
            let revoked = self.revoker.revoke_all(id).await.map_err(|source| {
                UserError::SessionsNotRevoked {
                    user_id: id,
                    source,
                }
            })?;
            tracing::info!(user_id = %id, sessions = revoked.len(), "sessions of a blocked user revoked");
        }
        Ok(user)
    }

    /// Lifts a block (admin); a conflict when the user is not blocked.
    pub async fn unblock(&self, actor: &Actor, user_id: &str) -> Result<User, UserError> {
        require_admin(actor)?;
        let id = parse_user_id(user_id)?;
        let mut user = self.read(id).await?;
        let from = user.status;
        user.unblock()?;
        let user = self.users.update_user_status(id, from, user.status).await?;
        tracing::info!(user_id = %id, by = %actor.user_id, "user unblocked");
        Ok(user)
    }

    /// Grants the admin role to the account of `email` (operator tooling; no actor).
    /// Idempotent. The account must exist: it is created at first login, or use the
    /// bootstrap admin setting for an address that never logged in.
    pub async fn grant_admin(&self, email: &str) -> Result<User, UserError> {
        self.set_admin(email, true).await
    }

    /// Takes the admin role from the account of `email` (operator tooling; no actor):
    /// someone who no longer runs the installation. Idempotent. An address still in the
    /// bootstrap admin setting gets the role back at its next login, so take it out of
    /// the setting too.
    pub async fn revoke_admin(&self, email: &str) -> Result<User, UserError> {
        self.set_admin(email, false).await
    }

    /// Gives (`admin`) or takes the admin role of the account of `email`; idempotent.
    async fn set_admin(&self, email: &str, admin: bool) -> Result<User, UserError> {
        let email = Email::parse(email)?;
        let mut user = self
            .users
            .find_user_by_email(&email)
            .await?
            .ok_or(UserError::NotFound)?;
        if user.has_role(Role::Admin) == admin {
            return Ok(user);
        }
        if admin {
            user.grant(Role::Admin);
        } else {
            user.revoke(Role::Admin);
        }
        let user = self.users.set_roles(user.id, &user.roles).await?;
        if admin {
            tracing::info!(user_id = %user.id, "admin role granted");
        } else {
            tracing::info!(user_id = %user.id, "admin role revoked");
        }
        Ok(user)
    }

    /// One user, with the store's `NotFound` as [`UserError::NotFound`].
    async fn read(&self, id: UserId) -> Result<User, UserError> {
        match self.users.get_user(id).await {
            Ok(user) => Ok(user),
            Err(StoreError::NotFound { .. }) => Err(UserError::NotFound),
            Err(error) => Err(error.into()),
        }
    }
}

fn require_admin(actor: &Actor) -> Result<(), UserError> {
    if actor.is_admin {
        Ok(())
    } else {
        Err(UserError::NotAdmin)
    }
}

fn parse_user_id(input: &str) -> Result<UserId, UserError> {
    UserId::parse(input).map_err(|_| UserError::MalformedUserId)
}
