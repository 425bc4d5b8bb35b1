//! Use cases. Each service holds only ports (`Arc<dyn Port>`), never another concrete
//! service; where two modules need each other a narrow port breaks the cycle (see
//! [`crate::ports::SessionRevoker`], [`crate::ports::Notifier`]).
//!
//! Every service method validates its input before touching a store, so a rejected call
//! changes no state, and returns its module's error enum, which maps to an
//! [`ErrorKind`] for the HTTP layer.

mod actor;
pub mod auth;
pub mod geo;
pub mod lobby;
pub mod mail;
pub mod mail_in;
pub mod notification;
pub mod push;
pub mod runtime;
pub mod templates;
pub mod user;

pub use actor::Actor;

use std::time::Duration;

/// The class of a service error, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Malformed request (400).
    InvalidRequest,
    /// No or bad credentials (401).
    Unauthenticated,
    /// Authenticated but not allowed (403).
    Forbidden,
    /// No such thing, or not visible to the caller (404).
    NotFound,
    /// The state does not allow it (409).
    Conflict,
    /// Well-formed but invalid values (422).
    Validation,
    /// Too many requests (429).
    RateLimited,
    /// A dependency is down; retry later (503).
    Unavailable,
    /// A bug or corrupt data (500).
    Internal,
}

impl ErrorKind {
    /// The generic snake_case code of the class (`invalid_request`, `not_found`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Validation => "validation",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// Implemented by every service error enum.
pub trait ServiceError: std::error::Error {
    /// The class of the error.
    fn kind(&self) -> ErrorKind;
    /// A snake_case code more specific than the class where the API shows one
    /// (`race_name_taken`, `game_full`); the class's code by default.
    fn code(&self) -> &'static str {
        self.kind().code()
    }
    /// For rate limits: when to try again.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// The class of a store error when a service passes it on.
pub fn store_error_kind(error: &crate::ports::StoreError) -> ErrorKind {
    use crate::ports::StoreError;
    match error {
        StoreError::NotFound { .. } => ErrorKind::NotFound,
        StoreError::Conflict { .. }
        | StoreError::InvalidTransition(_)
        | StoreError::Duplicate { .. } => ErrorKind::Conflict,
        StoreError::Unavailable { .. } => ErrorKind::Unavailable,
        StoreError::InvalidCursor(_) => ErrorKind::InvalidRequest,
        _ => ErrorKind::Internal,
    }
}
