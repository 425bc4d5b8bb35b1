//! What can go wrong logging in and using sessions.
//!
//! No variant carries a login code or a session token, not even a malformed one a
//! client sent: error messages end up in logs and API bodies.

use std::time::Duration;

use crate::domain::Timestamp;
use crate::domain::auth::{CredentialError, RateLimitScope};
use crate::domain::user::EmailError;
use crate::ports::StoreError;
use crate::service::{ErrorKind, ServiceError, store_error_kind};

/// What a refusal by `scope` tells the client (never which codes were right or wrong).
fn rate_limited_message(scope: &RateLimitScope) -> &'static str {
    match scope {
        RateLimitScope::Email => "too many login codes requested for this e-mail address",
        RateLimitScope::ClientIp => "too many login codes requested from this client address",
        RateLimitScope::LiveCodes => {
            "too many unused login codes for this e-mail address; use one of them"
        }
        RateLimitScope::FailedCodes => "too many wrong login codes for this e-mail address",
    }
}

/// Why an auth call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The e-mail address is not valid (422).
    #[error("invalid email: {0}")]
    InvalidEmail(#[from] EmailError),
    /// An id in the request is not a UUID (400). The input is not echoed: a client that
    /// confuses fields might have put a secret there.
    #[error("{kind} is not a UUID")]
    MalformedId {
        /// Which id, e.g. `challenge id`.
        kind: &'static str,
    },
    /// The login code is not 6 to 10 digits (422).
    #[error("invalid login code: {0}")]
    MalformedCode(CredentialError),
    /// A login limit is full (429): too many codes requested for the address or from
    /// the client, too many of the address's codes unused, or too many wrong codes for
    /// the address.
    #[error(
        "{}; retry in {} s",
        rate_limited_message(.scope),
        .retry_after.as_secs()
    )]
    RateLimited {
        /// The bucket that is full.
        scope: RateLimitScope,
        /// When the bucket has room again: when enough of what it counts left the
        /// window (or, for unused codes, expired).
        retry_after: Duration,
    },
    /// No challenge has this id (404).
    #[error("login challenge not found")]
    ChallengeNotFound,
    /// The code is wrong; the challenge still accepts `remaining` attempts (401).
    #[error("wrong login code; {remaining} attempts left")]
    InvalidCode {
        /// Attempts left before the challenge locks.
        remaining: u32,
    },
    /// Too many wrong codes: this challenge is locked; request a new code (409).
    #[error("too many wrong codes: this login code is locked; request a new one")]
    ChallengeLocked,
    /// The code expired; request a new one (409).
    #[error("this login code has expired; request a new one")]
    ChallengeExpired,
    /// The code was already used to create a session (409).
    #[error("this login code has already been used; request a new one")]
    ChallengeUsed,
    /// Concurrent attempts kept changing the challenge; try again (409).
    #[error("the login challenge is being checked concurrently; try again")]
    ChallengeContended,
    /// The account is blocked (403).
    #[error("{}", blocked_message(.until))]
    Blocked {
        /// When a temporary block ends; `None` for a permanent block.
        until: Option<Timestamp>,
    },
    /// The bearer token is not 64 hex characters (401).
    #[error("session token is malformed: {0}")]
    MalformedToken(CredentialError),
    /// The bearer token is unknown, revoked or expired (401).
    #[error("session token is unknown, revoked or expired")]
    InvalidSession,
    /// No session of the caller has this id (404). Another user's session gives the same
    /// answer, so session ids cannot be probed.
    #[error("session not found")]
    SessionNotFound,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn blocked_message(until: &Option<Timestamp>) -> String {
    match until {
        Some(until) => format!("this account is blocked until {}", until.to_rfc3339()),
        None => "this account is blocked".to_owned(),
    }
}

impl ServiceError for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::MalformedId { .. } => ErrorKind::InvalidRequest,
            Self::InvalidEmail(_) | Self::MalformedCode(_) => ErrorKind::Validation,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::ChallengeNotFound | Self::SessionNotFound => ErrorKind::NotFound,
            Self::InvalidCode { .. } | Self::MalformedToken(_) | Self::InvalidSession => {
                ErrorKind::Unauthenticated
            }
            Self::ChallengeLocked
            | Self::ChallengeExpired
            | Self::ChallengeUsed
            | Self::ChallengeContended => ErrorKind::Conflict,
            Self::Blocked { .. } => ErrorKind::Forbidden,
            Self::Store(error) => store_error_kind(error),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}
