//! Passwordless login: e-mailed codes, bearer-token sessions, and the session revoker
//! the user service calls on a permanent block.
//!
//! The flow: [`AuthService::request_login_code`] stores a challenge holding only the hash
//! of a fresh code and queues the code in a mail; [`AuthService::create_session`] checks
//! a presented code against the challenge (compare-and-set, so concurrent guesses share
//! one attempt budget), finds or creates the user and opens a session whose token is
//! returned once and stored only as a hash; [`AuthService::authenticate`] resolves a
//! bearer token on every request.
//!
//! Tokens are checked against the store on every call rather than a per-process cache:
//! with several replicas a local cache would keep honouring a session another replica
//! revoked. A cache belongs behind [`SessionStore`] once revocations fan out between
//! replicas.

mod config;
mod error;
mod login;
mod sessions;

use std::sync::Arc;

pub use config::{AuthConfig, AuthConfigError};
pub use error::AuthError;
// Domain types, re-exported because they are part of this service's settings and errors.
pub use crate::domain::auth::RateLimitScope;
pub use crate::domain::limit::RateLimit;

use crate::domain::auth::{CodeKey, Session, SessionToken};
use crate::domain::user::{User, UserStatus};
use crate::domain::{ChallengeId, Timestamp};
use crate::ports::{ChallengeStore, Clock, MailStore, SecretGenerator, SessionStore, UserStore};
use crate::service::templates::MailTemplates;

/// The ports the auth service needs, named so wiring code cannot swap two of them.
#[derive(Clone)]
pub struct AuthPorts {
    /// Finds and creates users at login.
    pub users: Arc<dyn UserStore>,
    /// Login challenges, which also enforce the login limits atomically.
    pub challenges: Arc<dyn ChallengeStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// The outbox the login code mail goes into.
    pub mail: Arc<dyn MailStore>,
    /// The only source of time.
    pub clock: Arc<dyn Clock>,
    /// Ids, login codes and session tokens.
    pub secrets: Arc<dyn SecretGenerator>,
}

/// Login codes, sessions and token checks.
#[derive(Clone)]
pub struct AuthService {
    /// Users: looked up and created at login, checked for blocks on every request.
    users: Arc<dyn UserStore>,
    /// Challenges: the hashed code, its attempt budget, and the history the login
    /// limits count (checked by the store in the same step as each write).
    challenges: Arc<dyn ChallengeStore>,
    /// Sessions, found by token hash.
    sessions: Arc<dyn SessionStore>,
    /// The mail outbox: the code travels by mail, delivered by the mail worker, so a
    /// slow or failing SMTP server never slows or fails the request.
    mail: Arc<dyn MailStore>,
    /// Time, from a port so tests can expire codes and sessions.
    clock: Arc<dyn Clock>,
    /// Randomness, from a port so tests are reproducible.
    secrets: Arc<dyn SecretGenerator>,
    /// Validated settings.
    config: AuthConfig,
    /// The key codes are hashed under: the configured one, else random for this process.
    code_key: CodeKey,
    /// The login code mail's template (`login_code`), with the notifications' others.
    templates: Arc<MailTemplates>,
}

/// A login code was issued (or, for an address that may not log in, pretended to be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuedChallenge {
    /// Present it with the code to [`AuthService::create_session`].
    pub challenge_id: ChallengeId,
    /// When the code stops working.
    pub expires_at: Timestamp,
}

/// A session was opened.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The bearer token, in the clear this once; only its hash is stored.
    pub token: SessionToken,
    /// The stored session.
    pub session: Session,
    /// Its owner.
    pub user: User,
}

/// A bearer token resolved to its session and user.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The session the token belongs to.
    pub session: Session,
    /// Its owner, who is not blocked.
    pub user: User,
}

impl AuthService {
    /// Builds the service; fails when a setting is out of range.
    pub fn new(ports: AuthPorts, config: AuthConfig) -> Result<Self, AuthConfigError> {
        config.validate()?;
        let code_key = match &config.code_key {
            Some(key) => key.clone(),
            None => CodeKey::derive(ports.secrets.session_token().expose().as_bytes())
                .map_err(|_| AuthConfigError::CodeKey)?,
        };
        Ok(Self {
            code_key,
            users: ports.users,
            challenges: ports.challenges,
            sessions: ports.sessions,
            mail: ports.mail,
            clock: ports.clock,
            secrets: ports.secrets,
            config,
            templates: Arc::new(MailTemplates::builtin()),
        })
    }

    /// Renders the login code mail from `templates` (its `login_code` kind) instead of
    /// the built-in set: an embedder's own wording, as for the notification mails.
    pub fn with_templates(mut self, templates: Arc<MailTemplates>) -> Self {
        self.templates = templates;
        self
    }

    /// The settings in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }
}

/// The refusal for a user whose status does not allow acting now.
fn blocked(status: UserStatus) -> AuthError {
    AuthError::Blocked {
        until: match status {
            UserStatus::Blocked { until } => Some(until),
            UserStatus::Active | UserStatus::BlockedPermanently => None,
        },
    }
}
