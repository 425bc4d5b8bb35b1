//! Resolving bearer tokens, listing and revoking sessions.

use async_trait::async_trait;

use super::{AuthError, AuthService, Authenticated};
use crate::domain::auth::{Session, SessionStatus, SessionToken};
use crate::domain::{SessionId, UserId};
use crate::ports::{SessionRevoker, StoreError};
use crate::service::Actor;

impl AuthService {
    /// Resolves a bearer token. Malformed, unknown, revoked and expired tokens are all
    /// `Unauthenticated`; a token of a blocked user is `Forbidden`.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let token = SessionToken::parse(token).map_err(AuthError::MalformedToken)?;
        let now = self.clock.now();
        let session = self
            .sessions
            .find_session_by_token(&token.hash())
            .await?
            .filter(|session| session.is_usable_at(now))
            .ok_or(AuthError::InvalidSession)?;
        let user = match self.users.get_user(session.user_id).await {
            Ok(user) => user,
            Err(StoreError::NotFound { .. }) => return Err(AuthError::InvalidSession),
            Err(error) => return Err(error.into()),
        };
        if !user.status.is_active_at(now) {
            return Err(super::blocked(user.status));
        }
        Ok(Authenticated { session, user })
    }

    /// The caller's active sessions, newest first.
    pub async fn list_sessions(&self, actor: &Actor) -> Result<Vec<Session>, AuthError> {
        Ok(self
            .sessions
            .list_active_sessions(actor.user_id, self.clock.now())
            .await?)
    }

    /// Revokes one of the caller's sessions. Another user's session id is
    /// `SessionNotFound`, exactly like an unknown one. Revoking a session that already
    /// ended succeeds and returns it unchanged.
    pub async fn revoke_session(&self, actor: &Actor, id: SessionId) -> Result<Session, AuthError> {
        let session = match self.sessions.get_session(id).await {
            Ok(session) if session.user_id == actor.user_id => session,
            Ok(_) | Err(StoreError::NotFound { .. }) => return Err(AuthError::SessionNotFound),
            Err(error) => return Err(error.into()),
        };
        self.end_session(session).await
    }

    /// Revokes the session of `token` (logout). An unknown token is `Unauthenticated`;
    /// logging out of a session that already ended succeeds.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let token = SessionToken::parse(token).map_err(AuthError::MalformedToken)?;
        let session = self
            .sessions
            .find_session_by_token(&token.hash())
            .await?
            .ok_or(AuthError::InvalidSession)?;
        self.end_session(session).await.map(|_| ())
    }

    /// Revokes `session` unless it already ended; a concurrent revocation is success.
    async fn end_session(&self, session: Session) -> Result<Session, AuthError> {
        if session.status != SessionStatus::Active {
            return Ok(session);
        }
        match self
            .sessions
            .revoke_session(session.id, self.clock.now())
            .await
        {
            Ok(revoked) => {
                tracing::info!(session_id = %revoked.id, user_id = %revoked.user_id, "session revoked");
                Ok(revoked)
            }
            Err(StoreError::Conflict { .. }) => Ok(self.sessions.get_session(session.id).await?),
            Err(error) => Err(error.into()),
        }
    }
}

#[async_trait]
impl SessionRevoker for AuthService {
    async fn revoke_all(&self, user_id: UserId) -> Result<Vec<SessionId>, StoreError> {
        let revoked = self
            .sessions
            .revoke_user_sessions(user_id, self.clock.now())
            .await?;
        tracing::info!(user_id = %user_id, count = revoked.len(), "all sessions revoked");
        Ok(revoked)
    }
}
