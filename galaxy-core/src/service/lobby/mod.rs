//! The lobby (SPEC section 3): games and their enrollment, players' applications, and the
//! platform-wide Race Name Directory.
//!
//! [`LobbyService`] holds the use cases; [`LobbySweeper`] is the worker that releases lapsed
//! race-name claims and closes or cancels games past their enrollment deadline. Every
//! status change is a compare-and-set on the game store, so two callers racing for the
//! same change get one success and one [`LobbyError::StatusChanged`].
//!
//! Notifications and the other effects of a change are done after the change commits,
//! with idempotency keys derived from what changed, so repeating them is harmless. What
//! owes them is stored with the change (an unannounced game transition, an application
//! whose status is not yet announced): the call completes them at once, and should one
//! fail (or the process die) the sweeper completes them at its next pass (`effects.rs`).
//! A failure never fails the call: the change is already committed, and an error would
//! invite a retry that the compare-and-set then refuses.

mod applications;
mod effects;
mod error;
mod games;
mod race_names;
mod sweeper;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use chrono::TimeDelta;

pub use error::LobbyError;
pub use games::{LobbySearch, MAX_LOBBY_SEARCH_BYTES, NewGame};
pub use sweeper::{DEFAULT_SWEEP_BATCH, LobbySweeper};

use super::Actor;
use crate::domain::game::{EngineName, Game, GameStatus, GameTrigger};
use crate::domain::notification::NotificationKind;
use crate::domain::user::User;
use crate::domain::{GameId, Timestamp, UserId};
use crate::ports::{
    ApplicationStore, Clock, GameStatusChange, GameStore, NewNotification, Notifier, NotifyError,
    RaceNameStore, RuntimeJobStore, SecretGenerator, StoreError, UserStore,
};

/// How the lobby behaves; built once from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbyConfig {
    /// The engines the operator registered; a game naming another one is refused (422).
    pub engines: BTreeSet<EngineName>,
    /// How long a race name stays claimed by a pending application before the sweeper
    /// frees it.
    pub race_name_ttl: TimeDelta,
    /// Whether a game starts by itself (trigger `system`) as soon as its enrollment
    /// closes, at max players or at the deadline.
    pub auto_start: bool,
    /// The shortest time a game's schedule may leave between two turns: a host cannot
    /// make the platform run (and mail) a turn every second. Games created by an admin
    /// are exempt (tests, tournaments).
    pub min_turn_period: TimeDelta,
    /// Games one user may host that are not yet finished or cancelled (admins are
    /// exempt): a user cannot fill the lobby, or the machine, with games.
    pub max_hosted_games: u32,
}

impl Default for LobbyConfig {
    /// The reference engine only, a 7-day race-name TTL, no auto-start, turns at least
    /// an hour apart, five unfinished hosted games per user.
    fn default() -> Self {
        Self {
            engines: BTreeSet::from([EngineName::reference()]),
            race_name_ttl: TimeDelta::days(7),
            auto_start: false,
            min_turn_period: TimeDelta::hours(1),
            max_hosted_games: 5,
        }
    }
}

/// The ports the lobby needs, wired once in composition.
#[derive(Clone)]
pub struct LobbyPorts {
    /// Games and their status history.
    pub games: Arc<dyn GameStore>,
    /// Applications (approval also bumps the game's count, atomically).
    pub applications: Arc<dyn ApplicationStore>,
    /// The Race Name Directory.
    pub race_names: Arc<dyn RaceNameStore>,
    /// Users, for entitlements and block status.
    pub users: Arc<dyn UserStore>,
    /// Durable runtime jobs: starting a game queues one.
    pub jobs: Arc<dyn RuntimeJobStore>,
    /// Raises notifications to hosts and players.
    pub notifier: Arc<dyn Notifier>,
    /// The only source of time.
    pub clock: Arc<dyn Clock>,
    /// The only source of ids.
    pub ids: Arc<dyn SecretGenerator>,
}

/// The lobby's use cases. Cheap to clone: everything is behind `Arc`s.
#[derive(Clone)]
pub struct LobbyService {
    /// Where state lives and how time and ids are made.
    ports: LobbyPorts,
    /// Shared, immutable settings.
    config: Arc<LobbyConfig>,
}

impl fmt::Debug for LobbyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LobbyService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LobbyService {
    /// A lobby over `ports`, configured by `config`.
    pub fn new(ports: LobbyPorts, config: LobbyConfig) -> Self {
        Self {
            ports,
            config: Arc::new(config),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &LobbyConfig {
        &self.config
    }

    fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    /// Reads a game as `viewer` may see it: drafts are visible only to their host and to
    /// admins, and look absent to everyone else.
    async fn load_game(&self, viewer: Option<Actor>, id: GameId) -> Result<Game, LobbyError> {
        let hidden = |game: &Game| {
            game.status == GameStatus::Draft && !viewer.is_some_and(|a| manages(&a, game))
        };
        let mut game = self.read_game(id, false).await?;
        if hidden(&game) {
            // A draft may have been opened on another replica a moment ago.
            game = self.read_game(id, true).await?;
        }
        if hidden(&game) {
            return Err(LobbyError::not_found("game", id));
        }
        Ok(game)
    }

    /// Reads a game (`fresh`: past any cache, see [`GameStore::get_game_fresh`]).
    async fn read_game(&self, id: GameId, fresh: bool) -> Result<Game, LobbyError> {
        let games = &self.ports.games;
        let read = if fresh {
            games.get_game_fresh(id).await
        } else {
            games.get_game(id).await
        };
        match read {
            Ok(game) => Ok(game),
            Err(StoreError::NotFound { .. }) => Err(LobbyError::not_found("game", id)),
            Err(error) => Err(error.into()),
        }
    }

    /// The caller's account, which must exist and not be blocked at `now`.
    async fn active_user(&self, actor: &Actor, now: Timestamp) -> Result<User, LobbyError> {
        let user = match self.ports.users.get_user(actor.user_id).await {
            Ok(user) => user,
            Err(StoreError::NotFound { .. }) => {
                return Err(LobbyError::forbidden("unknown account"));
            }
            Err(error) => return Err(error.into()),
        };
        if !user.status.is_active_at(now) {
            return Err(LobbyError::forbidden("the account is blocked"));
        }
        Ok(user)
    }

    /// The compare-and-set from the status this call read (`game.status`) to `to`.
    async fn change_status(
        &self,
        game: &Game,
        to: GameStatus,
        trigger: GameTrigger,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<Game, LobbyError> {
        let change = self.status_change(to, trigger, actor, reason);
        self.compare_and_set(game, &change).await
    }

    /// A change to `to` now, expecting nothing beyond the status.
    fn status_change(
        &self,
        to: GameStatus,
        trigger: GameTrigger,
        actor: Option<UserId>,
        reason: Option<&str>,
    ) -> GameStatusChange {
        GameStatusChange {
            to,
            trigger,
            actor,
            reason: reason.map(str::to_owned),
            at: self.now(),
            expected_approved: None,
        }
    }

    /// The compare-and-set of `change` from the status this call read (`game.status`).
    async fn compare_and_set(
        &self,
        game: &Game,
        change: &GameStatusChange,
    ) -> Result<Game, LobbyError> {
        match self
            .ports
            .games
            .update_game_status(game.id, game.status, change)
            .await
        {
            Ok(updated) => Ok(updated),
            Err(StoreError::Conflict { .. }) => Err(LobbyError::StatusChanged {
                expected: game.status,
            }),
            Err(StoreError::InvalidTransition(refused)) => {
                Err(LobbyError::InvalidTransition(refused))
            }
            Err(StoreError::NotFound { .. }) => Err(LobbyError::not_found("game", game.id)),
            Err(error) => Err(error.into()),
        }
    }

    /// Raises a notification and says whether it was stored: the caller keeps it owed
    /// until it is (see `effects.rs`). Raising a key again is a no-op, so a retry never
    /// duplicates one.
    async fn try_notify(
        &self,
        kind: NotificationKind,
        idempotency_key: String,
        mut recipients: Vec<UserId>,
        game: &Game,
        payload: serde_json::Value,
    ) -> Result<(), LobbyError> {
        recipients.sort();
        recipients.dedup();
        if recipients.is_empty() {
            return Ok(());
        }
        let notification = NewNotification {
            kind,
            idempotency_key,
            recipients,
            game_id: Some(game.id),
            payload,
        };
        match self.ports.notifier.notify(notification).await {
            Ok(()) => Ok(()),
            Err(NotifyError::Store(error)) => Err(error.into()),
        }
    }

    /// The host plus every player with a live application (pending or approved) or, with
    /// `approved_only`, every approved player.
    async fn game_audience(
        &self,
        game: &Game,
        approved_only: bool,
    ) -> Result<Vec<UserId>, StoreError> {
        let mut audience = vec![game.host];
        let applications = self.ports.applications.list_applications(game.id).await?;
        audience.extend(
            applications
                .iter()
                .filter(|a| {
                    a.status.is_live()
                        && (!approved_only
                            || a.status == crate::domain::application::ApplicationStatus::Approved)
                })
                .map(|a| a.user_id),
        );
        Ok(audience)
    }
}

/// Whether `actor` may manage `game`: its host, or an admin.
fn manages(actor: &Actor, game: &Game) -> bool {
    actor.is_admin || actor.user_id == game.host
}

/// The trigger under which `actor` asks `game` to move to `to`: `host` for the host,
/// `admin` for an admin (a host who is also an admin acts as admin only where the table
/// allows admins alone, e.g. retrying a failed start).
fn manager_trigger(actor: &Actor, game: &Game, to: GameStatus) -> Result<GameTrigger, LobbyError> {
    let mut candidates = Vec::with_capacity(2);
    if actor.user_id == game.host {
        candidates.push(GameTrigger::Host);
    }
    if actor.is_admin {
        candidates.push(GameTrigger::Admin);
    }
    let Some(first) = candidates.first().copied() else {
        return Err(LobbyError::forbidden(
            "only the game's host or an admin may do this",
        ));
    };
    candidates
        .into_iter()
        .find(|trigger| game.status.allows(to, *trigger))
        .ok_or_else(|| match game.status.check(to, first) {
            Err(refused) => LobbyError::InvalidTransition(refused),
            Ok(()) => LobbyError::StatusChanged {
                expected: game.status,
            },
        })
}
