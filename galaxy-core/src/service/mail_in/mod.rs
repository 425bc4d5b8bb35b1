//! Orders by e-mail (SPEC: "orders also arrive by e-mail"): a player mails orders to
//! their per-game orders address and gets the engine's verdict back by mail.
//!
//! - [`MailInService::receive`]: the one intake behind both ways in (the SMTP listener
//!   and `galaxy-cli mail-in` through the internal route). It bounds and reads the
//!   message, and stores it whole before answering: acknowledged means stored, and the
//!   same message delivered twice (same Message-ID and content) is stored once.
//! - [`MailInWorker`]: claims stored messages through the leased queue and processes
//!   each: automatic mail (auto-replies, bounces, lists) is dropped; a message counts
//!   only when it is addressed to an orders address and its `From` is that player's
//!   e-mail; its orders go to the engine ([`OrdersDesk`]) and the verdict is mailed back
//!   (threaded, bounded per player); anything else gets at most one refusal an hour,
//!   and only when the sender is a registered user, so a forged `From` never makes the
//!   server write to a third party. A crash mid-way is resumed once the lease lapses.
//! - The players' orders addresses (`orders+<token>@<domain>`): made on first use,
//!   rotatable, with the per-game choice of the report in the body or attached.

mod clean;
mod parse;
mod worker;

use std::sync::Arc;

use chrono::TimeDelta;
use sha2::{Digest, Sha256};

pub use parse::{ParseError, ParsedMessage, parse_message};
pub use worker::MailInWorker;

use super::{Actor, ErrorKind, ServiceError, store_error_kind};
use crate::domain::limit::RateLimit;
use crate::domain::mail_in::{
    InboundMail, OrdersAddress, OrdersKey, OrdersToken, ReportDelivery, TokenDigest, TokenSeed,
};
use crate::domain::{GameId, InboundMailId, Timestamp, UserId};
use crate::ports::{
    Clock, InboundInsert, InboundMailStore, MailStore, OrdersDesk, OrdersDeskError,
    SecretGenerator, StoreError, UserStore,
};
use crate::service::templates::MailTemplates;

/// How orders by e-mail behaves; every field is a documented setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailInConfig {
    /// The domain of the orders addresses (`GALAXY_MAIL_DOMAIN`).
    pub domain: String,
    /// The largest message taken, in bytes (`GALAXY_INBOUND_MAX_BYTES`, 256 KiB).
    pub max_message_bytes: usize,
    /// Verdict replies per player (`GALAXY_INBOUND_REPLIES_PER_HOUR`, 20 an hour).
    pub replies: RateLimit,
    /// Refusals per sender address: one an hour.
    pub refusals: RateLimit,
    /// The key orders tokens are derived under: the same on every replica (the server
    /// makes it from `GALAXY_LOGIN_CODE_KEY`, or the data directory's key file, so its
    /// addresses survive restarts); `None` draws one per service (tests, embedders that
    /// keep no addresses), so the addresses change with every restart.
    pub key: Option<OrdersKey>,
    /// Messages handled per pass at most (each claimed alone).
    pub batch_size: u32,
    /// How long a claim holds (a crash mid-message is resumed after it). Each mail is
    /// claimed alone just before it is sent, so this must exceed the longest engine call
    /// (`engine_call_timeout`, two minutes by default) plus the wait for the race's
    /// orders lease (ten seconds).
    pub lease: TimeDelta,
    /// Claims of one message before an unreachable engine is answered as such.
    pub max_attempts: u32,
}

impl MailInConfig {
    /// The defaults for `domain`.
    pub fn new(domain: impl Into<String>) -> Self {
        Self {
            domain: domain.into().to_ascii_lowercase(),
            max_message_bytes: 256 * 1024,
            replies: RateLimit {
                max: 20,
                window: TimeDelta::hours(1),
            },
            refusals: RateLimit {
                max: 1,
                window: TimeDelta::hours(1),
            },
            key: None,
            batch_size: 8,
            lease: TimeDelta::minutes(5),
            max_attempts: 5,
        }
    }
}

/// The ports orders by e-mail uses.
#[derive(Clone)]
pub struct MailInPorts {
    /// Inbound mail, orders addresses, send budgets.
    pub store: Arc<dyn InboundMailStore>,
    /// Senders and players.
    pub users: Arc<dyn UserStore>,
    /// The outbox the replies go to.
    pub mail: Arc<dyn MailStore>,
    /// Where the orders go, and who plays in which game.
    pub desk: Arc<dyn OrdersDesk>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Ids, lease tokens and the random orders tokens.
    pub secrets: Arc<dyn SecretGenerator>,
}

/// Why a call of orders by e-mail failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailInError {
    /// The message can never be taken (empty, too large, not a message).
    #[error(transparent)]
    Unreadable(#[from] ParseError),
    /// The caller does not play in the game (or it does not exist).
    #[error("game {0} not found among your games")]
    NotAPlayer(GameId),
    /// An unknown report delivery.
    #[error("unknown report delivery {0:?}; expected body or attachment")]
    InvalidDelivery(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError for MailInError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Unreadable(ParseError::TooLarge { .. }) => ErrorKind::Validation,
            Self::Unreadable(_) | Self::InvalidDelivery(_) => ErrorKind::InvalidRequest,
            Self::NotAPlayer(_) => ErrorKind::NotFound,
            Self::Store(e) => store_error_kind(e),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unreadable(ParseError::TooLarge { .. }) => "message_too_large",
            Self::Unreadable(_) => "message_unreadable",
            other => other.kind().code(),
        }
    }
}

/// How many orders addresses of one message are looked up (a copy for each a player
/// holds): a player's several games at once, not a list of guesses.
pub const MAX_ORDERS_RECIPIENTS: usize = 8;

/// What the intake did with a message. A message to several orders addresses is stored
/// once per address (each is processed for its own game); the receipt names the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The stored message (the first copy for a duplicate).
    pub id: InboundMailId,
    /// Whether this delivery was a duplicate of one already stored (of every copy, for
    /// a message to several orders addresses; `id` is then the first copy this delivery
    /// stored).
    pub duplicate: bool,
}

/// The SMTP envelope of a message, when the way in knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// `MAIL FROM` (empty for `<>`; `<>` and `<a@b>` as an MTA may pass them on are read as
    /// the empty path and `a@b`); `None` when unknown (a pipe without `-f`).
    pub mail_from: Option<String>,
    /// `RCPT TO` addresses.
    pub rcpt_to: Vec<String>,
}

/// A player's orders address as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersAddressView {
    /// The game.
    pub game_id: GameId,
    /// `orders+<token>@<domain>`.
    pub address: String,
    /// Body or attachment.
    pub report_delivery: ReportDelivery,
}

/// Orders by e-mail: the intake and the players' addresses.
#[derive(Clone)]
pub struct MailInService {
    /// The key the orders tokens are derived under.
    pub(super) key: OrdersKey,
    /// The ports.
    ports: MailInPorts,
    /// The settings.
    config: Arc<MailInConfig>,
    /// The replies' templates (verdicts, refusals), with the words for what a reply
    /// leaves `null`.
    templates: Arc<MailTemplates>,
}

impl MailInService {
    /// A service over `ports`, replying with the built-in templates.
    pub fn new(ports: MailInPorts, config: MailInConfig) -> Self {
        let key = match &config.key {
            Some(key) => key.clone(),
            None => OrdersKey::random(random_bytes(ports.secrets.as_ref())),
        };
        Self {
            key,
            ports,
            config: Arc::new(config),
            templates: Arc::new(MailTemplates::builtin()),
        }
    }

    /// Replies from `templates` instead of the built-in set: the set the notification
    /// mails use, so an application that rewords its mails or adds a locale has its
    /// orders replies follow.
    pub fn with_templates(mut self, templates: Arc<MailTemplates>) -> Self {
        self.templates = templates;
        self
    }

    /// The settings.
    pub fn config(&self) -> &MailInConfig {
        &self.config
    }

    /// Stores one received message for processing. Returns once it is durable (so the
    /// caller may acknowledge it); a message that can never be taken is refused
    /// without being stored.
    pub async fn receive(&self, raw: &[u8], envelope: &Envelope) -> Result<Receipt, MailInError> {
        let max = self.config.max_message_bytes;
        // The return path as an MTA may pass it on: `<>` (a bounce) or `<a@b>` are the
        // empty path and `a@b`, as the SMTP listener gives them.
        let mail_from = envelope.mail_from.as_deref().map(|from| {
            let from = from.trim();
            from.strip_prefix('<')
                .and_then(|f| f.strip_suffix('>'))
                .unwrap_or(from)
                .trim()
                .to_owned()
        });
        let null_path = mail_from.as_deref() == Some("");
        let parsed = parse_message(raw, max, null_path)?;
        let key = dedupe_key(&parsed, raw);
        let rcpt_to: Vec<String> = envelope.rcpt_to.iter().map(|r| r.to_lowercase()).collect();
        // One copy per known orders address the message is for, each keyed by its
        // address: a player who sends one mail to two of their games' addresses reaches
        // both, and an MTA that pipes the message once per recipient is not taken for
        // repeating itself. The envelope's recipients say which when it names a known
        // one, else the headers' (a pipe without the recipient). A message for no known
        // address is one row, refused when processed.
        let mut known = self.orders_recipients(&rcpt_to).await?;
        if known.is_empty() {
            known = self.orders_recipients(&parsed.recipients).await?;
        }
        let keyed = |(digest, address): &(String, String)| {
            (format!("{key}:{digest}"), vec![address.clone()])
        };
        let (first, rest) = match known.split_first() {
            None => ((key.clone(), rcpt_to), Vec::new()),
            Some((first, rest)) => (keyed(first), rest.iter().map(keyed).collect()),
        };
        // Every copy arrived when the message did: lateness is judged on it.
        let now = self.ports.clock.now();
        let mut receipt = self.store_copy(raw, &mail_from, first, now).await?;
        for copy in rest {
            let this = self.store_copy(raw, &mail_from, copy, now).await?;
            // The first copy this delivery stored, if any; a duplicate only if all were.
            if receipt.duplicate && !this.duplicate {
                receipt = this;
            }
        }
        Ok(receipt)
    }

    /// Stores one copy of a received message under its dedupe key, for its recipients.
    async fn store_copy(
        &self,
        raw: &[u8],
        mail_from: &Option<String>,
        (key, rcpt_to): (String, Vec<String>),
        now: Timestamp,
    ) -> Result<Receipt, MailInError> {
        let id = InboundMailId::from_uuid(self.ports.secrets.uuid());
        let mail = InboundMail::new(id, key, raw.to_vec(), mail_from.clone(), rcpt_to, now);
        Ok(match self.ports.store.insert_inbound(&mail).await? {
            InboundInsert::Stored => {
                tracing::info!(inbound_id = %id, size = raw.len(), "inbound mail stored");
                Receipt {
                    id,
                    duplicate: false,
                }
            }
            InboundInsert::Duplicate(first) => {
                tracing::info!(inbound_id = %first, "inbound mail delivered again; kept once");
                Receipt {
                    id: first,
                    duplicate: true,
                }
            }
        })
    }

    /// The distinct orders addresses among `addresses` that some player holds, each
    /// with its token's digest (what a copy's dedupe key names: never the token
    /// itself), in their order. At most [`MAX_ORDERS_RECIPIENTS`] addresses of a
    /// token's shape are looked up, so a message naming thousands of made-up ones is
    /// neither thousands of lookups nor of rows. Whether the address still counts
    /// (the key that made it) is the worker's to decide.
    async fn orders_recipients(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut seen: Vec<TokenDigest> = Vec::new();
        let mut known: Vec<(String, String)> = Vec::new();
        for address in addresses {
            let Some(token) = OrdersToken::from_address(address, &self.config.domain) else {
                continue;
            };
            let digest = token.digest();
            if seen.contains(&digest) {
                continue;
            }
            if seen.len() == MAX_ORDERS_RECIPIENTS {
                tracing::info!(
                    looked_up = MAX_ORDERS_RECIPIENTS,
                    "a message names more orders addresses than are looked up; the rest are ignored"
                );
                break;
            }
            seen.push(digest);
            if self
                .ports
                .store
                .find_orders_address(&digest)
                .await?
                .is_some()
            {
                let hex = digest
                    .as_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let address = address.trim().trim_matches(['<', '>']).to_lowercase();
                known.push((hex, address));
            }
        }
        Ok(known)
    }

    /// Whether an SMTP recipient is one this server takes mail for: any local part in
    /// the orders domain. Deliberately blind to the token, so `RCPT` answers the same
    /// for valid and invalid tokens (no address harvesting).
    pub fn accepts_recipient(&self, address: &str) -> bool {
        let address = address.trim().trim_matches(['<', '>']);
        address.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.eq_ignore_ascii_case(&self.config.domain)
        })
    }

    /// The caller's orders address in a game they play in, made on first use.
    pub async fn orders_address(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<OrdersAddressView, MailInError> {
        self.check_player(actor.user_id, game_id).await?;
        Ok(self.ensure(actor.user_id, game_id).await?)
    }

    /// Gives the caller a fresh orders address in the game; the old one stops working.
    pub async fn rotate(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<OrdersAddressView, MailInError> {
        self.check_player(actor.user_id, game_id).await?;
        self.ensure(actor.user_id, game_id).await?;
        for _ in 0..3 {
            let (_, record) = self.key.issue(self.new_seed());
            let now = self.ports.clock.now();
            match self
                .ports
                .store
                .rotate_orders_address(actor.user_id, game_id, &record, None, now)
                .await
            {
                Ok(address) => return Ok(self.shown(address).await?),
                Err(StoreError::Duplicate { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::internal("no free orders token after 3 draws").into())
    }

    /// Sets whether the caller's reports in the game come in the body or attached.
    pub async fn set_report_delivery(
        &self,
        actor: Actor,
        game_id: GameId,
        delivery: &str,
    ) -> Result<OrdersAddressView, MailInError> {
        let delivery = ReportDelivery::parse(delivery)
            .ok_or_else(|| MailInError::InvalidDelivery(delivery.chars().take(32).collect()))?;
        self.check_player(actor.user_id, game_id).await?;
        self.ensure(actor.user_id, game_id).await?;
        let address = self
            .ports
            .store
            .set_report_delivery(actor.user_id, game_id, delivery)
            .await?;
        Ok(self.shown(address).await?)
    }

    /// The player's address in the game, made now if they have none (concurrent callers
    /// get the same one). For the turn mails and "my games"; checks no membership.
    pub async fn ensure(
        &self,
        user_id: UserId,
        game_id: GameId,
    ) -> Result<OrdersAddressView, StoreError> {
        if let Some(address) = self.ports.store.orders_address(user_id, game_id).await? {
            return self.shown(address).await;
        }
        for _ in 0..3 {
            let (_, token) = self.key.issue(self.new_seed());
            let address = OrdersAddress {
                user_id,
                game_id,
                token,
                report_delivery: ReportDelivery::Body,
                rotated_at: self.ports.clock.now(),
            };
            match self.ports.store.ensure_orders_address(&address).await {
                Ok(address) => return self.shown(address).await,
                Err(StoreError::Duplicate { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::internal("no free orders token after 3 draws"))
    }

    /// The address as the player sees it: its token derived again under the server's
    /// key. A token issued under another key (the key changed since, or the address
    /// predates derived tokens) cannot be derived, so the address gets a new token in
    /// place of the old (unless another caller gave it one first), and the player is
    /// shown that.
    async fn shown(&self, mut address: OrdersAddress) -> Result<OrdersAddressView, StoreError> {
        for _ in 0..3 {
            if let Some(token) = self.key.recover(&address.token) {
                return Ok(OrdersAddressView {
                    game_id: address.game_id,
                    address: token.address(&self.config.domain),
                    report_delivery: address.report_delivery,
                });
            }
            if address.token.seed.predates_derivation() {
                tracing::info!(
                    user_id = %address.user_id,
                    game_id = %address.game_id,
                    "orders address made before derived tokens; a new one replaces it"
                );
            } else {
                tracing::warn!(
                    user_id = %address.user_id,
                    game_id = %address.game_id,
                    "orders address issued under another key; a new one replaces it (do all \
                     replicas share GALAXY_LOGIN_CODE_KEY?)"
                );
            }
            let (_, token) = self.key.issue(self.new_seed());
            let now = self.ports.clock.now();
            let replacing = address.token.digest;
            address = match self
                .ports
                .store
                .rotate_orders_address(
                    address.user_id,
                    address.game_id,
                    &token,
                    Some(replacing),
                    now,
                )
                .await
            {
                Ok(current) => current,
                Err(StoreError::Duplicate { .. }) => continue,
                Err(error) => return Err(error),
            };
        }
        Err(StoreError::internal(
            "the orders address keeps changing under another key",
        ))
    }

    /// A fresh random seed (from the secret generator's cryptographic source).
    fn new_seed(&self) -> TokenSeed {
        TokenSeed::from_bytes(random_bytes(self.ports.secrets.as_ref()))
    }

    /// `NotAPlayer` unless the user plays a race of the game now (a race taken over
    /// counts, one handed over does not: [`OrdersDesk::plays_in`]).
    async fn check_player(&self, user_id: UserId, game_id: GameId) -> Result<(), MailInError> {
        match self.ports.desk.plays_in(user_id, game_id).await {
            Ok(true) => Ok(()),
            Ok(false) | Err(OrdersDeskError::Refused { .. }) => {
                Err(MailInError::NotAPlayer(game_id))
            }
            Err(OrdersDeskError::Unavailable(why)) => {
                Err(MailInError::Store(StoreError::unavailable(why)))
            }
        }
    }
}

/// `N` random bytes from the secret generator's cryptographic source (a session
/// token's hex, read back), `N` at most 32.
fn random_bytes<const N: usize>(secrets: &dyn SecretGenerator) -> [u8; N] {
    let hex = secrets.session_token().expose();
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).unwrap_or("00");
        *byte = u8::from_str_radix(pair, 16).unwrap_or_default();
    }
    bytes
}

/// The dedupe key: the Message-ID with a hash of the sender and the orders text (what
/// processing reads), so a message relayed twice with other trace headers is one, and
/// one without a Message-ID is keyed by a hash of all its bytes. Each copy for an
/// orders address adds that address's token digest (`receive`).
fn dedupe_key(parsed: &ParsedMessage, raw: &[u8]) -> String {
    let digest = match &parsed.message_id {
        Some(id) => Sha256::new()
            .chain_update(id.as_bytes())
            .chain_update([0])
            .chain_update(parsed.from.as_ref().map_or("", |f| f.as_str()).as_bytes())
            .chain_update([0])
            .chain_update(parsed.orders.as_bytes())
            .finalize(),
        None => Sha256::digest(raw),
    };
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    match &parsed.message_id {
        Some(_) => format!("mid:{hex}"),
        None => format!("raw:{hex}"),
    }
}
