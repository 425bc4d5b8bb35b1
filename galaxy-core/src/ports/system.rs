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

/// A one-way fingerprint of an installation secret (its first eight bytes of
/// HMAC-SHA256 over a fixed label): tells two values of a secret apart while saying
/// nothing of either, so the replicas of one database can compare what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyFingerprint(pub [u8; 8]);

impl KeyFingerprint {
    /// The fingerprint of the secret `name` (its variable) holding `secret`: the first
    /// eight bytes of HMAC-SHA256 over a label and the name, keyed by the SHA-256 of the
    /// secret.
    pub fn of(name: &str, secret: &[u8]) -> Self {
        use hmac::digest::KeyInit;
        use hmac::{Mac, SimpleHmac};
        use sha2::Digest;
        // A key of 32 bytes zero-padded to the hash's block is that key to HMAC, and the
        // padded block is taken by the infallible constructor.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&sha2::Sha256::digest(secret));
        let mut mac = <SimpleHmac<sha2::Sha256> as KeyInit>::new(&block.into());
        mac.update(b"galaxy installation key fingerprint\0");
        mac.update(name.as_bytes());
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&mac.finalize().into_bytes()[..8]);
        Self(fingerprint)
    }
}

impl std::fmt::Display for KeyFingerprint {
    /// Hex, as logged and shown in errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// What the registry holds for one secret: the fingerprint the first server recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedKey {
    /// The fingerprint every server of the installation must hold.
    pub fingerprint: KeyFingerprint,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// Where the servers of one installation (replicas on one database) compare the secrets
/// each holds (the login-code key, the engine secret) before serving. Two replicas left
/// to generate their own would each refuse the other's login codes, re-issue each
/// other's orders addresses and hand engines tokens the other replicas' engines refuse;
/// comparing fingerprints at start-up turns that into a refusal to start.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait KeyRegistry: Send + Sync {
    /// Records `fingerprint` for the secret `name` unless one is recorded, and returns
    /// what is recorded (this one, when it came first). Concurrent callers with
    /// different fingerprints all get the same one back.
    async fn record_key(
        &self,
        name: &str,
        fingerprint: KeyFingerprint,
        at: Timestamp,
    ) -> Result<RecordedKey, super::StoreError>;
    /// Forgets every recorded fingerprint (after a deliberate change of the secrets, with
    /// every server stopped): the next server to start records its own. Returns how many
    /// were forgotten.
    async fn forget_keys(&self) -> Result<u64, super::StoreError>;
}
