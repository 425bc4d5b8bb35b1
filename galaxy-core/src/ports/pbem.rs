//! The port of the play-by-email habits: the per-race record of a started game (player,
//! missed turns, vacation, seat), seat applications, per-game preferences and messages.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::limit::RateLimit;
use crate::domain::page::{Page, PageRequest};
use crate::domain::pbem::{GamePreferences, RaceMessage, RaceRecord, ReadyMark, SeatApplication};
use crate::domain::{GameId, MessageId, SeatApplicationId, Timestamp, UserId};

/// What a vacation request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VacationOutcome {
    /// Booked; the race's record after it.
    Booked(RaceRecord),
    /// More turns than the budget has left; how many are left.
    OverBudget {
        /// Vacation turns still available.
        left: u32,
    },
}

/// What storing an application for an open seat under the active-games limit did
/// ([`PbemStore::apply_for_seat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum SeatApplicationInsert {
    /// Stored.
    Inserted,
    /// The applicant is active in `live` games already (as
    /// [`ApplicationStore::count_active_games`](super::ApplicationStore::count_active_games)
    /// counts them), at least the limit; nothing was stored.
    TooManyActiveGames {
        /// The applicant's active games, counted in the same step as the refusal.
        live: u32,
    },
}

/// A seat that changed hands ([`PbemStore::approve_seat_application`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatHandover {
    /// The race's record with its new player.
    pub record: RaceRecord,
    /// Who played it before.
    pub previous: UserId,
}

/// A seat handed over whose notice (`seat_changed`, to the new and the previous player)
/// is still owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedSeatNotice {
    /// The approved application (its applicant is the new player).
    pub application: SeatApplication,
    /// Who played the race before.
    pub previous: UserId,
}

/// The per-race record of play-by-email games. Every method is one atomic step, so
/// concurrent callers (several server replicas) never double-count or double-book.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PbemStore: Send + Sync {
    /// Creates the records of races that have none (`(race, player)` pairs), keeping
    /// existing ones unchanged, and returns every record of the game in race order.
    async fn ensure_races(
        &self,
        game_id: GameId,
        seats: &[(String, UserId)],
    ) -> Result<Vec<RaceRecord>, StoreError>;
    /// Every record of a game, in race order.
    async fn list_races(&self, game_id: GameId) -> Result<Vec<RaceRecord>, StoreError>;
    /// Every race a user plays, in any game ("my games" of a replacement player).
    async fn races_of_user(&self, user_id: UserId) -> Result<Vec<RaceRecord>, StoreError>;
    /// Changes a race's ready mark ([`ReadyMark::apply`]: marks it ready for a turn
    /// without orders, or takes back the mark of a turn when orders for it replace it),
    /// if `player` still plays it: `NotFound` when it has no record, `Conflict` when it
    /// is someone else's. The service checked the
    /// race was the caller's before; a seat handed over in between must not take the
    /// old player's write (the new player would be counted ready without orders).
    async fn mark_ready(
        &self,
        game_id: GameId,
        race: &str,
        player: UserId,
        mark: ReadyMark,
    ) -> Result<(), StoreError>;
    /// Books `turns` vacation turns from `from`, if the race has that many of `budget`
    /// left and `player` still plays it (`Conflict` otherwise, as for
    /// [`mark_ready`](Self::mark_ready)). A vacation booked while another is current or
    /// coming extends it.
    async fn book_vacation(
        &self,
        game_id: GameId,
        race: &str,
        player: UserId,
        from: u32,
        turns: u32,
        budget: u32,
    ) -> Result<VacationOutcome, StoreError>;
    /// Counts turn `turn` once: races in `ready` reset their missed turns (and leave
    /// idle, their idle notice no longer owed), races on vacation for it keep their
    /// count, every other race counts one more and goes idle at `idle_after`, its idle
    /// notice owed ([`RaceRecord::idle_notice`] set to `turn` in the same write). Returns
    /// the races that went idle now, or `None` when the turn was already counted (by
    /// this or another caller).
    async fn tally_turn(
        &self,
        game_id: GameId,
        turn: u32,
        ready: &[String],
        idle_after: u32,
    ) -> Result<Option<Vec<String>>, StoreError>;
    /// Races whose idle notice is still owed ([`RaceRecord::idle_notice`]), in any game
    /// whatever its status (one paused or finished since the tally still owes it), at
    /// most `limit`.
    async fn owed_idle_notices(&self, limit: u32) -> Result<Vec<RaceRecord>, StoreError>;
    /// The `race_idle` notice of `race` going idle at `turn` was raised: clears
    /// [`RaceRecord::idle_notice`] if it still names `turn` (a later one stays owed).
    /// `NotFound` when the race has no record.
    async fn idle_notice_raised(
        &self,
        game_id: GameId,
        race: &str,
        turn: u32,
    ) -> Result<(), StoreError>;
    /// Opens an idle race's seat. `Conflict` when the race is not idle or the seat is
    /// open already; `NotFound` when it has no record.
    async fn open_seat(&self, game_id: GameId, race: &str) -> Result<RaceRecord, StoreError>;
    /// The race's own player takes the open seat back: closed, count reset, no longer
    /// idle; pending applications are rejected. `Conflict` when the seat is not open or
    /// `user_id` is not its player.
    async fn reclaim_seat(
        &self,
        game_id: GameId,
        race: &str,
        user_id: UserId,
    ) -> Result<RaceRecord, StoreError>;
    /// Stores an application for an open seat. `Conflict` when the seat is not open or
    /// the applicant plays in the game; `Duplicate` when they already have one pending.
    ///
    /// A pending seat application makes its applicant active in the game, so it is
    /// stored only while they are active in fewer than `max_active_games` games besides
    /// this one (a second seat of a game they wait on adds no game),
    /// counted in the same atomic step as the insert and by the same rule as
    /// [`ApplicationStore::count_active_games`](super::ApplicationStore::count_active_games)
    /// (concurrent applications of one user, to seats or to games, never together pass
    /// the limit); otherwise the answer is [`SeatApplicationInsert::TooManyActiveGames`].
    async fn apply_for_seat(
        &self,
        application: &SeatApplication,
        max_active_games: u32,
    ) -> Result<SeatApplicationInsert, StoreError>;
    /// A seat's applications, oldest first.
    async fn list_seat_applications(
        &self,
        game_id: GameId,
        race: &str,
    ) -> Result<Vec<SeatApplication>, StoreError>;
    /// Hands an open seat to a pending applicant: the race's player changes, the seat
    /// closes, its count resets, the application is approved and the others rejected.
    /// `Conflict` when the seat is not open, the application not pending, or the
    /// applicant got another race of the game meanwhile; `NotFound` without such an
    /// application.
    async fn approve_seat_application(
        &self,
        game_id: GameId,
        race: &str,
        application_id: SeatApplicationId,
    ) -> Result<SeatHandover, StoreError>;
    /// Handed-over seats whose notice is still owed: every approval's is, from the
    /// approval's own write until [`seat_notice_raised`](Self::seat_notice_raised) says
    /// it was raised, so a failing notifier or a crash right after the approval delays
    /// the notice instead of losing it. In approval order, at most `limit`.
    async fn owed_seat_notices(&self, limit: u32) -> Result<Vec<OwedSeatNotice>, StoreError>;
    /// The notice of the handover by application `id` was raised; `NotFound` for an
    /// unknown application.
    async fn seat_notice_raised(&self, id: SeatApplicationId) -> Result<(), StoreError>;
    /// The games (of `candidates`) that have an open seat, with their open races.
    async fn open_seats(
        &self,
        candidates: &[GameId],
    ) -> Result<Vec<(GameId, Vec<String>)>, StoreError>;
    /// A player's preferences for a game (the defaults when never set).
    async fn preferences(
        &self,
        game_id: GameId,
        user_id: UserId,
    ) -> Result<GamePreferences, StoreError>;
    /// Sets a player's preferences for a game.
    async fn set_preferences(
        &self,
        game_id: GameId,
        user_id: UserId,
        preferences: GamePreferences,
    ) -> Result<(), StoreError>;
    /// Stores a message unless its sender already sent `limit.max` messages in the game
    /// within the window ending at `message.sent_at`: counted and written in one step.
    /// Returns `None` when stored, else when the sender has room again; `Conflict` when
    /// the sending race is no longer `message.sender_user`'s (a seat handed over since
    /// the service checked).
    async fn post_message(
        &self,
        message: &RaceMessage,
        limit: RateLimit,
    ) -> Result<Option<Timestamp>, StoreError>;
    /// Messages whose notice (`race_message`, to their recipients) is still owed: every
    /// stored message is, until [`message_noticed`](Self::message_noticed) says it was
    /// raised, so a failing notifier or a crash after the message was stored delays its
    /// notice instead of losing it. Oldest first, at most `limit`, across all games.
    async fn owed_message_notices(&self, limit: u32) -> Result<Vec<RaceMessage>, StoreError>;
    /// The notice of message `id` was raised; `NotFound` for an unknown message.
    async fn message_noticed(&self, id: MessageId) -> Result<(), StoreError>;
    /// The messages of a game that `race` sent or received, newest first.
    async fn list_messages(
        &self,
        game_id: GameId,
        race: &str,
        page: &PageRequest,
    ) -> Result<Page<RaceMessage>, StoreError>;
}
