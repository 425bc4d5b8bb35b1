//! Applications: applying under a race name, the host's decisions, withdrawal.

use super::{LobbyError, LobbyService, manages};
use crate::domain::application::{Application, ApplicationStatus};
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::race_name::RaceName;
use crate::domain::{ApplicationId, GameId};
use crate::ports::{ApplicationInsert, ApprovalOutcome, StoreError};
use crate::service::Actor;

impl LobbyService {
    /// Applies to an open game under `race_name`, claiming the name (pending) until the
    /// application is approved. The host is notified; with auto-approve the application
    /// is approved at once (and comes back approved). Refused (403) when the player is
    /// already active in `max_active_games` games (live applications, races played and
    /// pending seat applications in unfinished games:
    /// [`ApplicationStore::count_active_games`](crate::ports::ApplicationStore::count_active_games));
    /// the store counts them in the same atomic step as the insert, so concurrent
    /// applications, to games or to seats, cannot pass the limit together.
    pub async fn apply(
        &self,
        actor: Actor,
        game_id: GameId,
        race_name: &str,
    ) -> Result<Application, LobbyError> {
        let race_name =
            RaceName::parse(race_name).map_err(|e| LobbyError::validation("race_name", e))?;
        let now = self.now();
        let mut game = self.load_game(Some(actor), game_id).await?;
        if game.status != GameStatus::EnrollmentOpen {
            // Enrollment may have opened on another replica a moment ago.
            game = self.read_game(game_id, true).await?;
        }
        if game.status != GameStatus::EnrollmentOpen {
            return Err(LobbyError::NotEnrolling {
                status: game.status,
            });
        }
        // Past the deadline the sweeper closes or cancels the game at its next pass; an
        // application meanwhile would be a late one (and could tip its verdict).
        let deadline = game.settings.enrollment_deadline;
        if now >= deadline {
            return Err(LobbyError::EnrollmentEnded { deadline });
        }
        let user = self.active_user(&actor, now).await?;
        let applications = &self.ports.applications;
        if applications
            .find_live_application(game_id, user.id)
            .await?
            .is_some()
        {
            return Err(LobbyError::AlreadyApplied);
        }
        // Checked here too so that a player at the limit is told before a race name is
        // claimed; the store checks again atomically with the insert, which is what
        // holds under concurrent applications.
        let max = user.entitlements.max_active_games;
        let live = applications.count_active_games(user.id).await?;
        if live >= max {
            return Err(too_many_active_games(live, max));
        }
        let id = ApplicationId::from_uuid(self.ports.ids.uuid());
        let application = Application::new(id, game_id, user.id, race_name, now);
        let claimed_now = self.claim_for_application(&application, now).await?;
        let refusal = match applications.insert_application(&application, max).await {
            Ok(ApplicationInsert::Inserted) => None,
            Ok(ApplicationInsert::TooManyActiveGames { live }) => {
                Some(too_many_active_games(live, max))
            }
            Ok(ApplicationInsert::NotEnrolling(status)) => {
                Some(LobbyError::NotEnrolling { status })
            }
            // Every application is kept (the host's list, the rejections that key the
            // host's notices): a loop of apply and withdraw stops at the bound.
            Ok(ApplicationInsert::TooManyApplications { made }) => Some(LobbyError::forbidden(
                format!("you applied to this game {made} times; ask its host to let you in"),
            )),
            // The owner released the name (or it changed hands) since it was claimed.
            Ok(ApplicationInsert::RaceNameNotHeld) => Some(LobbyError::RaceNameTaken {
                name: application.race_name.to_string(),
            }),
            Err(StoreError::Duplicate { .. }) => Some(LobbyError::AlreadyApplied),
            Err(other) => Some(other.into()),
        };
        if let Some(error) = refusal {
            // Do not leak the claim this call made; an older one stays as it was.
            if claimed_now {
                self.release_claim(&application).await;
            }
            return Err(error);
        }
        self.after_application(&game, &application).await;
        if !game.settings.auto_approve {
            return Ok(application);
        }
        match self.approve_loaded(&game, application.clone()).await {
            Ok(approved) => Ok(approved),
            Err(error) => {
                // Full or closed meanwhile: the application stays pending for the host.
                tracing::info!(%error, application_id = %application.id, "not auto-approved");
                Ok(application)
            }
        }
    }

    /// Approves a pending application (host or admin): the game's count goes up
    /// atomically, the race name becomes registered, the player is notified, and the
    /// approval that fills the game closes its enrollment (trigger `system`).
    pub async fn approve(
        &self,
        actor: Actor,
        game_id: GameId,
        application_id: ApplicationId,
    ) -> Result<Application, LobbyError> {
        let game = self.load_game(Some(actor), game_id).await?;
        require_manager(&actor, &game)?;
        let application = self.load_application(game_id, application_id).await?;
        self.approve_loaded(&game, application).await
    }

    /// Rejects a pending application (host or admin), frees its race-name claim and
    /// notifies the player.
    pub async fn reject(
        &self,
        actor: Actor,
        game_id: GameId,
        application_id: ApplicationId,
    ) -> Result<Application, LobbyError> {
        let game = self.load_game(Some(actor), game_id).await?;
        require_manager(&actor, &game)?;
        let application = self.load_application(game_id, application_id).await?;
        let rejected = self
            .decide(&application, ApplicationStatus::Rejected)
            .await?;
        self.release_claim(&rejected).await;
        self.after_application(&game, &rejected).await;
        Ok(rejected)
    }

    /// Withdraws the caller's own pending application to a game and frees its claim.
    pub async fn withdraw(&self, actor: Actor, game_id: GameId) -> Result<Application, LobbyError> {
        self.load_game(Some(actor), game_id).await?;
        let application = self
            .ports
            .applications
            .find_live_application(game_id, actor.user_id)
            .await?
            .ok_or_else(|| LobbyError::not_found("application", "mine"))?;
        let withdrawn = self
            .decide(&application, ApplicationStatus::Withdrawn)
            .await?;
        self.release_claim(&withdrawn).await;
        Ok(withdrawn)
    }

    /// A game's applications, oldest first: all of them for its host and admins, only the
    /// caller's own for anyone else.
    pub async fn list_applications(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<Vec<Application>, LobbyError> {
        let game = self.load_game(Some(actor), game_id).await?;
        let mut applications = self.ports.applications.list_applications(game_id).await?;
        if !manages(&actor, &game) {
            applications.retain(|a| a.user_id == actor.user_id);
        }
        Ok(applications)
    }

    /// The approval shared by the host's approve and auto-approve.
    async fn approve_loaded(
        &self,
        game: &Game,
        application: Application,
    ) -> Result<Application, LobbyError> {
        if application.status != ApplicationStatus::Pending {
            return Err(LobbyError::NotPending {
                status: application.status,
            });
        }
        // A claim that lapsed while the application waited is renewed first, so an
        // approved player never ends up without the name.
        self.hold_name_for(&application).await?;
        let outcome = self
            .ports
            .applications
            .approve_application(application.id, self.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => LobbyError::not_found("application", application.id),
                other => other.into(),
            })?;
        let refused = match outcome {
            ApprovalOutcome::Approved { application, game } => Ok((application, game)),
            ApprovalOutcome::GameFull => Err(LobbyError::GameFull),
            ApprovalOutcome::NotPending(status) => Err(LobbyError::NotPending { status }),
            ApprovalOutcome::NotEnrolling(status) => Err(LobbyError::NotEnrolling { status }),
        };
        let (approved, counted) = match refused {
            Ok(approved) => approved,
            Err(error) => {
                // The claim renewed above may belong to an application rejected or
                // withdrawn meanwhile (the close rejects the pending ones): let it go.
                self.release_if_decided(application.id).await;
                return Err(error);
            }
        };
        if let Err(error) = self.secure_name(&approved).await {
            // The sweeper registers it when the claim expires (approved meanwhile).
            tracing::error!(%error, application_id = %approved.id, "race name not registered on approval");
        }
        self.after_application(game, &approved).await;
        if counted.is_full() && counted.status == GameStatus::EnrollmentOpen {
            self.close_full_game(counted).await;
        }
        Ok(approved)
    }

    /// Frees the race-name claim of an application that is no longer live (rejected or
    /// withdrawn); a live one keeps its claim.
    async fn release_if_decided(&self, id: ApplicationId) {
        match self.ports.applications.get_application(id).await {
            Ok(current) if !current.status.is_live() => self.release_claim(&current).await,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, application_id = %id, "application not read; its claim lapses");
            }
        }
    }

    /// Closes enrollment of a game that just reached `max_players` (trigger `system`).
    /// Losing the compare-and-set means the host or an admin closed or cancelled it first.
    async fn close_full_game(&self, full: Game) {
        let closed = self
            .change_status(
                &full,
                GameStatus::EnrollmentClosed,
                GameTrigger::System,
                None,
                Some(crate::domain::game::reasons::MAX_PLAYERS_REACHED),
            )
            .await;
        match closed {
            Ok(closed) => {
                self.after_close(closed).await;
            }
            Err(LobbyError::StatusChanged { .. } | LobbyError::InvalidTransition(_)) => {}
            Err(error) => {
                tracing::warn!(%error, game_id = %full.id, "full game not closed; the deadline sweep will");
            }
        }
    }

    /// An application of `game_id`; one of another game looks absent.
    async fn load_application(
        &self,
        game_id: GameId,
        id: ApplicationId,
    ) -> Result<Application, LobbyError> {
        match self.ports.applications.get_application(id).await {
            Ok(application) if application.game_id == game_id => Ok(application),
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                Err(LobbyError::not_found("application", id))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Rejects or withdraws a pending application (compare-and-set on `pending`).
    pub(super) async fn decide(
        &self,
        application: &Application,
        to: ApplicationStatus,
    ) -> Result<Application, LobbyError> {
        if application.status != ApplicationStatus::Pending {
            return Err(LobbyError::NotPending {
                status: application.status,
            });
        }
        let applications = &self.ports.applications;
        match applications
            .decide_application(application.id, to, self.now())
            .await
        {
            Ok(decided) => Ok(decided),
            Err(StoreError::Conflict { .. } | StoreError::InvalidTransition(_)) => {
                let status = applications.get_application(application.id).await?.status;
                Err(LobbyError::NotPending { status })
            }
            Err(StoreError::NotFound { .. }) => {
                Err(LobbyError::not_found("application", application.id))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// The refusal for a player who already holds `live` of their `max` active games.
fn too_many_active_games(live: u32, max: u32) -> LobbyError {
    LobbyError::forbidden(format!(
        "already in {live} active game(s), the limit is {max}"
    ))
}

fn require_manager(actor: &Actor, game: &Game) -> Result<(), LobbyError> {
    if manages(actor, game) {
        Ok(())
    } else {
        Err(LobbyError::forbidden(
            "only the game's host or an admin may decide applications",
        ))
    }
}
