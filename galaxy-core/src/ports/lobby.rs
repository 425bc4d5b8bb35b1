//! Ports for games, applications and the Race Name Directory.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::application::{Application, ApplicationStatus};
use crate::domain::game::{Game, GameStatus, GameTransition, GameTrigger, Visibility};
use crate::domain::page::{Page, PageRequest};
use crate::domain::race_name::{RaceNameEntry, RaceNameKey, RaceNameStatus};
use crate::domain::{ApplicationId, GameId, Timestamp, UserId};

/// Which games to list. Empty fields do not filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GameFilter {
    /// Only games in one of these statuses.
    pub statuses: Vec<GameStatus>,
    /// Only games with this visibility.
    pub visibility: Option<Visibility>,
    /// Only games hosted by this user.
    pub host: Option<UserId>,
    /// Only games whose name contains this text, ignoring case (matched literally: `%`
    /// and `_` are not wildcards); a player looking for a game by name in the lobby.
    pub name_contains: Option<String>,
    /// Only games with a free seat (fewer approved players than `max_players`).
    pub free_seat: bool,
}

/// Which of a user's games to list ([`ApplicationStore::list_user_games`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserGamesFilter {
    /// The games the user plays in: an approved application for a race not handed over
    /// to a replacement player, or a race they play (one taken over included).
    pub plays: bool,
    /// The games the user hosts.
    pub hosts: bool,
    /// `Some(true)`: only games that finished or were cancelled; `Some(false)`: only the
    /// others; `None`: both.
    pub ended: Option<bool>,
}

/// One of a user's games, with the race they play in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGame {
    /// The game.
    pub game: Game,
    /// The race the user plays (their race record's, else their approved application's
    /// race name); `None` for a game they only host.
    pub race: Option<String>,
}

/// A requested game status change (the "to" side of a compare-and-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameStatusChange {
    /// The new status.
    pub to: GameStatus,
    /// What asks for it.
    pub trigger: GameTrigger,
    /// The user asking, if any.
    pub actor: Option<UserId>,
    /// Why (shown in history).
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
    /// When set, the change applies only while the game's approved count is still this
    /// (else `Conflict`, as for a changed status): for a verdict that rests on the count
    /// as well as the status, such as the sweeper's cancel of a game short of players at
    /// its deadline, which an approval landing meanwhile must stop.
    pub expected_approved: Option<u32>,
}

/// Games and their status history.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait GameStore: Send + Sync {
    /// Stores a new game.
    async fn insert_game(&self, game: &Game) -> Result<(), StoreError>;
    /// Stores a new game only while its host has fewer than `max_unfinished` games that
    /// hold a hosting slot at the new game's creation
    /// ([`Game::holds_hosting_slot_at`]: not finished or cancelled, or cancelled by its
    /// host within [`CANCELLED_KEEPS_SLOT`](crate::domain::game::CANCELLED_KEEPS_SLOT)), atomically
    /// (concurrent calls for one host never pass the cap together). `Ok(false)` when the
    /// host is at the cap: nothing was stored.
    async fn insert_hosted_game(
        &self,
        game: &Game,
        max_unfinished: u32,
    ) -> Result<bool, StoreError>;
    /// Reads one game.
    async fn get_game(&self, id: GameId) -> Result<Game, StoreError>;
    /// Reads one game from the record of truth, past any cache in front of it (and
    /// refreshes that cache). Services call it before refusing on a game's state they
    /// may have read stale: another replica may have changed it a moment ago, and its
    /// change announcement may not have arrived yet. A store without a cache keeps the
    /// default, [`GameStore::get_game`].
    async fn get_game_fresh(&self, id: GameId) -> Result<Game, StoreError> {
        self.get_game(id).await
    }
    /// Lists games by creation order.
    async fn list_games(
        &self,
        filter: &GameFilter,
        page: &PageRequest,
    ) -> Result<Page<Game>, StoreError>;
    /// The status compare-and-set: checks the transition table (`InvalidTransition`),
    /// then that the stored status is still `expected_from` (`Conflict`), then writes
    /// the status and appends the change to the history, atomically.
    async fn update_game_status(
        &self,
        id: GameId,
        expected_from: GameStatus,
        change: &GameStatusChange,
    ) -> Result<Game, StoreError>;
    /// The status history of a game, oldest first.
    async fn game_transitions(&self, id: GameId) -> Result<Vec<GameTransition>, StoreError>;
    /// Up to `limit` transitions (of every game) whose lobby effects are still owed
    /// ([`GameStatus::owes_lobby_effects`]), oldest first: `update_game_status` stores
    /// such a transition unannounced, in the same atomic step as the change.
    async fn unannounced_transitions(&self, limit: u32) -> Result<Vec<GameTransition>, StoreError>;
    /// Marks the game's transition into `to` announced at `at`, once its effects are
    /// done; announcing it again keeps the first time. `NotFound` when the game never
    /// entered `to`.
    async fn mark_transition_announced(
        &self,
        id: GameId,
        to: GameStatus,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Draft or enrollment-open games whose enrollment deadline is at or before `now`,
    /// oldest deadline first.
    async fn games_past_deadline(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Game>, StoreError>;
}

/// What an approval did.
// The approved variant carries both rows on purpose (callers need them) and the enum
// is returned once per approval, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// Approved; `game.approved_count` includes it.
    Approved {
        /// The approved application.
        application: Application,
        /// The game after the count went up.
        game: Game,
    },
    /// The game already has `max_players` approved; nothing changed.
    GameFull,
    /// The application is no longer pending; nothing changed.
    NotPending(ApplicationStatus),
    /// The game is not open for enrollment; nothing changed.
    NotEnrolling(GameStatus),
}

/// What inserting an application under the active-games limit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ApplicationInsert {
    /// Stored.
    Inserted,
    /// The user is active in `live` games already (as
    /// [`ApplicationStore::count_active_games`] counts them), at least the limit;
    /// nothing was stored.
    TooManyActiveGames {
        /// The user's active games, counted in the same step as the refusal.
        live: u32,
    },
    /// A pending application's game is no longer open for enrollment (it closed or was
    /// cancelled after the caller read it): checked in the same atomic step as the
    /// insert, so none lands in a game that stopped enrolling; nothing was stored.
    NotEnrolling(GameStatus),
    /// The user made [`MAX_APPLICATIONS_PER_GAME`](crate::domain::application::MAX_APPLICATIONS_PER_GAME)
    /// applications to the game already (any status), counted in the same atomic step
    /// as the refused pending one; nothing was stored.
    TooManyApplications {
        /// The user's applications to the game.
        made: u32,
    },
    /// The Race Name Directory holds the live application's name, but not for the
    /// applicant any more: released, or taken by another user, since the caller claimed
    /// it (an owner releasing a registered name while applying with it). Read in the same
    /// atomic step as the insert, under the entry's lock, which a release also takes
    /// before it checks the owner's live applications: one of the two always sees the
    /// other. Nothing was stored.
    RaceNameNotHeld,
}

/// Applications. Stores implementing it share their game rows with [`GameStore`]
/// because approval changes both atomically, and read the [`RaceNameStore`]'s entries
/// when inserting (see [`ApplicationStore::insert_application`]).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ApplicationStore: Send + Sync {
    /// Stores a new application; `Duplicate` when the user already has a live (pending
    /// or approved) application to the game.
    ///
    /// A live application is stored only while the user is active in fewer than
    /// `max_active_games` games besides this one (the active-games entitlement, as
    /// [`count_active_games`](Self::count_active_games) counts them), counted in the
    /// same atomic step as the insert, so that concurrent applications of one user (to
    /// games, or to open seats through [`PbemStore::apply_for_seat`](super::PbemStore::apply_for_seat))
    /// can never together pass the limit; otherwise the answer is
    /// [`ApplicationInsert::TooManyActiveGames`]. A live application whose name has an
    /// entry in the directory ([`RaceNameStore`]) not held by the applicant is refused
    /// ([`ApplicationInsert::RaceNameNotHeld`]); a name without an entry is not checked
    /// (the lobby always claims the name first).
    async fn insert_application(
        &self,
        application: &Application,
        max_active_games: u32,
    ) -> Result<ApplicationInsert, StoreError>;
    /// Reads one application.
    async fn get_application(&self, id: ApplicationId) -> Result<Application, StoreError>;
    /// A game's applications, oldest first.
    async fn list_applications(&self, game_id: GameId) -> Result<Vec<Application>, StoreError>;
    /// The user's live application to a game, if any.
    async fn find_live_application(
        &self,
        game_id: GameId,
        user_id: UserId,
    ) -> Result<Option<Application>, StoreError>;
    /// Every application the user ever made, in any status, oldest first: the games a
    /// player plays in ("my games") are those with an approved one.
    async fn list_user_applications(&self, user_id: UserId)
    -> Result<Vec<Application>, StoreError>;
    /// One page of the games `user` plays in or hosts, as `filter` says, newest first
    /// (by creation, then id): one read for the page, however many games the user ever
    /// had. Like [`count_active_games`](Self::count_active_games), it reads the
    /// [`PbemStore`](super::PbemStore)'s race records (a race taken over has no
    /// application; one handed over no longer counts for its old player).
    async fn list_user_games(
        &self,
        user_id: UserId,
        filter: UserGamesFilter,
        page: &PageRequest,
    ) -> Result<Page<UserGame>, StoreError>;
    /// How many games the user is active in (what the active-games entitlement counts):
    /// games not yet finished or cancelled in which they hold a live application for a
    /// race they still play (not one handed over to a replacement player), play a race
    /// taken over from another player, or have an application for an open seat pending.
    /// The count reads the [`PbemStore`](super::PbemStore)'s race records and seat
    /// applications: a store implementing both keeps them in one database (or shares the
    /// state, as the in-memory stores do).
    async fn count_active_games(&self, user_id: UserId) -> Result<u32, StoreError>;
    /// Rejects or withdraws a pending application (compare-and-set on `pending`).
    async fn decide_application(
        &self,
        id: ApplicationId,
        to: ApplicationStatus,
        at: Timestamp,
    ) -> Result<Application, StoreError>;
    /// Approves a pending application and increments the game's `approved_count`,
    /// atomically, only while the game is `enrollment_open` and below `max_players`.
    async fn approve_application(
        &self,
        id: ApplicationId,
        at: Timestamp,
    ) -> Result<ApprovalOutcome, StoreError>;
    /// Up to `limit` applications whose current status owes its notification (it
    /// [`is_announced`](ApplicationStatus::is_announced) and was not marked announced),
    /// oldest first: every status change leaves the application owing, so the stored
    /// application is the outbox of its notification.
    async fn unannounced_applications(&self, limit: u32) -> Result<Vec<Application>, StoreError>;
    /// Records that the notification of `status` was raised. It settles the application
    /// only while that is still its status (a later change owes its own). `NotFound` when
    /// there is no such application.
    async fn mark_application_announced(
        &self,
        id: ApplicationId,
        status: ApplicationStatus,
    ) -> Result<(), StoreError>;
}

/// The Race Name Directory.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RaceNameStore: Send + Sync {
    /// Reserves `entry` (a pending registration) for its owner. When an entry with the
    /// same key exists: if it blocks the owner at `now` -> `Duplicate`; if the owner
    /// already holds it registered -> the registered entry is returned unchanged;
    /// otherwise (released, expired, or the owner's own pending entry) it is replaced.
    async fn reserve_race_name(
        &self,
        entry: &RaceNameEntry,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError>;
    /// Reads the entry for a key.
    async fn get_race_name(&self, key: &RaceNameKey) -> Result<Option<RaceNameEntry>, StoreError>;
    /// Turns the owner's pending entry into a registered one (idempotent when already
    /// registered to the owner; `Conflict` when owned by someone else or released).
    async fn register_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError>;
    /// Releases the owner's entry if it is still in `expected` status (compare-and-set).
    /// A registered name that a live (pending or approved) application of the owner uses
    /// in a game not yet over stays: `Conflict`. That check is made under the entry's
    /// lock, which inserting an application also takes (see
    /// [`ApplicationStore::insert_application`]), so a release racing an application
    /// under the name never lets both through.
    async fn release_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        expected: RaceNameStatus,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError>;
    /// Releases the owner's pending claim only while it is still `application`'s (a
    /// rejected or withdrawn application letting its claim go): `Conflict` when the entry
    /// is registered, released, or the claim of another application of the owner (who
    /// applied elsewhere with the name meanwhile), `NotFound` without an entry.
    async fn release_claim(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        application: ApplicationId,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError>;
    /// Releases the owner's pending entry only if its claim has run out at `now`: the
    /// sweeper's release of what [`expired_pending_race_names`] listed. A claim renewed
    /// since it was listed (its owner applied with the name again, an approval renewed
    /// it) is kept: `Conflict`, as for an entry no longer pending.
    ///
    /// [`expired_pending_race_names`]: RaceNameStore::expired_pending_race_names
    async fn release_expired_race_name(
        &self,
        key: &RaceNameKey,
        owner: UserId,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError>;
    /// The owner's pending and registered entries, by name.
    async fn list_race_names(&self, owner: UserId) -> Result<Vec<RaceNameEntry>, StoreError>;
    /// Pending entries whose TTL ran out at or before `now`, oldest first.
    async fn expired_pending_race_names(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RaceNameEntry>, StoreError>;
}
