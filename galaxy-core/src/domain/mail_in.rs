//! Orders by e-mail: the inbound messages (stored before they are acknowledged, then
//! processed through a leased queue), each player's per-game orders address, and how a
//! player wants the turn report mailed.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::lease::{ClaimKey, Lease, Leased, QueueState};
use super::{GameId, InboundMailId, Timestamp, UserId};

/// Where an inbound mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    /// Stored (acknowledged to the sender's server), waiting to be processed.
    Received,
    /// Claimed by a worker under a lease.
    Processing,
    /// Processed; its [`InboundOutcome`] says how.
    Done,
}

impl InboundStatus {
    /// Stable snake_case name (also the stored value).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Processing => "processing",
            Self::Done => "done",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        [Self::Received, Self::Processing, Self::Done]
            .into_iter()
            .find(|s| s.as_str() == input)
    }
}

impl fmt::Display for InboundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a processed inbound mail ended: what operators count and read in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundOutcome {
    /// The orders went to the engine and the player got the verdict by mail.
    Answered,
    /// Handled (the orders went to the engine, or were not taken), but the player's
    /// reply budget was spent, so no reply.
    AnsweredSilently,
    /// Not orders we take (wrong token, wrong sender...); the registered sender got the
    /// one refusal of the hour.
    Refused,
    /// Not taken and not answered (unknown sender, refusal already sent this hour,
    /// automated mail, unreadable message): logged and counted only.
    Dropped,
}

impl InboundOutcome {
    /// Every outcome.
    pub const ALL: [InboundOutcome; 4] = [
        Self::Answered,
        Self::AnsweredSilently,
        Self::Refused,
        Self::Dropped,
    ];

    /// Stable snake_case name (also the stored value and the metric label).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::AnsweredSilently => "answered_silently",
            Self::Refused => "refused",
            Self::Dropped => "dropped",
        }
    }

    /// Parses a stored name.
    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

/// One received message, stored whole before the sender is told it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    /// Stable id.
    pub id: InboundMailId,
    /// The same message delivered twice has the same key (its Message-ID and a hash of
    /// its content): the store keeps the first and processes it once.
    pub dedupe_key: String,
    /// The message as received (RFC 5322 bytes); empty once done (it holds the
    /// orders token and the player's words, and nothing reads it after processing).
    pub raw: Vec<u8>,
    /// The SMTP envelope sender (`MAIL FROM`), when the message came over SMTP or the
    /// MTA passed it on; empty for a null return path (`<>`, a bounce).
    pub envelope_from: Option<String>,
    /// The envelope recipients (`RCPT TO`), when known; the headers are read as well.
    /// Empty once done (an orders address is one of them).
    pub envelope_to: Vec<String>,
    /// Where it stands.
    pub status: InboundStatus,
    /// How it ended, once done.
    pub outcome: Option<InboundOutcome>,
    /// Why it ended so (the log line's reason; never shown to the sender).
    pub detail: Option<String>,
    /// Claims made so far.
    pub attempts: u32,
    /// The claim, while processing.
    pub lease: Option<Lease>,
    /// When it was stored.
    pub received_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl InboundMail {
    /// A freshly received message, waiting to be processed.
    pub fn new(
        id: InboundMailId,
        dedupe_key: String,
        raw: Vec<u8>,
        envelope_from: Option<String>,
        envelope_to: Vec<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            dedupe_key,
            raw,
            envelope_from,
            envelope_to,
            status: InboundStatus::Received,
            outcome: None,
            detail: None,
            attempts: 0,
            lease: None,
            received_at: now,
            updated_at: now,
        }
    }
}

impl Leased for InboundMail {
    type Id = InboundMailId;
    const ENTITY: &'static str = "inbound mail";

    fn id(&self) -> InboundMailId {
        self.id
    }

    fn queue_state(&self) -> QueueState {
        match self.status {
            InboundStatus::Received => QueueState::Waiting,
            InboundStatus::Processing => QueueState::Leased,
            InboundStatus::Done => QueueState::Done,
        }
    }

    fn status_name(&self) -> &'static str {
        self.status.as_str()
    }

    fn due_at(&self) -> Timestamp {
        self.received_at
    }

    fn claim_key(&self) -> ClaimKey {
        ClaimKey {
            first: self.received_at,
            created_at: self.received_at,
            id: self.id.as_uuid(),
        }
    }

    fn lease(&self) -> Option<Lease> {
        self.lease
    }

    fn lease_mut(&mut self) -> Option<&mut Lease> {
        self.lease.as_mut()
    }

    fn attempts(&self) -> u32 {
        self.attempts
    }

    fn take_claim(&mut self, lease: Lease, now: Timestamp) {
        self.status = InboundStatus::Processing;
        self.lease = Some(lease);
        self.attempts = self.attempts.saturating_add(1);
        self.updated_at = now;
    }

    fn end_lease(&mut self, at: Timestamp) {
        self.lease = None;
        self.updated_at = at;
    }
}

/// How a finished inbound mail is written back: its outcome and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEnd {
    /// How it ended.
    pub outcome: InboundOutcome,
    /// Why (for operators).
    pub detail: String,
}

/// The secret part of an orders address (`orders+<token>@domain`): 20 lower-case
/// letters and digits (100 bits), so it cannot be guessed; a player may rotate it.
///
/// A token is never stored: it is derived from a random [`TokenSeed`] under the server's
/// [`OrdersKey`], and the store keeps the seed and the token's [`TokenDigest`] (a
/// [`TokenRecord`]). The pages and turn mails derive the address again; a mail's token is
/// found by its digest; a leaked table gives neither (SPEC: secrets stored hashed).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrdersToken(String);

/// The alphabet of orders tokens (no look-alikes `0/o`, `1/l`): safe in every mail
/// client and case-insensitive, since some servers change the case of local parts. 32
/// characters, so a random byte maps onto it without bias.
const TOKEN_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Characters in a token.
pub const TOKEN_LENGTH: usize = 20;

impl OrdersToken {
    /// A token from random bytes (one character per byte).
    pub fn from_random(bytes: &[u8; TOKEN_LENGTH]) -> Self {
        let len = TOKEN_ALPHABET.len();
        Self(
            bytes
                .iter()
                .map(|b| char::from(TOKEN_ALPHABET[usize::from(*b) % len]))
                .collect(),
        )
    }

    /// Parses a token as written in an address (any case); `None` unless it has the
    /// shape of one.
    pub fn parse(input: &str) -> Option<Self> {
        let token = input.trim().to_ascii_lowercase();
        (token.len() == TOKEN_LENGTH && token.bytes().all(|b| TOKEN_ALPHABET.contains(&b)))
            .then_some(Self(token))
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps to find this token again: its SHA-256. A token carries 100
    /// bits drawn under the server's key, so the digest cannot be reversed by trying
    /// tokens, and it needs no key of its own.
    pub fn digest(&self) -> TokenDigest {
        let digest = Sha256::new()
            .chain_update(b"galaxy orders token\0")
            .chain_update(self.0.as_bytes())
            .finalize();
        TokenDigest(digest.into())
    }

    /// The orders address for `domain`.
    pub fn address(&self, domain: &str) -> String {
        format!("orders+{}@{domain}", self.0)
    }

    /// The token of an orders address in `domain` (`orders+<token>@<domain>`, any
    /// case, with or without `<>`); `None` for any other address.
    pub fn from_address(address: &str, domain: &str) -> Option<Self> {
        let (token, at) = Self::split_address(address)?;
        at.eq_ignore_ascii_case(domain).then_some(token)
    }

    /// The token of an orders address in whatever domain: what a stored mail's
    /// `Reply-To` carries, read where the mail domain is not at hand (the outbox's
    /// redaction, [`OutgoingMail::redacted`](super::mail::OutgoingMail::redacted)).
    pub fn from_any_address(address: &str) -> Option<Self> {
        Self::split_address(address).map(|(token, _)| token)
    }

    /// An orders address's token and domain.
    fn split_address(address: &str) -> Option<(Self, &str)> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, at) = address.rsplit_once('@')?;
        let (name, token) = local.split_once('+')?;
        if !name.eq_ignore_ascii_case("orders") {
            return None;
        }
        Some((Self::parse(token)?, at))
    }
}

impl fmt::Debug for OrdersToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrdersToken(<redacted>)")
    }
}

/// The stored form of an orders token ([`OrdersToken::digest`]): what a mail's token is
/// looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// A digest as read back from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes, as a store keeps them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for TokenDigest {
    /// The first eight bytes in hex: enough to tell digests apart in an error or a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The random value an address's token is derived from under the server's
/// [`OrdersKey`]. Stored beside the digest; worthless without the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenSeed([u8; 16]);

impl TokenSeed {
    /// Bytes in a seed.
    pub const LENGTH: usize = 16;

    /// A seed from random bytes (or as read back from a store).
    pub fn from_bytes(bytes: [u8; Self::LENGTH]) -> Self {
        Self(bytes)
    }

    /// The seed's bytes, as a store keeps them.
    pub fn as_bytes(&self) -> &[u8; Self::LENGTH] {
        &self.0
    }

    /// Whether this is the seed of zeros migration 0029 gave the addresses made before
    /// tokens were derived: no key derives their token, which still works until the
    /// address is next shown and re-issued.
    pub fn predates_derivation(&self) -> bool {
        self.0 == [0; Self::LENGTH]
    }
}

/// What a store keeps of an orders token: the seed it was derived from and its digest.
/// The token itself exists only where it is shown or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenRecord {
    /// Derives the token under the server's key.
    pub seed: TokenSeed,
    /// Finds the token's address when a mail names it; unique over all addresses.
    pub digest: TokenDigest,
}

/// The server secret orders tokens are derived under (HMAC-SHA256 of the seed), made
/// from the installation's login-code secret (`GALAXY_LOGIN_CODE_KEY`) under a label of
/// its own, so replicas that share that secret show the same addresses. Random per
/// process when none is configured (dev mode, tests). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct OrdersKey([u8; 32]);

impl OrdersKey {
    /// Fewest bytes of secret material a key is made from.
    pub const MIN_MATERIAL: usize = 32;

    /// The key made from secret material of at least [`OrdersKey::MIN_MATERIAL`]
    /// bytes: SHA-256 of it under this key's label, so the same material can key
    /// login codes as well without the two keys being equal.
    pub fn derive(material: &[u8]) -> Result<Self, super::auth::CredentialError> {
        if material.len() < Self::MIN_MATERIAL {
            return Err(super::auth::CredentialError::KeyTooShort {
                min: Self::MIN_MATERIAL,
            });
        }
        let digest = Sha256::new()
            .chain_update(b"galaxy orders token key\0")
            .chain_update(material)
            .finalize();
        Ok(Self(digest.into()))
    }

    /// A key of random bytes, for a process that keeps its addresses to itself (dev
    /// mode, tests).
    pub fn random(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The token `seed` stands for under this key.
    pub fn token(&self, seed: &TokenSeed) -> OrdersToken {
        use hmac::digest::KeyInit;
        use hmac::{Mac, SimpleHmac};
        // HMAC pads a key shorter than the hash's block (64 bytes) with zeros: the padded
        // block is the same key, taken by the infallible constructor.
        let mut block = [0u8; 64];
        block[..self.0.len()].copy_from_slice(&self.0);
        let mut mac = <SimpleHmac<Sha256> as KeyInit>::new(&block.into());
        mac.update(seed.as_bytes());
        let out: [u8; 32] = mac.finalize().into_bytes().into();
        let mut bytes = [0u8; TOKEN_LENGTH];
        bytes.copy_from_slice(&out[..TOKEN_LENGTH]);
        OrdersToken::from_random(&bytes)
    }

    /// A new token from `seed`, with the record a store keeps of it.
    pub fn issue(&self, seed: TokenSeed) -> (OrdersToken, TokenRecord) {
        let token = self.token(&seed);
        let digest = token.digest();
        (token, TokenRecord { seed, digest })
    }

    /// The token of `record` when it was issued under this key; `None` when it was not
    /// (the key changed since, or the record predates derived tokens), so the address
    /// it stands for can no longer be shown and a new one is issued.
    pub fn recover(&self, record: &TokenRecord) -> Option<OrdersToken> {
        let token = self.token(&record.seed);
        (token.digest() == record.digest).then_some(token)
    }
}

impl fmt::Debug for OrdersKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrdersKey(<redacted>)")
    }
}

/// How a player wants the turn report in the turn mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportDelivery {
    /// In the mail's body (the default).
    #[default]
    Body,
    /// As an attached text file (`report-turn-<n>.txt`), the body only saying so.
    Attachment,
}

impl ReportDelivery {
    /// Stable snake_case name (also the stored value).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Body => "body",
            Self::Attachment => "attachment",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "body" => Some(Self::Body),
            "attachment" => Some(Self::Attachment),
            _ => None,
        }
    }
}

/// A player's orders address in one game, and how they want reports mailed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersAddress {
    /// The player.
    pub user_id: UserId,
    /// The game.
    pub game_id: GameId,
    /// What is kept of the address's token (its digest unique over all games).
    pub token: TokenRecord,
    /// Body or attachment.
    pub report_delivery: ReportDelivery,
    /// When the token was made (created or last rotated).
    pub rotated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_are_derived_under_the_key_and_recovered_only_under_it() {
        let key = OrdersKey::derive(&[1; 32]).unwrap();
        let other = OrdersKey::derive(&[2; 32]).unwrap();
        let seed = TokenSeed::from_bytes([9; TokenSeed::LENGTH]);
        let (token, record) = key.issue(seed);
        assert_eq!(OrdersToken::parse(token.as_str()), Some(token.clone()));
        assert_eq!(
            key.token(&seed),
            token,
            "the same seed gives the same token"
        );
        assert_eq!(key.recover(&record), Some(token.clone()));
        assert_eq!(other.recover(&record), None, "another key cannot show it");
        assert_ne!(other.token(&seed), token);
        let (next, _) = key.issue(TokenSeed::from_bytes([8; TokenSeed::LENGTH]));
        assert_ne!(next, token, "another seed, another token");
        // The record holds neither the token nor anything a token can be read from.
        let shown = format!("{record:?} {token:?} {key:?}");
        assert!(!shown.contains(token.as_str()), "{shown}");
        assert_eq!(
            OrdersKey::derive(&[1; 31]),
            Err(crate::domain::auth::CredentialError::KeyTooShort { min: 32 })
        );
    }

    #[test]
    fn the_padded_key_is_the_hmac_of_the_key_itself() {
        use hmac::{Mac, SimpleHmac};
        let key = OrdersKey::derive(b"some secret material of 32 bytes").unwrap();
        let seed = TokenSeed::from_bytes([3; TokenSeed::LENGTH]);
        let mut mac = SimpleHmac::<Sha256>::new_from_slice(&key.0).unwrap();
        mac.update(seed.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut bytes = [0u8; TOKEN_LENGTH];
        bytes.copy_from_slice(&out[..TOKEN_LENGTH]);
        assert_eq!(key.token(&seed), OrdersToken::from_random(&bytes));
    }

    #[test]
    fn tokens_are_read_back_from_their_address_only() {
        let token = OrdersToken::from_random(&[7; TOKEN_LENGTH]);
        let address = token.address("galaxy.example");
        assert_eq!(
            OrdersToken::from_address(&address, "galaxy.example"),
            Some(token.clone())
        );
        let shouted = address.to_uppercase();
        assert_eq!(
            OrdersToken::from_address(&shouted, "GALAXY.example"),
            Some(token.clone())
        );
        assert_eq!(
            OrdersToken::from_address(&format!("<{address}>"), "galaxy.example"),
            Some(token.clone())
        );
        assert_eq!(OrdersToken::from_address(&address, "other.example"), None);
        let other = format!("admin+{}@galaxy.example", token.as_str());
        assert_eq!(OrdersToken::from_address(&other, "galaxy.example"), None);
        assert_eq!(
            OrdersToken::from_address("orders+short@galaxy.example", "galaxy.example"),
            None
        );
        assert_eq!(OrdersToken::parse("0000000000000000000o"), None);
    }

    #[test]
    fn names_round_trip() {
        for outcome in InboundOutcome::ALL {
            assert_eq!(InboundOutcome::parse(outcome.as_str()), Some(outcome));
        }
        for status in [
            InboundStatus::Received,
            InboundStatus::Processing,
            InboundStatus::Done,
        ] {
            assert_eq!(InboundStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            ReportDelivery::parse("attachment"),
            Some(ReportDelivery::Attachment)
        );
        assert_eq!(ReportDelivery::parse("inline"), None);
    }
}
