//! The effects a lobby transition owes once committed: closing enrollment tells the host
//! and the approved players and, with auto-start, starts the game; cancelling stops a
//! game that had an engine (a durable stop job), frees the race names its pending
//! applications claimed, and tells the host and every live applicant; an application's
//! submission tells the host, its approval or rejection the player.
//!
//! An application is the outbox of its own notification: every status change leaves it
//! owing one (withdrawals excepted) until marked announced.
//!
//! The game's history row is their outbox: the store appends a transition into
//! `enrollment_closed` or `cancelled` unannounced, in the same atomic step as the status
//! change ([`GameStatus::owes_lobby_effects`]). The call that made the change completes
//! the effects at once and marks the transition announced; if any of them fails (or the
//! process dies), the transition stays owed and the sweeper's next pass completes it.
//! Every effect is idempotent (the stop job and the notifications carry idempotency keys,
//! the auto-start is a compare-and-set from `enrollment_closed`), so completing one twice
//! does nothing twice.

use serde_json::json;

use super::{LobbyError, LobbyService};
use crate::domain::application::{Application, ApplicationStatus};
use crate::domain::game::{Game, GameStatus, GameTransition, GameTrigger};
use crate::domain::notification::NotificationKind;
use crate::domain::runtime::{JobKind, RuntimeJob};
use crate::domain::{GameId, JobId};
use crate::ports::StoreError;

impl LobbyService {
    /// After enrollment closed: its effects, done at once (see the module doc). Returns
    /// the game as it ends up (started, with auto-start).
    pub(super) async fn after_close(&self, closed: Game) -> Game {
        match self.closing_effects(&closed).await {
            Ok(game) => {
                self.mark_announced(closed.id, GameStatus::EnrollmentClosed)
                    .await;
                game
            }
            Err(error) => {
                tracing::warn!(%error, game_id = %closed.id, "closing effects not completed; the sweeper completes them");
                closed
            }
        }
    }

    /// After a cancellation from status `from`: its effects, done at once (see the
    /// module doc).
    pub(super) async fn after_cancel(&self, from: GameStatus, cancelled: &Game) {
        match self.cancelling_effects(from, cancelled).await {
            Ok(()) => {
                self.mark_announced(cancelled.id, GameStatus::Cancelled)
                    .await
            }
            Err(error) => {
                tracing::warn!(%error, game_id = %cancelled.id, "cancellation effects not completed; the sweeper completes them");
            }
        }
    }

    /// The sweeper's pass over owed transitions: completes up to `limit`, oldest first,
    /// and returns how many it completed. A transition whose effects fail stays owed.
    pub(super) async fn complete_owed_effects(&self, limit: u32) -> Result<usize, StoreError> {
        let owed = self.ports.games.unannounced_transitions(limit).await?;
        let mut done = 0;
        for transition in owed {
            match self.complete(&transition).await {
                Ok(()) => done += 1,
                Err(error) => {
                    tracing::warn!(%error, game_id = %transition.game_id, to = %transition.to, "owed lobby effects not completed; the next pass retries");
                }
            }
        }
        let owed = self
            .ports
            .applications
            .unannounced_applications(limit)
            .await?;
        for application in owed {
            let announced = match self.ports.games.get_game(application.game_id).await {
                Ok(game) => self.announce_application(&game, &application, true).await,
                Err(error) => Err(error.into()),
            };
            match announced {
                Ok(()) => done += 1,
                Err(error) => {
                    tracing::warn!(%error, application_id = %application.id, "owed application notification not raised; the next pass retries");
                }
            }
        }
        Ok(done)
    }

    /// After an application's change: its notification, raised at once; a failure leaves
    /// it owed to the sweeper.
    pub(super) async fn after_application(&self, game: &Game, application: &Application) {
        if let Err(error) = self.announce_application(game, application, false).await {
            tracing::warn!(%error, application_id = %application.id, "application notification not raised; the sweeper raises it");
        }
    }

    /// Raises the notification of an application's current status and marks it announced.
    /// With `catch_up` (the sweeper, which does not know what was announced before), a
    /// decision first makes sure its submission was announced too (a no-op when it was:
    /// the key is the same), since a failure may have left only the later status owed.
    async fn announce_application(
        &self,
        game: &Game,
        application: &Application,
        catch_up: bool,
    ) -> Result<(), LobbyError> {
        if application.status == ApplicationStatus::Withdrawn {
            return Ok(());
        }
        if catch_up && application.status != ApplicationStatus::Pending {
            self.application_notice(game, application, ApplicationStatus::Pending)
                .await?;
        }
        self.application_notice(game, application, application.status)
            .await?;
        let applications = &self.ports.applications;
        applications
            .mark_application_announced(application.id, application.status)
            .await?;
        Ok(())
    }

    /// The notification of an application reaching `status`: its submission to the host,
    /// its approval or rejection to the player (a withdrawal tells no one).
    async fn application_notice(
        &self,
        game: &Game,
        application: &Application,
        status: ApplicationStatus,
    ) -> Result<(), LobbyError> {
        let mut payload = json!({
            "game_id": game.id,
            "game_name": game.settings.name.as_str(),
            "application_id": application.id,
            "race_name": application.race_name.as_str(),
        });
        let (kind, event, recipient) = match status {
            ApplicationStatus::Pending => {
                payload["applicant"] = json!(application.user_id);
                let kind = NotificationKind::ApplicationSubmitted;
                (kind, "submitted", game.host)
            }
            ApplicationStatus::Approved => {
                let kind = NotificationKind::ApplicationApproved;
                (kind, "approved", application.user_id)
            }
            ApplicationStatus::Rejected => {
                let kind = NotificationKind::ApplicationRejected;
                (kind, "rejected", application.user_id)
            }
            ApplicationStatus::Withdrawn => return Ok(()),
        };
        let key = match status {
            // Keyed by applicant, day and how many of their earlier applications the host
            // rejected, not by application: a player who withdraws and applies again
            // (over and over) tells the host once a day, while one applying again after a
            // rejection is news to the host. Earlier applications were decided before
            // this one could be made (one live application per player and game), so the
            // key is the same whenever the notice is raised (again).
            ApplicationStatus::Pending => {
                let all = self.ports.applications.list_applications(game.id).await?;
                let rejected = all
                    .iter()
                    .filter(|a| a.user_id == application.user_id)
                    .filter(|a| a.created_at < application.created_at)
                    .filter(|a| a.status == ApplicationStatus::Rejected)
                    .count();
                format!(
                    "application:{}:{}:submitted:{}:{rejected}",
                    game.id,
                    application.user_id,
                    application.created_at.date_naive()
                )
            }
            _ => format!("application:{}:{event}", application.id),
        };
        self.try_notify(kind, key, vec![recipient], game, payload)
            .await
    }

    /// Completes one owed transition's effects and marks it announced.
    async fn complete(&self, transition: &GameTransition) -> Result<(), LobbyError> {
        let game = self.ports.games.get_game(transition.game_id).await?;
        match transition.to {
            // Cancelled since: "enrollment closed, the game starts soon" would be false
            // (the cancellation's own mail says what happened).
            GameStatus::EnrollmentClosed if game.status == GameStatus::Cancelled => {}
            GameStatus::EnrollmentClosed => {
                self.closing_effects(&game).await?;
            }
            GameStatus::Cancelled => self.cancelling_effects(transition.from, &game).await?,
            _ => {}
        }
        let at = self.now();
        let games = &self.ports.games;
        games
            .mark_transition_announced(game.id, transition.to, at)
            .await?;
        Ok(())
    }

    /// Marks a transition announced after its effects; a failure only means the sweeper
    /// completes the (idempotent) effects once more.
    async fn mark_announced(&self, game_id: GameId, to: GameStatus) {
        let at = self.now();
        let games = &self.ports.games;
        if let Err(error) = games.mark_transition_announced(game_id, to, at).await {
            tracing::warn!(%error, %game_id, %to, "transition not marked announced; the sweeper repeats its effects");
        }
    }

    /// The closing mail, then the auto-start while the game is still closed. A start the
    /// game refuses (it changed, or the engine is gone) is logged and done; a store
    /// failure leaves the effect owed.
    async fn closing_effects(&self, closed: &Game) -> Result<Game, LobbyError> {
        let audience = self.game_audience(closed, true).await?;
        let payload = json!({
            "game_id": closed.id,
            "game_name": closed.settings.name.as_str(),
            "approved_count": closed.approved_count,
        });
        let key = format!("game:{}:enrollment_closed", closed.id);
        let kind = NotificationKind::EnrollmentClosed;
        self.try_notify(kind, key, audience, closed, payload)
            .await?;
        self.reject_pending(closed).await?;
        if !self.config.auto_start || closed.status != GameStatus::EnrollmentClosed {
            return Ok(closed.clone());
        }
        match self.start_with(closed.id, GameTrigger::System, None).await {
            Ok(started) => Ok(started),
            Err(LobbyError::Store(error)) => Err(error.into()),
            Err(error) => {
                tracing::warn!(%error, game_id = %closed.id, "auto-start did not happen");
                Ok(closed.clone())
            }
        }
    }

    /// Rejects the applications still pending once enrollment closed: none can be
    /// approved any more, and left pending they would count against their applicants'
    /// limit of active games (and hold their race names) for the whole game. Each
    /// applicant is told, through the application's own outbox.
    async fn reject_pending(&self, closed: &Game) -> Result<(), LobbyError> {
        let applications = self.ports.applications.list_applications(closed.id).await?;
        for pending in applications
            .iter()
            .filter(|a| a.status == ApplicationStatus::Pending)
        {
            match self.decide(pending, ApplicationStatus::Rejected).await {
                Ok(rejected) => {
                    self.release_claim(&rejected).await;
                    self.after_application(closed, &rejected).await;
                }
                // Withdrawn meanwhile, or rejected by an earlier pass.
                Err(LobbyError::NotPending { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// The stop job (for a game that had an engine), the race names claimed by its
    /// pending applications freed, and the cancellation mail (which tells those
    /// applicants too).
    async fn cancelling_effects(
        &self,
        from: GameStatus,
        cancelled: &Game,
    ) -> Result<(), LobbyError> {
        // A name claimed for a game that will never start held for the claim's whole
        // time to live would let anyone keep names from everyone by applying to games
        // of their own and cancelling them. (`release_claim` keeps a claim that another
        // live application of the owner, or a newer claim, holds.)
        let applications = self
            .ports
            .applications
            .list_applications(cancelled.id)
            .await?;
        for pending in applications
            .iter()
            .filter(|a| a.status == ApplicationStatus::Pending)
        {
            self.release_claim(pending).await;
        }
        if matches!(
            from,
            GameStatus::Starting | GameStatus::Running | GameStatus::Paused
        ) {
            // The same key as the runtime's own stop: one stop job per cancelled game.
            let key = format!("stop:{}:{}", cancelled.id, GameStatus::Cancelled);
            let id = JobId::from_uuid(self.ports.ids.uuid());
            let job = RuntimeJob::new(id, cancelled.id, JobKind::Stop, key, self.now());
            self.ports.jobs.enqueue_job(&job).await?;
        }
        let audience = self.game_audience(cancelled, false).await?;
        let payload = json!({
            "game_id": cancelled.id,
            "game_name": cancelled.settings.name.as_str(),
        });
        let key = format!("game:{}:cancelled", cancelled.id);
        let kind = NotificationKind::GameCancelled;
        self.try_notify(kind, key, audience, cancelled, payload)
            .await
    }
}
