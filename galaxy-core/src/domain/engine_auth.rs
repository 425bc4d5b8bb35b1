//! The credential between the platform and a game's engine (SPEC section 9): every engine
//! call carries `Authorization: Bearer <token>`, and the engine gets the same token at
//! launch as `GALAXY_ENGINE_TOKEN`.
//!
//! A game's token is derived, never stored: HMAC-SHA256 of the game id under a key of the
//! installation ([`EngineTokenKey`]). So a restarted server, another replica, or the
//! reconciler adopting a container it did not create, all compute the token the engine
//! was started with, and no database holds a usable engine credential.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::GameId;

/// What the HMAC covers besides the game id: names the purpose and the version of the
/// derivation, so the key could serve another derivation without a shared output.
const DERIVATION_LABEL: &[u8] = b"galaxy engine token v1\0";

/// A key shorter than this many bytes is refused: the token is only as strong as it.
pub const MIN_KEY_BYTES: usize = 32;

/// A key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineKeyError {
    /// Too few bytes to be a secret worth deriving from.
    #[error("an engine token key needs at least {MIN_KEY_BYTES} bytes, got {0}")]
    TooShort(usize),
}

/// The installation's secret from which every game's [`EngineToken`] derives. Every
/// server replica of one installation must hold the same key, or engines started by one
/// refuse the others.
#[derive(Clone)]
pub struct EngineTokenKey {
    /// The secret, kept for comparisons.
    bytes: Vec<u8>,
    /// The HMAC keyed once with it; each token starts from a clone.
    mac: Hmac<Sha256>,
}

impl EngineTokenKey {
    /// Wraps secret bytes (configuration, or random bytes a dev server generated and
    /// kept); at least [`MIN_KEY_BYTES`].
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, EngineKeyError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(EngineKeyError::TooShort(bytes.len()));
        }
        Ok(Self::keyed(bytes))
    }

    /// Wraps 32 secret bytes (e.g. fresh random ones), which is always long enough.
    pub fn from_array(bytes: [u8; MIN_KEY_BYTES]) -> Self {
        Self::keyed(bytes.to_vec())
    }

    /// Keys the HMAC as RFC 2104 says (a key longer than SHA-256's 64-byte block is hashed
    /// first, a shorter one padded with zeros), through the infallible block-sized
    /// constructor rather than the slice one, whose error HMAC never returns.
    fn keyed(bytes: Vec<u8>) -> Self {
        let mut block = hmac::digest::Key::<Hmac<Sha256>>::default();
        if bytes.len() > block.len() {
            let digest = Sha256::digest(&bytes);
            block[..digest.len()].copy_from_slice(&digest);
        } else {
            block[..bytes.len()].copy_from_slice(&bytes);
        }
        let mac = <Hmac<Sha256> as KeyInit>::new(&block);
        Self { bytes, mac }
    }

    /// The token of `game`'s engine: 64 lower-case hex characters (256 bits), the same for
    /// the same key and game, unrelated across games.
    pub fn token_for(&self, game: GameId) -> EngineToken {
        let mut mac = self.mac.clone();
        mac.update(DERIVATION_LABEL);
        mac.update(game.to_string().as_bytes());
        let digest = mac.finalize().into_bytes();
        EngineToken(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl PartialEq for EngineTokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for EngineTokenKey {}

impl fmt::Debug for EngineTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EngineTokenKey(<redacted>)")
    }
}

/// One game's engine credential. Never printed (`Debug` redacts it); compared in constant
/// time.
#[derive(Clone)]
pub struct EngineToken(String);

impl EngineToken {
    /// A token as an engine or a test received it (e.g. read back from the environment).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The clear token, only for the `Authorization` header and `GALAXY_ENGINE_TOKEN`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for EngineToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for EngineToken {}

impl fmt::Debug for EngineToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EngineToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use uuid::Uuid;

    use super::*;

    fn game(n: u128) -> GameId {
        GameId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn tokens_are_stable_per_key_and_game_and_differ_otherwise() {
        let key = EngineTokenKey::from_bytes([7u8; 32]).unwrap();
        let again = EngineTokenKey::from_bytes([7u8; 32]).unwrap();
        let other = EngineTokenKey::from_bytes([8u8; 32]).unwrap();
        let token = key.token_for(game(1));
        assert_eq!(token, again.token_for(game(1)), "a restarted server agrees");
        assert_ne!(token, key.token_for(game(2)), "games do not share tokens");
        assert_ne!(
            token,
            other.token_for(game(1)),
            "installations do not share tokens"
        );
        assert_eq!(token.expose().len(), 64);
        assert!(token.expose().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_derivation_is_hmac_sha256_of_the_labelled_game_id() {
        // Pinned, so a change of the derivation (which would lock every running engine
        // out after an upgrade) cannot pass unnoticed.
        let key = EngineTokenKey::from_bytes(*b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            key.token_for(game(0)).expose(),
            "c6f0a72d6be0bab2068b0f55c2030e22b09e4e7a2b195e4e1a265df2c67e56da"
        );
        // A key longer than the hash's block is hashed first, as RFC 2104 says.
        let long = EngineTokenKey::from_bytes(vec![b'k'; 100]).unwrap();
        assert_eq!(
            long.token_for(game(0)).expose(),
            "45993d856dcbea6b9abecfa1617aa30b1f09c71486577e85362ff7cf847964ae"
        );
        assert_eq!(
            EngineTokenKey::from_array(*b"0123456789abcdef0123456789abcdef"),
            key
        );
    }

    #[test]
    fn short_keys_are_refused_and_secrets_never_print() {
        assert_eq!(
            EngineTokenKey::from_bytes(vec![1u8; 31]),
            Err(EngineKeyError::TooShort(31))
        );
        let key = EngineTokenKey::from_bytes([9u8; 32]).unwrap();
        let token = key.token_for(game(3));
        let shown = format!("{key:?} {token:?}");
        assert!(!shown.contains(token.expose()), "{shown}");
        assert_eq!(shown, "EngineTokenKey(<redacted>) EngineToken(<redacted>)");
    }
}
