//! Settings of the login flow, validated once when the service is built.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use crate::domain::auth::{CodeKey, LoginCode};
use crate::domain::limit::RateLimit;
use crate::domain::user::Email;

/// How login codes and sessions behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Digits per login code (6..=10).
    pub code_digits: usize,
    /// How long a code works after it is issued.
    pub code_ttl: TimeDelta,
    /// Wrong codes allowed before a challenge locks.
    pub max_attempts: u32,
    /// Lifetime of a session.
    pub session_ttl: TimeDelta,
    /// Codes per e-mail address: stops mail-bombing one inbox.
    pub per_email: RateLimit,
    /// Codes per client IP: stops one client from spraying many addresses.
    pub per_ip: RateLimit,
    /// Codes of one address that may wait to be used at once: each is a code an
    /// attacker could guess at, so this bounds parallel guessing.
    pub live_per_email: u32,
    /// Wrong codes per e-mail address over all its codes, counted over the codes issued
    /// within the window: bounds guessing however many codes are issued. Past it every
    /// code presented for the address is refused, the right one too, so the refusal
    /// tells nothing about the code.
    pub failed_per_email: RateLimit,
    /// Addresses that get the admin role when they log in, so a fresh install has an
    /// operator without touching the database.
    pub bootstrap_admins: BTreeSet<Email>,
    /// The key login codes are hashed under. `None`: a random key of this process, so a
    /// code can only be checked by the process that issued it (dev mode, tests, one
    /// replica that never restarts while a code is out); replicas share a configured one.
    pub code_key: Option<CodeKey>,
}

impl Default for AuthConfig {
    /// 6-digit codes valid 10 minutes, 5 wrong codes per code, 30-day sessions, 5 codes
    /// per e-mail and 20 per IP every 15 minutes, 3 unused codes per e-mail at once, 10
    /// wrong codes per e-mail every 15 minutes, no bootstrap admins, a per-process key.
    fn default() -> Self {
        Self {
            code_digits: 6,
            code_ttl: TimeDelta::minutes(10),
            max_attempts: 5,
            session_ttl: TimeDelta::days(30),
            per_email: RateLimit {
                max: 5,
                window: TimeDelta::minutes(15),
            },
            per_ip: RateLimit {
                max: 20,
                window: TimeDelta::minutes(15),
            },
            live_per_email: 3,
            failed_per_email: RateLimit {
                max: 10,
                window: TimeDelta::minutes(15),
            },
            bootstrap_admins: BTreeSet::new(),
            code_key: None,
        }
    }
}

/// A setting of [`AuthConfig`] is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// The code length is outside what [`LoginCode`] accepts.
    #[error(
        "code_digits must be between {min} and {max}, got {0}",
        min = LoginCode::MIN_DIGITS,
        max = LoginCode::MAX_DIGITS
    )]
    CodeDigits(usize),
    /// A duration that must be positive is not.
    #[error("{0} must be a positive duration")]
    NotPositive(&'static str),
    /// A count that must be at least one is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// No key could be made for login codes (the secret generator gave too little).
    #[error("no key for login codes could be made")]
    CodeKey,
}

impl AuthConfig {
    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        if !(LoginCode::MIN_DIGITS..=LoginCode::MAX_DIGITS).contains(&self.code_digits) {
            return Err(AuthConfigError::CodeDigits(self.code_digits));
        }
        let durations = [
            ("code_ttl", self.code_ttl),
            ("session_ttl", self.session_ttl),
            ("per_email.window", self.per_email.window),
            ("per_ip.window", self.per_ip.window),
            ("failed_per_email.window", self.failed_per_email.window),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| *d <= TimeDelta::zero()) {
            return Err(AuthConfigError::NotPositive(name));
        }
        let counts = [
            ("max_attempts", self.max_attempts),
            ("per_email.max", self.per_email.max),
            ("per_ip.max", self.per_ip.max),
            ("live_per_email", self.live_per_email),
            ("failed_per_email.max", self.failed_per_email.max),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(AuthConfigError::Zero(name));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(AuthConfig::default().validate(), Ok(()));
        for digits in [5, 11] {
            let config = AuthConfig {
                code_digits: digits,
                ..AuthConfig::default()
            };
            assert_eq!(config.validate(), Err(AuthConfigError::CodeDigits(digits)));
        }
        let config = AuthConfig {
            code_ttl: TimeDelta::zero(),
            ..AuthConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(AuthConfigError::NotPositive("code_ttl"))
        );
        let mut config = AuthConfig::default();
        config.per_ip.max = 0;
        assert_eq!(config.validate(), Err(AuthConfigError::Zero("per_ip.max")));
        let config = AuthConfig {
            live_per_email: 0,
            ..AuthConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(AuthConfigError::Zero("live_per_email"))
        );
        let mut config = AuthConfig::default();
        config.failed_per_email.window = TimeDelta::zero();
        assert_eq!(
            config.validate(),
            Err(AuthConfigError::NotPositive("failed_per_email.window"))
        );
    }
}
