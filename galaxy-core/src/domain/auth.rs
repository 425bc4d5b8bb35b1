//! Passwordless login: e-mailed codes (login challenges) and bearer-token sessions.
//!
//! Secrets never live in these types in the clear: a challenge stores the SHA-256 of its
//! code (salted with the challenge id), a session the SHA-256 of its token. The clear code
//! and token exist only on their way to the user.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::user::Email;
use super::{ChallengeId, InvalidTransition, SessionId, Timestamp, UserId};

/// A login code or session token was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Codes are 6 to 10 ASCII digits.
    #[error("login code must be 6 to 10 digits")]
    Code,
    /// Tokens are 64 lower-case hex characters (256 bits).
    #[error("session token must be 64 hexadecimal characters")]
    Token,
    /// A configured login-code key is too short to be a secret.
    #[error("the login-code key must be at least {min} bytes of secret material")]
    KeyTooShort {
        /// The least accepted.
        min: usize,
    },
}

/// A login code as typed by the user: 6..=10 ASCII digits.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginCode(String);

impl LoginCode {
    /// Shortest code length.
    pub const MIN_DIGITS: usize = 6;
    /// Longest code length.
    pub const MAX_DIGITS: usize = 10;

    /// Parses a code, ignoring surrounding whitespace and inner spaces or hyphens users
    /// type to group digits ("123 456").
    pub fn parse(input: &str) -> Result<Self, CredentialError> {
        let digits: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len())
            || !digits.chars().all(|c| c.is_ascii_digit())
        {
            return Err(CredentialError::Code);
        }
        Ok(Self(digits))
    }

    /// The digits, for the mail that carries them.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form: HMAC-SHA256 under the server's `key` over the challenge id and
    /// the code. The key makes a leaked challenges table useless (a code has only 10^6
    /// values: an unkeyed hash is reversed by trying them all); the challenge id makes
    /// equal codes of different challenges hash differently.
    pub fn hash_for(&self, challenge: ChallengeId, key: &CodeKey) -> SecretHash {
        use hmac::{Mac, SimpleHmac};
        // `SimpleHmac::new_from_slice` accepts keys of any length.
        let mut mac = match SimpleHmac::<Sha256>::new_from_slice(&key.0) {
            Ok(mac) => mac,
            Err(_) => return SecretHash([0; 32]),
        };
        mac.update(challenge.as_uuid().as_bytes());
        mac.update(self.0.as_bytes());
        SecretHash(mac.finalize().into_bytes().into())
    }
}

/// The server secret login codes are hashed under (HMAC key): configured
/// (`GALAXY_LOGIN_CODE_KEY`) so every replica checks every code, or random per process
/// (dev mode, tests). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeKey([u8; 32]);

impl CodeKey {
    /// Fewest bytes of secret material a configured key must have.
    pub const MIN_MATERIAL: usize = 32;

    /// The key derived from secret material (e.g. a configured string of at least
    /// [`CodeKey::MIN_MATERIAL`] bytes): SHA-256 of it, so any length and alphabet works.
    pub fn derive(material: &[u8]) -> Result<Self, CredentialError> {
        if material.len() < Self::MIN_MATERIAL {
            return Err(CredentialError::KeyTooShort {
                min: Self::MIN_MATERIAL,
            });
        }
        let mut hasher = Sha256::new();
        hasher.update(b"galaxy login code key\0");
        hasher.update(material);
        Ok(Self(hasher.finalize().into()))
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

impl fmt::Debug for LoginCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginCode(<redacted>)")
    }
}

/// A session bearer token: 256 random bits, rendered as 64 hex characters.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken([u8; 32]);

impl SessionToken {
    /// Wraps random bytes from the secret generator.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the 64-hex-character form a client presents.
    pub fn parse(input: &str) -> Result<Self, CredentialError> {
        let input = input.trim();
        if input.len() != 64 {
            return Err(CredentialError::Token);
        }
        let mut bytes = [0u8; 32];
        for (i, chunk) in input.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| CredentialError::Token)?;
            bytes[i] = u8::from_str_radix(hex, 16).map_err(|_| CredentialError::Token)?;
        }
        Ok(Self(bytes))
    }

    /// The clear form, only for handing to the client once.
    pub fn expose(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The stored form.
    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// The SHA-256 of a secret; compared in constant time.
#[derive(Clone, Copy, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Wraps a stored hash (adapters reading rows).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes (adapters writing rows).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Where a login challenge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeStatus {
    /// Waiting for the code.
    Issued,
    /// The right code was presented; a session was created.
    Consumed,
    /// Its time ran out.
    Expired,
    /// Too many wrong codes.
    Locked,
}

impl ChallengeStatus {
    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Consumed => "consumed",
            Self::Expired => "expired",
            Self::Locked => "locked",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        [Self::Issued, Self::Consumed, Self::Expired, Self::Locked]
            .into_iter()
            .find(|s| s.as_str() == input)
    }
}

impl fmt::Display for ChallengeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which login limit refused a request: the bucket that is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitScope {
    /// Too many codes issued for one e-mail address within the window: stops
    /// mail-bombing one inbox.
    Email,
    /// Too many codes requested from one client within the window: stops one client
    /// from spraying many addresses.
    ClientIp,
    /// Too many codes of one address still waiting to be used: bounds how many codes an
    /// attacker can guess at in parallel.
    LiveCodes,
    /// Too many wrong codes for one address within the window, over all its codes:
    /// bounds guessing however many codes are issued.
    FailedCodes,
}

/// What presenting a code to a challenge led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right code: the challenge is now consumed.
    Accepted,
    /// Wrong code; this many attempts remain.
    Rejected {
        /// Attempts left before the challenge locks.
        remaining: u32,
    },
    /// Wrong code and the attempt budget is spent: the challenge is now locked.
    Locked,
    /// The challenge had expired (it is now marked so).
    Expired,
    /// The challenge was already consumed, expired or locked; nothing changed.
    NotIssued(ChallengeStatus),
}

/// One e-mailed login code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChallenge {
    /// Stable id, returned to the client as `challenge_id`.
    pub id: ChallengeId,
    /// Who asked.
    pub email: Email,
    /// SHA-256 of the code salted with the id.
    pub code_hash: SecretHash,
    /// The client IP that asked, for per-IP rate limits (`unknown` if none).
    pub client_ip: String,
    /// Status.
    pub status: ChallengeStatus,
    /// Wrong codes presented so far.
    pub failed_attempts: u32,
    /// Wrong codes allowed before locking.
    pub max_attempts: u32,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When the code stops working.
    pub expires_at: Timestamp,
}

impl LoginChallenge {
    /// Checks `code` at `now`, moving the challenge to its next status. The comparison is
    /// constant-time; expiry is checked first so an expired code never succeeds.
    pub fn check(&mut self, code: &LoginCode, key: &CodeKey, now: Timestamp) -> CodeCheck {
        if self.status != ChallengeStatus::Issued {
            return CodeCheck::NotIssued(self.status);
        }
        if now >= self.expires_at {
            self.status = ChallengeStatus::Expired;
            return CodeCheck::Expired;
        }
        if code.hash_for(self.id, key) == self.code_hash {
            self.status = ChallengeStatus::Consumed;
            return CodeCheck::Accepted;
        }
        self.failed_attempts += 1;
        if self.failed_attempts >= self.max_attempts {
            self.status = ChallengeStatus::Locked;
            CodeCheck::Locked
        } else {
            CodeCheck::Rejected {
                remaining: self.max_attempts - self.failed_attempts,
            }
        }
    }

    /// Makes a consumed code usable again: the session it was spent on could not be
    /// created (the store failed after the code was checked), and nobody got in with it.
    /// Whether a challenge in any other status changed.
    pub fn give_back(&mut self) -> bool {
        if self.status != ChallengeStatus::Consumed {
            return false;
        }
        self.status = ChallengeStatus::Issued;
        true
    }
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Usable until it expires.
    Active,
    /// Logged out or revoked by a block.
    Revoked,
    /// Past its lifetime.
    Expired,
}

impl SessionStatus {
    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        [Self::Active, Self::Revoked, Self::Expired]
            .into_iter()
            .find(|s| s.as_str() == input)
    }
}

/// A login session. The bearer token is not stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Stable id (safe to show; `DELETE /user/sessions/{id}`).
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// SHA-256 of the bearer token.
    pub token_hash: SecretHash,
    /// Status as stored; see [`Session::is_usable_at`] for the effective state.
    pub status: SessionStatus,
    /// Creation instant.
    pub created_at: Timestamp,
    /// End of life.
    pub expires_at: Timestamp,
    /// Set when revoked.
    pub revoked_at: Option<Timestamp>,
}

impl Session {
    /// Whether a request presenting this session's token is authenticated at `now`.
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.status == SessionStatus::Active && now < self.expires_at
    }

    /// Whether the session had ended (expired, or was revoked) before `before`: what the
    /// retention sweeper deletes ([`SessionStore::purge_sessions`](crate::ports::SessionStore::purge_sessions)).
    pub fn ended_before(&self, before: Timestamp) -> bool {
        self.expires_at < before || self.revoked_at.is_some_and(|at| at < before)
    }

    /// Revokes an active session.
    pub fn revoke(&mut self, now: Timestamp) -> Result<(), InvalidTransition> {
        if self.status != SessionStatus::Active {
            return Err(InvalidTransition::new(
                "session",
                self.status.as_str(),
                "revoked",
                "user",
            ));
        }
        self.status = SessionStatus::Revoked;
        self.revoked_at = Some(now);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> CodeKey {
        CodeKey::derive(b"a test key of at least thirty-two bytes").unwrap()
    }

    #[test]
    fn codes_are_hashed_under_the_key() {
        let (id, code) = (
            ChallengeId::from_uuid(uuid::Uuid::nil()),
            LoginCode::parse("123456").unwrap(),
        );
        let other = CodeKey::derive(b"another key of at least thirty-two bytes").unwrap();
        assert_ne!(code.hash_for(id, &key()), code.hash_for(id, &other));
        assert_eq!(code.hash_for(id, &key()), code.hash_for(id, &key()));
        assert!(CodeKey::derive(b"short").is_err());
        assert_eq!(format!("{:?}", key()), "CodeKey(<redacted>)");
    }
    use chrono::{TimeDelta, TimeZone, Utc};
    use uuid::Uuid;

    fn challenge(code: &str, now: Timestamp) -> LoginChallenge {
        let id = ChallengeId::from_uuid(Uuid::from_u128(7));
        LoginChallenge {
            id,
            email: Email::parse("a@b.c").unwrap(),
            code_hash: LoginCode::parse(code).unwrap().hash_for(id, &key()),
            client_ip: "127.0.0.1".into(),
            status: ChallengeStatus::Issued,
            failed_attempts: 0,
            max_attempts: 3,
            issued_at: now,
            expires_at: now + TimeDelta::minutes(10),
        }
    }

    #[test]
    fn codes_and_tokens_parse_strictly() {
        assert_eq!(LoginCode::parse("123 456").unwrap().expose(), "123456");
        assert!(LoginCode::parse("12345").is_err());
        assert!(LoginCode::parse("12345678901").is_err());
        assert!(LoginCode::parse("12345a").is_err());
        let t = SessionToken::from_bytes([0xab; 32]);
        assert_eq!(SessionToken::parse(&t.expose()).unwrap(), t);
        assert!(SessionToken::parse("zz").is_err());
        assert!(SessionToken::parse(&"g".repeat(64)).is_err());
        assert!(!format!("{t:?}").contains("ab"));
    }

    #[test]
    fn wrong_codes_lock_and_expiry_wins() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let wrong = LoginCode::parse("000000").unwrap();
        let right = LoginCode::parse("123456").unwrap();
        let mut c = challenge("123456", now);
        assert_eq!(
            c.check(&wrong, &key(), now),
            CodeCheck::Rejected { remaining: 2 }
        );
        assert_eq!(
            c.check(&wrong, &key(), now),
            CodeCheck::Rejected { remaining: 1 }
        );
        assert_eq!(c.check(&wrong, &key(), now), CodeCheck::Locked);
        assert_eq!(
            c.check(&right, &key(), now),
            CodeCheck::NotIssued(ChallengeStatus::Locked)
        );

        let mut c = challenge("123456", now);
        assert_eq!(
            c.check(&right, &key(), now + TimeDelta::minutes(10)),
            CodeCheck::Expired
        );
        let mut c = challenge("123456", now);
        assert_eq!(c.check(&right, &key(), now), CodeCheck::Accepted);
        assert_eq!(
            c.check(&right, &key(), now),
            CodeCheck::NotIssued(ChallengeStatus::Consumed)
        );
        // Given back (its session was never written): usable once more.
        assert!(c.give_back());
        assert_eq!(c.check(&right, &key(), now), CodeCheck::Accepted);
        // Only a consumed code is given back.
        let mut c = challenge("123456", now);
        c.check(&wrong, &key(), now);
        c.check(&wrong, &key(), now);
        c.check(&wrong, &key(), now);
        assert_eq!(c.status, ChallengeStatus::Locked);
        assert!(!c.give_back());
        assert_eq!(c.status, ChallengeStatus::Locked);
    }
}
