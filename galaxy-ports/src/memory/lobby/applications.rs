//! Applications, sharing the game rows so that approval is one atomic step.

use std::collections::HashMap;

use async_trait::async_trait;
use galaxy_core::domain::application::{Application, ApplicationStatus, MAX_APPLICATIONS_PER_GAME};
use galaxy_core::domain::game::GameStatus;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::race_name::RaceNameStatus;
use galaxy_core::domain::{ApplicationId, GameId, InvalidTransition, Timestamp, UserId};
use galaxy_core::ports::{
    ApplicationInsert, ApplicationStore, ApprovalOutcome, StoreError, UserGame, UserGamesFilter,
};

use super::{LobbyState, MemoryLobbyStore};
use crate::memory::active_games::active_games;
use crate::memory::paging::{Order, paginate};

impl LobbyState {
    fn application_mut(&mut self, id: ApplicationId) -> Result<&mut Application, StoreError> {
        self.applications
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("application", id))
    }

    fn live_application(&self, game_id: GameId, user_id: UserId) -> Option<&Application> {
        self.applications
            .values()
            .find(|a| a.game_id == game_id && a.user_id == user_id && a.status.is_live())
    }
}

#[async_trait]
impl ApplicationStore for MemoryLobbyStore {
    async fn insert_application(
        &self,
        application: &Application,
        max_active_games: u32,
    ) -> Result<ApplicationInsert, StoreError> {
        let mut state = self.state();
        let status = state.game(application.game_id)?.status;
        if application.status == ApplicationStatus::Pending && status != GameStatus::EnrollmentOpen
        {
            return Ok(ApplicationInsert::NotEnrolling(status));
        }
        if state.applications.contains_key(&application.id) {
            return Err(StoreError::duplicate(
                "application",
                format!("id {}", application.id),
            ));
        }
        if application.status.is_live()
            && state
                .live_application(application.game_id, application.user_id)
                .is_some()
        {
            return Err(StoreError::duplicate(
                "application",
                format!(
                    "live application of user {} to game {}",
                    application.user_id, application.game_id
                ),
            ));
        }
        if application.status == ApplicationStatus::Pending {
            let made = state
                .applications
                .values()
                .filter(|a| a.game_id == application.game_id && a.user_id == application.user_id)
                .count();
            let made = u32::try_from(made).unwrap_or(u32::MAX);
            if made >= MAX_APPLICATIONS_PER_GAME {
                return Ok(ApplicationInsert::TooManyApplications { made });
            }
        }
        if application.status.is_live() {
            let pbem = self.ledger().pbem();
            let live = active_games(
                &state,
                &pbem,
                application.user_id,
                Some(application.game_id),
            );
            if live >= max_active_games {
                return Ok(ApplicationInsert::TooManyActiveGames { live });
            }
        }
        if application.status.is_live()
            && let Some(entry) = state.race_names.get(&application.race_name.key())
            && (entry.owner != application.user_id || entry.status == RaceNameStatus::Released)
        {
            return Ok(ApplicationInsert::RaceNameNotHeld);
        }
        state
            .applications
            .insert(application.id, application.clone());
        Ok(ApplicationInsert::Inserted)
    }

    async fn get_application(&self, id: ApplicationId) -> Result<Application, StoreError> {
        self.state()
            .applications
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::not_found("application", id))
    }

    async fn list_applications(&self, game_id: GameId) -> Result<Vec<Application>, StoreError> {
        let state = self.state();
        let mut list: Vec<Application> = state
            .applications
            .values()
            .filter(|a| a.game_id == game_id)
            .cloned()
            .collect();
        list.sort_by_key(|a| (a.created_at, a.id));
        Ok(list)
    }

    async fn find_live_application(
        &self,
        game_id: GameId,
        user_id: UserId,
    ) -> Result<Option<Application>, StoreError> {
        Ok(self.state().live_application(game_id, user_id).cloned())
    }

    async fn list_user_applications(
        &self,
        user_id: UserId,
    ) -> Result<Vec<Application>, StoreError> {
        let state = self.state();
        let mut mine: Vec<Application> = state
            .applications
            .values()
            .filter(|a| a.user_id == user_id)
            .cloned()
            .collect();
        mine.sort_by_key(|a| (a.created_at, a.id));
        Ok(mine)
    }

    async fn list_user_games(
        &self,
        user_id: UserId,
        filter: UserGamesFilter,
        page: &PageRequest,
    ) -> Result<Page<UserGame>, StoreError> {
        let state = self.state();
        let pbem = self.ledger().pbem();
        // The race each game is played as: the record's, else the application's.
        let mut races: HashMap<GameId, String> = HashMap::new();
        if filter.plays {
            for a in state.applications.values() {
                let approved = a.user_id == user_id && a.status == ApplicationStatus::Approved;
                if approved && !pbem.handed_away(a.game_id, a.race_name.as_str(), user_id) {
                    races.insert(a.game_id, a.race_name.as_str().to_owned());
                }
            }
            for record in pbem.played(user_id) {
                races.insert(record.game_id, record.race.clone());
            }
        }
        let games: Vec<UserGame> = state
            .games
            .values()
            .filter(|g| races.contains_key(&g.id) || (filter.hosts && g.host == user_id))
            .filter(|g| {
                filter
                    .ended
                    .is_none_or(|ended| g.status.is_terminal() == ended)
            })
            .map(|g| UserGame {
                game: g.clone(),
                race: races.get(&g.id).cloned(),
            })
            .collect();
        let key = |g: &UserGame| (g.game.created_at, g.game.id.as_uuid());
        paginate(&games, key, Order::Descending, page)
    }

    async fn count_active_games(&self, user_id: UserId) -> Result<u32, StoreError> {
        let state = self.state();
        Ok(active_games(&state, &self.ledger().pbem(), user_id, None))
    }

    async fn decide_application(
        &self,
        id: ApplicationId,
        to: ApplicationStatus,
        at: Timestamp,
    ) -> Result<Application, StoreError> {
        // Approval must go through `approve_application`, which keeps the count exact.
        if !matches!(
            to,
            ApplicationStatus::Rejected | ApplicationStatus::Withdrawn
        ) {
            let from = ApplicationStatus::Pending;
            return Err(InvalidTransition::new("application", from, to, "decision").into());
        }
        let mut state = self.state();
        let application = state.application_mut(id)?;
        if application.status != ApplicationStatus::Pending {
            return Err(StoreError::conflict(
                "application",
                id,
                format!("status is {}, expected pending", application.status),
            ));
        }
        application.status = to;
        application.decided_at = Some(at);
        Ok(application.clone())
    }

    async fn approve_application(
        &self,
        id: ApplicationId,
        at: Timestamp,
    ) -> Result<ApprovalOutcome, StoreError> {
        let mut state = self.state();
        // Both rows are borrowed at once so every check happens before any write.
        let LobbyState {
            games,
            applications,
            ..
        } = &mut *state;
        let application = applications
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("application", id))?;
        if application.status != ApplicationStatus::Pending {
            return Ok(ApprovalOutcome::NotPending(application.status));
        }
        let game = games
            .get_mut(&application.game_id)
            .ok_or_else(|| StoreError::not_found("game", application.game_id))?;
        if game.status != GameStatus::EnrollmentOpen {
            return Ok(ApprovalOutcome::NotEnrolling(game.status));
        }
        if game.is_full() {
            return Ok(ApprovalOutcome::GameFull);
        }
        application.status = ApplicationStatus::Approved;
        application.decided_at = Some(at);
        game.approved_count += 1;
        game.updated_at = at;
        Ok(ApprovalOutcome::Approved {
            application: application.clone(),
            game: game.clone(),
        })
    }

    async fn unannounced_applications(&self, limit: u32) -> Result<Vec<Application>, StoreError> {
        let state = self.state();
        let mut owed: Vec<&Application> = state
            .applications
            .values()
            .filter(|a| {
                a.status.is_announced()
                    && state.announced_applications.get(&a.id) != Some(&a.status)
            })
            .collect();
        owed.sort_by_key(|a| (a.created_at, a.id.as_uuid()));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(owed.into_iter().take(limit).cloned().collect())
    }

    async fn mark_application_announced(
        &self,
        id: ApplicationId,
        status: ApplicationStatus,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.application_mut(id)?;
        state.announced_applications.insert(id, status);
        Ok(())
    }
}
