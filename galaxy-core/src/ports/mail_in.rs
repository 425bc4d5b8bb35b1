//! The port for orders by e-mail: the durable inbound queue, the players' orders
//! addresses and the send budgets that keep the answers from looping.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::lease::{ClaimRequest, Finish};
use crate::domain::limit::RateLimit;
use crate::domain::mail_in::{
    InboundEnd, InboundMail, InboundOutcome, OrdersAddress, ReportDelivery, TokenDigest,
    TokenRecord,
};
use crate::domain::{GameId, InboundMailId, Timestamp, UserId};

/// Whether a received message was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundInsert {
    /// Stored; it will be processed.
    Stored,
    /// A message with the same dedupe key was already stored (its id): nothing stored,
    /// nothing more will be processed.
    Duplicate(InboundMailId),
}

/// One inbound mail to finish ([`InboundMailStore::finish_inbound`]).
pub type InboundFinish = Finish<InboundMailId, InboundEnd>;

/// Inbound mail, orders addresses and send budgets.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait InboundMailStore: Send + Sync {
    /// Stores a received message unless one with the same dedupe key exists. Once this
    /// returns, the message survives a crash: it is what "acknowledged" means.
    async fn insert_inbound(&self, mail: &InboundMail) -> Result<InboundInsert, StoreError>;
    /// Reads one inbound mail.
    async fn get_inbound(&self, id: InboundMailId) -> Result<InboundMail, StoreError>;
    /// Claims up to `limit` inbound mails, oldest first: received ones, and processing
    /// ones whose lease lapsed (their worker died). Concurrent claimers never receive
    /// the same mail.
    async fn claim_inbound(&self, claim: &ClaimRequest) -> Result<Vec<InboundMail>, StoreError>;
    /// Marks a claimed mail done with its outcome; `Conflict` when `token` no longer
    /// holds its lease. In the same write the mail lets go of its message (`raw`
    /// emptied) and its envelope recipients: both hold the player's orders token, and
    /// what stays until the retention sweep (the dedupe key, the sender, the outcome and
    /// its detail) is what a second delivery and the operators need.
    async fn finish_inbound(&self, finish: &InboundFinish) -> Result<InboundMail, StoreError>;
    /// How many inbound mails ended with each outcome, and how many wait (`None`): a full
    /// count of what the store keeps, for tests and tools (see
    /// [`count_waiting_inbound`](Self::count_waiting_inbound)).
    async fn count_inbound(&self) -> Result<Vec<(Option<InboundOutcome>, u64)>, StoreError>;
    /// How many inbound mails are stored and not yet done (received, or being
    /// processed). The metrics loop reads it on every replica every few seconds, so a
    /// store should answer it without reading the mail it keeps after processing; the
    /// default reads [`count_inbound`](Self::count_inbound).
    async fn count_waiting_inbound(&self) -> Result<u64, StoreError> {
        let counts = self.count_inbound().await?;
        Ok(counts
            .iter()
            .find(|(outcome, _)| outcome.is_none())
            .map_or(0, |(_, n)| *n))
    }
    /// Whether an inbound mail received after `after` and at or before `through` waits
    /// for its first try or is being processed at `now` (its lease runs past it). A mail
    /// tried already whose lease lapsed (waiting to be tried again, say for an engine
    /// that is down, or left by a worker that died) does not count. A scheduled turn
    /// waits a bounded while for such mail received between the game's previous turn and
    /// its deadline, so that orders mailed just in time are not refused as too late for
    /// being processed after the turn began. Read by every due turn: a store answers it
    /// from what it keeps of the waiting mail alone.
    async fn inbound_pending(
        &self,
        after: Timestamp,
        through: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Deletes the inbound mails done (whatever their outcome) and last changed before
    /// `before`, and the send records taken before it; returns how many mails went. The
    /// retention sweeper's: a stored message is a player's mail, kept no longer than its
    /// questions are asked, and neither table may grow forever. Mail not yet done stays.
    async fn purge_inbound(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// The player's orders address in a game, if one was made.
    async fn orders_address(
        &self,
        user_id: UserId,
        game_id: GameId,
    ) -> Result<Option<OrdersAddress>, StoreError>;
    /// Stores `address` unless the player already has one in the game, and returns the
    /// one in force (so concurrent callers agree on a single address). `Duplicate` when
    /// the token's digest is taken by another player or game (the caller draws another).
    async fn ensure_orders_address(
        &self,
        address: &OrdersAddress,
    ) -> Result<OrdersAddress, StoreError>;
    /// Gives an existing address the token of `token` (the old one stops working at
    /// once) and returns the address in force. With `replacing`, the address changes only
    /// while its token is still that one; if another caller replaced it first, the
    /// address is returned as that caller left it (two replicas re-issuing an address at
    /// once agree on one). `NotFound` when the player has none in the game,
    /// `Duplicate` when the digest is taken.
    async fn rotate_orders_address(
        &self,
        user_id: UserId,
        game_id: GameId,
        token: &TokenRecord,
        replacing: Option<TokenDigest>,
        at: Timestamp,
    ) -> Result<OrdersAddress, StoreError>;
    /// Sets how the player's reports are mailed in the game; `NotFound` when the player
    /// has no address there.
    async fn set_report_delivery(
        &self,
        user_id: UserId,
        game_id: GameId,
        delivery: ReportDelivery,
    ) -> Result<OrdersAddress, StoreError>;
    /// The address whose token has `digest` (a mail's token, digested).
    async fn find_orders_address(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<OrdersAddress>, StoreError>;

    /// Takes one send from `bucket` (`reply:<user>`, `refusal:<address>`) under `limit`,
    /// atomically: `true` when it fit and was counted. The send is named by `key` (the
    /// inbound mail it answers), so taking the same key again is `true` without counting
    /// twice: a mail processed again after a crash keeps its answer.
    async fn take_send(
        &self,
        bucket: &str,
        key: &str,
        limit: RateLimit,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// What the engine said to mailed orders, with what the reply needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailedOrdersVerdict {
    /// The game's name, for the reply.
    pub game_name: String,
    /// The turn the orders were for (the next turn).
    pub turn: u32,
    /// When that turn runs, if scheduled.
    pub deadline: Option<Timestamp>,
    /// The engine's verdict.
    pub accepted: bool,
    /// The engine's errors, one per line of the reply.
    pub errors: Vec<String>,
}

/// Why mailed orders could not be taken at all: typed, so the reply words it in the
/// player's language (the mail templates' `refusal_*` words, filled with the fields
/// below); `Display` is the English wording, for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The game takes no orders in its state (not started, finished, cancelled).
    #[error("the game is {status} and takes no orders")]
    NotInPlay {
        /// The game's status, by its stable name.
        status: String,
    },
    /// The sender plays no race in the game (never did, or the seat changed hands).
    #[error("you do not play in this game")]
    NotAPlayer,
    /// The mail arrived before turn `played` ran but was not processed in time; its
    /// orders are not applied to the turn after it.
    #[error(
        "this mail arrived before turn {played} was played but could not be taken in time; \
         its orders were not applied to turn {turn}: send them again if they still stand"
    )]
    TooLate {
        /// The turn played since the mail arrived.
        played: u32,
        /// The turn the orders would now be for.
        turn: u32,
    },
    /// Orders the player sent after this mail are in force for the turn.
    #[error(
        "orders for turn {turn} sent after this mail are in force; this mail's orders were \
         not applied"
    )]
    Superseded {
        /// The turn.
        turn: u32,
    },
    /// Nothing to read as orders once quotes and the signature are taken out.
    #[error("no orders found in the mail (quotes and signature are ignored)")]
    NoOrders,
    /// The game could not be reached on any of the mail's tries.
    #[error("the game could not be reached after {tries} tries; send the orders again later")]
    Unreachable {
        /// How many tries were made.
        tries: u32,
    },
    /// The orders are larger than the platform forwards to an engine.
    #[error("the orders are {size} bytes, at most {max} are accepted")]
    TooLarge {
        /// Their size, serialised.
        size: usize,
        /// The bound (`GALAXY_MAX_ORDERS_BYTES`).
        max: usize,
    },
    /// The race made as many submissions for the turn as one turn takes.
    #[error(
        "too many orders submissions for this turn; the orders in force stay, and the next \
         turn takes new ones"
    )]
    TooMany,
    /// The turn the orders were taken for was played while they were on their way.
    #[error("turn {turn} was played meanwhile; send the orders again for turn {next}")]
    NotNextTurn {
        /// The turn the orders were for.
        turn: u32,
        /// The game's next turn now.
        next: u32,
    },
    /// The sender's race is out of the game (eliminated): it takes no orders.
    #[error("your race {race} is out of the game and takes no orders")]
    Eliminated {
        /// The race.
        race: String,
    },
    /// Any other reason, in the service's own (English) words, or the engine's own.
    #[error("{0}")]
    Other(String),
}

impl Refusal {
    /// The word naming this reason in the mail templates (`refusal_<code>`), and the
    /// fields its wording is filled with.
    pub fn code_and_fields(&self) -> (&'static str, serde_json::Value) {
        use serde_json::json;
        match self {
            Self::NotInPlay { status } => ("refusal_not_in_play", json!({ "status": status })),
            Self::NotAPlayer => ("refusal_not_a_player", json!({})),
            Self::TooLate { played, turn } => (
                "refusal_too_late",
                json!({ "played": played, "turn": turn }),
            ),
            Self::Superseded { turn } => ("refusal_superseded", json!({ "turn": turn })),
            Self::NoOrders => ("refusal_no_orders", json!({})),
            Self::Unreachable { tries } => ("refusal_unreachable", json!({ "tries": tries })),
            Self::TooLarge { size, max } => {
                ("refusal_too_large", json!({ "size": size, "max": max }))
            }
            Self::TooMany => ("refusal_too_many", json!({})),
            Self::NotNextTurn { turn, next } => (
                "refusal_not_next_turn",
                json!({ "turn": turn, "next": next }),
            ),
            Self::Eliminated { race } => ("refusal_eliminated", json!({ "race": race })),
            Self::Other(_) => ("refusal_other", json!({})),
        }
    }
}

/// Why mailed orders got no verdict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrdersDeskError {
    /// They can never be taken (the game is not in play, the sender no longer plays in
    /// it, the orders are too large): the reply says why, and no retry helps.
    #[error("{reason}")]
    Refused {
        /// The game's name, when known.
        game_name: Option<String>,
        /// Why.
        reason: Refusal,
    },
    /// The engine or a store is unavailable: worth trying again.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Where mailed orders go: the narrow port through which orders by e-mail reaches the
/// runtime (which implements it), so the mail-in service holds no other service.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait OrdersDesk: Send + Sync {
    /// Submits `orders` (the mail's text) for the player's race for the game's next turn
    /// and records the submission, as the HTTP route does.
    ///
    /// `received_at` is when the mail was stored. A mail may be processed long after it
    /// arrived, so it is `Refused` when a turn was played since (its orders were written
    /// for that turn) or when orders the player sent later are in force (later orders
    /// replace earlier ones, whatever order the mails are processed in); when the orders
    /// in force since it arrived are its own (the mail processed again after a crash),
    /// their recorded verdict is the answer.
    async fn submit_mailed_orders(
        &self,
        user_id: UserId,
        game_id: GameId,
        orders: &str,
        received_at: Timestamp,
    ) -> Result<MailedOrdersVerdict, OrdersDeskError>;

    /// Whether `user_id` plays a race of the game now: a race taken over from another
    /// player counts, one handed over to a replacement does not (the race's record
    /// says, not the lobby's application). Who may have an orders address there.
    async fn plays_in(&self, user_id: UserId, game_id: GameId) -> Result<bool, OrdersDeskError>;

    /// The game's name, for a reply that names the game though its orders never reached
    /// it (nothing to read, the game unreachable); `None` when it cannot be read now (the
    /// reply then says "your game"). The default knows no names.
    async fn game_name(&self, game_id: GameId) -> Option<String> {
        let _ = game_id;
        None
    }
}
