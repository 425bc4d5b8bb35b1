//! The game cache. It wraps the application store as well, because approving an
//! application bumps the game's `approved_count` in the same transaction: the approval's
//! outcome carries the updated game, which goes into memory like any other write.
//!
//! It also counts game transitions (`galaxy_game_transitions_total{to}`): every status
//! change passes through here once, acknowledged by the store.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use galaxy_core::domain::application::{Application, ApplicationStatus};
use galaxy_core::domain::game::{Game, GameStatus, GameTransition};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::{ApplicationId, GameId, Timestamp, UserId};
use galaxy_core::ports::{
    ApplicationInsert, ApplicationStore, ApprovalOutcome, Change, ChangeBus, GameFilter,
    GameStatusChange, GameStore, StoreError, UserGame, UserGamesFilter,
};

use super::{Shared, WarmError, all_pages, announce, solo_bus};

/// The metric counting acknowledged game status changes, labelled by new status.
pub const GAME_TRANSITIONS_METRIC: &str = "galaxy_game_transitions_total";

/// A [`GameStore`] and [`ApplicationStore`] decorator that answers `get_game` from memory
/// (see the [module docs](super) for the rules).
pub struct GameCache {
    /// The game store every game write goes to first.
    games: Arc<dyn GameStore>,
    /// The application store (approval also writes the game row).
    applications: Arc<dyn ApplicationStore>,
    /// Games by id.
    cached: Shared<HashMap<GameId, Game>>,
    /// Where changes are announced to the other processes.
    bus: Arc<dyn ChangeBus>,
}

impl GameCache {
    /// An empty cache in front of `games` and `applications` (which must share their
    /// game rows, as every store implementing both does).
    pub fn new(games: Arc<dyn GameStore>, applications: Arc<dyn ApplicationStore>) -> Self {
        Self {
            games,
            applications,
            cached: Shared::default(),
            bus: solo_bus(),
        }
    }

    /// Announces its writes on `bus` (the default is a bus with this process alone).
    pub fn with_bus(mut self, bus: Arc<dyn ChangeBus>) -> Self {
        self.bus = bus;
        self
    }

    /// Drops a game another process changed.
    pub fn forget(&self, change: Change) {
        if let Change::Game(id) = change {
            self.cached.write(|c| c.remove(&id));
        }
    }

    /// Drops every game held in memory.
    pub fn forget_all(&self) {
        self.cached.write(HashMap::clear);
    }

    /// Loads every game, page by page; returns how many.
    pub async fn warm(&self) -> Result<usize, WarmError> {
        let epoch = self.cached.epoch();
        let filter = GameFilter::default();
        let games = all_pages(|page| {
            let inner = self.games.clone();
            let filter = filter.clone();
            async move { inner.list_games(&filter, &page).await }
        })
        .await
        .map_err(|source| WarmError {
            cache: "game",
            source,
        })?;
        let count = games.len();
        self.cached.fill(epoch, |cached| {
            for game in games {
                cached.insert(game.id, game);
            }
        });
        Ok(count)
    }

    /// How many games are held in memory.
    pub fn len(&self) -> usize {
        self.cached.read(HashMap::len)
    }

    /// Whether no game is held in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put(&self, game: &Game) {
        self.cached.write(|c| c.insert(game.id, game.clone()));
    }

    /// Remembers the row a write begun at `epoch` returned, unless another write came
    /// in meanwhile ([`Shared::write_since`]): then forgets the game.
    fn put_since(&self, epoch: u64, game: &Game) {
        self.cached.write_since(
            epoch,
            |c| {
                c.insert(game.id, game.clone());
            },
            |c| {
                c.remove(&game.id);
            },
        );
    }
}

#[async_trait]
impl GameStore for GameCache {
    async fn insert_game(&self, game: &Game) -> Result<(), StoreError> {
        self.games.insert_game(game).await?;
        self.put(game);
        Ok(())
    }

    async fn insert_hosted_game(
        &self,
        game: &Game,
        max_unfinished: u32,
    ) -> Result<bool, StoreError> {
        let stored = self.games.insert_hosted_game(game, max_unfinished).await?;
        if stored {
            self.put(game);
        }
        Ok(stored)
    }

    async fn get_game(&self, id: GameId) -> Result<Game, StoreError> {
        if let Some(game) = self.cached.read(|c| c.get(&id).cloned()) {
            return Ok(game);
        }
        let epoch = self.cached.epoch();
        let game = self.games.get_game(id).await?;
        self.cached.fill(epoch, |c| {
            c.insert(id, game.clone());
        });
        Ok(game)
    }

    async fn get_game_fresh(&self, id: GameId) -> Result<Game, StoreError> {
        let epoch = self.cached.epoch();
        let game = self.games.get_game(id).await?;
        // When any change arrived meanwhile, what was read may already be old: the entry
        // is dropped instead, so the next read fetches again (never the stale copy).
        self.cached.fill_or(
            epoch,
            |c| {
                c.insert(id, game.clone());
            },
            |c| {
                c.remove(&id);
            },
        );
        Ok(game)
    }

    async fn list_games(
        &self,
        filter: &GameFilter,
        page: &PageRequest,
    ) -> Result<Page<Game>, StoreError> {
        self.games.list_games(filter, page).await
    }

    async fn update_game_status(
        &self,
        id: GameId,
        expected_from: GameStatus,
        change: &GameStatusChange,
    ) -> Result<Game, StoreError> {
        let epoch = self.cached.epoch();
        match self
            .games
            .update_game_status(id, expected_from, change)
            .await
        {
            Ok(game) => {
                self.put_since(epoch, &game);
                announce(&self.bus, Change::Game(id)).await;
                metrics::counter!(GAME_TRANSITIONS_METRIC, "to" => game.status.as_str())
                    .increment(1);
                Ok(game)
            }
            Err(error) => {
                if matches!(error, StoreError::Conflict { .. }) {
                    // Memory may hold the status the caller expected; the store has
                    // another. Forget it so the next read asks the store.
                    self.cached.write(|c| c.remove(&id));
                }
                Err(error)
            }
        }
    }

    async fn game_transitions(&self, id: GameId) -> Result<Vec<GameTransition>, StoreError> {
        self.games.game_transitions(id).await
    }

    async fn unannounced_transitions(&self, limit: u32) -> Result<Vec<GameTransition>, StoreError> {
        self.games.unannounced_transitions(limit).await
    }

    // Announcing a transition changes no game: nothing cached to update.
    async fn mark_transition_announced(
        &self,
        id: GameId,
        to: GameStatus,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.games.mark_transition_announced(id, to, at).await
    }

    async fn games_past_deadline(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Game>, StoreError> {
        self.games.games_past_deadline(now, limit).await
    }
}

#[async_trait]
impl ApplicationStore for GameCache {
    async fn insert_application(
        &self,
        application: &Application,
        max_active_games: u32,
    ) -> Result<ApplicationInsert, StoreError> {
        self.applications
            .insert_application(application, max_active_games)
            .await
    }

    async fn get_application(&self, id: ApplicationId) -> Result<Application, StoreError> {
        self.applications.get_application(id).await
    }

    async fn list_applications(&self, game_id: GameId) -> Result<Vec<Application>, StoreError> {
        self.applications.list_applications(game_id).await
    }

    async fn find_live_application(
        &self,
        game_id: GameId,
        user_id: UserId,
    ) -> Result<Option<Application>, StoreError> {
        self.applications
            .find_live_application(game_id, user_id)
            .await
    }

    async fn list_user_applications(
        &self,
        user_id: UserId,
    ) -> Result<Vec<Application>, StoreError> {
        self.applications.list_user_applications(user_id).await
    }

    async fn list_user_games(
        &self,
        user_id: UserId,
        filter: UserGamesFilter,
        page: &PageRequest,
    ) -> Result<Page<UserGame>, StoreError> {
        self.applications
            .list_user_games(user_id, filter, page)
            .await
    }

    async fn count_active_games(&self, user_id: UserId) -> Result<u32, StoreError> {
        self.applications.count_active_games(user_id).await
    }

    async fn decide_application(
        &self,
        id: ApplicationId,
        to: ApplicationStatus,
        at: Timestamp,
    ) -> Result<Application, StoreError> {
        self.applications.decide_application(id, to, at).await
    }

    async fn approve_application(
        &self,
        id: ApplicationId,
        at: Timestamp,
    ) -> Result<ApprovalOutcome, StoreError> {
        let epoch = self.cached.epoch();
        let outcome = self.applications.approve_application(id, at).await?;
        if let ApprovalOutcome::Approved { game, .. } = &outcome {
            self.put_since(epoch, game);
            announce(&self.bus, Change::Game(game.id)).await;
        }
        Ok(outcome)
    }

    // Announcing changes no game: nothing cached to update.
    async fn unannounced_applications(&self, limit: u32) -> Result<Vec<Application>, StoreError> {
        self.applications.unannounced_applications(limit).await
    }

    async fn mark_application_announced(
        &self,
        id: ApplicationId,
        status: ApplicationStatus,
    ) -> Result<(), StoreError> {
        self.applications
            .mark_application_announced(id, status)
            .await
    }
}
