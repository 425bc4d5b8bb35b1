//! The in-memory store of games (with their status history), applications and the
//! Race Name Directory.
//!
//! Games and applications live in one state because approving an application changes
//! both; the directory shares the lock only because one mutex per store keeps the
//! locking rule simple.

mod applications;
mod race_names;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::application::{Application, ApplicationStatus};
use galaxy_core::domain::game::{Game, GameStatus, GameTransition, GameTrigger};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::race_name::{RaceNameEntry, RaceNameKey};
use galaxy_core::domain::{ApplicationId, GameId, Timestamp, UserId};
use galaxy_core::ports::{GameFilter, GameStatusChange, GameStore, StoreError};

use super::active_games::Ledger;
use super::paging::{Order, paginate};

/// Games, applications and race names in one process, behind one mutex.
///
/// Every method takes the lock once and finishes its work under it, so each call
/// (approval included) is as atomic as a database transaction; no lock is ever held
/// across an `.await`. An application counts the user's active games in the
/// play-by-email record too (a [`MemoryPbemStore`](super::MemoryPbemStore) built
/// [`beside`](super::MemoryPbemStore::beside) this store), taking its lock after this one.
#[derive(Debug, Default)]
pub struct MemoryLobbyStore {
    /// Everything, so an approval reads and writes game and application together; shared
    /// with the play-by-email store for the active-games count.
    ledger: Arc<Ledger>,
}

/// Everything the lobby store keeps.
#[derive(Debug, Default)]
pub(super) struct LobbyState {
    /// Games by id.
    games: HashMap<GameId, Game>,
    /// Each game's status history, oldest first (appended under the same lock as the
    /// status write, so the two never disagree).
    transitions: HashMap<GameId, Vec<GameTransition>>,
    /// The transitions whose lobby effects are still owed, in the order they happened.
    unannounced: Vec<GameTransition>,
    /// The status each application's notification was last raised for.
    announced_applications: HashMap<ApplicationId, ApplicationStatus>,
    /// Applications by id, in every status.
    applications: HashMap<ApplicationId, Application>,
    /// The Race Name Directory, by uniqueness key.
    race_names: BTreeMap<RaceNameKey, RaceNameEntry>,
}

impl MemoryLobbyStore {
    /// A fresh, empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state.
    fn state(&self) -> MutexGuard<'_, LobbyState> {
        self.ledger.lobby()
    }

    /// The ledger, for a play-by-email store to share.
    pub(super) fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }
}

impl LobbyState {
    fn game(&self, id: GameId) -> Result<&Game, StoreError> {
        self.games
            .get(&id)
            .ok_or_else(|| StoreError::not_found("game", id))
    }

    /// The user's live (pending or approved) applications, in any game.
    pub(super) fn live_applications(&self, user_id: UserId) -> impl Iterator<Item = &Application> {
        self.applications
            .values()
            .filter(move |a| a.user_id == user_id && a.status.is_live())
    }

    /// Whether the game is known to have finished or been cancelled.
    pub(super) fn ended(&self, id: GameId) -> bool {
        self.games.get(&id).is_some_and(|g| g.status.is_terminal())
    }
}

/// Whether `game` passes every non-empty field of `filter`.
fn matches(filter: &GameFilter, game: &Game) -> bool {
    (filter.statuses.is_empty() || filter.statuses.contains(&game.status))
        && filter
            .visibility
            .is_none_or(|v| v == game.settings.visibility)
        && filter.host.is_none_or(|h| h == game.host)
        && filter.name_contains.as_deref().is_none_or(|text| {
            game.settings
                .name
                .as_str()
                .to_lowercase()
                .contains(&text.to_lowercase())
        })
        && (!filter.free_seat || !game.is_full())
}

#[async_trait]
impl GameStore for MemoryLobbyStore {
    async fn insert_game(&self, game: &Game) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.games.contains_key(&game.id) {
            return Err(StoreError::duplicate("game", format!("id {}", game.id)));
        }
        state.games.insert(game.id, game.clone());
        state.transitions.insert(game.id, Vec::new());
        Ok(())
    }

    async fn insert_hosted_game(
        &self,
        game: &Game,
        max_unfinished: u32,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.games.contains_key(&game.id) {
            return Err(StoreError::duplicate("game", format!("id {}", game.id)));
        }
        let unfinished = state
            .games
            .values()
            .filter(|g| {
                let host_cancelled = state.transitions.get(&g.id).is_some_and(|all| {
                    all.iter()
                        .any(|t| t.to == GameStatus::Cancelled && t.trigger == GameTrigger::Host)
                });
                g.host == game.host && g.holds_hosting_slot_at(game.created_at, host_cancelled)
            })
            .count();
        if unfinished >= max_unfinished as usize {
            return Ok(false);
        }
        state.games.insert(game.id, game.clone());
        state.transitions.insert(game.id, Vec::new());
        Ok(true)
    }

    async fn get_game(&self, id: GameId) -> Result<Game, StoreError> {
        self.state().game(id).cloned()
    }

    async fn list_games(
        &self,
        filter: &GameFilter,
        page: &PageRequest,
    ) -> Result<Page<Game>, StoreError> {
        let state = self.state();
        paginate(
            state.games.values().filter(|g| matches(filter, g)),
            |g| (g.created_at, g.id.as_uuid()),
            Order::Ascending,
            page,
        )
    }

    async fn update_game_status(
        &self,
        id: GameId,
        expected_from: GameStatus,
        change: &GameStatusChange,
    ) -> Result<Game, StoreError> {
        expected_from.check(change.to, change.trigger)?;
        let mut state = self.state();
        let game = state
            .games
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("game", id))?;
        if game.status != expected_from {
            return Err(StoreError::conflict(
                "game",
                id,
                format!("status is {}, expected {expected_from}", game.status),
            ));
        }
        if let Some(expected) = change.expected_approved
            && game.approved_count != expected
        {
            return Err(StoreError::conflict(
                "game",
                id,
                format!(
                    "approved count is {}, expected {expected}",
                    game.approved_count
                ),
            ));
        }
        game.status = change.to;
        game.updated_at = change.at;
        let game = game.clone();
        let transition = GameTransition {
            game_id: id,
            from: expected_from,
            to: change.to,
            trigger: change.trigger,
            actor: change.actor,
            reason: change.reason.clone(),
            at: change.at,
        };
        if change.to.owes_lobby_effects() {
            state.unannounced.push(transition.clone());
        }
        state.transitions.entry(id).or_default().push(transition);
        Ok(game)
    }

    async fn game_transitions(&self, id: GameId) -> Result<Vec<GameTransition>, StoreError> {
        let state = self.state();
        state.game(id)?;
        Ok(state.transitions.get(&id).cloned().unwrap_or_default())
    }

    async fn unannounced_transitions(&self, limit: u32) -> Result<Vec<GameTransition>, StoreError> {
        let state = self.state();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(state.unannounced.iter().take(limit).cloned().collect())
    }

    async fn mark_transition_announced(
        &self,
        id: GameId,
        to: GameStatus,
        _at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let entered = state
            .transitions
            .get(&id)
            .is_some_and(|history| history.iter().any(|t| t.to == to));
        if !entered {
            return Err(StoreError::not_found(
                "game transition",
                format!("{id}/{to}"),
            ));
        }
        state
            .unannounced
            .retain(|t| !(t.game_id == id && t.to == to));
        Ok(())
    }

    async fn games_past_deadline(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Game>, StoreError> {
        let state = self.state();
        let mut due: Vec<&Game> = state
            .games
            .values()
            .filter(|g| matches!(g.status, GameStatus::Draft | GameStatus::EnrollmentOpen))
            .filter(|g| g.settings.enrollment_deadline <= now)
            .collect();
        due.sort_by_key(|g| (g.settings.enrollment_deadline, g.id));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(due.into_iter().take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_poisoned_lock_is_taken_over() {
        let store = Arc::new(MemoryLobbyStore::default());
        let holder = Arc::clone(&store);
        let crashed = std::thread::spawn(move || {
            let _guard = holder.ledger.lobby.lock();
            panic!("a holder of the lock panics (expected in this test)");
        })
        .join();
        assert!(crashed.is_err() && store.ledger.lobby.is_poisoned());
        let unknown = GameId::from_uuid(uuid::Uuid::nil());
        let read = store.get_game(unknown).await;
        assert!(matches!(read, Err(StoreError::NotFound { .. })), "{read:?}");
    }
}
