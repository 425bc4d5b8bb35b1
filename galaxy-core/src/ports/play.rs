//! Ports for the record of play: the turn archive (every played turn's standings and every
//! race's report) and the orders submissions.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::lease::Lease;
use crate::domain::play::{OrdersSubmission, PlayedTurn, TurnReport};
use crate::domain::{GameId, LeaseToken, Timestamp};

/// The turn archive: what the platform keeps of every turn, so reports outlive the engine.
///
/// A turn is archived whole (the turn and all its reports in one atomic write) and only
/// once: archiving a turn that is already there changes nothing, so a turn step replayed
/// after a crash can archive again without a duplicate or a half-written turn.
///
/// The archive is also the outbox of a turn's effects: a turn is archived unannounced,
/// and marked announced once its effects (the game's finish, the stop job, the
/// notification) are all done, so a crash between them leaves a row that says what is
/// still owed.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TurnArchiveStore: Send + Sync {
    /// Stores a played turn with its reports, atomically. Returns `true` when it was
    /// stored, `false` when the game already had that turn (which is kept unchanged).
    async fn archive_turn(
        &self,
        turn: &PlayedTurn,
        reports: &[TurnReport],
    ) -> Result<bool, StoreError>;
    /// Every archived turn of a game, turn 0 first.
    async fn list_turns(&self, game_id: GameId) -> Result<Vec<PlayedTurn>, StoreError>;
    /// The game's latest archived turn, if any.
    async fn latest_turn(&self, game_id: GameId) -> Result<Option<PlayedTurn>, StoreError>;
    /// Up to `limit` archived turns not yet announced (of every game), oldest first (by
    /// archive time, then game and turn): what the follow-up step still owes effects for.
    /// With `after`, only the turns after that one in this order (it need not still be
    /// owed): the next page, so that the follow-up walks past turns whose effects must
    /// wait (a paused game's turn archived but not recorded) instead of reading the same
    /// ones on every pass.
    async fn unannounced_turns(
        &self,
        after: Option<PlayedTurn>,
        limit: u32,
    ) -> Result<Vec<PlayedTurn>, StoreError>;
    /// Marks a turn announced at `at`, once every effect it owed is done; announcing it
    /// again keeps the first time. `NotFound` when the game has no such turn.
    async fn mark_announced(
        &self,
        game_id: GameId,
        turn: u32,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// One race's report of one turn; `NotFound` when the turn or the race has none.
    async fn get_report(
        &self,
        game_id: GameId,
        turn: u32,
        race: &str,
    ) -> Result<TurnReport, StoreError>;
}

/// Every orders submission the engine answered, per race and turn.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait OrdersStore: Send + Sync {
    /// Takes the lease on submitting `race`'s orders in the game: one submission of a
    /// race at a time, from its checks through the engine call to its record, across
    /// every process on the store, so that the orders the engine holds last are the ones
    /// recorded in force. `true` when taken (no lease, one lapsed at `now`, or one of
    /// `lease.token` already); `false` while another holder's lease holds.
    async fn lease_orders(
        &self,
        game_id: GameId,
        race: &str,
        lease: Lease,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Extends the lease to `lease.until` while it is still `lease.token`'s: `false` when
    /// it is not (released, or lapsed and taken by another holder). Never takes a lease
    /// that is not there, so a renewal landing after the release cannot bring it back.
    async fn renew_orders(
        &self,
        game_id: GameId,
        race: &str,
        lease: Lease,
    ) -> Result<bool, StoreError>;
    /// Gives the lease of [`lease_orders`](Self::lease_orders) up; a no-op when it is
    /// not `token`'s (it lapsed and another holder took it).
    async fn release_orders(
        &self,
        game_id: GameId,
        race: &str,
        token: LeaseToken,
    ) -> Result<(), StoreError>;
    /// Appends a submission made under the orders lease `holder` took for its race
    /// ([`lease_orders`](Self::lease_orders)), checked in the same statement: `Conflict`
    /// when the lease is not `holder`'s any more (it lapsed and another submission took
    /// it, or it was released), so a submission that lost its lease midway is never
    /// recorded over the one that holds it now; `Duplicate` when its id is already
    /// stored. A lease that lapsed but that nobody took since is still its holder's.
    async fn record_orders(
        &self,
        submission: &OrdersSubmission,
        holder: LeaseToken,
    ) -> Result<(), StoreError>;
    /// A race's submissions for a turn, newest first (the first is the one in force).
    async fn list_orders(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<Vec<OrdersSubmission>, StoreError>;
    /// A race's submission in force for a turn (the newest), if any: what the game page,
    /// the list of one's games and mailed orders read, without the turn's history (up
    /// to [`MAX_SUBMISSIONS_PER_TURN`] submissions, each with its orders). The default
    /// takes the first of [`list_orders`](Self::list_orders); a store that can read one
    /// row should.
    ///
    /// [`MAX_SUBMISSIONS_PER_TURN`]: crate::service::runtime::MAX_SUBMISSIONS_PER_TURN
    async fn latest_orders(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<Option<OrdersSubmission>, StoreError> {
        let listed = self.list_orders(game_id, race, turn).await?;
        Ok(listed.into_iter().next())
    }
    /// How many submissions a race has made for a turn (what
    /// [`list_orders`](Self::list_orders) would return, counted): the per-turn bound on
    /// submissions is checked with it under the orders lease. The default counts the
    /// list; a store that can count without reading every submission's orders should.
    async fn count_orders(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<u64, StoreError> {
        let listed = self.list_orders(game_id, race, turn).await?;
        Ok(u64::try_from(listed.len()).unwrap_or(u64::MAX))
    }
    /// The races of a game with orders for `turn`, counted as `count` says, in byte order
    /// of their names.
    async fn races_with_orders_in(
        &self,
        game_id: GameId,
        turn: u32,
        count: OrdersCount,
    ) -> Result<Vec<String>, StoreError>;
}

/// Which submissions make a race's orders for a turn, for
/// [`OrdersStore::races_with_orders_in`]: readiness before a turn and the tally after it
/// ask different questions of the same record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrdersCount {
    /// The race's latest submission, when it was accepted: whether the race is ready for
    /// the turn. A refusal after accepted orders says the player is changing them, so an
    /// early turn waits for them (the engine would still play the accepted ones).
    Latest,
    /// Any accepted submission recorded by this instant: whether the engine had the
    /// race's orders for a turn played then (a refused later submission left the ones
    /// before it in force, as the engine contract says), so a player whose last mail
    /// was refused (a "thanks" sent to the orders address) has not missed the turn.
    PlayedAt(Timestamp),
}
