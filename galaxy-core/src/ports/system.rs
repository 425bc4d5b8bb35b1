//! Time and randomness, as ports so tests control both.

use crate::domain::Timestamp;
use crate::domain::auth::{LoginCode, SessionToken};

/// The current time. Services and workers never read the system clock directly.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// Ids, secrets and random numbers.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait SecretGenerator: Send + Sync {
    /// A fresh unique id (UUID v7 in production, so ids sort by creation).
    fn uuid(&self) -> uuid::Uuid;
    /// A login code of `digits` digits from a cryptographic source.
    fn login_code(&self, digits: usize) -> LoginCode;
    /// A 256-bit session token from a cryptographic source.
    fn session_token(&self) -> SessionToken;
    /// A uniform number in `[0, 1)` for jitter (need not be cryptographic).
    fn unit(&self) -> f64;
}
